// TopK: a thread per (outer, inner) column keeps the K best of its n values in registers, sorted, inserting
// each value after those it does not beat: ties keep the lower index first, and NaN ranks highest (first when
// largest, last when smallest), as the reference. O(n K) per column: for the small K of nearest neighbours.

template <bool Largest, typename T>
__device__ bool ranks_before(T a, long long ia, T b, long long ib)
{
   const bool nan_a = a != a, nan_b = b != b;
   if (nan_a || nan_b) {
      if (nan_a && nan_b)
         return ia < ib;
      return Largest ? nan_a : nan_b;
   }
   if (a == b)
      return ia < ib;
   return Largest ? a > b : a < b;
}

template <typename T, int K, bool Largest>
__global__ void topk_kernel(const T *x, T *values, int64_t *indices, size_t outer, size_t n, size_t inner)
{
   const size_t columns = outer * inner;
   for (size_t c = blockIdx.x * size_t(blockDim.x) + threadIdx.x; c < columns; c += size_t(gridDim.x) * blockDim.x) {
      const size_t base = c / inner * n * inner + c % inner, out = c / inner * K * inner + c % inner;
      T best[K];
      long long at[K];
      int filled = 0;
      for (size_t j = 0; j < n; ++j) {
         const T v = x[base + j * inner];
         const long long iv = static_cast<long long>(j);
         if (filled == K && !ranks_before<Largest>(v, iv, best[K - 1], at[K - 1]))
            continue;
         int p = filled < K ? filled++ : K - 1;
         for (; p > 0 && ranks_before<Largest>(v, iv, best[p - 1], at[p - 1]); --p) {
            best[p] = best[p - 1];
            at[p] = at[p - 1];
         }
         best[p] = v;
         at[p] = iv;
      }
      for (int r = 0; r < K; ++r) {
         values[out + r * inner] = best[r];
         indices[out + r * inner] = at[r];
      }
   }
}

template <int K, bool Largest, typename T>
void topk(const T *x, T *values, int64_t *indices, size_t outer, size_t n, size_t inner, cudaStream_t stream)
{
   if (outer * inner != 0)
      topk_kernel<T, K, Largest><<<blocks_for(outer * inner), kThreads, 0, stream>>>(x, values, indices, outer, n, inner);
}
