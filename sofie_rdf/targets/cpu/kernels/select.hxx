// Selections whose output size depends on the values (NonZero, Range, Compress, Unique, NonMaxSuppression).

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
   if (!(n < 4294967296.0) && !detail::is_nan(n))
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

// Compress: how many of the first min(n, cond_len) condition entries are true.
inline size_t compress_count(const bool *cond, size_t cond_len, size_t n)
{
   size_t count = 0;
   for (size_t j = 0; j < detail::min_of(n, cond_len); ++j)
      count += cond[j];
   return count;
}

// Compress of the (outer, n, inner) view: the inner blocks whose index along n has a true condition.
template <typename T>
inline void compress(const T *x, const bool *cond, size_t cond_len, size_t outer, size_t n, size_t inner, T *y)
{
   for (size_t o = 0; o < outer; ++o)
      for (size_t j = 0; j < detail::min_of(n, cond_len); ++j)
         if (cond[j])
            y = detail::copy(x + (o * n + j) * inner, x + (o * n + j + 1) * inner, y);
}

// Unique over the n slices of the (outer, n, inner) view.  work holds 6 n int64: the inverse index of
// each slice, then per unique slice its first occurrence and its count, then scratch.  Returns the number
// of unique slices, numbered in sorted order (lexicographic over the slice) or in first-occurrence order.
// (sorted with the index as tie-break, not by std::stable_sort, which allocates a buffer.)
template <typename T>
inline size_t unique_slices(const T *x, size_t outer, size_t n, size_t inner, bool sorted, int64_t *work)
{
   int64_t *inverse = work, *first = work + n, *counts = work + 2 * n, *order = work + 3 * n;
   auto compare = [&](int64_t a, int64_t b) {  // -1, 0, 1 as slice a is below, equal to, above slice b
      for (size_t o = 0; o < outer; ++o)
         for (size_t i = 0; i < inner; ++i) {
            const T u = x[(o * n + a) * inner + i], v = x[(o * n + b) * inner + i];
            if (rank_less(u, v)) return -1; // NaN ranks above every number: a strict weak order
            if (rank_less(v, u)) return 1;
         }
      return 0;
   };
   for (size_t j = 0; j < n; ++j)
      order[j] = static_cast<int64_t>(j);
   partial_sort_indices(order, n, n, [&](int64_t a, int64_t b) {
      const int c = compare(a, b);
      return c < 0 || (c == 0 && a < b);
   });
   size_t count = 0;
   for (size_t k = 0; k < n; ++k) {
      if (k == 0 || compare(order[k - 1], order[k]) != 0) {
         first[count] = order[k];  // stable: the lowest index of its group
         counts[count++] = 0;
      }
      inverse[order[k]] = static_cast<int64_t>(count - 1);
      ++counts[count - 1];
   }
   if (sorted)
      return count;
   // Renumber by first occurrence: order[g] becomes the new number of sorted group g.
   detail::fill(order, order + count, int64_t(-1));
   int64_t next = 0;
   for (size_t j = 0; j < n; ++j) {
      int64_t &id = order[inverse[j]];
      if (id < 0)
         id = next++;
      inverse[j] = id;
   }
   int64_t *moved = work + 4 * n;
   for (size_t g = 0; g < count; ++g) {
      moved[order[g]] = first[g];
      moved[count + order[g]] = counts[g];
   }
   detail::copy(moved, moved + count, first);
   detail::copy(moved + count, moved + 2 * count, counts);
   return count;
}

// Unique's outputs from unique_slices' work (an omitted output is nullptr).
template <typename T>
inline void unique_write(const T *x, size_t outer, size_t n, size_t inner, size_t count, const int64_t *work, T *y,
                         int64_t *indices, int64_t *inverse, int64_t *counts)
{
   const int64_t *first = work + n;
   for (size_t o = 0; o < outer; ++o)
      for (size_t u = 0; u < count; ++u)
         detail::copy(x + (o * n + first[u]) * inner, x + (o * n + first[u] + 1) * inner, y + (o * count + u) * inner);
   if (indices)
      detail::copy(first, first + count, indices);
   if (inverse)
      detail::copy(work, work + n, inverse);
   if (counts)
      detail::copy(work + 2 * n, work + 2 * n + count, counts);
}

// NonMaxSuppression, as onnxruntime: true when box a overlaps box b by an IoU above the threshold.
// Boxes are [y1, x1, y2, x2] (corners in any order) or, with center_point_box, [x, y, width, height].
inline bool nms_suppresses(const float *a, const float *b, bool center, float iou_threshold)
{
   float lo[2][2], hi[2][2];  // [box][axis]: axis 0 is y, 1 is x
   const float *boxes[2] = {a, b};
   for (int k = 0; k < 2; ++k)
      for (int d = 0; d < 2; ++d) {
         const float *p = boxes[k];
         if (center) {  // [x_center, y_center, width, height]
            const float c = p[1 - d], half = p[3 - d] / 2;
            lo[k][d] = c - half;
            hi[k][d] = c + half;
         } else {
            lo[k][d] = detail::min_of(p[d], p[d + 2]);
            hi[k][d] = detail::max_of(p[d], p[d + 2]);
         }
      }
   float inter = 1;
   for (int d = 0; d < 2; ++d) {
      const float low = detail::max_of(lo[0][d], lo[1][d]), high = detail::min_of(hi[0][d], hi[1][d]);
      if (high <= low)
         return false;
      inter *= high - low;
   }
   const float area_a = (hi[0][0] - lo[0][0]) * (hi[0][1] - lo[0][1]);
   const float area_b = (hi[1][0] - lo[1][0]) * (hi[1][1] - lo[1][1]);
   const float union_area = area_a + area_b - inter;
   if (area_a <= 0 || area_b <= 0 || union_area <= 0)
      return false;
   return inter / union_area > iou_threshold;
}

// NonMaxSuppression of boxes (batches, n, 4) scored (batches, classes, n): per batch and class, the boxes
// above the score threshold by decreasing score (ties: lower index first), each kept unless it overlaps a
// kept one.  Writes (batch, class, box) triples to selected (batches * classes * n * 3 room); scratch has
// 2 n int64.  Returns how many were kept.
inline size_t nms(const float *boxes, const float *scores, size_t batches, size_t classes, size_t n,
                  const int64_t *max_out_p, const float *iou_p, const float *score_p, bool center,
                  int64_t *selected, int64_t *scratch)
{
   const int64_t max_out = max_out_p ? *max_out_p : 0;
   const float iou = iou_p ? *iou_p : 0.0f;
   if (iou < 0 || iou > 1)
      throw std::invalid_argument("sofie-rdf: NonMaxSuppression iou_threshold must be in [0, 1], got " +
                                  std::to_string(iou));
   size_t count = 0;
   int64_t *order = scratch, *kept = scratch + n;
   for (size_t b = 0; b < batches && max_out > 0; ++b)
      for (size_t c = 0; c < classes; ++c) {
         const float *s = scores + (b * classes + c) * n;
         size_t m = 0;
         for (size_t i = 0; i < n; ++i)
            if (!score_p || s[i] > *score_p)
               order[m++] = static_cast<int64_t>(i);
         // Highest score first, ties by lower index (a sort with the tie-break: stable_sort would allocate).
         partial_sort_indices(order, m, m, [s](int64_t i, int64_t j) { return rank_less(s[j], s[i]) || (!rank_less(s[i], s[j]) && i < j); });
         size_t nkept = 0;
         for (size_t k = 0; k < m && static_cast<int64_t>(nkept) < max_out; ++k) {
            const float *box = boxes + (b * n + order[k]) * 4;
            bool keep = true;
            for (size_t q = 0; q < nkept && keep; ++q)
               keep = !nms_suppresses(boxes + (b * n + kept[q]) * 4, box, center, iou);
            if (!keep)
               continue;
            kept[nkept++] = order[k];
            int64_t *row = selected + 3 * count++;
            row[0] = static_cast<int64_t>(b);
            row[1] = static_cast<int64_t>(c);
            row[2] = order[k];
         }
      }
   return count;
}
