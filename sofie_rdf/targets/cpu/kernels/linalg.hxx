// Determinants of `batch` square n x n matrices: LU decomposition with partial pivoting in double, on a
// copy in `work` (n * n doubles).  A 0 x 0 matrix has determinant 1.
template <typename T>
inline void det(const T *x, T *y, size_t batch, size_t n, double *work)
{
   for (size_t b = 0; b < batch; ++b) {
      const T *a = x + b * n * n;
      for (size_t k = 0; k < n * n; ++k)
         work[k] = static_cast<double>(a[k]);
      double result = 1.0;
      for (size_t c = 0; c < n; ++c) {
         size_t pivot = c;
         for (size_t r = c + 1; r < n; ++r)
            if (std::abs(work[r * n + c]) > std::abs(work[pivot * n + c]))
               pivot = r;
         if (pivot != c) {
            std::swap_ranges(work + c * n, work + (c + 1) * n, work + pivot * n);
            result = -result;
         }
         const double d = work[c * n + c];
         result *= d;
         if (d == 0.0)
            break;
         for (size_t r = c + 1; r < n; ++r) {
            const double f = work[r * n + c] / d;
            for (size_t k = c + 1; k < n; ++k)
               work[r * n + k] -= f * work[c * n + k];
         }
      }
      y[b] = static_cast<T>(result);
   }
}
