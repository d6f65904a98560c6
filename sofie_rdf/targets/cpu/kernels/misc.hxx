// Shrink's conversion, Hardmax, LpNormalization, MeanVarianceNormalization and ReverseSequence.  Hardmax
// and LpNormalization read the input as an (outer, n, inner) view around their axis; MeanVarianceNormalization
// walks kept and normalised dims with stride arrays (for_each_offset, from reduce.hxx).

// A real value truncated to T; integers wrap modulo 2^bits (through int64_t / uint64_t) instead of the undefined
// behaviour of converting an out-of-range value directly, which is what onnxruntime's x86 builds give.
template <typename T, typename F>
inline T truncate_wrapping(F v)
{
   if constexpr (std::is_integral_v<T>) {
      if (v < 0)
         return static_cast<T>(static_cast<int64_t>(v));
      return static_cast<T>(static_cast<uint64_t>(v));
   }
   return static_cast<T>(v);
}

// One-hot of the first largest value along the middle index (NaN never wins, as in onnxruntime).
template <typename T>
inline void hardmax(const T *x, T *y, size_t outer, size_t n, size_t inner)
{
   detail::fill_n(y, outer * n * inner, T(0));
   for (size_t o = 0; o < outer; ++o) {
      for (size_t j = 0; j < inner && n > 0; ++j) {
         const size_t base = o * n * inner + j;
         size_t best = 0;
         for (size_t i = 1; i < n; ++i)
            if (x[base + i * inner] > x[base + best * inner] ||
                (detail::is_nan(x[base + best * inner]) && !detail::is_nan(x[base + i * inner])))
               best = i;
         y[base + best * inner] = T(1);
      }
   }
}

// x divided by its L1 (p = 1) or L2 (p = 2) norm along the middle index, accumulated in double; a zero
// vector stays zero (onnxruntime's result).
template <typename T>
inline void lp_normalize(const T *x, T *y, size_t outer, size_t n, size_t inner, int p)
{
   for (size_t o = 0; o < outer; ++o) {
      for (size_t j = 0; j < inner; ++j) {
         const size_t base = o * n * inner + j;
         double norm = 0.0;
         for (size_t i = 0; i < n; ++i) {
            const double v = static_cast<double>(x[base + i * inner]);
            norm += p == 1 ? std::abs(v) : v * v;
         }
         if (p == 2)
            norm = std::sqrt(norm);
         for (size_t i = 0; i < n; ++i) {
            const size_t at = base + i * inner;
            y[at] = norm == 0.0 ? T(0) : static_cast<T>(static_cast<double>(x[at]) / norm);
         }
      }
   }
}

// (x - mean) / (std + 1e-9) over the dims `rshape` (strides `rstrides`) for each position of the kept dims
// `shape` (strides `strides`), as the ONNX function body defines it; statistics are two-pass in double.
template <typename T>
inline void mean_variance_normalize(const T *x, T *y, const size_t *shape, const std::ptrdiff_t *strides, size_t rank,
                                    const size_t *rshape, const std::ptrdiff_t *rstrides, size_t rrank)
{
   size_t n = 1;
   for (size_t k = 0; k < rrank; ++k)
      n *= rshape[k];
   auto normalize = [&](std::ptrdiff_t o) {
      double sum = 0.0, squares = 0.0;
      auto add = [&](std::ptrdiff_t k) { sum += static_cast<double>(x[o + k]); };
      for_each_offset(rshape, rstrides, rrank, 0, add);
      const double mean = sum / static_cast<double>(n);
      auto add_square = [&](std::ptrdiff_t k) {
         const double d = static_cast<double>(x[o + k]) - mean;
         squares += d * d;
      };
      for_each_offset(rshape, rstrides, rrank, 0, add_square);
      const double scale = 1.0 / (std::sqrt(squares / static_cast<double>(n)) + 1e-9);
      auto write = [&](std::ptrdiff_t k) { y[o + k] = static_cast<T>((static_cast<double>(x[o + k]) - mean) * scale); };
      for_each_offset(rshape, rstrides, rrank, 0, write);
   };
   for_each_offset(shape, strides, rank, 0, normalize);
}

// ReverseSequence: for batch b the first lens[b] time steps are reversed, the others copied.  Element
// (b, t) starts at b * b_stride + t * t_stride and holds `inner` values; lens are checked against [0, steps].
template <typename T>
inline void reverse_sequence(const T *x, const int64_t *lens, T *y, size_t batch, size_t steps, size_t inner,
                             size_t b_stride, size_t t_stride)
{
   for (size_t b = 0; b < batch; ++b) {
      const int64_t len = lens[b];
      if (len < 0 || static_cast<uint64_t>(len) > steps)
         throw std::out_of_range("ReverseSequence: sequence_lens[" + std::to_string(b) + "] = " + std::to_string(len) +
                                 " is outside [0, " + std::to_string(steps) + "]");
      const size_t n = static_cast<size_t>(len);
      for (size_t t = 0; t < steps; ++t) {
         const size_t from = t < n ? n - 1 - t : t;
         detail::copy_n(x + b * b_stride + from * t_stride, inner, y + b * b_stride + t * t_stride);
      }
   }
}
