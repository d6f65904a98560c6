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
