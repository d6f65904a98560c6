// Convolution, 1-D to 3-D, grouped and dilated, as a direct kernel: a thread per output value, summing its
// window over the group's channels, then the bias and the fused activation. One launch whatever the batch.

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

template <typename T, int Rank, typename F>
void conv(const T *x, const T *weight, const T *bias, T *y, size_t batch, size_t channels, size_t features,
          size_t groups, const Window<Rank> &w, F f, cudaStream_t stream)
{
   const size_t total = batch * features * grid_size(w);
   if (total)
      conv_kernel<<<blocks_for(total), kThreads, 0, stream>>>(x, weight, bias, y, batch, channels, features, groups,
                                                             w, f);
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
