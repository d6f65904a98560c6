// GatherElements, ScatterElements and ScatterND (the GNN family's message passing): a thread per addressed
// element; indices checked on the device (index_in of movement.cuh). A scatter first copies data to the output,
// then writes or reduces the updates into it: "add" with atomicAdd, "mul", "max" and "min" with a
// compare-and-swap loop, so several updates of one element combine in any order (with "none", which of them
// lands is unspecified, as ONNX leaves it).

enum class Scatter { None, Add, Mul, Max, Min };

template <Scatter R, typename T>
__device__ T combine(T a, T b)
{
   if (R == Scatter::Mul)
      return a * b;
   if (R == Scatter::Max)
      return a != a || b < a ? a : b;
   return a != a || a < b ? a : b;  // Min
}

template <Scatter R, typename T>
__device__ void scatter_one(T *p, T v)
{
   if constexpr (R == Scatter::None) {
      *p = v;
   } else if constexpr (R == Scatter::Add) {
      atomicAdd(p, v);
   } else if constexpr (sizeof(T) == 4) {
      unsigned int *word = reinterpret_cast<unsigned int *>(p);
      unsigned int old = *word, seen;
      do {
         seen = old;
         old = atomicCAS(word, seen, __float_as_uint(combine<R>(__uint_as_float(seen), v)));
      } while (old != seen);
   } else {
      unsigned long long *word = reinterpret_cast<unsigned long long *>(p);
      unsigned long long old = *word, seen;
      do {
         seen = old;
         old = atomicCAS(word, seen,
                         static_cast<unsigned long long>(__double_as_longlong(combine<R>(__longlong_as_double(
                            static_cast<long long>(seen)), v))));
      } while (old != seen);
   }
}

// The data offset of element i of the indices (shape s.shape, data strides s.stride), its coordinate along
// `axis` replaced by index[i]; false (reported) for an index outside the axis of n values.
template <typename I, int Rank>
__device__ bool element_offset(size_t i, const I *index, const Strided<Rank> &s, int axis, size_t n, int *status,
                               int node, long long &at)
{
   size_t rest = i;
   at = 0;
   for (int d = Rank - 1; d >= 0; --d) {
      long long k = static_cast<long long>(rest % s.shape[d]);
      rest /= s.shape[d];
      if (d == axis) {
         k = static_cast<long long>(index[i]);
         if (!index_in(k, static_cast<long long>(n), status, node))
            return false;
      }
      at += k * s.stride[d];
   }
   return true;
}

template <typename T, typename I, int Rank>
__global__ void gather_elements_kernel(const T *x, const I *index, T *y, size_t count, Strided<Rank> s, int axis,
                                       size_t n, int *status, int node)
{
   for (size_t i = blockIdx.x * size_t(blockDim.x) + threadIdx.x; i < count; i += size_t(gridDim.x) * blockDim.x) {
      long long at = 0;
      y[i] = element_offset(i, index, s, axis, n, status, node, at) ? x[at] : T(0);
   }
}

template <typename T, typename I, int Rank>
void gather_elements(const T *x, const I *index, T *y, size_t count, const Strided<Rank> &s, int axis, size_t n,
                     int *status, int node, cudaStream_t stream)
{
   if (count)
      gather_elements_kernel<<<blocks_for(count), kThreads, 0, stream>>>(x, index, y, count, s, axis, n, status, node);
}

template <Scatter R, typename T, typename I, int Rank>
__global__ void scatter_elements_kernel(const T *updates, const I *index, T *y, size_t count, Strided<Rank> s,
                                        int axis, size_t n, int *status, int node)
{
   for (size_t i = blockIdx.x * size_t(blockDim.x) + threadIdx.x; i < count; i += size_t(gridDim.x) * blockDim.x) {
      long long at = 0;
      if (element_offset(i, index, s, axis, n, status, node, at))
         scatter_one<R>(y + at, updates[i]);
   }
}

// y = data, then the updates (one per index element) scattered along `axis`.
template <Scatter R, typename T, typename I, int Rank>
void scatter_elements(const T *data, size_t size, const T *updates, const I *index, T *y, size_t count,
                      const Strided<Rank> &s, int axis, size_t n, int *status, int node, cudaStream_t stream)
{
   if (y != data && size)
      detail::check(cudaMemcpyAsync(y, data, size * sizeof(T), cudaMemcpyDeviceToDevice, stream), "cudaMemcpyAsync");
   if (count)
      scatter_elements_kernel<R><<<blocks_for(count), kThreads, 0, stream>>>(updates, index, y, count, s, axis, n,
                                                                             status, node);
}

// ScatterND: update i belongs to index tuple i / slice (Q values, each checked against its data dim s.shape[t]),
// at offset i % slice inside the addressed slice.
template <Scatter R, typename T, typename I, int Q>
__global__ void scatter_nd_kernel(const T *updates, const I *index, T *y, size_t count, size_t slice, Strided<Q> s,
                                  int *status, int node)
{
   for (size_t i = blockIdx.x * size_t(blockDim.x) + threadIdx.x; i < count; i += size_t(gridDim.x) * blockDim.x) {
      const size_t tuple = i / slice;
      long long at = static_cast<long long>(i % slice);
      bool ok = true;
      for (int t = 0; t < Q && ok; ++t) {
         long long k = static_cast<long long>(index[tuple * Q + t]);
         ok = index_in(k, static_cast<long long>(s.shape[t]), status, node);
         at += k * s.stride[t];
      }
      if (ok)
         scatter_one<R>(y + at, updates[i]);
   }
}

template <Scatter R, typename T, typename I, int Q>
void scatter_nd(const T *data, size_t size, const T *updates, const I *index, T *y, size_t count, size_t slice,
                const Strided<Q> &s, int *status, int node, cudaStream_t stream)
{
   if (y != data && size)
      detail::check(cudaMemcpyAsync(y, data, size * sizeof(T), cudaMemcpyDeviceToDevice, stream), "cudaMemcpyAsync");
   if (count)
      scatter_nd_kernel<R><<<blocks_for(count), kThreads, 0, stream>>>(updates, index, y, count, slice, s, status,
                                                                       node);
}
