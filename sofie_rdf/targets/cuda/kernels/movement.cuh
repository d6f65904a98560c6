// Data movement: a strided copy (Transpose: the output's dims walk the input with permuted strides) and Gather
// along one axis.

// A tensor walked in the output's order: the output's shape (adjacent dims merged) and the input's stride along
// each of its dims, passed by value.
template <int Rank>
struct Strided {
   size_t shape[Rank];
   long long stride[Rank];
};

template <typename T, int Rank>
__global__ void strided_copy_kernel(const T *x, T *y, size_t n, Strided<Rank> s)
{
   for (size_t i = blockIdx.x * size_t(blockDim.x) + threadIdx.x; i < n; i += size_t(gridDim.x) * blockDim.x) {
      size_t rest = i;
      long long at = 0;
      for (int d = Rank - 1; d >= 0; --d) {
         at += static_cast<long long>(rest % s.shape[d]) * s.stride[d];
         rest /= s.shape[d];
      }
      y[i] = x[at];
   }
}

template <typename T, int Rank>
void strided_copy(const T *x, T *y, size_t n, const Strided<Rank> &s, cudaStream_t stream)
{
   if (n)
      strided_copy_kernel<<<blocks_for(n), kThreads, 0, stream>>>(x, y, n, s);
}

// An index along an axis of n values, checked on the device: negative ones count from the end; one outside
// the axis makes the kernel report its node in `status` (the first report wins; the Session raises it after
// the call, naming the node) and skip the element.
__device__ inline bool index_in(long long &index, long long n, int *status, int node)
{
   if (index < -n || index >= n) {
      atomicCAS(status, 0, node + 1);
      return false;
   }
   if (index < 0)
      index += n;
   return true;
}

// Gather: y[o, j, i] = x[o, index[j], i] over the (outer, count, inner) view of data around the gathered axis of
// length n (an index out of range gives 0 and reports the node).
template <typename T, typename I>
__global__ void gather_kernel(const T *x, const I *index, T *y, size_t outer, size_t n, size_t count, size_t inner,
                              int *status, int node)
{
   const size_t total = outer * count * inner;
   for (size_t k = blockIdx.x * size_t(blockDim.x) + threadIdx.x; k < total; k += size_t(gridDim.x) * blockDim.x) {
      const size_t i = k % inner, j = k / inner % count, o = k / inner / count;
      long long row = static_cast<long long>(index[j]);
      y[k] = index_in(row, static_cast<long long>(n), status, node) ? x[(o * n + row) * inner + i] : T(0);
   }
}

template <typename T, typename I>
void gather(const T *x, const I *index, T *y, size_t outer, size_t n, size_t count, size_t inner, int *status,
            int node, cudaStream_t stream)
{
   const size_t total = outer * count * inner;
   if (total)
      gather_kernel<<<blocks_for(total), kThreads, 0, stream>>>(x, index, y, outer, n, count, inner, status, node);
}

// `rows` rows of `cols` values from x (rows `x_pitch` values apart) to y (rows `y_pitch` apart): one part of a
// Concat or a Split, as one 2-D copy on the stream.
template <typename T>
void copy_rows(const T *x, size_t x_pitch, T *y, size_t y_pitch, size_t rows, size_t cols, cudaStream_t stream)
{
   if (rows != 0 && cols != 0)
      detail::check(cudaMemcpy2DAsync(y, y_pitch * sizeof(T), x, x_pitch * sizeof(T), cols * sizeof(T), rows,
                                      cudaMemcpyDeviceToDevice, stream),
                    "cudaMemcpy2DAsync");
}

// Pad: y (out_shape) is x framed by `begin` elements before each axis and as many after as out_shape leaves; x is
// already cropped for negative pads (a pointer offset, `extent` the kept part of each axis, `stride` x's element
// strides). Outside the input: constant writes `value`, reflect mirrors without repeating the edge, edge
// repeats it, wrap starts over from the other side.
enum class PadMode { Constant, Reflect, Edge, Wrap };

template <int Rank>
struct PadLayout {
   size_t out_shape[Rank];
   size_t extent[Rank];
   size_t begin[Rank];
   long long stride[Rank];
};

template <PadMode Mode>
__device__ long long pad_source(long long s, long long n)
{
   if (Mode == PadMode::Edge)
      return s < 0 ? 0 : n - 1;
   if (Mode == PadMode::Wrap)
      return ((s % n) + n) % n;
   if (n == 1)
      return 0;
   const long long period = 2 * (n - 1);
   s = (s < 0 ? -s : s) % period;
   return s < n ? s : period - s;
}

template <PadMode Mode, typename T, int Rank>
__global__ void pad_kernel(const T *x, T *y, size_t total, PadLayout<Rank> p, T value)
{
   for (size_t i = blockIdx.x * size_t(blockDim.x) + threadIdx.x; i < total; i += size_t(gridDim.x) * blockDim.x) {
      size_t rest = i;
      long long at = 0;
      bool inside = true;
      for (int d = Rank - 1; d >= 0; --d) {
         long long s = static_cast<long long>(rest % p.out_shape[d]) - static_cast<long long>(p.begin[d]);
         rest /= p.out_shape[d];
         const long long n = static_cast<long long>(p.extent[d]);
         if (s < 0 || s >= n) {
            if (Mode == PadMode::Constant || n == 0) {
               inside = false;
               break;
            }
            s = pad_source<Mode>(s, n);
         }
         at += s * p.stride[d];
      }
      y[i] = inside ? x[at] : value;
   }
}

template <PadMode Mode, typename T, int Rank>
void pad(const T *x, T *y, size_t total, const PadLayout<Rank> &p, T value, cudaStream_t stream)
{
   if (total)
      pad_kernel<Mode><<<blocks_for(total), kThreads, 0, stream>>>(x, y, total, p, value);
}
