// Device math the element-wise expressions call (targets/_cxx/expressions.py): exact library functions (the
// code is compiled without --use_fast_math), and NaN-propagating minimum and maximum as in onnxruntime.

template <typename T>
__device__ __forceinline__ T fast_exp(T x)
{
   return std::exp(x);
}

template <typename T>
__device__ __forceinline__ T fast_sigmoid(T x)
{
   return T(1) / (T(1) + std::exp(-x));
}

template <typename T>
__device__ __forceinline__ T fast_tanh(T x)
{
   return std::tanh(x);
}

template <typename T>
__device__ __forceinline__ T fast_erf(T x)
{
   return std::erf(x);
}

template <typename T>
__device__ __forceinline__ T minimum(T a, T b)
{
   if constexpr (!std::numeric_limits<T>::is_integer) {
      if (a != a || b != b)
         return a + b;  // NaN
   }
   return b < a ? b : a;
}

template <typename T>
__device__ __forceinline__ T maximum(T a, T b)
{
   if constexpr (!std::numeric_limits<T>::is_integer) {
      if (a != a || b != b)
         return a + b;  // NaN
   }
   return a < b ? b : a;
}

// Index arithmetic (the window kernels of conv.cuh): a 64-bit division is a long software routine on the GPU and
// a 32-bit one a few instructions; `quotient` takes the 32-bit road whenever both operands fit.
__device__ __forceinline__ size_t quotient(size_t a, size_t b)
{
   return (a | b) >> 32 ? a / b : size_t(unsigned(a) / unsigned(b));
}
