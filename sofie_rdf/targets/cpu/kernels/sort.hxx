// Selection along an axis (TopK).  Elements are ranked with NaN above every
// number (so the order is a strict weak ordering whatever the input holds) and
// ties broken by the lower index first, as ONNX specifies.

template <typename T>
inline bool rank_less(T a, T b)
{
   if constexpr (!std::numeric_limits<T>::is_integer)
      return detail::is_nan(b) ? !detail::is_nan(a) : a < b;
   else
      return a < b;
}

// order[i] moved down the max-heap order[0, size) (under less) to where it belongs.
template <typename Less>
inline void sift_down(int64_t *order, size_t size, size_t i, Less &less)
{
   const int64_t v = order[i];
   for (size_t c = 2 * i + 1; c < size; i = c, c = 2 * i + 1) {
      if (c + 1 < size && less(order[c], order[c + 1]))
         ++c;
      if (!less(v, order[c]))
         break;
      order[i] = order[c];
   }
   order[i] = v;
}

// std::partial_sort(order, order + k, order + n, less), by a heap of the k first: under Cling every kernel
// function, lambdas too, is always_inline and compiled for its level's instructions (targets/cpu/isa.py), and
// std's algorithms, compiled for neither, may not call them.  less must be a strict total order (the kernels
// break ties by index), so the result is std's.
template <typename Less>
inline void partial_sort_indices(int64_t *order, size_t k, size_t n, Less less)
{
   if (k == 0)
      return;
   for (size_t i = k / 2; i-- > 0;)
      sift_down(order, k, i, less);
   for (size_t i = k; i < n; ++i)
      if (less(order[i], order[0])) {
         const int64_t out = order[0];
         order[0] = order[i];
         order[i] = out;
         sift_down(order, k, 0, less);
      }
   for (size_t end = k; end > 1; --end) {
      const int64_t top = order[0];
      order[0] = order[end - 1];
      order[end - 1] = top;
      sift_down(order, end - 1, 0, less);
   }
}

// Below this K a line's best are kept by insertion: each element is first compared with the K-th best so
// far, so most of a long line costs one comparison (k nearest neighbours: K ~ 16 of ~100 particles); above
// it a heap wins.
constexpr size_t kInsertionTopK = 32;

// The k best of one line (stride `inner`) into order[0, k), best first; ties keep the lower index first,
// since a later element only moves ahead of strictly worse ones.
template <typename T, typename Better>
inline void topk_by_insertion(const T *line, size_t n, size_t inner, size_t k, Better better, int64_t *order)
{
   size_t count = 0;
   for (size_t i = 0; i < n; ++i) {
      const T v = line[i * inner];
      if (count == k && (k == 0 || !better(v, line[static_cast<size_t>(order[k - 1]) * inner])))
         continue;
      size_t p = count < k ? count++ : k - 1;
      for (; p > 0 && better(v, line[static_cast<size_t>(order[p - 1]) * inner]); --p)
         order[p] = order[p - 1];
      order[p] = static_cast<int64_t>(i);
   }
}

// The k best of one line into order[0, k) by a partial sort over all n indices.
template <typename T, typename Better>
inline void topk_by_heap(const T *line, size_t n, size_t inner, size_t k, Better better, int64_t *order)
{
   for (size_t i = 0; i < n; ++i)
      order[i] = static_cast<int64_t>(i);
   partial_sort_indices(order, k, n, [&](int64_t a, int64_t b) {
      const T va = line[static_cast<size_t>(a) * inner], vb = line[static_cast<size_t>(b) * inner];
      return better(va, vb) || (!better(vb, va) && a < b);
   });
}

// The k largest (or smallest) of each line of n elements of x viewed as
// (outer, n, inner), in order, with their indices; `order` is scratch for n indices.
template <typename T>
inline void topk(const T *x, T *values, int64_t *indices, size_t outer, size_t n, size_t inner, size_t k,
                 bool largest, int64_t *order)
{
   const auto better = [largest](T a, T b) { return largest ? rank_less(b, a) : rank_less(a, b); };
   for (size_t o = 0; o < outer; ++o) {
      for (size_t j = 0; j < inner; ++j) {
         const T *line = x + o * n * inner + j;
         if (k <= kInsertionTopK)
            topk_by_insertion(line, n, inner, k, better, order);
         else
            topk_by_heap(line, n, inner, k, better, order);
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
