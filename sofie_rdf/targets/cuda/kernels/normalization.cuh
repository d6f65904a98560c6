// LayerNormalization: a block per row of n values (mean, then the variance around it: two passes over the row,
// which stays in L1), y = (x - mean) / sqrt(var + epsilon) * scale + bias, scale and bias broadcast as a suffix
// of the row (index j % size). Mean and InvStdDev are written where the node has those outputs.

template <typename T>
__global__ void layer_norm_kernel(const T *x, const T *scale, size_t scale_size, const T *bias, size_t bias_size,
                                  T *y, T *mean_out, T *inv_std_out, size_t rows, size_t n, T epsilon)
{
   __shared__ T shared[kMaxRowThreads / kWarp];
   for (size_t row = blockIdx.x; row < rows; row += gridDim.x) {
      const T *xr = x + row * n;
      T *yr = y + row * n;
      T sum = 0;
      for (size_t j = threadIdx.x; j < n; j += blockDim.x)
         sum += xr[j];
      const T mean = block_sum(sum, shared) / T(n);
      T squares = 0;
      for (size_t j = threadIdx.x; j < n; j += blockDim.x)
         squares += (xr[j] - mean) * (xr[j] - mean);
      const T inv_std = T(1) / std::sqrt(block_sum(squares, shared) / T(n) + epsilon);
      for (size_t j = threadIdx.x; j < n; j += blockDim.x) {
         const T v = (xr[j] - mean) * inv_std * scale[j % scale_size];
         yr[j] = bias ? v + bias[j % bias_size] : v;
      }
      if (threadIdx.x == 0 && mean_out)
         mean_out[row] = mean;
      if (threadIdx.x == 0 && inv_std_out)
         inv_std_out[row] = inv_std;
   }
}

template <typename T>
void layer_norm(const T *x, const T *scale, size_t scale_size, const T *bias, size_t bias_size, T *y, T *mean,
                T *inv_std, size_t rows, size_t n, T epsilon, cudaStream_t stream)
{
   if (rows != 0 && n != 0)
      layer_norm_kernel<<<row_blocks(rows), row_threads(n), 0, stream>>>(x, scale, scale_size, bias, bias_size, y,
                                                                          mean, inv_std, rows, n, epsilon);
}

// GroupNormalization and InstanceNormalization: a block per (sample, group), whose channels are consecutive, so
// its n = channels per group * spatial values are too; moments accumulated in double as the reference's.
// scale and bias hold one value per channel (per_param 1) or per group (per_param = channels per group).
template <typename T>
__global__ void group_norm_kernel(const T *x, const T *scale, const T *bias, T *y, size_t rows, size_t groups,
                                  size_t group_channels, size_t spatial, size_t per_param, double epsilon)
{
   __shared__ double shared[kMaxRowThreads / kWarp];
   const size_t n = group_channels * spatial;
   for (size_t row = blockIdx.x; row < rows; row += gridDim.x) {
      const T *xr = x + row * n;
      T *yr = y + row * n;
      double sum = 0;
      for (size_t j = threadIdx.x; j < n; j += blockDim.x)
         sum += static_cast<double>(xr[j]);
      const double mean = block_sum(sum, shared) / static_cast<double>(n);
      double squares = 0;
      for (size_t j = threadIdx.x; j < n; j += blockDim.x)
         squares += (static_cast<double>(xr[j]) - mean) * (static_cast<double>(xr[j]) - mean);
      const double inv_std = 1.0 / std::sqrt(block_sum(squares, shared) / static_cast<double>(n) + epsilon);
      const size_t first = row % groups * group_channels;
      for (size_t j = threadIdx.x; j < n; j += blockDim.x) {
         const size_t p = (first + j / spatial) / per_param;
         yr[j] = static_cast<T>((static_cast<double>(xr[j]) - mean) * inv_std * static_cast<double>(scale[p]) +
                                static_cast<double>(bias[p]));
      }
   }
}

template <typename T>
void group_norm(const T *x, const T *scale, const T *bias, T *y, size_t rows, size_t groups, size_t group_channels,
                size_t spatial, size_t per_param, double epsilon, cudaStream_t stream)
{
   if (rows != 0 && group_channels * spatial != 0)
      group_norm_kernel<<<row_blocks(rows), row_threads(group_channels * spatial), 0, stream>>>(
         x, scale, bias, y, rows, groups, group_channels, spatial, per_param, epsilon);
}

// RMSNormalization: a block per row of n values, y = x / sqrt(mean(x^2) + epsilon) (in the stash type S) times
// scale, which broadcasts to x's shape (its element for x's element i: strided_offset(i, s)).
template <typename T, typename S, int Rank>
__global__ void rms_norm_kernel(const T *x, const T *scale, Strided<Rank> s, T *y, size_t rows, size_t n, S epsilon)
{
   __shared__ S shared[kMaxRowThreads / kWarp];
   for (size_t row = blockIdx.x; row < rows; row += gridDim.x) {
      const T *xr = x + row * n;
      S squares = 0;
      for (size_t j = threadIdx.x; j < n; j += blockDim.x)
         squares += static_cast<S>(xr[j]) * static_cast<S>(xr[j]);
      const S inv = S(1) / std::sqrt(block_sum(squares, shared) / static_cast<S>(n) + epsilon);
      for (size_t j = threadIdx.x; j < n; j += blockDim.x)
         y[row * n + j] = static_cast<T>(static_cast<S>(xr[j]) * inv) * scale[strided_offset(row * n + j, s)];
   }
}

template <typename T, typename S, int Rank>
void rms_norm(const T *x, const T *scale, const Strided<Rank> &s, T *y, size_t rows, size_t n, S epsilon,
              cudaStream_t stream)
{
   if (rows != 0 && n != 0)
      rms_norm_kernel<<<row_blocks(rows), row_threads(n), 0, stream>>>(x, scale, s, y, rows, n, epsilon);
}
