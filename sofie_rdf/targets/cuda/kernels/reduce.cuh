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
