// Element-wise loops shared by every unary, binary and data-movement operator.
// The operation is a lambda the emitter writes; strides are in elements and
// may be 0 (broadcast) or negative (reversed slices).

template <typename X, typename Y, typename F>
inline void unary(const X *x, Y *y, size_t n, F f)
{
   for (size_t i = 0; i < n; ++i)
      y[i] = f(x[i]);
}

// y (contiguous, `shape`) from x read with strides sx: transpose, slice,
// expand and broadcast-copy are all this loop.
template <typename X, typename Y, typename F>
inline void unary_strided_rec(const X *x, const std::ptrdiff_t *sx, Y *&y, const size_t *shape, size_t rank, F &f)
{
   if (rank == 0) {
      *y++ = f(*x);
      return;
   }
   if (rank == 1) {
      const std::ptrdiff_t s = sx[0];
      for (size_t i = 0; i < shape[0]; ++i)
         *y++ = f(x[static_cast<std::ptrdiff_t>(i) * s]);
      return;
   }
   for (size_t i = 0; i < shape[0]; ++i)
      unary_strided_rec(x + static_cast<std::ptrdiff_t>(i) * sx[0], sx + 1, y, shape + 1, rank - 1, f);
}

template <typename X, typename Y, typename F>
inline void unary_strided(const X *x, const std::ptrdiff_t *sx, Y *y, const size_t *shape, size_t rank, F f)
{
   unary_strided_rec(x, sx, y, shape, rank, f);
}

template <typename A, typename B, typename Y, typename F>
inline void binary(const A *a, const B *b, Y *y, size_t n, F f)
{
   for (size_t i = 0; i < n; ++i)
      y[i] = f(a[i], b[i]);
}

template <typename A, typename B, typename Y, typename F>
inline void binary_scalar_b(const A *a, const B b, Y *y, size_t n, F f)
{
   for (size_t i = 0; i < n; ++i)
      y[i] = f(a[i], b);
}

template <typename A, typename B, typename Y, typename F>
inline void binary_scalar_a(const A a, const B *b, Y *y, size_t n, F f)
{
   for (size_t i = 0; i < n; ++i)
      y[i] = f(a, b[i]);
}

// Numpy broadcasting: y has `shape`; a and b are read with strides sa, sb.
template <typename A, typename B, typename Y, typename F>
inline void binary_strided_rec(const A *a, const std::ptrdiff_t *sa, const B *b, const std::ptrdiff_t *sb, Y *&y,
                               const size_t *shape, size_t rank, F &f)
{
   if (rank == 0) {
      *y++ = f(*a, *b);
      return;
   }
   if (rank == 1) {
      const std::ptrdiff_t s0 = sa[0], s1 = sb[0];
      for (size_t i = 0; i < shape[0]; ++i)
         *y++ = f(a[static_cast<std::ptrdiff_t>(i) * s0], b[static_cast<std::ptrdiff_t>(i) * s1]);
      return;
   }
   for (size_t i = 0; i < shape[0]; ++i) {
      const std::ptrdiff_t k = static_cast<std::ptrdiff_t>(i);
      binary_strided_rec(a + k * sa[0], sa + 1, b + k * sb[0], sb + 1, y, shape + 1, rank - 1, f);
   }
}

template <typename A, typename B, typename Y, typename F>
inline void binary_strided(const A *a, const std::ptrdiff_t *sa, const B *b, const std::ptrdiff_t *sb, Y *y,
                           const size_t *shape, size_t rank, F f)
{
   binary_strided_rec(a, sa, b, sb, y, shape, rank, f);
}

// Copies `outer` blocks of `block` elements from x into y, whose blocks are
// `y_block` elements apart (one input of a Concat).
template <typename T>
inline void copy_blocks(const T *x, T *y, size_t outer, size_t block, size_t y_block)
{
   for (size_t o = 0; o < outer; ++o)
      std::copy(x + o * block, x + (o + 1) * block, y + o * y_block);
}
