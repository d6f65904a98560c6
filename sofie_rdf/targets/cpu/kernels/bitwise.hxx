// BitShift.  C++ leaves shifts by a negative count or by the type's width or more undefined; ONNX (opset 28)
// defines them as what the sign fill alone gives: -1 for a right shift of a negative value, else 0.
// Left shifts work on the unsigned twin of T, so bits moved past the sign bit are dropped, never overflow.

template <typename T>
inline bool shift_in_range(T n)
{
   if constexpr (std::is_signed_v<T>) {
      if (n < 0)
         return false;
   }
   return static_cast<uint64_t>(n) < static_cast<uint64_t>(std::numeric_limits<std::make_unsigned_t<T>>::digits);
}

template <typename T>
inline T shift_left(T x, T n)
{
   using U = std::make_unsigned_t<T>;
   if (!shift_in_range(n))
      return T(0);
   return static_cast<T>(static_cast<U>(static_cast<U>(x) << n));
}

// Right shift; for signed T an arithmetic shift (sign-extending, as GCC and Clang define >> on negatives).
template <typename T>
inline T shift_right(T x, T n)
{
   if (!shift_in_range(n)) {
      if constexpr (std::is_signed_v<T>)
         return x < 0 ? T(-1) : T(0);
      return T(0);
   }
   return static_cast<T>(x >> n);
}
