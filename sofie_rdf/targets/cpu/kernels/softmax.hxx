// Softmax / LogSoftmax over the middle index of an (outer, n, inner) view,
// subtracting the maximum first so large logits do not overflow.
template <typename T>
inline void softmax(const T *x, T *y, size_t outer, size_t n, size_t inner, bool logarithm)
{
   for (size_t o = 0; o < outer; ++o) {
      for (size_t j = 0; j < inner; ++j) {
         const T *xo = x + o * n * inner + j;
         T *yo = y + o * n * inner + j;
         T vmax = -std::numeric_limits<T>::infinity();
         for (size_t i = 0; i < n; ++i)
            vmax = std::max(vmax, xo[i * inner]);
         T sum = T(0);
         for (size_t i = 0; i < n; ++i) {
            const T e = std::exp(xo[i * inner] - vmax);
            sum += e;
            if (!logarithm)
               yo[i * inner] = e;
         }
         if (logarithm) {
            const T shift = vmax + std::log(sum);
            for (size_t i = 0; i < n; ++i)
               yo[i * inner] = xo[i * inner] - shift;
         } else {
            const T inv = T(1) / sum;
            for (size_t i = 0; i < n; ++i)
               yo[i * inner] *= inv;
         }
      }
   }
}
