// Softmax / LogSoftmax over the middle index of an (outer, n, inner) view, subtracting the maximum first so
// large logits do not overflow.  The exponentials are fastmath's (e^t for t <= 0, vectorized; results below
// 1e-38 are 0, so masked logits of -inf weigh exactly nothing), computed in float for float and the 16-bit
// types, in double for double.  Maxima and sums are kept per vector lane (partial values) and combined at
// the end: such loops vectorize, where the compiler may not reorder a reduction itself.
// x and y may be the same array.

constexpr size_t kSoftmaxLanes = 16; // a 512-bit vector of floats

template <typename T>
using softmax_wide_t = std::conditional_t<std::is_same<T, double>::value, double, float>;

// The largest of n contiguous values (NaN never wins).
template <typename W, typename T>
inline W softmax_max(const T *x, size_t n)
{
   W vmax = -std::numeric_limits<W>::infinity();
   for (size_t i = 0; i < n; ++i)
      vmax = detail::max_of(vmax, static_cast<W>(x[i]));
   return vmax;
}

// float: two vectors of partial maxima (the loop above compiles to one compare per value), and for the values
// past the last pair one vector ending at the row's end: a maximum may see a value twice.  Scalar tails cost
// more than the vectors on rows of a few dozen values (50 particles: 18 of 50 values one by one).
template <>
inline float softmax_max<float, float>(const float *x, size_t n)
{
   constexpr size_t L = 2 * kVFloatLanes;
   if (n < kVFloatLanes) {
      float m = -std::numeric_limits<float>::infinity();
      for (size_t i = 0; i < n; ++i)
         m = detail::max_of(m, x[i]);
      return m;
   }
   const size_t full = n - n % L;
   vfloat a = vsplat(-std::numeric_limits<float>::infinity()), b = a;
   for (size_t i = 0; i < full; i += L) {
      a = vmax(vload(x + i), a);
      b = vmax(vload(x + i + kVFloatLanes), b);
   }
   if (full < n) {
      a = vmax(vload(x + n - kVFloatLanes), a);
      if (n - full > kVFloatLanes)
         b = vmax(vload(x + full), b);
   }
   return hmax(vmax(a, b));
}

// The sum of e^(x - shift) over n contiguous values; written to y too unless y is null.
template <typename W, typename T>
inline W softmax_exp_sum(const T *x, T *y, size_t n, W shift)
{
   constexpr size_t L = kSoftmaxLanes;
   const size_t full = n - n % L;
   W lane[L] = {};
   W sum = W(0);
   if (y) {
      for (size_t i = 0; i < full; i += L)
         for (size_t l = 0; l < L; ++l) {
            const W e = fast_exp_nonpositive(static_cast<W>(x[i + l]) - shift);
            lane[l] += e;
            y[i + l] = static_cast<T>(e);
         }
      for (size_t i = full; i < n; ++i) {
         const W e = fast_exp_nonpositive(static_cast<W>(x[i]) - shift);
         sum += e;
         y[i] = static_cast<T>(e);
      }
   } else {
      for (size_t i = 0; i < full; i += L)
         for (size_t l = 0; l < L; ++l)
            lane[l] += fast_exp_nonpositive(static_cast<W>(x[i + l]) - shift);
      for (size_t i = full; i < n; ++i)
         sum += fast_exp_nonpositive(static_cast<W>(x[i]) - shift);
   }
   for (size_t width = L / 2; width > 0; width /= 2) // pairwise (see lanes_tree in simd.hxx)
      for (size_t l = 0; l < width; ++l)
         lane[l] += lane[l + width];
   return sum + lane[0];
}

// float: the sum in a vector register.  In the loop above GCC keeps `lane` on the stack, each add waiting for
// the store before it (attention rows of 128 values took 1.25x onnxruntime's time).  Values past the last
// whole vector are one vector ending at the row's end, computed before anything is written (x may be y) and
// counted in the sum by the lanes not seen before (kSoftmaxTailMask); written last, its other lanes rewrite the
// values already there.
alignas(64) constexpr float kSoftmaxTailMask[2 * kSoftmaxLanes] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
                                                                  1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1};

// fast_exp_nonpositive of every lane (simd.hxx's vexp_nonpositive): a loop over the lanes calling the scalar
// function was vectorized for AVX-512, but for AVX2 GCC computed the lanes one by one and passed them through
// the stack (attention's softmax over 200 keys: 2.5x the time).
inline vfloat softmax_exp_vector(const float *x, float shift) { return vexp_nonpositive(vload(x) - shift); }

template <>
inline float softmax_exp_sum<float, float>(const float *x, float *y, size_t n, float shift)
{
   constexpr size_t L = kVFloatLanes;
   if (n < L) {
      float sum = 0.0f;
      for (size_t i = 0; i < n; ++i) {
         const float e = fast_exp_nonpositive(x[i] - shift);
         sum += e;
         if (y)
            y[i] = e;
      }
      return sum;
   }
   const size_t full = n - n % L;
   const size_t rest = n - full; // values past the last whole vector: the tail vector's last `rest` lanes
   const vfloat tail = rest ? softmax_exp_vector(x + n - L, shift) : vfloat{};
   vfloat acc = rest ? tail * vload(kSoftmaxTailMask + kSoftmaxLanes - L + rest) : vfloat{};
   for (size_t i = 0; i < full; i += L) {
      const vfloat v = softmax_exp_vector(x + i, shift);
      acc += v;
      if (y)
         vstore(y + i, v);
   }
   if (y && rest)
      vstore(y + n - L, tail);
   return hsum(acc);
}

// y[i] *= inv for n >= kVFloatLanes values, the last ones as one vector ending at the row's end (scaled before
// the loop: its lanes that the loop also scales are then scaled once).
inline void softmax_scale(float *y, size_t n, float inv)
{
   constexpr size_t L = kVFloatLanes;
   const size_t full = n - n % L;
   const vfloat tail = full < n ? vload(y + n - L) * inv : vfloat{};
   for (size_t i = 0; i < full; i += L)
      vstore(y + i, vload(y + i) * inv);
   if (full < n)
      vstore(y + n - L, tail);
}

// Softmax of n contiguous values (inner == 1: the last axis, attention's rows).
template <typename T>
inline void softmax_row(const T *x, T *y, size_t n, bool logarithm)
{
   using W = softmax_wide_t<T>;
   const W vmax = softmax_max<W>(x, n);
   if (logarithm) {
      const W shift = vmax + std::log(softmax_exp_sum<W>(x, static_cast<T *>(nullptr), n, vmax));
      for (size_t i = 0; i < n; ++i)
         y[i] = static_cast<T>(static_cast<W>(x[i]) - shift);
   } else {
      const W inv = W(1) / softmax_exp_sum<W>(x, y, n, vmax);
      if constexpr (std::is_same<T, float>::value) {
         if (n >= kVFloatLanes)
            return softmax_scale(y, n, inv);
      }
      for (size_t i = 0; i < n; ++i)
         y[i] = static_cast<T>(static_cast<W>(y[i]) * inv);
   }
}

// Softmax over a strided axis: up to kSoftmaxLanes neighbouring columns of the inner index at once, each
// step of the loops along n reading contiguous values.
template <typename T>
inline void softmax_columns(const T *x, T *y, size_t n, size_t inner, size_t cols, bool logarithm)
{
   using W = softmax_wide_t<T>;
   W vmax[kSoftmaxLanes], sum[kSoftmaxLanes];
   for (size_t j = 0; j < cols; ++j) {
      vmax[j] = -std::numeric_limits<W>::infinity();
      sum[j] = W(0);
   }
   for (size_t i = 0; i < n; ++i)
      for (size_t j = 0; j < cols; ++j) {
         const W v = static_cast<W>(x[i * inner + j]);
         vmax[j] = v > vmax[j] ? v : vmax[j];
      }
   for (size_t i = 0; i < n; ++i)
      for (size_t j = 0; j < cols; ++j) {
         const W e = fast_exp_nonpositive(static_cast<W>(x[i * inner + j]) - vmax[j]);
         sum[j] += e;
         if (!logarithm)
            y[i * inner + j] = static_cast<T>(e);
      }
   for (size_t j = 0; j < cols; ++j) // reuse: the shift (log) or the reciprocal of the sum
      sum[j] = logarithm ? vmax[j] + std::log(sum[j]) : W(1) / sum[j];
   for (size_t i = 0; i < n; ++i)
      for (size_t j = 0; j < cols; ++j) {
         const W v = static_cast<W>(logarithm ? x[i * inner + j] : y[i * inner + j]);
         y[i * inner + j] = static_cast<T>(logarithm ? v - sum[j] : v * sum[j]);
      }
}

// The softmax of R rows of n floats (rows n apart; y may be x), but for its division: y keeps e^(x - max) and inv[r]
// receives 1 / (row r's sum).  The rows' maxima are taken first, all of them, then their exponentials: independent
// work for the core to overlap, where row by row each step waited on its row's reduction, its division and the
// broadcast of the result (a third of the attention's time at 128 keys).
template <size_t R>
inline void softmax_exp_rows(const float *x, float *y, size_t n, float *inv)
{
   float shift[R];
#pragma GCC unroll 16
   for (size_t r = 0; r < R; ++r)
      shift[r] = softmax_max<float, float>(x + r * n, n);
#pragma GCC unroll 16
   for (size_t r = 0; r < R; ++r)
      inv[r] = 1.0f / softmax_exp_sum<float, float>(x + r * n, y + r * n, n, shift[r]);
}

// Rows of the last axis taken kSoftmaxRows at a time (softmax_exp_rows), then scaled: over 8 x 128 rows of 128,
// 0.86x the time of a row at a time built for AVX2, 0.87x for AVX-512 (Xeon); rows of 50 0.88x to 0.92x.
constexpr size_t kSoftmaxRows = 4;

template <typename T>
inline void softmax(const T *x, T *y, size_t outer, size_t n, size_t inner, bool logarithm)
{
   size_t grouped = 0; // rows taken kSoftmaxRows at a time
   if constexpr (std::is_same<T, float>::value) {
      if (inner == 1 && !logarithm && n >= kVFloatLanes)
         grouped = outer - outer % kSoftmaxRows;
      for (size_t o = 0; o < grouped; o += kSoftmaxRows) {
         float inv[kSoftmaxRows];
         softmax_exp_rows<kSoftmaxRows>(x + o * n, y + o * n, n, inv);
         for (size_t r = 0; r < kSoftmaxRows; ++r)
            softmax_scale(y + (o + r) * n, n, inv[r]);
      }
   }
   for (size_t o = grouped; o < outer; ++o) {
      const T *xo = x + o * n * inner;
      T *yo = y + o * n * inner;
      if (inner == 1) {
         softmax_row(xo, yo, n, logarithm);
         continue;
      }
      for (size_t j = 0; j < inner; j += kSoftmaxLanes)
         softmax_columns(xo + j, yo + j, n, inner, detail::min_of(kSoftmaxLanes, inner - j), logarithm);
   }
}
