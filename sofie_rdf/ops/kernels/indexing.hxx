// Gathers and scatters by run-time indices.  Every index is checked against the
// axis it addresses (negative ones count from the end, as ONNX allows): a bad
// index throws std::out_of_range instead of reading or writing out of bounds.

// Index `i` of an axis of size `n`, wrapped and checked.
template <typename I>
inline size_t checked_index(I i, size_t n, const char *op)
{
   const int64_t k = static_cast<int64_t>(i) < 0 ? static_cast<int64_t>(i) + static_cast<int64_t>(n)
                                                  : static_cast<int64_t>(i);
   if (k < 0 || k >= static_cast<int64_t>(n))
      throw std::out_of_range(std::string("sofie-rdf: ") + op + " index " + std::to_string(static_cast<int64_t>(i)) +
                              " is out of range for an axis of size " + std::to_string(n));
   return static_cast<size_t>(k);
}

// Gather along an axis: x viewed as (outer, n, inner), y as (outer, count, inner).
template <typename T, typename I>
inline void gather(const T *x, const I *indices, T *y, size_t outer, size_t n, size_t count, size_t inner)
{
   for (size_t o = 0; o < outer; ++o)
      for (size_t k = 0; k < count; ++k)
         std::copy_n(x + (o * n + checked_index(indices[k], n, "Gather")) * inner, inner, y + (o * count + k) * inner);
}
