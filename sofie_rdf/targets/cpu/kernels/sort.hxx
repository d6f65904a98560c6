// Selection along an axis (TopK).  Elements are ranked with NaN above every
// number (so the order is a strict weak ordering whatever the input holds) and
// ties broken by the lower index first, as ONNX specifies.

template <typename T>
inline bool rank_less(T a, T b)
{
   if constexpr (!std::numeric_limits<T>::is_integer)
      return std::isnan(b) ? !std::isnan(a) : a < b;
   else
      return a < b;
}

// The k largest (or smallest) of each line of n elements of x viewed as
// (outer, n, inner), in order, with their indices; `order` is scratch for n indices.
template <typename T>
inline void topk(const T *x, T *values, int64_t *indices, size_t outer, size_t n, size_t inner, size_t k,
                 bool largest, int64_t *order)
{
   for (size_t o = 0; o < outer; ++o) {
      for (size_t j = 0; j < inner; ++j) {
         const T *line = x + o * n * inner + j;
         for (size_t i = 0; i < n; ++i)
            order[i] = static_cast<int64_t>(i);
         auto before = [&](int64_t a, int64_t b) {
            const T va = line[static_cast<size_t>(a) * inner], vb = line[static_cast<size_t>(b) * inner];
            if (largest ? rank_less(vb, va) : rank_less(va, vb))
               return true;
            return !rank_less(va, vb) && !rank_less(vb, va) && a < b;
         };
         std::partial_sort(order, order + k, order + n, before);
         for (size_t i = 0; i < k; ++i) {
            const size_t at = (o * k + i) * inner + j;
            if (values)
               values[at] = line[static_cast<size_t>(order[i]) * inner];
            if (indices)
               indices[at] = order[i];
         }
      }
   }
}

// A K read at run time, checked against the axis it selects from.
inline size_t checked_k(int64_t k, size_t n)
{
   if (k < 0 || static_cast<size_t>(k) > n)
      throw std::invalid_argument("sofie-rdf: TopK K = " + std::to_string(k) + " is outside [0, " +
                                  std::to_string(n) + "]");
   return static_cast<size_t>(k);
}
