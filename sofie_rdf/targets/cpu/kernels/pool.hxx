// Spatial pooling (MaxPool, AveragePool, LpPool and their Global forms).
//
// One window walk serves every pooling operator: `pool` visits, for each plane
// (batch x channel) and each output position, the window's taps in row-major
// order and hands each to a reducer, which owns what differs between the ops
// (the running maximum and its index, a sum and a count, a sum of powers).
// A tap inside the input calls add(value, row_major, column_major) with the
// tap's flat input index in both spatial orders (MaxPool's Indices output);
// the taps in the explicit padding are counted once with pad(n) (AveragePool's
// count_include_pad); taps past the padding, which ceil_mode windows may have,
// are skipped.  Per output position the taps inside the input are a box, so
// the walk has no per-tap bounds checks.

constexpr size_t kMaxPoolRank = 8;

// Geometry of one pooling: per spatial dim, rank entries each.
struct PoolShape {
   size_t rank;
   const size_t *in;         // input spatial shape
   const size_t *out;        // output spatial shape
   const size_t *kernel;     // window shape
   const size_t *strides;    // output step
   const size_t *dilations;  // distance between taps
   const size_t *pads_begin; // padding before the input
   const size_t *pads_end;   // padding after the input
};

// Taps k in [0, kernel) whose coordinate start + k * dilation lies in [lo, hi).
inline size_t pool_taps_in(std::ptrdiff_t start, std::ptrdiff_t dilation, std::ptrdiff_t kernel, std::ptrdiff_t lo,
                           std::ptrdiff_t hi, size_t &first)
{
   if (dilation == 1) { // the common case, without the divisions (a line of pool_lines costs a few of these)
      const std::ptrdiff_t k0 = detail::max_of<std::ptrdiff_t>(lo - start, 0), k1 = detail::min_of(kernel, hi - start);
      first = static_cast<size_t>(k0);
      return k1 > k0 ? static_cast<size_t>(k1 - k0) : 0;
   }
   const std::ptrdiff_t k0 = start >= lo ? 0 : (lo - start + dilation - 1) / dilation;
   const std::ptrdiff_t k1 = start >= hi ? 0 : detail::min_of(kernel, (hi - start + dilation - 1) / dilation);
   first = static_cast<size_t>(k0);
   return k1 > k0 ? static_cast<size_t>(k1 - k0) : 0;
}

// The taps of output coordinate o along dim d: the first input coordinate inside the input, how many lie
// inside it, and how many inside the input and its padding (AveragePool's count_include_pad divisor).
struct PoolAxisTaps {
   std::ptrdiff_t first;
   size_t inside, padded;
};

inline PoolAxisTaps pool_axis_taps(const PoolShape &s, size_t d, size_t o)
{
   const std::ptrdiff_t start =
      static_cast<std::ptrdiff_t>(o * s.strides[d]) - static_cast<std::ptrdiff_t>(s.pads_begin[d]);
   const std::ptrdiff_t dil = static_cast<std::ptrdiff_t>(s.dilations[d]);
   const std::ptrdiff_t k = static_cast<std::ptrdiff_t>(s.kernel[d]);
   const std::ptrdiff_t n = static_cast<std::ptrdiff_t>(s.in[d]);
   size_t k0 = 0, unused = 0;
   const size_t inside = pool_taps_in(start, dil, k, 0, n, k0);
   const size_t padded = pool_taps_in(start, dil, k, -static_cast<std::ptrdiff_t>(s.pads_begin[d]),
                                      n + static_cast<std::ptrdiff_t>(s.pads_end[d]), unused);
   return {start + static_cast<std::ptrdiff_t>(k0) * dil, inside, padded};
}

// The next multi-index over axes [0, n) in row-major order (the last axis fastest), back to zeros after the
// last one; `offset` moves along, by step[d] per unit of axis d.  Every walk of this file is one of these: the
// output positions or lines, a window's taps or lines.
inline void pool_next(size_t *index, const size_t *extent, size_t n, const size_t *step, size_t &offset)
{
   for (size_t d = n; d-- > 0;) {
      offset += step[d];
      if (++index[d] < extent[d])
         return;
      offset -= extent[d] * step[d];
      index[d] = 0;
   }
}

// The same walk without an offset.
inline void pool_next(size_t *index, const size_t *extent, size_t n)
{
   static constexpr size_t kNoSteps[kMaxPoolRank] = {};
   size_t unused = 0;
   pool_next(index, extent, n, kNoSteps, unused);
}

// The lines of a pooling's input along its last axis: their distance along each leading axis, the size of a
// plane, and how many output lines a plane gives.
struct PoolLineGrid {
   size_t stride[kMaxPoolRank] = {}, plane = 1, lines_out = 1;

   explicit PoolLineGrid(const PoolShape &s) : plane(s.in[s.rank - 1])
   {
      for (size_t d = s.rank - 1; d-- > 0;) {
         stride[d] = plane;
         plane *= s.in[d];
         lines_out *= s.out[d];
      }
   }
};

template <typename T, typename Reducer>
inline void pool(const T *x, size_t planes, const PoolShape &s, Reducer reducer)
{
   const size_t last = s.rank - 1;
   size_t in_size = 1, out_size = 1;
   std::ptrdiff_t row_stride[kMaxPoolRank], col_stride[kMaxPoolRank];
   for (size_t d = s.rank; d-- > 0;) {
      row_stride[d] = static_cast<std::ptrdiff_t>(in_size);
      in_size *= s.in[d];
   }
   for (size_t d = 0, acc = 1; d < s.rank; ++d) {
      col_stride[d] = static_cast<std::ptrdiff_t>(acc);
      acc *= s.in[d];
      out_size *= s.out[d];
   }
   for (size_t p = 0; p < planes; ++p) {
      const T *xp = x + p * in_size;
      const std::ptrdiff_t plane = static_cast<std::ptrdiff_t>(p * in_size);
      size_t o_index[kMaxPoolRank] = {};
      for (size_t o = 0; o < out_size; ++o) {
         // Per dim: first coordinate of the taps inside the input, their count and step.
         std::ptrdiff_t first[kMaxPoolRank], step[kMaxPoolRank];
         size_t count[kMaxPoolRank];
         size_t inside = 1, padded = 1;
         for (size_t d = 0; d < s.rank; ++d) {
            const PoolAxisTaps taps = pool_axis_taps(s, d, o_index[d]);
            count[d] = taps.inside;
            first[d] = taps.first;
            step[d] = static_cast<std::ptrdiff_t>(s.dilations[d]);
            inside *= taps.inside;
            padded *= taps.padded;
         }
         reducer.begin();
         if (inside > 0) {
            size_t t_index[kMaxPoolRank] = {};
            for (size_t rows = inside / count[last]; rows-- > 0;) {
               std::ptrdiff_t row = plane, col = plane;
               for (size_t d = 0; d < last; ++d) {
                  const std::ptrdiff_t c = first[d] + static_cast<std::ptrdiff_t>(t_index[d]) * step[d];
                  row += c * row_stride[d];
                  col += c * col_stride[d];
               }
               for (size_t k = 0; k < count[last]; ++k) { // the last dim: contiguous taps when undilated
                  const std::ptrdiff_t c = first[last] + static_cast<std::ptrdiff_t>(k) * step[last];
                  reducer.add(xp[row - plane + c], static_cast<size_t>(row + c),
                              static_cast<size_t>(col + c * col_stride[last]));
               }
               pool_next(t_index, count, last); // next row of taps
            }
         }
         if (padded > inside)
            reducer.pad(padded - inside);
         reducer.end(p * out_size + o);
         pool_next(o_index, s.out, s.rank); // next output position
      }
   }
}

// MaxPool (without Indices) and AveragePool, vectorized along the last spatial axis.  For each output line
// (a position over all spatial axes but the last), the window's input lines are combined element-wise
// into `line`, which holds a line in padded coordinates (input column c at pads_begin + c, the reduction's
// identity elsewhere); then output o combines its taps line[o * stride + j * dilation].  Both passes run
// along contiguous memory, so the compiler vectorizes them, where `pool` visits one tap at a time.  The
// maximum keeps `pool`'s rule (from the identity, a tap wins only when greater: NaN never wins); sums are
// added line by line, so they round differently from `pool`'s row-major order.  work: pool_lines_work.

// The reduction's identity: a variable, whose uses are constants, where under ROOT's Cling (which inlines only
// what is always_inline) a function's, numeric_limits' lowest() included, stay calls in the loops.
template <typename T, bool Max>
constexpr T kPoolIdentity = Max ? std::numeric_limits<T>::lowest() : T(0);

// The reduction's step, from the identity when `first` (a loop-invariant test the compiler hoists).
template <typename T, bool Max>
inline T pool_step(T acc, T v, bool first)
{
   const T a = first ? kPoolIdentity<T, Max> : acc;
   return Max ? (v > a ? v : a) : a + v;
}

// y[i] = step(y[i], x[i]).  These loops are functions of their own so that the compiler sees two arrays that
// do not overlap, not a loop nest to reorder.
template <typename T, bool Max>
inline void pool_combine(T *__restrict y, const T *__restrict x, size_t n, bool first)
{
   for (size_t i = 0; i < n; ++i)
      y[i] = pool_step<T, Max>(y[i], x[i], first);
}

// y[i] = step(y[i], x[i * stride]); SW is the stride when it is a constant (0: `stride`).
template <typename T, bool Max, size_t SW>
inline void pool_combine_strided(T *__restrict y, const T *__restrict x, size_t n, size_t stride, bool first)
{
   const size_t sw = SW ? SW : stride;
   for (size_t i = 0; i < n; ++i)
      y[i] = pool_step<T, Max>(y[i], x[i * sw], first);
}

// Two taps at once with stride 2: each iteration reads a whole pair, which vectorizes where a stride-2
// read of one tap does not.
template <typename T, bool Max>
inline void pool_combine_pairs(T *__restrict y, const T *__restrict x, size_t n, bool first)
{
   for (size_t i = 0; i < n; ++i)
      y[i] = pool_step<T, Max>(pool_step<T, Max>(y[i], x[2 * i], first), x[2 * i + 1], false);
}

inline size_t pool_lines_span(const PoolShape &s)
{
   const size_t last = s.rank - 1;
   return (s.out[last] - 1) * s.strides[last] + (s.kernel[last] - 1) * s.dilations[last] + 1;
}

// One output line from `line`: the taps along it, then AveragePool's division.
template <typename T, bool Max, size_t SW>
inline void pool_line_out(T *y, const T *line, const PoolShape &s, const T *col_count, T rows)
{
   const size_t last = s.rank - 1, n = s.out[last], kw = s.kernel[last], dw = s.dilations[last];
   size_t j = 0;
   if (SW == 2 && dw == 1)
      for (; j + 1 < kw; j += 2)
         pool_combine_pairs<T, Max>(y, line + j, n, j == 0);
   for (; j < kw; ++j)
      pool_combine_strided<T, Max, SW>(y, line + j * dw, n, s.strides[last], j == 0);
   if (!Max)
      for (size_t i = 0; i < n; ++i) {
         const T count = rows * col_count[i];
         y[i] = count > T(0) ? y[i] / count : T(0);
      }
}

// Taps per output column inside the input (or inside the input and its padding): AveragePool's divisors.
template <typename T>
inline void pool_column_counts(const PoolShape &s, bool count_include_pad, T *col_count)
{
   for (size_t o = 0; o < s.out[s.rank - 1]; ++o) {
      const PoolAxisTaps taps = pool_axis_taps(s, s.rank - 1, o);
      col_count[o] = static_cast<T>(count_include_pad ? taps.padded : taps.inside);
   }
}

template <typename T, bool Max, size_t SW>
inline void pool_lines(const T *x, T *y, size_t planes, const PoolShape &s, bool count_include_pad, T *work)
{
   const size_t last = s.rank - 1, w_in = s.in[last], w_out = s.out[last];
   const size_t span = pool_lines_span(s), pb = s.pads_begin[last];
   const size_t copied = span > pb ? detail::min_of(w_in, span - pb) : 0;
   const T identity = kPoolIdentity<T, Max>;
   T *line = work, *col_count = work + span;
   if (!Max)
      pool_column_counts(s, count_include_pad, col_count);
   const PoolLineGrid lines(s);
   size_t tap_step[kMaxPoolRank]; // between a window's input lines
   for (size_t d = 0; d < last; ++d)
      tap_step[d] = s.dilations[d] * lines.stride[d];
   // The padding around the copied columns holds the identity for good; the rest is rewritten per line.
   detail::fill_n(line, detail::min_of(pb, span), identity);
   if (pb + copied < span)
      detail::fill_n(line + pb + copied, span - pb - copied, identity);
   for (size_t p = 0; p < planes; ++p) {
      const T *xp = x + p * lines.plane;
      size_t o_index[kMaxPoolRank] = {};
      for (size_t o = 0; o < lines.lines_out; ++o) {
         // Per leading axis: the taps inside the input (and inside the input and its padding: AveragePool's
         // count_include_pad divisor).  The window's input lines are walked in row-major order with their
         // offset as a running sum, starting from the first line's, summed here: computed per line as a dot
         // product of stored arrays, GCC vectorizes it with AVX-512's 64-bit multiplies, whose loads wait on
         // the scalar stores just made, and MaxPool3d ran 10x slower than with AVX2.
         size_t count[kMaxPoolRank], rows = 1, padded_rows = 1, offset = 0;
         for (size_t d = 0; d < last; ++d) {
            const PoolAxisTaps taps = pool_axis_taps(s, d, o_index[d]);
            count[d] = taps.inside;
            offset += static_cast<size_t>(taps.first) * lines.stride[d]; // inside the input when any tap is
            rows *= taps.inside;
            padded_rows *= taps.padded;
         }
         if (rows == 0) // the window lies in the padding
            detail::fill_n(line + pb, copied, identity);
         size_t t_index[kMaxPoolRank] = {};
         for (size_t r = 0; r < rows; ++r) {
            pool_combine<T, Max>(line + pb, xp + offset, copied, r == 0);
            pool_next(t_index, count, last, tap_step, offset); // next input line of the window
         }
         pool_line_out<T, Max, SW>(y + (p * lines.lines_out + o) * w_out, line, s, col_count,
                                   static_cast<T>(count_include_pad ? padded_rows : rows));
         pool_next(o_index, s.out, last); // next output line
      }
   }
}

// ---- stride 2 along lines, in whole vectors ------------------------------------------------------------------
//
// pool_lines_stride2: MaxPool and AveragePool in float, 1-D to 3-D, with stride 2 along the last axis and windows
// of KW <= L + 2 undilated taps along it (emitters/pool.py chooses it where the geometry is known: a call site
// with one kernel's code is inlined, and its shapes become constants).  Output i of a line combines the window's
// input lines at columns 2 i - pads_begin + j, j < KW: tap j is their even (j even) or odd floats moved down by
// j / 2 lanes.  Per L outputs, up to three vectors of each of the window's lines are combined in registers, split
// into even and odd floats, and each tap is then one permute.  pool_lines' loops over a line of 11 outputs
// (MaxPool 3 x 3, stride 2, on 24 pixels) ran scalar with AVX-512's 16 lanes, 15 ns a line.  Vectors reaching
// before a line's start or past its end read the neighbouring lines' floats: those columns are then set to the
// identity (the padding; past the end, also lanes past the output line's end); near either end of the tensor
// the vectors are read from a copy.  Outputs are stored as whole vectors while the tensor has room (the next line
// rewrites the lanes past a line's end).  The taps combine in pool_lines' order, from the identity, so the results
// are the same.

template <size_t... I>
inline vint pool_iota(std::index_sequence<I...>)
{
   return vint{int(I)...};
}

// Lanes whose column first + Step * lane lies in [lo, hi): all bits set, else 0.
template <int Step>
inline vint pool_columns_in(int first, int lo, int hi)
{
   const vint column = first + Step * pool_iota(std::make_index_sequence<kVFloatLanes>{});
   return (column >= lo - vint{}) & (column < hi - vint{});
}

template <bool Max>
inline vfloat pool_vstep(vfloat acc, vfloat v)
{
   return Max ? vmax(v, acc) : acc + v;
}

// Tap J of L outputs: lanes J / 2 on of the even (J even) or odd floats, continued by e1 (o1).
template <size_t J>
inline vfloat pool_stride2_tap(vfloat e0, vfloat e1, vfloat o0, vfloat o1)
{
   return vlanes_from<J / 2>(J % 2 ? o0 : e0, J % 2 ? o1 : e1, std::make_index_sequence<kVFloatLanes>{});
}

template <bool Max, size_t... J>
inline vfloat pool_stride2_taps(vfloat e0, vfloat e1, vfloat o0, vfloat o1, std::index_sequence<J...>)
{
   vfloat acc = vsplat(kPoolIdentity<float, Max>);
   ((acc = pool_vstep<Max>(acc, pool_stride2_tap<J>(e0, e1, o0, o1))), ...);
   return acc;
}

// AveragePool's taps along the line per output lane: those of output column first / 2 + lane in [lo, hi).
template <size_t... J>
inline vfloat pool_stride2_count(int first, int lo, int hi, std::index_sequence<J...>)
{
   vint count{};
   ((count -= pool_columns_in<2>(first + int(J), lo, hi)), ...); // all bits set is -1
   return __builtin_convertvector(count, vfloat);
}

// The input lines of an output line's window: two leading axes (the first of one tap where the pooling is 2-D,
// both where it is 1-D), the window's taps inside the input along each and the distance between them; and the
// line's width.
struct PoolStride2Window {
   size_t count[2], step[2];
   int width;
};

// L outputs of a line: NV vectors (as many as its taps reach) of each of the window's lines from column `column`
// (at `at` in the tensor) on, combined in row-major order, the columns outside the line set to the identity, then
// split into taps.  The vectors reaching past either end of the tensor come from `edge`.
template <bool Max, size_t KW, size_t NV>
inline vfloat pool_stride2_vector(const float *x, std::ptrdiff_t at, std::ptrdiff_t x_end, int column,
                                  const PoolStride2Window &w, float *edge)
{
   constexpr size_t L = kVFloatLanes;
   constexpr auto lanes = std::make_index_sequence<L>{};
   constexpr std::ptrdiff_t reads = NV * L;
   const vfloat identity = vsplat(kPoolIdentity<float, Max>);
   vfloat v[3] = {identity, identity, identity};
   for (size_t i = 0; i < w.count[0]; ++i)
      for (size_t j = 0; j < w.count[1]; ++j) {
         const std::ptrdiff_t line = at + std::ptrdiff_t(i * w.step[0] + j * w.step[1]);
         const float *src = x + detail::max_of<std::ptrdiff_t>(line, 0);
         if (line < 0 || line + reads > x_end) { // the floats inside the tensor, if any, to their place in edge
            const std::ptrdiff_t from = detail::max_of<std::ptrdiff_t>(line, 0), to = detail::min_of(line + reads, x_end);
            if (from < to)
               detail::copy(x + from, x + to, edge + (from - line));
            src = edge;
         }
         for (size_t k = 0; k < NV; ++k)
            v[k] = pool_vstep<Max>(v[k], vload(src + k * L));
      }
   if (column < 0 || column + int(reads) > w.width)
      for (size_t k = 0; k < NV; ++k)
         v[k] = pool_columns_in<1>(column + int(k * L), 0, w.width) ? v[k] : identity;
   return pool_stride2_taps<Max>(vevery_other<0>(v[0], v[1], lanes), vevery_other<0>(v[2], v[2], lanes),
                                 vevery_other<1>(v[0], v[1], lanes), vevery_other<1>(v[2], v[2], lanes),
                                 std::make_index_sequence<KW>{});
}

// The taps of output coordinate o along leading axis a of two (axes before the input's first have one tap).
inline PoolAxisTaps pool_lead_taps(const PoolShape &s, size_t a, size_t o)
{
   const size_t lead = s.rank - 1; // leading axes of the input
   return a + lead < 2 ? PoolAxisTaps{0, 1, 1} : pool_axis_taps(s, a + lead - 2, o);
}

template <bool Max, size_t KW>
inline void pool_lines_stride2(const float *x, float *y, size_t planes, const PoolShape &s, bool count_include_pad)
{
   constexpr size_t L = kVFloatLanes;
   static_assert(KW <= L + 2, "three vectors of a line hold the taps of L outputs");
   const size_t lead = s.rank - 1, n = s.out[lead];
   const PoolLineGrid lines(s);
   const std::ptrdiff_t x_end = std::ptrdiff_t(planes * lines.plane);
   const size_t y_end = planes * lines.lines_out * n;
   const int pad = int(s.pads_begin[lead]), width = int(s.in[lead]);
   // AveragePool's taps along the line: those inside it, or inside it and its padding
   const int lo = count_include_pad ? -pad : 0, hi = width + (count_include_pad ? int(s.pads_end[lead]) : 0);
   // per leading axis of two: output lines, the distance between input lines and between a window's lines
   size_t out[2] = {1, 1}, stride[2] = {0, 0};
   PoolStride2Window w{{1, 1}, {0, 0}, width};
   for (size_t a = 2 - lead; a < 2; ++a) {
      out[a] = s.out[a + lead - 2];
      stride[a] = lines.stride[a + lead - 2];
      w.step[a] = s.dilations[a + lead - 2] * stride[a];
   }
   float edge[3 * L] = {}; // the vectors reaching past either end of the tensor
   size_t at_y = 0;
   for (size_t p = 0; p < planes; ++p)
      for (size_t o0 = 0; o0 < out[0]; ++o0) {
         const PoolAxisTaps t0 = pool_lead_taps(s, 0, o0);
         for (size_t o1 = 0; o1 < out[1]; ++o1) {
            const PoolAxisTaps t1 = pool_lead_taps(s, 1, o1);
            w.count[0] = t0.inside;
            w.count[1] = t1.inside;
            const std::ptrdiff_t first = std::ptrdiff_t(p * lines.plane + size_t(t0.first) * stride[0] +
                                                        size_t(t1.first) * stride[1]); // inside when any tap is
            const float rows = float(count_include_pad ? t0.padded * t1.padded : t0.inside * t1.inside);
            for (size_t c = 0; c < n; c += L) {
               const size_t m = detail::min_of(L, n - c), reach = 2 * m + KW - 2;
               const int column = 2 * int(c) - pad;
               const std::ptrdiff_t at = first + column;
               vfloat v = reach <= L       ? pool_stride2_vector<Max, KW, 1>(x, at, x_end, column, w, edge)
                          : reach <= 2 * L ? pool_stride2_vector<Max, KW, 2>(x, at, x_end, column, w, edge)
                                           : pool_stride2_vector<Max, KW, 3>(x, at, x_end, column, w, edge);
               if (!Max) {
                  const vfloat count = rows * pool_stride2_count(column, lo, hi, std::make_index_sequence<KW>{});
                  v = count > vfloat{} ? v / count : vfloat{};
               }
               if (at_y + L <= y_end)
                  vstore(y + at_y, v);
               else
                  for (size_t i = 0; i < m; ++i)
                     y[at_y + i] = v[i];
               at_y += m;
            }
         }
      }
}

// ---- 2-wide windows with stride 2 ----------------------------------------------------------------------------
//
// pool_pairs: MaxPool and AveragePool in float whose windows are 2 wide with stride 2 on every axis (the 2 x 2
// and 2 x 2 x 2 pooling of CNNs), unpadded, on input lines of whole vectors (16, 32, ... floats with AVX-512).
// Per output line, the window's 2^(rank - 1) input lines are combined into one run of floats; read back to back
// over a row of output lines (those of one plane and one leading output coordinate), those runs hold each
// output's two remaining taps as neighbours, so any two consecutive run vectors give one output vector with two
// permutes, however wide the lines.  pool_lines paid about 10 ns of set-up per output line, more than a line of
// 8 or 16 outputs costs to compute.  The walk keeps no state between vectors: where lines are an odd count of
// vectors, two lines are taken at a time (the first's last vector pairs with the second's first), and a row of an
// odd count of vectors ends in half a vector.  ROOT's Cling stores every live value at each branch: a pending
// vector with its flag carried from one output line to the next, and numeric_limits' lowest() called per vector,
// made a declared header's 2 x 2 x 2 max pool of 8 x 16^3 take 5.0 us, 4x the native build's time (now 1.2 us,
// as native).  The taps combine in pool_lines' order, from the identity (NaN never wins a
// maximum); the sum's divisor, 2^rank, is a power of two, so multiplying by its inverse rounds as dividing does.

constexpr size_t kPoolPairsRank = 3; // up to 4 input lines per output line

inline bool pool_pairs_fit(const PoolShape &s, size_t lanes)
{
   if (s.rank > kPoolPairsRank || s.in[s.rank - 1] % lanes != 0)
      return false;
   for (size_t d = 0; d < s.rank; ++d)
      if (s.kernel[d] != 2 || s.strides[d] != 2 || s.dilations[d] != 1 || s.pads_begin[d] != 0 ||
          s.pads_end[d] != 0 || s.out[d] != s.in[d] / 2)
         return false;
   return true;
}

// The window's Taps input lines (their offsets from its first) combined, and output vectors (V: L floats) made
// from pairs of such run vectors: the even and odd floats of each pair combined.
template <bool Max, typename V, size_t Taps>
struct PoolPairs {
   static constexpr size_t L = sizeof(V) / sizeof(float);
   const size_t *taps;
   float scale; // AveragePool's 1 / 2^rank

   template <size_t... T>
   V run(const float *at, std::index_sequence<T...>) const
   {
      V acc = kPoolIdentity<float, Max> - V{}, v;
      ((std::memcpy(&v, at + taps[T], sizeof v), acc = Max ? (v > acc ? v : acc) : acc + v), ...);
      return acc;
   }
   V run(const float *at) const { return run(at, std::make_index_sequence<Taps>{}); }
   V pairs(V a, V b) const
   {
      constexpr auto lanes = std::make_index_sequence<L>{};
      const V even = vevery_other<0>(a, b, lanes), odd = vevery_other<1>(a, b, lanes);
      return Max ? (odd > even ? odd : even) : (even + odd) * scale;
   }
   // The output vector of the run vectors at a and b.
   float *store(float *y, const float *a, const float *b) const
   {
      const V out = pairs(run(a), run(b));
      std::memcpy(y, &out, sizeof out);
      return y + L;
   }
   // The outputs of `vectors` (even) run vectors of a line from `line` on.
   float *along(float *y, const float *line, size_t vectors) const
   {
      for (size_t c = 0; c < vectors; c += 2)
         y = store(y, line + c * L, line + (c + 1) * L);
      return y;
   }
   // A row of `lines` output lines, `pitch` floats apart in the input, of `vectors` run vectors each.
   float *row(float *y, const float *first, size_t lines, size_t pitch, size_t vectors) const
   {
      if (vectors % 2 == 0) {
         for (size_t o = 0; o < lines; ++o)
            y = along(y, first + o * pitch, vectors);
         return y;
      }
      const size_t last = (vectors - 1) * L; // a line's last vector
      size_t o = 0;
      for (; o + 1 < lines; o += 2) {
         const float *a = first + o * pitch, *b = a + pitch;
         y = along(y, a, vectors - 1);
         y = store(y, a + last, b);
         y = along(y, b + L, vectors - 1);
      }
      if (o == lines)
         return y;
      const float *a = first + o * pitch;
      y = along(y, a, vectors - 1);
      const V tail = run(a + last), half = pairs(tail, tail);
      std::memcpy(y, &half, sizeof half / 2);
      return y + L / 2;
   }
};

// The rows: per plane and, in 3-D, per leading output coordinate; the input's distance between them.
template <bool Max, typename V, size_t Taps>
inline void pool_pairs(const float *x, float *y, size_t planes, const PoolShape &s, const PoolPairs<Max, V, Taps> &p)
{
   const size_t last = s.rank - 1, vectors = s.in[last] / p.L;
   const PoolLineGrid lines(s);
   const size_t lead = last == 2 ? s.out[0] : 1, lead_step = last == 2 ? 2 * lines.stride[0] : 0;
   const size_t row_lines = last ? s.out[last - 1] : planes, pitch = last ? 2 * lines.stride[last - 1] : lines.plane;
   for (size_t q = 0; q < (last ? planes : 1); ++q)
      for (size_t o = 0; o < lead; ++o)
         y = p.row(y, x + q * lines.plane + o * lead_step, row_lines, pitch, vectors);
}

template <bool Max, typename V>
inline void pool_pairs(const float *x, float *y, size_t planes, const PoolShape &s)
{
   const size_t last = s.rank - 1;
   const PoolLineGrid lines(s);
   size_t taps[1 << (kPoolPairsRank - 1)] = {};
   for (size_t t = 0; t < (size_t(1) << last); ++t) // the window's input lines, row-major, from its first
      for (size_t d = 0; d < last; ++d)
         taps[t] += ((t >> (last - 1 - d)) & 1) * lines.stride[d];
   const float scale = 1.0f / float(size_t(1) << s.rank);
   switch (last) {
   case 0: return pool_pairs(x, y, planes, s, PoolPairs<Max, V, 1>{taps, scale});
   case 1: return pool_pairs(x, y, planes, s, PoolPairs<Max, V, 2>{taps, scale});
   default: return pool_pairs(x, y, planes, s, PoolPairs<Max, V, 4>{taps, scale});
   }
}

// Whether one unpadded window covers each whole plane (GlobalMaxPool, GlobalAveragePool, a pool sized so).
inline bool pool_global_fits(const PoolShape &s)
{
   for (size_t d = 0; d < s.rank; ++d)
      if (s.out[d] != 1 || s.kernel[d] != s.in[d] || s.dilations[d] != 1 || s.pads_begin[d] || s.pads_end[d])
         return false;
   return true;
}

constexpr size_t kPoolGlobalLanes = 16; // partial results per plane: two AVX registers of floats, one AVX-512

// Each plane (`size` values) reduced along its contiguous values into kPoolGlobalLanes partial results that the
// compiler keeps in vector registers, then those and the last values.  Walked as lines, such a plane was lines
// of one output each (CaloCNN2d at batch 32, 1024 planes of 8 x 8: 82 us, 5x onnxruntime's time).
template <typename T, bool Max>
inline void pool_global(const T *x, T *y, size_t planes, size_t size)
{
   constexpr size_t L = kPoolGlobalLanes;
   for (size_t p = 0; p < planes; ++p) {
      const T *v = x + p * size;
      T part[L];
      detail::fill(part, part + L, kPoolIdentity<T, Max>); // pool_step's rule for the maximum, lane by lane
      size_t i = 0;
      for (; i + L <= size; i += L)
#pragma GCC unroll 1
         for (size_t j = 0; j < L; ++j) // kept rolled for the vectorizer (see act_vector)
            part[j] = pool_step<T, Max>(part[j], v[i + j], false);
      T acc = part[0];
      for (size_t j = 1; j < L; ++j)
         acc = pool_step<T, Max>(acc, part[j], false);
      for (; i < size; ++i)
         acc = pool_step<T, Max>(acc, v[i], false);
      y[p] = Max ? acc : acc / static_cast<T>(size);
   }
}

// pool_global where a window covers each plane; pool_lines with the last stride as a constant where it is 1 or 2,
// or pool_pairs where it fits (in 8-float vectors on AVX-512 where lines are 8, 24, ... floats: 0.4x pool_lines'
// time on 64 x 8 x 8).
template <typename T, bool Max>
inline void pool_lines(const T *x, T *y, size_t planes, const PoolShape &s, bool count_include_pad, T *work)
{
   if (pool_global_fits(s)) {
      size_t size = 1;
      for (size_t d = 0; d < s.rank; ++d)
         size *= s.in[d];
      return pool_global<T, Max>(x, y, planes, size);
   }
   if constexpr (std::is_same_v<T, float>) {
      if (pool_pairs_fit(s, kVFloatLanes))
         return pool_pairs<Max, vfloat>(x, y, planes, s);
      if constexpr (kVFloatLanes > 8) // never built without AVX (GCC's -Wpsabi: 8-float vectors by value)
         if (pool_pairs_fit(s, 8))
            return pool_pairs<Max, float8>(x, y, planes, s);
   }
   switch (s.strides[s.rank - 1]) {
   case 1: pool_lines<T, Max, 1>(x, y, planes, s, count_include_pad, work); break;
   case 2: pool_lines<T, Max, 2>(x, y, planes, s, count_include_pad, work); break;
   default: pool_lines<T, Max, 0>(x, y, planes, s, count_include_pad, work);
   }
}

// Maximum of the taps inside the input (padding never wins); the first
// maximum in row-major order gives the index, as onnxruntime does.
template <typename T>
struct MaxPoolReducer {
   T *y;
   int64_t *indices;   // nullptr when the Indices output is not wanted
   bool column_major;  // storage_order = 1
   T best{};
   size_t arg = 0;

   MaxPoolReducer(T *y_, int64_t *indices_, bool column_major_) : y(y_), indices(indices_), column_major(column_major_) {}

   void begin()
   {
      best = std::numeric_limits<T>::lowest();
      arg = 0;
   }
   void add(T v, size_t row_major, size_t col_major)
   {
      if (v > best) {
         best = v;
         arg = column_major ? col_major : row_major;
      }
   }
   void pad(size_t) {}
   void end(size_t i)
   {
      y[i] = best;
      if (indices)
         indices[i] = static_cast<int64_t>(arg);
   }
};

// Mean of the taps; padding taps count in the divisor when count_include_pad.
template <typename T>
struct AveragePoolReducer {
   T *y;
   bool count_include_pad;
   T sum{};
   size_t count = 0, padding = 0;

   AveragePoolReducer(T *y_, bool count_include_pad_) : y(y_), count_include_pad(count_include_pad_) {}

   void begin()
   {
      sum = T(0);
      count = padding = 0;
   }
   void add(T v, size_t, size_t)
   {
      sum += v;
      ++count;
   }
   void pad(size_t n) { padding += n; }
   void end(size_t i)
   {
      const size_t n = count_include_pad ? count + padding : count;
      y[i] = n ? static_cast<T>(sum / static_cast<T>(n)) : T(0);
   }
};

// p-norm of the taps (padding adds zeros, so it changes nothing).
template <typename T>
struct LpPoolReducer {
   T *y;
   T p;
   T sum{};

   LpPoolReducer(T *y_, T p_) : y(y_), p(p_) {}

   void begin() { sum = T(0); }
   void add(T v, size_t, size_t) { sum += p == T(1) ? std::abs(v) : p == T(2) ? v * v : std::pow(std::abs(v), p); }
   void pad(size_t) {}
   void end(size_t i) { y[i] = p == T(1) ? sum : static_cast<T>(p == T(2) ? std::sqrt(sum) : std::pow(sum, T(1) / p)); }
};
