// Selections whose output size depends on the values (NonZero).

// Number of non-zero elements (NaN counts as non-zero, as x != 0 says).
template <typename T>
inline size_t count_nonzero(const T *x, size_t n)
{
   size_t count = 0;
   for (size_t i = 0; i < n; ++i)
      count += x[i] != T(0);
   return count;
}

// Coordinates of the non-zero elements in row-major order: y is (rank, count).
template <typename T>
inline void nonzero(const T *x, const size_t *shape, size_t rank, size_t n, size_t count, int64_t *y)
{
   size_t j = 0;
   for (size_t i = 0; i < n; ++i) {
      if (x[i] == T(0))
         continue;
      for (size_t d = rank, rest = i; d-- > 0; rest /= shape[d])
         y[d * count + j] = static_cast<int64_t>(rest % shape[d]);
      ++j;
   }
}
