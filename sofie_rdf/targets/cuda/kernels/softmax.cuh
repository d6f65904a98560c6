// Softmax and LogSoftmax over the middle axis of an (outer, n, inner) view: a block per row where inner is 1
// (the usual last-axis case: the row is contiguous), else a thread per (outer, inner) column.

template <typename T, bool Log>
__global__ void softmax_rows_kernel(const T *x, T *y, size_t rows, size_t n)
{
   __shared__ T shared[kMaxRowThreads / kWarp];
   for (size_t row = blockIdx.x; row < rows; row += gridDim.x) {
      const T *xr = x + row * n;
      T *yr = y + row * n;
      T top = -std::numeric_limits<T>::infinity();
      for (size_t j = threadIdx.x; j < n; j += blockDim.x)
         top = xr[j] != xr[j] || top < xr[j] ? xr[j] : top;
      top = block_max(top, shared);
      T sum = 0;
      for (size_t j = threadIdx.x; j < n; j += blockDim.x)
         sum += std::exp(xr[j] - top);
      sum = block_sum(sum, shared);
      const T log_sum = std::log(sum);
      for (size_t j = threadIdx.x; j < n; j += blockDim.x)
         yr[j] = Log ? xr[j] - top - log_sum : std::exp(xr[j] - top) / sum;
   }
}

template <typename T, bool Log>
__global__ void softmax_columns_kernel(const T *x, T *y, size_t outer, size_t n, size_t inner)
{
   const size_t columns = outer * inner;
   for (size_t c = blockIdx.x * size_t(blockDim.x) + threadIdx.x; c < columns; c += size_t(gridDim.x) * blockDim.x) {
      const size_t base = c / inner * n * inner + c % inner;
      T top = -std::numeric_limits<T>::infinity();
      for (size_t j = 0; j < n; ++j) {
         const T v = x[base + j * inner];
         top = v != v || top < v ? v : top;
      }
      T sum = 0;
      for (size_t j = 0; j < n; ++j)
         sum += std::exp(x[base + j * inner] - top);
      const T log_sum = std::log(sum);
      for (size_t j = 0; j < n; ++j) {
         const T v = x[base + j * inner];
         y[base + j * inner] = Log ? v - top - log_sum : std::exp(v - top) / sum;
      }
   }
}

template <bool Log, typename T>
void softmax(const T *x, T *y, size_t outer, size_t n, size_t inner, cudaStream_t stream)
{
   if (outer * n * inner == 0)
      return;
   if (inner == 1)
      softmax_rows_kernel<T, Log><<<row_blocks(outer), row_threads(n), 0, stream>>>(x, y, outer, n);
   else
      softmax_columns_kernel<T, Log><<<blocks_for(outer * inner), kThreads, 0, stream>>>(x, y, outer, n, inner);
}
