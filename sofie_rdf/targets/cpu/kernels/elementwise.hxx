// Element-wise loops shared by every unary, binary, ternary and data-movement operator.
// The operation is a lambda the emitter writes; strides are in elements and
// may be 0 (broadcast) or negative (reversed slices).

template <typename X, typename Y, typename F>
inline void unary(const X *x, Y *y, size_t n, F f)
{
   for (size_t i = 0; i < n; ++i)
      y[i] = f(x[i]);
}

// Side of the square blocks in which unary_strided_rec transposes: a cache line of floats.
constexpr size_t kTransposeBlock = 16;

// A block of transpose_blocks (y[i * ldy + j] = f(x[i + j * ldx]), i < ni, j < nj) with its whole 8 x 8 blocks
// transposed in registers (transpose8), the rest value by value: down a column, one load per value (the
// interaction network's (60, 3540) to (3540, 60) edge transposes: 0.43 ns per value, 2.2x this).
template <typename F>
inline void transpose_block(const float *x, std::ptrdiff_t ldx, float *y, size_t ldy, size_t ni, size_t nj, F &f)
{
   const size_t whole_i = ni - ni % 8, whole_j = nj - nj % 8;
   for (size_t bj = 0; bj < whole_j; bj += 8)
      for (size_t bi = 0; bi < whole_i; bi += 8) {
         float8 t[8];
         transpose8(x + static_cast<std::ptrdiff_t>(bi) + static_cast<std::ptrdiff_t>(bj) * ldx,
                    static_cast<size_t>(ldx), t);
         for (size_t i = 0; i < 8; ++i) {
            float row[8];
            std::memcpy(row, &t[i], sizeof row);
            for (size_t j = 0; j < 8; ++j)
               y[(bi + i) * ldy + bj + j] = f(row[j]);
         }
      }
   for (size_t i = 0; i < ni; ++i)
      for (size_t j = i < whole_i ? whole_j : 0; j < nj; ++j)
         y[i * ldy + j] = f(x[static_cast<std::ptrdiff_t>(i) + static_cast<std::ptrdiff_t>(j) * ldx]);
}

// y (rows x cols, contiguous) from x read down its columns (x[i + j * stride]): in square blocks, so that the
// lines of x a block reads stay in L1 until all their values are used.  Row by row, a row of y read one value
// from each of `cols` lines, more than L1 holds from a few hundred on (ParticleNet's (particles x k, channels)
// to (channels, particles x k) transposes: 1 ns per value, 2.5x this).
template <typename X, typename Y, typename F>
inline void transpose_blocks(const X *x, std::ptrdiff_t stride, Y *y, size_t rows, size_t cols, F &f)
{
   for (size_t i0 = 0; i0 < rows; i0 += kTransposeBlock) {
      const size_t i1 = detail::min_of(rows, i0 + kTransposeBlock);
      for (size_t j0 = 0; j0 < cols; j0 += kTransposeBlock) {
         const size_t j1 = detail::min_of(cols, j0 + kTransposeBlock);
         if constexpr (std::is_same_v<X, float> && std::is_same_v<Y, float>) {
            if (stride > 0) {
               transpose_block(x + static_cast<std::ptrdiff_t>(i0) + static_cast<std::ptrdiff_t>(j0) * stride, stride,
                               y + i0 * cols + j0, cols, i1 - i0, j1 - j0, f);
               continue;
            }
         }
         for (size_t i = i0; i < i1; ++i)
            for (size_t j = j0; j < j1; ++j)
               y[i * cols + j] = f(x[static_cast<std::ptrdiff_t>(i) + static_cast<std::ptrdiff_t>(j) * stride]);
      }
   }
}

// Columns of x transposed per chunk: the chunk's phases stay in L1 for f.
constexpr size_t kTransposePhasesChunk = 256;

// transpose_blocks for float x a whole matrix of M = 2, 4 or 8 columns (cols x M, y M x cols): the
// channels-last to channels-first transposes of Keras models, ParT's pair-bias heads.  split_phases reads x in
// vectors and shuffles them, where transpose_blocks read one value at a time (8 x 16384 floats: 2 cycles a
// value on Zen 4).
template <size_t M, typename F>
inline void transpose_phases(const float *x, float *y, size_t cols, F &f)
{
   for (size_t c0 = 0; c0 < cols; c0 += kTransposePhasesChunk) {
      const size_t n = detail::min_of(kTransposePhasesChunk, cols - c0);
      float *dst[M];
      for (size_t b = 0; b < M; ++b)
         dst[b] = y + b * cols + c0;
      split_phases<M>(x + M * c0, dst, n);
      for (size_t b = 0; b < M; ++b)
         for (size_t j = 0; j < n; ++j)
            dst[b][j] = f(dst[b][j]);
   }
}

// transpose_blocks, or transpose_phases where it serves.
template <typename X, typename Y, typename F>
inline void transpose_any(const X *x, std::ptrdiff_t stride, Y *y, size_t rows, size_t cols, F &f)
{
   if constexpr (std::is_same_v<X, float> && std::is_same_v<Y, float>)
      if (stride == static_cast<std::ptrdiff_t>(rows))
         switch (rows) {
         case 2: return transpose_phases<2>(x, y, cols, f);
         case 4: return transpose_phases<4>(x, y, cols, f);
         case 8: return transpose_phases<8>(x, y, cols, f);
         default: break;
         }
   transpose_blocks(x, stride, y, rows, cols, f);
}

// y (contiguous, `shape`) from x read with strides sx: transpose, slice,
// expand and broadcast-copy are all this loop.  Its inner loops read their bounds and strides into locals and
// write through a local pointer: Cling compiles without strict aliasing, and a loop whose every store might change
// its bound (shape[0]) or its pointer (y, a reference) stayed scalar (attention's heads: 10x a vectorized copy).
template <typename X, typename Y, typename F>
inline void unary_strided_rec(const X *x, const std::ptrdiff_t *sx, Y *&y, const size_t *shape, size_t rank, F &f)
{
   if (rank == 0) {
      *y++ = f(*x);
      return;
   }
   const size_t n = shape[0];
   if (rank == 2 && sx[0] == 1 && sx[1] != 0 && n > 1 && shape[1] > kTransposeBlock) {
      transpose_any(x, sx[1], y, n, shape[1], f);
      y += n * shape[1];
      return;
   }
   Y *out = y;
   if (rank == 2 && sx[1] == 1) { // rows of contiguous runs (attention's heads of 16): a call per row cost more
      const size_t m = shape[1];     // than the row's copy
      const std::ptrdiff_t step = sx[0];
      for (size_t i = 0; i < n; ++i, out += m) {
         const X *row = x + static_cast<std::ptrdiff_t>(i) * step;
         for (size_t j = 0; j < m; ++j)
            out[j] = f(row[j]);
      }
      y = out;
      return;
   }
   if (rank == 1) { // a broadcast value and a contiguous run as loops of their own: the compiler vectorizes them
      const std::ptrdiff_t s = sx[0];
      if (s == 0) {
         const Y v = f(*x);
         for (size_t i = 0; i < n; ++i)
            out[i] = v;
      } else if (s == 1) {
         for (size_t i = 0; i < n; ++i)
            out[i] = f(x[i]);
      } else {
         for (size_t i = 0; i < n; ++i)
            out[i] = f(x[static_cast<std::ptrdiff_t>(i) * s]);
      }
      y = out + n;
      return;
   }
   const std::ptrdiff_t step = sx[0];
   for (size_t i = 0; i < n; ++i)
      unary_strided_rec(x + static_cast<std::ptrdiff_t>(i) * step, sx + 1, y, shape + 1, rank - 1, f);
}

// Ranks up to this are merged before a strided loop; higher ones (rare) run as given.
constexpr size_t kMaxMergedRank = 32;

template <typename X, typename Y, typename F>
inline void unary_strided(const X *x, const std::ptrdiff_t *sx, Y *y, const size_t *shape, size_t rank, F f)
{
   if (rank > kMaxMergedRank)
      return unary_strided_rec(x, sx, y, shape, rank, f);
   // Dims of size 1 dropped and neighbours x walks contiguously merged, here because shapes computed while
   // running (Tile's repeats, Expand's shape) arrive unmerged: the inner loop then runs long, not once.
   size_t dims[kMaxMergedRank];
   std::ptrdiff_t strides[kMaxMergedRank];
   size_t r = 0;
   for (size_t i = 0; i < rank; ++i) {
      if (shape[i] == 1)
         continue;
      if (r > 0 && strides[r - 1] == sx[i] * static_cast<std::ptrdiff_t>(shape[i])) {
         dims[r - 1] *= shape[i];
         strides[r - 1] = sx[i];
         continue;
      }
      dims[r] = shape[i];
      strides[r++] = sx[i];
   }
   unary_strided_rec(x, strides, y, dims, r, f);
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
   if (rank == 1) { // locals, as in unary_strided_rec (Cling: no strict aliasing)
      const std::ptrdiff_t s0 = sa[0], s1 = sb[0];
      const size_t n = shape[0];
      Y *out = y;
      y = out + n;
      // One operand along the row, the other one value or along it too: the loops without strides, which vectorize.
      // Read with strides of 0 and 1 known only at run time, the row stayed scalar, in g++'s build and under Cling
      // (a particle transformer's pairwise differences).
      if (n == 0)
         return;
      if (s0 == 1 && s1 == 0)
         return binary_scalar_b(a, *b, out, n, f);
      if (s0 == 0 && s1 == 1)
         return binary_scalar_a(*a, b, out, n, f);
      if (s0 == 1 && s1 == 1)
         return binary(a, b, out, n, f);
      for (size_t i = 0; i < n; ++i)
         out[i] = f(a[static_cast<std::ptrdiff_t>(i) * s0], b[static_cast<std::ptrdiff_t>(i) * s1]);
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

// g(stride) with a stride of 0 or 1 as a constant (std::integral_constant), so that a loop in g that reads with it
// is vectorized; false, without calling g, for any other stride.
template <typename G>
inline bool with_unit_stride(std::ptrdiff_t stride, G &&g)
{
   if (stride == 0)
      g(std::integral_constant<std::ptrdiff_t, 0>{});
   else if (stride == 1)
      g(std::integral_constant<std::ptrdiff_t, 1>{});
   return stride == 0 || stride == 1;
}

// The type a value of T is read as: bool's bytes as unsigned char, which GCC vectorizes loads of (of bool, not).
template <typename T>
using LoadType = std::conditional_t<std::is_same_v<T, bool>, unsigned char, T>;

// y[k] = f(a[k s0], b[k s1], c[k s2]) for k < n.  y overlaps none of the operands (restrict: the compiler would
// otherwise test the three); with constant strides the loop is vectorized.
template <typename A, typename B, typename C, typename Y, typename F, typename S0, typename S1, typename S2>
inline void ternary_run(const A *a, S0 s0, const B *b, S1 s1, const C *c, S2 s2, Y *__restrict y, std::ptrdiff_t n,
                        F &f)
{
   const auto *__restrict la = reinterpret_cast<const LoadType<A> *>(a);
   const auto *__restrict lb = reinterpret_cast<const LoadType<B> *>(b);
   const auto *__restrict lc = reinterpret_cast<const LoadType<C> *>(c);
   const std::ptrdiff_t t0 = detail::stride_value(s0), t1 = detail::stride_value(s1), t2 = detail::stride_value(s2);
   for (std::ptrdiff_t k = 0; k < n; ++k)
      y[k] = f(static_cast<A>(la[k * t0]), static_cast<B>(lb[k * t1]), static_cast<C>(lc[k * t2]));
}

// Three operands broadcast together (Where): y has `shape`; a, b, c are read with strides sa, sb, sc.  A last
// axis along which each operand is contiguous or one value (a mask over keys, a scalar fill, attention's
// logits) runs with those strides as constants: read through run-time strides, value by value, Where over
// 8 x 128 x 128 logits took 0.84 ns a value on Zen 4.
template <typename A, typename B, typename C, typename Y, typename F>
inline void ternary_strided_rec(const A *a, const std::ptrdiff_t *sa, const B *b, const std::ptrdiff_t *sb, const C *c,
                                const std::ptrdiff_t *sc, Y *&y, const size_t *shape, size_t rank, F &f)
{
   if (rank == 0) {
      *y++ = f(*a, *b, *c);
      return;
   }
   if (rank == 1) {
      const std::ptrdiff_t s0 = sa[0], s1 = sb[0], s2 = sc[0], n = static_cast<std::ptrdiff_t>(shape[0]);
      Y *out = y;
      y += n;
      const bool units = std::max({s0, s1, s2}) <= 1 && std::min({s0, s1, s2}) >= 0;
      if (units && with_unit_stride(s0, [&](auto u0) {
             with_unit_stride(s1, [&](auto u1) {
                with_unit_stride(s2, [&](auto u2) { ternary_run(a, u0, b, u1, c, u2, out, n, f); });
             });
          }))
         return;
      ternary_run(a, s0, b, s1, c, s2, out, n, f);
      return;
   }
   for (size_t i = 0; i < shape[0]; ++i) {
      const std::ptrdiff_t k = static_cast<std::ptrdiff_t>(i);
      ternary_strided_rec(a + k * sa[0], sa + 1, b + k * sb[0], sb + 1, c + k * sc[0], sc + 1, y, shape + 1, rank - 1,
                          f);
   }
}

template <typename A, typename B, typename C, typename Y, typename F>
inline void ternary_strided(const A *a, const std::ptrdiff_t *sa, const B *b, const std::ptrdiff_t *sb, const C *c,
                            const std::ptrdiff_t *sc, Y *y, const size_t *shape, size_t rank, F f)
{
   ternary_strided_rec(a, sa, b, sb, c, sc, y, shape, rank, f);
}

// Min/Max: a NaN operand makes the result NaN (numpy and onnxruntime), which std::min/std::max do not.
template <typename T>
inline T minimum(T a, T b)
{
   if constexpr (!std::numeric_limits<T>::is_integer) {
      if (detail::is_nan(a) || detail::is_nan(b))
         return std::numeric_limits<T>::quiet_NaN();
   }
   return b < a ? b : a;
}

template <typename T>
inline T maximum(T a, T b)
{
   if constexpr (!std::numeric_limits<T>::is_integer) {
      if (detail::is_nan(a) || detail::is_nan(b))
         return std::numeric_limits<T>::quiet_NaN();
   }
   return a < b ? b : a;
}

// Integer remainder guarded against the cases C++ leaves undefined (b == 0, and MIN % -1 overflowing).
template <typename T>
inline T checked_remainder(T a, T b)
{
   if (b == 0)
      throw std::invalid_argument("Mod: integer division by zero");
   if constexpr (std::is_signed_v<T>) {
      if (b == T(-1))
         return T(0);
   }
   return static_cast<T>(a % b);
}

// Mod with fmod=1: the remainder of truncated division, sign of the dividend (C fmod).
template <typename T>
inline T mod_trunc(T a, T b)
{
   if constexpr (!std::numeric_limits<T>::is_integer)
      return std::fmod(a, b);
   else
      return checked_remainder(a, b);
}

// Mod with fmod=0: the remainder of floored division, sign of the divisor (Python's %).
template <typename T>
inline T mod_floor(T a, T b)
{
   if constexpr (!std::numeric_limits<T>::is_integer) {
      const T r = std::fmod(a, b);
      if (r == 0)
         return std::copysign(T(0), b);
      return (r < 0) != (b < 0) ? r + b : r;
   } else if constexpr (std::is_signed_v<T>) {
      const T r = checked_remainder(a, b);
      return r != 0 && ((r < 0) != (b < 0)) ? static_cast<T>(r + b) : r;
   } else {
      return checked_remainder(a, b);
   }
}

// Concat of short blocks (columns stacked on a last axis): y's rows in one pass, each taking its block from
// every part in turn, where a copy_blocks per part went over y `count` times (ParT's pair indices: 4 columns of
// 627200 rows, 20 MB, took 3.7x as long so).
template <typename T>
inline void concat_rows(const T *const *parts, const size_t *blocks, size_t count, size_t outer, T *y)
{
   for (size_t o = 0; o < outer; ++o)
      for (size_t i = 0; i < count; ++i)
         for (size_t j = 0; j < blocks[i]; ++j)
            *y++ = parts[i][o * blocks[i] + j];
}

// Copies `outer` blocks of `block` elements from x into y, whose blocks are
// `y_block` elements apart (one input of a Concat).
template <typename T>
inline void copy_blocks(const T *x, T *y, size_t outer, size_t block, size_t y_block)
{
   if (block >= 16) {
      for (size_t o = 0; o < outer; ++o)
         detail::copy(x + o * block, x + (o + 1) * block, y + o * y_block);
      return;
   }
   // Short blocks (features stacked on a last axis): a copy call per block would cost more than the copy.
   for (size_t o = 0; o < outer; ++o)
      for (size_t j = 0; j < block; ++j)
         y[o * y_block + j] = x[o * block + j];
}
