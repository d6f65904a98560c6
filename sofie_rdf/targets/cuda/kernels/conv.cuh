// Convolution, 1-D to 3-D, grouped and dilated, in one launch whatever the batch: an implicit GEMM (conv_gemm)
// where a group has kGemmMinFeatures output channels or more, else a direct kernel (a thread per output value,
// summing its window over the group's channels: depthwise layers); the bias and the fused activation are applied
// as the outputs are stored.

// Spatial geometry of a convolution or a pooling window (Rank spatial dims), passed by value.
template <int Rank>
struct Window {
   size_t image[Rank];     // input lengths
   size_t grid[Rank];      // output lengths
   size_t kernel[Rank];    // window lengths
   size_t stride[Rank];
   size_t dilation[Rank];
   long long pad[Rank];    // padding before each dim
   long long pad_end[Rank];  // and after it (pooling's count_include_pad counts taps there)
};

// Number of values in the window's grid (the output positions per channel) and in the window itself.
template <int Rank>
__host__ __device__ size_t grid_size(const Window<Rank> &w)
{
   size_t n = 1;
   for (int d = 0; d < Rank; ++d)
      n *= w.grid[d];
   return n;
}

template <int Rank>
__host__ __device__ size_t window_size(const Window<Rank> &w)
{
   size_t n = 1;
   for (int d = 0; d < Rank; ++d)
      n *= w.kernel[d];
   return n;
}

template <int Rank>
__host__ __device__ size_t image_size(const Window<Rank> &w)
{
   size_t n = 1;
   for (int d = 0; d < Rank; ++d)
      n *= w.image[d];
   return n;
}

// The window kernels divide once per output position or per product row, never per tap (`quotient`: math.cuh):
// decomposing every tap with 64-bit divisions had made them 1.8x to 4.1x slower on an H200.

// Where the window of one output position starts in the input, per dim (negative inside the leading padding).
template <int Rank>
struct WindowOrigin {
   long long at[Rank];
};

template <int Rank>
__device__ WindowOrigin<Rank> window_origin(const Window<Rank> &w, size_t pos)
{
   WindowOrigin<Rank> o;
   for (int d = Rank - 1; d >= 0; --d) {
      const size_t rest = quotient(pos, w.grid[d]);
      o.at[d] = static_cast<long long>((pos - rest * w.grid[d]) * w.stride[d]) - w.pad[d];
      pos = rest;
   }
   return o;
}

// A window's taps walked in order (the last dim fastest), with no division: `next` steps to the following tap.
// Trivial (`TapWalk<Rank> walk{}` is the first tap), so that shared memory can hold it.
template <int Rank>
struct TapWalk {
   unsigned t[Rank];

   __device__ void next(const Window<Rank> &w)
   {
      for (int d = Rank - 1; d >= 0; --d) {
         if (++t[d] < w.kernel[d])
            return;
         t[d] = 0;
      }
   }
};

// The taps of window number `tap` (the same order), for the implicit GEMM's rows: one small division per dim.
template <int Rank>
__device__ TapWalk<Rank> tap_at(const Window<Rank> &w, size_t tap)
{
   TapWalk<Rank> walk;
   for (int d = Rank - 1; d >= 0; --d) {
      const unsigned kernel = static_cast<unsigned>(w.kernel[d]), rest = unsigned(tap) / kernel;
      walk.t[d] = unsigned(tap) - rest * kernel;
      tap = rest;
   }
   return walk;
}

// The input offset (within one channel) of the tap `walk` of the window at `o`, or -1 outside the image.
template <int Rank>
__device__ long long window_tap(const Window<Rank> &w, const WindowOrigin<Rank> &o, const TapWalk<Rank> &walk)
{
   long long offset = 0;
   for (int d = 0; d < Rank; ++d) {
      const long long c = o.at[d] + static_cast<long long>(walk.t[d] * w.dilation[d]);
      if (c < 0 || c >= static_cast<long long>(w.image[d]))
         return -1;
      offset = offset * static_cast<long long>(w.image[d]) + c;
   }
   return offset;
}

// Whether that tap, outside the image, falls in the declared padding (not past it: ceil_mode's extra positions).
template <int Rank>
__device__ bool window_in_padding(const Window<Rank> &w, const WindowOrigin<Rank> &o, const TapWalk<Rank> &walk)
{
   for (int d = 0; d < Rank; ++d) {
      const long long c = o.at[d] + static_cast<long long>(walk.t[d] * w.dilation[d]);
      if (c < -w.pad[d] || c >= static_cast<long long>(w.image[d]) + w.pad_end[d])
         return false;
   }
   return true;
}

template <typename T, int Rank, typename F>
__global__ void conv_kernel(const T *x, const T *weight, const T *bias, T *y, size_t batch, size_t channels,
                            size_t features, size_t groups, Window<Rank> w, F f)
{
   const size_t positions = grid_size(w), taps = window_size(w), image = image_size(w);
   const size_t group_channels = channels / groups, group_features = features / groups;
   const size_t total = batch * features * positions;
   for (size_t i = blockIdx.x * size_t(blockDim.x) + threadIdx.x; i < total; i += size_t(gridDim.x) * blockDim.x) {
      const size_t plane = quotient(i, positions), n = quotient(plane, features), feature = plane - n * features;
      const WindowOrigin<Rank> origin = window_origin(w, i - plane * positions);
      const size_t first = quotient(feature, group_features) * group_channels;
      const T *wf = weight + feature * group_channels * taps;
      const T *xn = x + (n * channels + first) * image;
      T sum = bias ? bias[feature] : T(0);
      TapWalk<Rank> walk{};
      for (size_t tap = 0; tap < taps; ++tap, walk.next(w)) {
         const long long offset = window_tap(w, origin, walk);
         if (offset < 0)
            continue;
         for (size_t c = 0; c < group_channels; ++c)
            sum += xn[c * image + offset] * wf[c * taps + tap];
      }
      y[i] = f(sum);
   }
}

// Implicit GEMM: per group, Y[f, (n, p)] = sum over k = (channel, tap) of W[f, k] X[k, (n, p)], the columns (n, p)
// of every event side by side, so that a batch of one still fills the GPU. A block computes TileF features x
// (a column tile), each thread a kMicro x kMicro register tile; the reduction over k walks chunks of kConvChunk,
// staging W's chunk and X's im2col values (gathered from the image as they are loaded, zeros in padding: no
// im2col buffer) in shared memory. The column tile follows the block's threads (blockDim.x / (TileF / kMicro)
// rows of threads, kMicro columns each).
inline constexpr unsigned kConvThreads = 256;
inline constexpr unsigned kConvChunk = 16;
inline constexpr unsigned kMicro = 4;
// Output channels per group from which the implicit GEMM runs (fewer, as in depthwise layers: the direct kernel).
inline constexpr size_t kGemmMinFeatures = 4;

// The reduction rows (channel, tap) of one chunk, decomposed once for the whole block (the gathers of every
// column share them): each row's channel offset in the image and its taps.
template <int Rank>
struct ChunkRows {
   size_t channel[kConvChunk];
   TapWalk<Rank> taps[kConvChunk];
};

template <int Rank>
__device__ void decompose_rows(const Window<Rank> &w, size_t k0, size_t taps, size_t image, ChunkRows<Rank> &rows)
{
   for (unsigned r = threadIdx.x; r < kConvChunk; r += blockDim.x) {
      const size_t k = k0 + r, channel = quotient(k, taps);
      rows.channel[r] = channel * image;
      rows.taps[r] = tap_at(w, k - channel * taps);
   }
}

template <typename T, int Rank, int TileF, typename F>
__global__ void conv_gemm_kernel(const T *x, const T *weight, const T *bias, T *y, size_t batch, size_t channels,
                                 size_t features, size_t groups, Window<Rank> w, F f)
{
   constexpr unsigned feature_threads = TileF / kMicro;
   constexpr unsigned max_columns = kConvThreads / feature_threads * kMicro;
   static_assert(TileF % (kMicro * kMicro) == 0, "a column tile must divide the block: each thread gathers one column");
   __shared__ T w_chunk[kConvChunk][TileF];
   __shared__ T x_chunk[kConvChunk][max_columns];
   __shared__ ChunkRows<Rank> chunk_rows[2];  // this chunk's rows, and the next one's decomposed meanwhile
   const size_t positions = grid_size(w), taps = window_size(w), image = image_size(w);
   const size_t group_channels = channels / groups, group_features = features / groups;
   const size_t depth = group_channels * taps, columns = batch * positions;
   const size_t tile_columns = size_t(blockDim.x / feature_threads) * kMicro;
   const size_t feature_tiles = (group_features + TileF - 1) / TileF;
   const size_t column_tiles = (columns + tile_columns - 1) / tile_columns;
   const size_t tiles = groups * feature_tiles * column_tiles;
   const unsigned my_features = threadIdx.x % feature_threads * kMicro;
   const size_t my_columns = threadIdx.x / feature_threads * kMicro;
   const bool active = my_columns < tile_columns;
   const unsigned my_load = threadIdx.x % tile_columns, rows_per_pass = blockDim.x / tile_columns;
   for (size_t tile = blockIdx.x; tile < tiles; tile += gridDim.x) {
      const size_t column0 = tile % column_tiles * tile_columns;
      const size_t feature0 = tile / column_tiles % feature_tiles * TileF, group = tile / column_tiles / feature_tiles;
      const T *wg = weight + group * group_features * depth;
      // The column this thread gathers for (the same in every chunk): its event and window, found once.
      const size_t load_column = column0 + my_load, n = quotient(load_column, positions);
      const bool column_in = load_column < columns;
      const WindowOrigin<Rank> origin = window_origin(w, load_column - n * positions);
      const T *xn = x + (n * channels + group * group_channels) * image;
      T acc[kMicro][kMicro] = {};
      decompose_rows(w, 0, taps, image, chunk_rows[0]);
      for (size_t k0 = 0, now = 0; k0 < depth; k0 += kConvChunk, now ^= 1) {
         __syncthreads();
         const ChunkRows<Rank> &rows = chunk_rows[now];
         for (size_t e = threadIdx.x; e < kConvChunk * TileF; e += blockDim.x) {
            const size_t k = k0 + e % kConvChunk, feature = feature0 + e / kConvChunk;
            w_chunk[e % kConvChunk][e / kConvChunk] =
               k < depth && feature < group_features ? wg[feature * depth + k] : T(0);
         }
         for (unsigned r = threadIdx.x / tile_columns; r < kConvChunk; r += rows_per_pass) {
            const size_t k = k0 + r;
            T value = T(0);
            if (k < depth && column_in) {
               const long long offset = window_tap(w, origin, rows.taps[r]);
               if (offset >= 0)
                  value = xn[rows.channel[r] + offset];
            }
            x_chunk[r][my_load] = value;
         }
         __syncthreads();
         decompose_rows(w, k0 + kConvChunk, taps, image, chunk_rows[now ^ 1]);  // read after the next barrier
         if (!active)
            continue;
         for (unsigned kk = 0; kk < kConvChunk; ++kk) {
            T a[kMicro], b[kMicro];
            for (unsigned i = 0; i < kMicro; ++i) {
               a[i] = w_chunk[kk][my_features + i];
               b[i] = x_chunk[kk][my_columns + i];
            }
            for (unsigned i = 0; i < kMicro; ++i)
               for (unsigned j = 0; j < kMicro; ++j)
                  acc[i][j] += a[i] * b[j];
         }
      }
      if (!active)
         continue;
      for (unsigned i = 0; i < kMicro; ++i) {
         const size_t feature = feature0 + my_features + i;
         if (feature >= group_features)
            break;
         const size_t channel = group * group_features + feature;
         for (unsigned j = 0; j < kMicro; ++j) {
            const size_t column = column0 + my_columns + j;
            if (column >= columns)
               break;
            const T sum = acc[i][j] + (bias ? bias[channel] : T(0));
            const size_t event = quotient(column, positions);
            y[(event * features + channel) * positions + column - event * positions] = f(sum);
         }
      }
   }
}

// The implicit GEMM with TileF features per block tile.
template <int TileF, typename T, int Rank, typename F>
void conv_gemm(const T *x, const T *weight, const T *bias, T *y, size_t batch, size_t channels, size_t features,
               size_t groups, const Window<Rank> &w, F f, cudaStream_t stream)
{
   const size_t group_features = features / groups, columns = batch * grid_size(w);
   const size_t tile_columns = kConvThreads / (TileF / kMicro) * kMicro;
   const size_t tiles = groups * ((group_features + TileF - 1) / TileF) * ((columns + tile_columns - 1) / tile_columns);
   conv_gemm_kernel<T, Rank, TileF><<<row_blocks(tiles), kConvThreads, 0, stream>>>(x, weight, bias, y, batch, channels,
                                                                                   features, groups, w, f);
}

template <typename T, int Rank, typename F>
void conv(const T *x, const T *weight, const T *bias, T *y, size_t batch, size_t channels, size_t features,
          size_t groups, const Window<Rank> &w, F f, cudaStream_t stream)
{
   const size_t total = batch * features * grid_size(w), group_features = features / groups;
   if (total == 0)
      return;
   if (group_features < kGemmMinFeatures)
      conv_kernel<<<blocks_for(total), kThreads, 0, stream>>>(x, weight, bias, y, batch, channels, features, groups,
                                                             w, f);
   else if (group_features <= 16)
      conv_gemm<16>(x, weight, bias, y, batch, channels, features, groups, w, f, stream);
   else if (group_features <= 32)
      conv_gemm<32>(x, weight, bias, y, batch, channels, features, groups, w, f, stream);
   else
      conv_gemm<64>(x, weight, bias, y, batch, channels, features, groups, w, f, stream);
}

// ConvTranspose: a thread per output value (w.image is the output, w.grid the input), summing the input
// positions whose window covers it: q = o + pad - t * dilation must be a multiple of the stride, q / stride
// inside the input. Weights (channels, features / groups, taps...); bias and activation as Conv.
template <int Rank>
__device__ long long transposed_tap(const Window<Rank> &w, size_t pos, size_t tap)
{
   long long offset = 0;
   long long coords[Rank];
   for (int d = Rank - 1; d >= 0; --d) {
      const size_t o = pos % w.image[d], t = tap % w.kernel[d];
      pos /= w.image[d];
      tap /= w.kernel[d];
      const long long q = static_cast<long long>(o) + w.pad[d] - static_cast<long long>(t * w.dilation[d]);
      const long long stride = static_cast<long long>(w.stride[d]);
      if (q < 0 || q % stride != 0 || q / stride >= static_cast<long long>(w.grid[d]))
         return -1;
      coords[d] = q / stride;
   }
   for (int d = 0; d < Rank; ++d)
      offset = offset * static_cast<long long>(w.grid[d]) + coords[d];
   return offset;
}

template <typename T, int Rank, typename F>
__global__ void conv_transpose_kernel(const T *x, const T *weight, const T *bias, T *y, size_t batch, size_t channels,
                                      size_t features, size_t groups, Window<Rank> w, F f)
{
   const size_t outputs = image_size(w), taps = window_size(w), inputs = grid_size(w);
   const size_t group_channels = channels / groups, group_features = features / groups;
   const size_t total = batch * features * outputs;
   for (size_t i = blockIdx.x * size_t(blockDim.x) + threadIdx.x; i < total; i += size_t(gridDim.x) * blockDim.x) {
      const size_t pos = i % outputs, feature = i / outputs % features, n = i / outputs / features;
      const size_t group = feature / group_features, local = feature % group_features;
      T sum = bias ? bias[feature] : T(0);
      for (size_t tap = 0; tap < taps; ++tap) {
         const long long offset = transposed_tap(w, pos, tap);
         if (offset < 0)
            continue;
         for (size_t c = group * group_channels; c < (group + 1) * group_channels; ++c)
            sum += x[(n * channels + c) * inputs + offset] * weight[(c * group_features + local) * taps + tap];
      }
      y[i] = f(sum);
   }
}

template <typename T, int Rank, typename F>
void conv_transpose(const T *x, const T *weight, const T *bias, T *y, size_t batch, size_t channels, size_t features,
                    size_t groups, const Window<Rank> &w, F f, cudaStream_t stream)
{
   const size_t total = batch * features * image_size(w);
   if (total)
      conv_transpose_kernel<<<blocks_for(total), kThreads, 0, stream>>>(x, weight, bias, y, batch, channels, features,
                                                                       groups, w, f);
}
