// Expand with its target shape read at run time: numpy broadcasting of the
// input dims against the target (either side may be 1), checked.

// out_dims from the input dims (left-padded with 1 to `rank`) and the target
// (`count` values, also left-padded with 1).  `expected` holds the dims fixed
// when the code was generated (0: computed here); a mismatch throws.
template <typename I>
inline void expand_dims(const I *target, size_t count, const size_t *in_dims, const size_t *expected, size_t rank,
                        size_t *out_dims)
{
   for (size_t i = 0; i < rank; ++i) {
      const int64_t t = i + count < rank ? 1 : static_cast<int64_t>(target[i + count - rank]);
      const size_t d = in_dims[i], s = static_cast<size_t>(t);
      if (t < 0 || (d != 1 && s != 1 && s != d))
         throw std::invalid_argument("sofie-rdf: Expand cannot broadcast a dim of " + std::to_string(d) + " to " +
                                     std::to_string(t));
      out_dims[i] = d == 1 ? s : d;
      if (expected[i] != 0 && out_dims[i] != expected[i])
         throw std::invalid_argument("sofie-rdf: Expand gives a dim of " + std::to_string(out_dims[i]) +
                                     " where the generated code expects " + std::to_string(expected[i]));
   }
}

// y = x broadcast to out_dims (x read with stride 0 along its size-1 dims); `strides` is scratch for rank values.
template <typename T>
inline void expand(const T *x, const size_t *in_dims, const size_t *out_dims, size_t rank, std::ptrdiff_t *strides,
                   T *y)
{
   std::ptrdiff_t stride = 1;
   for (size_t i = rank; i-- > 0;) {
      strides[i] = in_dims[i] == 1 ? 0 : stride;
      stride *= static_cast<std::ptrdiff_t>(in_dims[i]);
   }
   unary_strided(x, strides, y, out_dims, rank, [](const T v) { return v; });
}
