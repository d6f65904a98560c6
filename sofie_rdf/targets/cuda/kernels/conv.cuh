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

// The input offset (within one channel) of tap `tap` of the window at output position `pos`, or -1 in padding.
template <int Rank>
__device__ long long window_tap(const Window<Rank> &w, size_t pos, size_t tap)
{
   long long offset = 0;
   long long coords[Rank];
   for (int d = Rank - 1; d >= 0; --d) {
      const size_t p = pos % w.grid[d], t = tap % w.kernel[d];
      pos /= w.grid[d];
      tap /= w.kernel[d];
      coords[d] = static_cast<long long>(p * w.stride[d] + t * w.dilation[d]) - w.pad[d];
      if (coords[d] < 0 || coords[d] >= static_cast<long long>(w.image[d]))
         return -1;
   }
   for (int d = 0; d < Rank; ++d)
      offset = offset * static_cast<long long>(w.image[d]) + coords[d];
   return offset;
}

// Whether tap `tap` of the window at `pos`, outside the image, falls in the declared padding (not past it).
template <int Rank>
__device__ bool window_in_padding(const Window<Rank> &w, size_t pos, size_t tap)
{
   for (int d = Rank - 1; d >= 0; --d) {
      const size_t p = pos % w.grid[d], t = tap % w.kernel[d];
      pos /= w.grid[d];
      tap /= w.kernel[d];
      const long long c = static_cast<long long>(p * w.stride[d] + t * w.dilation[d]) - w.pad[d];
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
      const size_t pos = i % positions, feature = i / positions % features, n = i / positions / features;
      const size_t first = feature / group_features * group_channels;
      const T *wf = weight + feature * group_channels * taps;
      T sum = bias ? bias[feature] : T(0);
      for (size_t tap = 0; tap < taps; ++tap) {
         const long long offset = window_tap(w, pos, tap);
         if (offset < 0)
            continue;
         const T *xc = x + (n * channels + first) * image + offset;
         for (size_t c = 0; c < group_channels; ++c)
            sum += xc[c * image] * wf[c * taps + tap];
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

template <typename T, int Rank, int TileF, typename F>
__global__ void conv_gemm_kernel(const T *x, const T *weight, const T *bias, T *y, size_t batch, size_t channels,
                                 size_t features, size_t groups, Window<Rank> w, F f)
{
   constexpr unsigned feature_threads = TileF / kMicro;
   constexpr unsigned max_columns = kConvThreads / feature_threads * kMicro;
   __shared__ T w_chunk[kConvChunk][TileF];
   __shared__ T x_chunk[kConvChunk][max_columns];
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
   for (size_t tile = blockIdx.x; tile < tiles; tile += gridDim.x) {
      const size_t column0 = tile % column_tiles * tile_columns;
      const size_t feature0 = tile / column_tiles % feature_tiles * TileF, group = tile / column_tiles / feature_tiles;
      const T *wg = weight + group * group_features * depth;
      const T *xg = x + group * group_channels * image;
      T acc[kMicro][kMicro] = {};
      for (size_t k0 = 0; k0 < depth; k0 += kConvChunk) {
         __syncthreads();
         for (size_t e = threadIdx.x; e < kConvChunk * TileF; e += blockDim.x) {
            const size_t k = k0 + e % kConvChunk, feature = feature0 + e / kConvChunk;
            w_chunk[e % kConvChunk][e / kConvChunk] =
               k < depth && feature < group_features ? wg[feature * depth + k] : T(0);
         }
         for (size_t e = threadIdx.x; e < kConvChunk * tile_columns; e += blockDim.x) {
            const size_t k = k0 + e / tile_columns, column = column0 + e % tile_columns;
            T value = T(0);
            if (k < depth && column < columns) {
               const long long offset = window_tap(w, column % positions, k % taps);
               if (offset >= 0)
                  value = xg[(column / positions * channels + k / taps) * image + offset];
            }
            x_chunk[e / tile_columns][e % tile_columns] = value;
         }
         __syncthreads();
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
            y[(column / positions * features + channel) * positions + column % positions] = f(sum);
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
