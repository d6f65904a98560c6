// Reductions of one value per thread over a block (warp shuffles, then one value per warp in shared memory).
// Every thread of the block must call them; every thread gets the result.

template <typename T, typename Op>
__device__ T block_reduce(T v, Op op, T *shared)
{
   for (int offset = kWarp / 2; offset > 0; offset /= 2)
      v = op(v, __shfl_xor_sync(0xffffffffu, v, offset));
   const unsigned warp = threadIdx.x / kWarp, lane = threadIdx.x % kWarp, warps = blockDim.x / kWarp;
   __syncthreads();  // shared may still be read by a previous reduction
   if (lane == 0)
      shared[warp] = v;
   __syncthreads();
   v = shared[0];
   for (unsigned w = 1; w < warps; ++w)
      v = op(v, shared[w]);
   return v;
}

template <typename T>
__device__ T block_sum(T v, T *shared)
{
   return block_reduce(v, [](T a, T b) { return a + b; }, shared);
}

template <typename T>
__device__ T block_max(T v, T *shared)
{
   return block_reduce(v, [](T a, T b) { return a != a || b < a ? a : b; }, shared);  // keeps NaN
}

// Reduce* operators: a thread per output value, walking the kept dims' strides to its first input value and
// the reduced dims' strides over its set (Strided of movement.cuh, adjacent dims merged). Sums, products and
// norms accumulate in double, as the CPU kernels and the numpy reference do; max and min in T, NaN kept.
enum class Fold { Sum, Mean, SumSquare, L1, L2, LogSum, LogSumExp, Prod, Max, Min };

template <int Rank>
__device__ long long strided_offset(size_t index, const Strided<Rank> &s)
{
   long long at = 0;
   for (int d = Rank - 1; d >= 0; --d) {
      at += static_cast<long long>(index % s.shape[d]) * s.stride[d];
      index /= s.shape[d];
   }
   return at;
}

template <Fold K, typename T, int KeptRank, int ReducedRank>
__global__ void reduce_kernel(const T *x, T *y, size_t outputs, Strided<KeptRank> kept, size_t count,
                              Strided<ReducedRank> reduced)
{
   for (size_t o = blockIdx.x * size_t(blockDim.x) + threadIdx.x; o < outputs; o += size_t(gridDim.x) * blockDim.x) {
      const T *xo = x + strided_offset(o, kept);
      if (K == Fold::Max || K == Fold::Min) {
         T acc = K == Fold::Max ? -std::numeric_limits<T>::infinity() : std::numeric_limits<T>::infinity();
         for (size_t r = 0; r < count; ++r) {
            const T v = xo[strided_offset(r, reduced)];
            acc = v != v || acc != acc ? (v != v ? v : acc) : (K == Fold::Max ? (v > acc ? v : acc) : (v < acc ? v : acc));
         }
         y[o] = acc;
         continue;
      }
      double shift = 0;
      if (K == Fold::LogSumExp) {
         double top = -std::numeric_limits<double>::infinity();
         for (size_t r = 0; r < count; ++r)
            top = fmax(top, static_cast<double>(xo[strided_offset(r, reduced)]));
         shift = isfinite(top) ? top : 0.0;
      }
      double acc = K == Fold::Prod ? 1.0 : 0.0;
      for (size_t r = 0; r < count; ++r) {
         const double v = static_cast<double>(xo[strided_offset(r, reduced)]);
         if (K == Fold::SumSquare || K == Fold::L2)
            acc += v * v;
         else if (K == Fold::L1)
            acc += fabs(v);
         else if (K == Fold::Prod)
            acc *= v;
         else if (K == Fold::LogSumExp)
            acc += exp(v - shift);
         else
            acc += v;
      }
      if (K == Fold::Mean)
         acc /= static_cast<double>(count);
      else if (K == Fold::L2)
         acc = sqrt(acc);
      else if (K == Fold::LogSum)
         acc = log(acc);
      else if (K == Fold::LogSumExp)
         acc = shift + log(acc);
      y[o] = static_cast<T>(acc);
   }
}

template <Fold K, typename T, int KeptRank, int ReducedRank>
void reduce(const T *x, T *y, size_t outputs, const Strided<KeptRank> &kept, size_t count,
            const Strided<ReducedRank> &reduced, cudaStream_t stream)
{
   if (outputs)
      reduce_kernel<K, T, KeptRank, ReducedRank><<<blocks_for(outputs), kThreads, 0, stream>>>(x, y, outputs, kept, count,
                                                                                             reduced);
}

// ArgMax / ArgMin along the middle axis of an (outer, n, inner) view: a thread per (outer, inner) column; ties
// go to the first index (the last with select_last_index), NaN counts as the extreme (the first one found).
template <bool Maximum, bool Last, typename T>
__global__ void arg_reduce_kernel(const T *x, int64_t *y, size_t outer, size_t n, size_t inner)
{
   const size_t columns = outer * inner;
   for (size_t c = blockIdx.x * size_t(blockDim.x) + threadIdx.x; c < columns; c += size_t(gridDim.x) * blockDim.x) {
      const T *xc = x + c / inner * n * inner + c % inner;
      T best = xc[0];
      int64_t at = 0;
      for (size_t j = 1; j < n; ++j) {
         const T v = xc[j * inner];
         const bool nan_v = v != v, nan_best = best != best;
         const bool better = nan_best ? (Last && nan_v) : nan_v || (Maximum ? v > best : v < best) || (Last && v == best);
         if (better) {
            best = v;
            at = static_cast<int64_t>(j);
         }
      }
      y[c] = at;
   }
}

template <bool Maximum, bool Last, typename T>
void arg_reduce(const T *x, int64_t *y, size_t outer, size_t n, size_t inner, cudaStream_t stream)
{
   if (outer * inner != 0)
      arg_reduce_kernel<Maximum, Last><<<blocks_for(outer * inner), kThreads, 0, stream>>>(x, y, outer, n, inner);
}
