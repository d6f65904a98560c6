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

// Length of Range(start, limit, delta) with bounds read at run time (delta 0 refused).
template <typename T>
inline size_t range_count(T start, T limit, T delta)
{
   if (delta == T(0))
      throw std::invalid_argument("sofie-rdf: Range delta must not be 0");
   const double n = std::ceil((static_cast<double>(limit) - static_cast<double>(start)) / static_cast<double>(delta));
   if (!(n < 4294967296.0) && !std::isnan(n))
      throw std::length_error("sofie-rdf: Range of " + std::to_string(n) + " values is too large");
   return n > 0 ? static_cast<size_t>(n) : 0;
}

// A dim read from a shape tensor at run time (negative refused).
template <typename I>
inline size_t checked_dim(I value, const char *op)
{
   if (value < 0)
      throw std::invalid_argument(std::string("sofie-rdf: ") + op + " got a negative dim " +
                                  std::to_string(static_cast<int64_t>(value)));
   return static_cast<size_t>(value);
}
