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
