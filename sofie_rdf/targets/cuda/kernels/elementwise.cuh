// Element-wise kernels around one device function f (an expression of targets/_cxx/expressions.py), each a
// grid-stride loop; the launchers skip empty tensors.

template <typename X, typename Y, typename F>
__global__ void unary_kernel(const X *x, Y *y, size_t n, F f)
{
   for (size_t i = blockIdx.x * size_t(blockDim.x) + threadIdx.x; i < n; i += size_t(gridDim.x) * blockDim.x)
      y[i] = f(x[i]);
}

template <typename X, typename Y, typename F>
void unary(const X *x, Y *y, size_t n, F f, cudaStream_t stream)
{
   if (n)
      unary_kernel<<<blocks_for(n), kThreads, 0, stream>>>(x, y, n, f);
}

// Y[i] = f(i): a fused chain of element-wise steps (its lambda reads the operands itself).
template <typename Y, typename F>
__global__ void generate_kernel(Y *y, size_t n, F f)
{
   for (size_t i = blockIdx.x * size_t(blockDim.x) + threadIdx.x; i < n; i += size_t(gridDim.x) * blockDim.x)
      y[i] = f(i);
}

template <typename Y, typename F>
void generate(Y *y, size_t n, F f, cudaStream_t stream)
{
   if (n)
      generate_kernel<<<blocks_for(n), kThreads, 0, stream>>>(y, n, f);
}

// The broadcast of a binary operator: the output's shape (adjacent dims merged) and each operand's strides in it
// (0 along broadcast dims), passed by value.
template <int Rank>
struct Broadcast {
   size_t shape[Rank];
   long long a[Rank];
   long long b[Rank];
};

// Y = f(a, b); a_step, b_step: 1 for an operand of the output's shape, 0 for a single value.
template <typename A, typename B, typename Y, typename F>
__global__ void binary_kernel(const A *a, size_t a_step, const B *b, size_t b_step, Y *y, size_t n, F f)
{
   for (size_t i = blockIdx.x * size_t(blockDim.x) + threadIdx.x; i < n; i += size_t(gridDim.x) * blockDim.x)
      y[i] = f(a[i * a_step], b[i * b_step]);
}

template <typename A, typename B, typename Y, typename F>
void binary(const A *a, size_t a_step, const B *b, size_t b_step, Y *y, size_t n, F f, cudaStream_t stream)
{
   if (n)
      binary_kernel<<<blocks_for(n), kThreads, 0, stream>>>(a, a_step, b, b_step, y, n, f);
}

template <typename A, typename B, typename Y, int Rank, typename F>
__global__ void binary_strided_kernel(const A *a, const B *b, Y *y, size_t n, Broadcast<Rank> s, F f)
{
   for (size_t i = blockIdx.x * size_t(blockDim.x) + threadIdx.x; i < n; i += size_t(gridDim.x) * blockDim.x) {
      size_t rest = i;
      long long ia = 0, ib = 0;
      for (int d = Rank - 1; d >= 0; --d) {
         const size_t k = rest % s.shape[d];
         rest /= s.shape[d];
         ia += static_cast<long long>(k) * s.a[d];
         ib += static_cast<long long>(k) * s.b[d];
      }
      y[i] = f(a[ia], b[ib]);
   }
}

template <typename A, typename B, typename Y, int Rank, typename F>
void binary_strided(const A *a, const B *b, Y *y, size_t n, const Broadcast<Rank> &s, F f, cudaStream_t stream)
{
   if (n)
      binary_strided_kernel<<<blocks_for(n), kThreads, 0, stream>>>(a, b, y, n, s, f);
}

// BatchNormalization in inference form: y = (x - mean[c]) * scale[c] / sqrt(var[c] + epsilon) + bias[c], the
// channel c of element i being (i / spatial) % channels.
template <typename T>
__global__ void batch_norm_kernel(const T *x, const T *scale, const T *bias, const T *mean, const T *var, T epsilon,
                                  T *y, size_t n, size_t channels, size_t spatial)
{
   for (size_t i = blockIdx.x * size_t(blockDim.x) + threadIdx.x; i < n; i += size_t(gridDim.x) * blockDim.x) {
      const size_t c = i / spatial % channels;
      y[i] = (x[i] - mean[c]) * (scale[c] / std::sqrt(var[c] + epsilon)) + bias[c];
   }
}

template <typename T>
void batch_norm(const T *x, const T *scale, const T *bias, const T *mean, const T *var, T epsilon, T *y, size_t n,
                size_t channels, size_t spatial, cudaStream_t stream)
{
   if (n)
      batch_norm_kernel<<<blocks_for(n), kThreads, 0, stream>>>(x, scale, bias, mean, var, epsilon, y, n, channels,
                                                                 spatial);
}

// Values known from the dims only (a shape calculation the model feeds into arithmetic), written to the device
// by one thread; the values travel as the kernel's argument, so a captured graph keeps them for its dims.
template <typename T, int N>
struct Values {
   T v[N];
};

template <typename T, int N>
__global__ void set_values_kernel(T *y, Values<T, N> values)
{
   for (int i = 0; i < N; ++i)
      y[i] = values.v[i];
}

template <typename T, int N>
void set_values(T *y, const Values<T, N> &values, cudaStream_t stream)
{
   set_values_kernel<<<1, 1, 0, stream>>>(y, values);
}

// Where: y = condition ? a : b, the three broadcast to the output's shape (adjacent dims merged).
template <int Rank>
struct Broadcast3 {
   size_t shape[Rank];
   long long condition[Rank];
   long long a[Rank];
   long long b[Rank];
};

template <typename T, int Rank>
__global__ void where_kernel(const bool *condition, const T *a, const T *b, T *y, size_t n, Broadcast3<Rank> s)
{
   for (size_t i = blockIdx.x * size_t(blockDim.x) + threadIdx.x; i < n; i += size_t(gridDim.x) * blockDim.x) {
      size_t rest = i;
      long long ic = 0, ia = 0, ib = 0;
      for (int d = Rank - 1; d >= 0; --d) {
         const long long k = static_cast<long long>(rest % s.shape[d]);
         rest /= s.shape[d];
         ic += k * s.condition[d];
         ia += k * s.a[d];
         ib += k * s.b[d];
      }
      y[i] = condition[ic] ? a[ia] : b[ib];
   }
}

template <typename T, int Rank>
void where(const bool *condition, const T *a, const T *b, T *y, size_t n, const Broadcast3<Rank> &s, cudaStream_t stream)
{
   if (n)
      where_kernel<<<blocks_for(n), kThreads, 0, stream>>>(condition, a, b, y, n, s);
}
