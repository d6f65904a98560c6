// Pad: y (out_shape) is x framed by `begin` elements before and as many after as
// out_shape leaves along each axis.  x is already cropped for negative pads, so
// `extent` is the part of each input axis that is kept.  Outside the input the
// mode decides: constant writes `value`, reflect mirrors without repeating the
// edge, edge repeats it, wrap starts over from the other side.

enum class pad_mode { constant, reflect, edge, wrap };

// Source index of a position `s` before (< 0) or after (>= n) an axis of n elements.
inline std::ptrdiff_t pad_source(std::ptrdiff_t s, std::ptrdiff_t n, pad_mode mode)
{
   if (mode == pad_mode::edge)
      return s < 0 ? 0 : n - 1;
   if (mode == pad_mode::wrap)
      return ((s % n) + n) % n;
   if (n == 1)
      return 0;
   const std::ptrdiff_t period = 2 * (n - 1);
   s = std::abs(s) % period;
   return s < n ? s : period - s;
}

template <typename T>
inline void pad_rec(const T *x, T *&y, const size_t *extent, const std::ptrdiff_t *stride, const size_t *begin,
                    const size_t *out_shape, size_t rank, pad_mode mode, T value)
{
   if (rank == 0) {
      *y++ = *x;
      return;
   }
   size_t inner = 1;
   for (size_t a = 1; a < rank; ++a)
      inner *= out_shape[a];
   const std::ptrdiff_t n = static_cast<std::ptrdiff_t>(extent[0]);
   for (size_t o = 0; o < out_shape[0]; ++o) {
      std::ptrdiff_t s = static_cast<std::ptrdiff_t>(o) - static_cast<std::ptrdiff_t>(begin[0]);
      if (s < 0 || s >= n) {
         if (mode == pad_mode::constant || n == 0) {
            y = detail::fill_n(y, inner, value);
            continue;
         }
         s = pad_source(s, n, mode);
      }
      pad_rec(x + s * stride[0], y, extent + 1, stride + 1, begin + 1, out_shape + 1, rank - 1, mode, value);
   }
}

template <typename T>
inline void pad(const T *x, T *y, const size_t *extent, const std::ptrdiff_t *stride, const size_t *begin,
                const size_t *out_shape, size_t rank, pad_mode mode, T value)
{
   pad_rec(x, y, extent, stride, begin, out_shape, rank, mode, value);
}
