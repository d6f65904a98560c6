// Reductions (ReduceSum, ReduceMax, ..., ReduceLogSumExp), ArgMax/ArgMin, CumSum and CumProd.
//
// A reduction is three lambdas the emitter writes: an initial accumulator,
// `combine(acc, x)` and `finish(acc, n)` (n = elements reduced).  Sums and
// products accumulate in double for every element type: accurate for floats,
// and for integers the results onnxruntime gives, which saturate at the
// type's limits instead of wrapping (see from_real).

// Lowest / highest value of T: the identities of max and min (-inf / +inf for floats).
template <typename T>
inline T lowest()
{
   return std::numeric_limits<T>::has_infinity ? -std::numeric_limits<T>::infinity() : std::numeric_limits<T>::lowest();
}

template <typename T>
inline T highest()
{
   return std::numeric_limits<T>::has_infinity ? std::numeric_limits<T>::infinity() : std::numeric_limits<T>::max();
}

// Max and min that propagate NaN (as numpy and the ONNX reference do) instead of depending on its position.
template <typename T>
inline T max_of(T a, T x)
{
   if constexpr (!std::numeric_limits<T>::is_integer)
      if (detail::is_nan(x))
         return x;
   return x > a ? x : a;
}

template <typename T>
inline T min_of(T a, T x)
{
   if constexpr (!std::numeric_limits<T>::is_integer)
      if (detail::is_nan(x))
         return x;
   return x < a ? x : a;
}

// A real result in the element type.  Integers take the truncated value; a value no integer can hold
// saturates, nan and -inf (the log of an empty sum) giving the lowest one, as onnxruntime's results show.
template <typename T>
inline T from_real(double v)
{
   if constexpr (std::is_integral_v<T>) {
      if (v >= static_cast<double>(std::numeric_limits<T>::max()) + 1.0)
         return std::numeric_limits<T>::max();
      if (!(v >= static_cast<double>(std::numeric_limits<T>::lowest())))
         return std::numeric_limits<T>::lowest();
   }
   return static_cast<T>(v);
}

// log(sum(exp(x))) in one pass: the running maximum is factored out (rescaling the sum when it grows),
// so large inputs do not overflow exp; infinite maxima never form inf - inf.  For integer T the terms are
// added as onnxruntime adds them, truncated to T: each value below the maximum contributes exp(x - max) < 1,
// that is 0, and the sum counts the maxima.
template <typename T>
struct LogSumExp {
   double max = -std::numeric_limits<double>::infinity();
   double sum = 0.0;

   LogSumExp add(double x) const
   {
      constexpr bool whole_terms = std::is_integral_v<T>;
      if (x > max)
         return {x, whole_terms ? 1.0 : sum * std::exp(max - x) + 1.0};
      if (x == max)
         return {max, sum + 1.0};
      return {max, whole_terms ? sum : sum + std::exp(x - max)};
   }

   double result() const { return max + std::log(sum); }
};

// f(x, y, m) for every block of up to Block inner positions of an (outer, n, inner) view and its (outer, inner)
// result, x and y at the block's first position: the middle-axis reductions' walk, which reads the input in
// order whatever inner is.
template <size_t Block, typename T, typename F>
inline void column_blocks(const T *x, T *y, size_t outer, size_t n, size_t inner, F f)
{
   for (size_t o = 0; o < outer; ++o)
      for (size_t j0 = 0; j0 < inner; j0 += Block)
         f(x + o * n * inner + j0, y + o * inner + j0, detail::min_of(Block, inner - j0));
}

// Reduction of the middle index of an (outer, n, inner) view: y is (outer, inner).
template <typename T, typename A, typename Combine, typename Finish>
inline void reduce(const T *x, T *y, size_t outer, size_t n, size_t inner, A init, Combine combine, Finish finish)
{
   constexpr size_t block = 64;
   A acc[block];
   column_blocks<block>(x, y, outer, n, inner, [&](const T *xb, T *yb, size_t m) {
      detail::fill_n(acc, m, init);
      for (size_t i = 0; i < n; ++i)
         for (size_t j = 0; j < m; ++j)
            acc[j] = combine(acc[j], xb[i * inner + j]);
      for (size_t j = 0; j < m; ++j)
         yb[j] = finish(acc[j], n);
   });
}

// Sums of floating terms (ReduceSum, ReduceMean, ReduceSumSquare, ReduceL1, ReduceL2, ReduceLogSum) of an
// (outer, n, inner) view: each run of up to kSumChunk terms is added in the element type and the runs' sums in
// double.  The error stays that of a sum of kSumChunk terms (onnxruntime adds all n in float) at the speed of
// float additions: a double for every term converts each one, and took 1.3x to 27x this time (2x: Deep Sets' sum
// over 64 particles of 64 features; 27x: means over rows of 64, one dependent double addition per term).  Floats
// go in vectors (simd.hxx) held in registers across the run: term is generic, applied to a vector or a value.
// inner == 1 (the last axis reduced: a mean over a row, a global pool) sums in the vectors' lanes, where one
// accumulator waited on each addition.
constexpr size_t kSumChunk = 64;
constexpr size_t kSumVectors = 4;

// sums[j] = the sum of term(x[i * inner + j]) over rows i < rows, for j < Vectors * kVFloatLanes, in registers;
// count (<= Vectors) vectors where fewer columns remain.
template <size_t Vectors, typename Term>
inline void sum_rows_vectors(size_t count, const float *x, size_t inner, size_t rows, Term term, float *sums)
{
   if constexpr (Vectors > 1) {
      if (count < Vectors) {
         sum_rows_vectors<Vectors - 1>(count, x, inner, rows, term, sums);
         return;
      }
   }
   vfloat p[Vectors] = {};
   for (size_t i = 0; i < rows; ++i)
      for (size_t v = 0; v < Vectors; ++v)
         p[v] += term(vload(x + i * inner + v * kVFloatLanes));
   for (size_t v = 0; v < Vectors; ++v)
      vstore(sums + v * kVFloatLanes, p[v]);
}

// sums[j] = the sum of term(x[i * inner + j]) over rows i < rows, for j < m (m <= kSumVectors * kVFloatLanes).
template <typename T, typename Term>
inline void sum_rows(const T *x, size_t inner, size_t rows, size_t m, Term term, T *sums)
{
   size_t j = 0;
   if constexpr (std::is_same_v<T, float>) {
      if (m >= kVFloatLanes) {
         sum_rows_vectors<kSumVectors>(m / kVFloatLanes, x, inner, rows, term, sums);
         j = m - m % kVFloatLanes;
      }
   }
   if (j == m)
      return;
   detail::fill(sums + j, sums + m, T(0));
   for (size_t i = 0; i < rows; ++i)
      for (size_t k = j; k < m; ++k)
         sums[k] += term(x[i * inner + k]);
}

// The sum of term(x[i]) for i < n.
template <typename T, typename Term>
inline double sum_contiguous(const T *x, size_t n, Term term)
{
   double total = 0.0;
   size_t i = 0;
   if constexpr (std::is_same_v<T, float>) {
      constexpr size_t step = kSumVectors * kVFloatLanes;
      for (; i + step <= n;) {
         vfloat p[kSumVectors] = {};
         for (const size_t end = detail::min_of(n - n % step, i + kSumChunk * step); i < end; i += step)
            for (size_t v = 0; v < kSumVectors; ++v)
               p[v] += term(vload(x + i + v * kVFloatLanes));
         for (size_t v = 1; v < kSumVectors; ++v)
            p[0] += p[v];
         total += static_cast<double>(lanes_tree(p[0], [](auto a, auto b) { return a + b; }));
      }
   }
   for (; i < n;) {
      T part = 0;
      for (const size_t end = detail::min_of(n, i + kSumChunk); i < end; ++i)
         part += term(x[i]);
      total += static_cast<double>(part);
   }
   return total;
}

template <typename T, typename Term, typename Finish>
inline void reduce_sum(const T *x, T *y, size_t outer, size_t n, size_t inner, Term term, Finish finish)
{
   if (inner == 1) {
      for (size_t o = 0; o < outer; ++o)
         y[o] = finish(sum_contiguous(x + o * n, n, term), n);
      return;
   }
   constexpr size_t block = kSumVectors * kVFloatLanes;
   double acc[block];
   T part[block];
   column_blocks<block>(x, y, outer, n, inner, [&](const T *xb, T *yb, size_t m) {
      detail::fill_n(acc, m, 0.0);
      for (size_t i0 = 0; i0 < n; i0 += kSumChunk) {
         sum_rows(xb + i0 * inner, inner, detail::min_of(kSumChunk, n - i0), m, term, part);
         for (size_t j = 0; j < m; ++j)
            acc[j] += static_cast<double>(part[j]);
      }
      for (size_t j = 0; j < m; ++j)
         yb[j] = finish(acc[j], n);
   });
}

// Calls f(base + sum(i_k * strides[k])) for every index of `shape`, in row-major order.
template <typename F>
inline void for_each_offset(const size_t *shape, const std::ptrdiff_t *strides, size_t rank, std::ptrdiff_t base, F &f)
{
   if (rank == 0) {
      f(base);
      return;
   }
   for (size_t i = 0; i < shape[0]; ++i)
      for_each_offset(shape + 1, strides + 1, rank - 1, base + static_cast<std::ptrdiff_t>(i) * strides[0], f);
}

// Reduction over any axis set: y (contiguous, `shape`) walks x with `strides`; each output folds the
// block `rshape` read with `rstrides`.
template <typename T, typename A, typename Combine, typename Finish>
inline void reduce_strided(const T *x, T *y, const size_t *shape, const std::ptrdiff_t *strides, size_t rank,
                           const size_t *rshape, const std::ptrdiff_t *rstrides, size_t rrank, A init, Combine combine,
                           Finish finish)
{
   size_t n = 1;
   for (size_t k = 0; k < rrank; ++k)
      n *= rshape[k];
   auto output = [&](std::ptrdiff_t o) {
      A acc = init;
      auto add = [&](std::ptrdiff_t k) { acc = combine(acc, x[k]); };
      for_each_offset(rshape, rstrides, rrank, o, add);
      *y++ = finish(acc, n);
   };
   for_each_offset(shape, strides, rank, 0, output);
}

// Reduction over the dims a mask names (mask[d] true: dim d is folded), for axes the code reads while it runs:
// the dims of x (rank <= MaxRank) split into kept and reduced ones with their strides, which reduce_strided walks.
template <size_t MaxRank, typename T, typename A, typename Combine, typename Finish>
inline void reduce_masked(const T *x, T *y, const size_t *shape, size_t rank, const bool *mask, A init, Combine combine,
                          Finish finish)
{
   size_t kept[MaxRank], reduced[MaxRank];
   std::ptrdiff_t strides[MaxRank], kept_strides[MaxRank], reduced_strides[MaxRank];
   std::ptrdiff_t stride = 1;
   for (size_t d = rank; d-- > 0;) {
      strides[d] = stride;
      stride *= static_cast<std::ptrdiff_t>(shape[d]);
   }
   size_t nk = 0, nr = 0;
   for (size_t d = 0; d < rank; ++d) {
      if (mask[d]) {
         reduced[nr] = shape[d];
         reduced_strides[nr++] = strides[d];
      } else {
         kept[nk] = shape[d];
         kept_strides[nk++] = strides[d];
      }
   }
   reduce_strided(x, y, kept, kept_strides, nk, reduced, reduced_strides, nr, init, combine, finish);
}

// The output shape of a reduction over the dims a mask names: 1 in their place with keepdims, else left out.
inline void reduced_shape(const size_t *shape, size_t rank, const bool *mask, bool keepdims, size_t *out)
{
   for (size_t d = 0, j = 0; d < rank; ++d)
      if (keepdims || !mask[d])
         out[j++] = mask[d] ? 1 : shape[d];
}

// ArgMax / ArgMin along the middle index of an (outer, n, inner) view; ties go to the first index,
// or the last with `last`.  An empty axis has no answer, so it throws (as onnxruntime fails).
template <typename T>
inline void arg_reduce(const T *x, int64_t *y, size_t outer, size_t n, size_t inner, bool maximum, bool last)
{
   if (n == 0 && outer * inner != 0)
      throw std::invalid_argument("sofie-rdf: ArgMax/ArgMin over an empty axis");
   for (size_t o = 0; o < outer; ++o) {
      for (size_t j = 0; j < inner; ++j) {
         const T *xo = x + o * n * inner + j;
         size_t best = 0;
         for (size_t i = 1; i < n; ++i) {
            const T v = xo[i * inner], b = xo[best * inner];
            const bool better = maximum ? (last ? v >= b : v > b) : (last ? v <= b : v < b);
            if (better)
               best = i;
         }
         y[o * inner + j] = static_cast<int64_t>(best);
      }
   }
}

// Running fold (CumSum, CumProd) along the middle index of an (outer, n, inner) view, accumulated in A
// from `identity` with `combine`; `exclusive` leaves out the element itself, `reverse` runs from the end.
template <typename A, typename T, typename Combine>
inline void cumulate(const T *x, T *y, size_t outer, size_t n, size_t inner, bool exclusive, bool reverse, A identity,
                     Combine combine)
{
   constexpr size_t block = 64;
   A acc[block];
   for (size_t o = 0; o < outer; ++o) {
      for (size_t j0 = 0; j0 < inner; j0 += block) {
         const size_t m = detail::min_of(block, inner - j0);
         detail::fill_n(acc, m, identity);
         for (size_t step = 0; step < n; ++step) {
            const size_t i = reverse ? n - 1 - step : step;
            const size_t at = (o * n + i) * inner + j0;
            for (size_t j = 0; j < m; ++j) {
               const A before = acc[j];
               acc[j] = combine(acc[j], static_cast<A>(x[at + j]));
               y[at + j] = static_cast<T>(exclusive ? before : acc[j]);
            }
         }
      }
   }
}

// cumulate along an axis the code reads while it runs (checked in range): `shape` viewed around it.
template <typename A, typename T, typename Combine>
inline void cumulate_along(const T *x, T *y, const size_t *shape, size_t rank, size_t axis, bool exclusive, bool reverse,
                           A identity, Combine combine)
{
   size_t outer = 1, inner = 1;
   for (size_t d = 0; d < axis; ++d)
      outer *= shape[d];
   for (size_t d = axis + 1; d < rank; ++d)
      inner *= shape[d];
   cumulate<A>(x, y, outer, shape[axis], inner, exclusive, reverse, identity, combine);
}
