// Local response normalization across channels: x is (outer, C, inner) and
// y = x / (bias + alpha / size * sum of x^2 over the channel window)^beta, the
// window running from c - floor((size - 1) / 2) to c + ceil((size - 1) / 2).

template <typename T>
inline void lrn(const T *x, T *y, size_t outer, size_t channels, size_t inner, size_t size, double alpha,
                double beta, double bias)
{
   const size_t before = (size - 1) / 2, after = size - 1 - before;
   for (size_t n = 0; n < outer; ++n) {
      const T *xn = x + n * channels * inner;
      T *yn = y + n * channels * inner;
      for (size_t c = 0; c < channels; ++c) {
         const size_t lo = c >= before ? c - before : 0, hi = c + after < channels ? c + after : channels - 1;
         for (size_t i = 0; i < inner; ++i) {
            double sum = 0;
            for (size_t k = lo; k <= hi; ++k) {
               const double v = static_cast<double>(xn[k * inner + i]);
               sum += v * v;
            }
            const double scale = std::pow(bias + alpha / static_cast<double>(size) * sum, beta);
            yn[c * inner + i] = static_cast<T>(static_cast<double>(xn[c * inner + i]) / scale);
         }
      }
   }
}
