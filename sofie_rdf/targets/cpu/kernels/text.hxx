// TfIdfVectorizer: n-gram counting over integer tokens.  The pool is a table per n-gram length n: its
// n-grams sorted lexicographically (tokens[begin[n] ...], n tokens each, count[n] of them) with the output
// column of each (column[first[n] + e]).  Lookups are binary searches of that table.

// Entry of the n-gram read from x at stride `skip` in a length's table, or -1 when the pool does not hold it.
template <typename T>
inline std::ptrdiff_t tfidf_lookup(const T *x, size_t n, size_t skip, const int64_t *tokens, size_t count)
{
   size_t lo = 0, hi = count;
   while (lo < hi) { // first entry not less than the n-gram
      const size_t mid = (lo + hi) / 2;
      const int64_t *entry = tokens + mid * n;
      size_t j = 0;
      while (j < n && entry[j] == static_cast<int64_t>(x[j * skip]))
         ++j;
      if (j < n && entry[j] < static_cast<int64_t>(x[j * skip]))
         lo = mid + 1;
      else
         hi = mid;
   }
   if (lo == count)
      return -1;
   for (size_t j = 0; j < n; ++j)
      if (tokens[lo * n + j] != static_cast<int64_t>(x[j * skip]))
         return -1;
   return static_cast<std::ptrdiff_t>(lo);
}

// Every pooled n-gram (lengths min_n..max_n, skips 0..max_skip) found in a row of x, in scan order, adds
// its weight to its column (TF: weight 1, TFIDF) or sets the column to it (IDF, presence), as
// onnxruntime.  Unigrams are counted once, not once per skip, as the skip does not change them.
template <typename T>
inline void tfidf(const T *x, size_t rows, size_t row_size, const int64_t *tokens, const size_t *begin,
                  const size_t *count, const size_t *first, const size_t *columns, const float *weights, size_t min_n,
                  size_t max_n, size_t max_skip, bool presence, float *y, size_t out_size)
{
   detail::fill(y, y + rows * out_size, 0.0f);
   for (size_t r = 0; r < rows; ++r) {
      const T *row = x + r * row_size;
      float *yr = y + r * out_size;
      size_t smallest = min_n;
      for (size_t skip = 1; skip <= max_skip + 1 && smallest <= max_n; ++skip) {
         for (size_t start = 0; start + skip * (smallest - 1) < row_size; ++start)
            for (size_t n = smallest; n <= max_n && start + skip * (n - 1) < row_size; ++n) {
               const std::ptrdiff_t hit = tfidf_lookup(row + start, n, skip, tokens + begin[n], count[n]);
               if (hit < 0)
                  continue;
               const size_t entry = first[n] + static_cast<size_t>(hit);
               const float w = weights ? weights[entry] : 1.0f;
               yr[columns[entry]] = presence ? w : yr[columns[entry]] + w;
            }
         if (smallest == 1)
            smallest = 2;
      }
   }
}
