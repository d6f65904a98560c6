// Gathers and scatters by run-time indices.  Every index is checked against the
// axis it addresses (negative ones count from the end, as ONNX allows): a bad
// index throws std::out_of_range instead of reading or writing out of bounds.
//
// GatherElements/ScatterElements and GatherND/ScatterND differ only in how an
// index tensor maps to offsets into the data, so each pair shares one offset
// walker (element_offsets, slice_offsets) and the operations are two loops over
// a walker: gather_by (read) and scatter (copy data, then reduce updates in).

// The error of an index out of range: out of line, so that checked_index stays small enough to inline
// into the per-element loops (building the message in place made it a call per index).
[[noreturn]] [[gnu::noinline]] inline void index_out_of_range(int64_t i, size_t n, const char *op)
{
   throw std::out_of_range(std::string("sofie-rdf: ") + op + " index " + std::to_string(i) +
                           " is out of range for an axis of size " + std::to_string(n));
}

// Index `i` of an axis of size `n`, wrapped and checked.
template <typename I>
inline size_t checked_index(I i, size_t n, const char *op)
{
   const int64_t k = static_cast<int64_t>(i) < 0 ? static_cast<int64_t>(i) + static_cast<int64_t>(n)
                                                  : static_cast<int64_t>(i);
   if (k < 0 || k >= static_cast<int64_t>(n))
      index_out_of_range(static_cast<int64_t>(i), n, op);
   return static_cast<size_t>(k);
}

// Gather along an axis: x viewed as (outer, n, inner), y as (outer, count, inner).
template <typename T, typename I>
inline void gather(const T *x, const I *indices, T *y, size_t outer, size_t n, size_t count, size_t inner)
{
   for (size_t o = 0; o < outer; ++o)
      for (size_t k = 0; k < count; ++k)
         detail::copy_n(x + (o * n + checked_index(indices[k], n, "Gather")) * inner, inner, y + (o * count + k) * inner);
}

// Index state lives on the stack (no allocation per call); ranks above this are refused.
constexpr size_t kMaxIndexRank = 32;

// GatherElements/ScatterElements: indices has the rank of data and addresses one
// element each, its own coordinates everywhere but along `axis`, where its value
// is the coordinate.  Calls f(i, offset in data) for every element i of indices.
template <typename I>
struct element_offsets {
   const I *indices;
   const size_t *shape;      // of indices
   const size_t *data_shape;
   size_t rank, axis;
   const char *op;

   template <typename F>
   void operator()(F f) const
   {
      if (rank > kMaxIndexRank)
         throw std::invalid_argument(std::string("sofie-rdf: ") + op + " supports tensors up to rank " +
                                     std::to_string(kMaxIndexRank));
      size_t strides[kMaxIndexRank], coord[kMaxIndexRank] = {};
      size_t count = 1;
      for (size_t r = rank; r-- > 0;) {
         if (r != axis && shape[r] > data_shape[r])
            throw std::invalid_argument(std::string("sofie-rdf: ") + op + " indices dim " + std::to_string(r) + " (" +
                                        std::to_string(shape[r]) + ") exceeds the data dim (" +
                                        std::to_string(data_shape[r]) + ")");
         strides[r] = r + 1 < rank ? strides[r + 1] * data_shape[r + 1] : 1;
         count *= shape[r];
      }
      size_t base = 0; // offset of coord in data, without the axis term
      for (size_t i = 0; i < count; ++i) {
         f(i, base + checked_index(indices[i], data_shape[axis], op) * strides[axis]);
         for (size_t r = rank; r-- > 0;) {
            const size_t step = r == axis ? 0 : strides[r];
            base += step;
            if (++coord[r] < shape[r])
               break;
            base -= step * shape[r];
            coord[r] = 0;
         }
      }
   }
};

// GatherND/ScatterND: indices is (batch, tuples, k); tuple t of batch b addresses
// the slice data[b][i_0, ..., i_{k-1}] (contiguous, `slice` elements).  `dims` and
// `strides` are those of the k indexed data dims, `batch_stride` the size of one
// batch of data.  Calls f(b * tuples + t, offset in data) for every tuple.
template <typename I>
struct slice_offsets {
   const I *indices;
   size_t batch, tuples, k;
   const size_t *dims;
   const size_t *strides;
   size_t batch_stride;
   const char *op;

   template <typename F>
   void operator()(F f) const
   {
      // Nested loops, not t / tuples: a 64-bit division per tuple costs more than the tuple's work.
      for (size_t b = 0, t = 0; b < batch; ++b)
         for (size_t end = t + tuples; t < end; ++t) {
            const I *tuple = indices + t * k;
            size_t offset = b * batch_stride;
            for (size_t j = 0; j < k; ++j)
               offset += checked_index(tuple[j], dims[j], op) * strides[j];
            f(t, offset);
         }
   }
};

// Tuples whose offsets grid_offsets computes at a time: a stack buffer of 2 KB.
constexpr size_t kGridBlock = 256;

// off[i] += (c[at(i)], wrapped) * stride for i < m, the indices of an axis of size n; whether one was out of
// range.  No branch on the values, so the loop vectorizes; the caller finds the culprit for the message.
template <typename I, typename At>
inline bool add_grid_offsets(const I *c, At at, size_t m, size_t n, size_t stride, size_t *off)
{
   bool bad = false;
   for (size_t i = 0; i < m; ++i) {
      const int64_t v = static_cast<int64_t>(c[at(i)]);
      const int64_t w = v < 0 ? v + static_cast<int64_t>(n) : v;
      bad |= static_cast<uint64_t>(w) >= n;
      off[i] += static_cast<size_t>(w) * stride;
   }
   return bad;
}

// ScatterND over a broadcast grid of tuples (sofie_rdf::GridScatterND, PyTorch's index_put): the tuples have
// shape `shape` (rank >= 1), and value j of the tuple at coordinate c is components[j] at sum_r c_r *
// cstrides[j * rank + r] (stride 0 along a dim component j is broadcast over).  Each value is wrapped,
// checked and scaled as slice_offsets does, in the same tuple order: the components constant along the last
// dim once per row, the others for kGridBlock tuples at a time, one component after another.  Calls f(tuple
// index, offset in data) for every tuple.
template <typename I>
struct grid_offsets {
   const I *const *components;
   const size_t *cstrides; // k x rank
   const size_t *shape;
   size_t rank, k;
   const size_t *dims;    // the k indexed data dims
   const size_t *strides; // and their strides
   const char *op;

   template <typename F>
   void operator()(F f) const
   {
      if (rank > kMaxIndexRank || k > kMaxIndexRank)
         throw std::invalid_argument(std::string("sofie-rdf: ") + op + " supports index grids up to rank " +
                                     std::to_string(kMaxIndexRank));
      size_t rows = 1;
      for (size_t r = 0; r + 1 < rank; ++r)
         rows *= shape[r];
      const size_t last = rank - 1, n = shape[last];
      size_t coord[kMaxIndexRank] = {}, at[kMaxIndexRank] = {}; // at[j]: component j's element at the row's start
      size_t off[kGridBlock];
      for (size_t row = 0, t = 0; row < rows && n; ++row) {
         size_t base = 0;
         for (size_t j = 0; j < k; ++j)
            if (!cstrides[j * rank + last])
               base += checked_index(components[j][at[j]], dims[j], op) * strides[j];
         for (size_t i0 = 0; i0 < n; i0 += kGridBlock) {
            const size_t m = detail::min_of(kGridBlock, n - i0);
            detail::fill_n(off, m, base);
            for (size_t j = 0; j < k; ++j)
               if (const size_t step = cstrides[j * rank + last])
                  add_row(j, components[j] + at[j] + i0 * step, step, m, off);
            for (size_t i = 0; i < m; ++i)
               f(t++, off[i]);
         }
         for (size_t r = last; r-- > 0;) {
            for (size_t j = 0; j < k; ++j)
               at[j] += cstrides[j * rank + r];
            if (++coord[r] < shape[r])
               break;
            for (size_t j = 0; j < k; ++j)
               at[j] -= cstrides[j * rank + r] * shape[r];
            coord[r] = 0;
         }
      }
   }

   // Component j's part of m offsets, read from c every `step` elements (a contiguous run as its own loop).
   void add_row(size_t j, const I *c, size_t step, size_t m, size_t *off) const
   {
      const bool bad = step == 1 ? add_grid_offsets(c, [](size_t i) { return i; }, m, dims[j], strides[j], off)
                                 : add_grid_offsets(c, [step](size_t i) { return i * step; }, m, dims[j], strides[j], off);
      if (bad)
         for (size_t i = 0; i < m; ++i)
            checked_index(c[i * step], dims[j], op); // throws, naming the first index out of range
   }
};

// y[i] = the `slice` elements of x at the walker's i-th offset.
template <typename T, typename Walk>
inline void gather_by(const T *x, T *y, size_t slice, const Walk &walk)
{
   walk([&](size_t i, size_t offset) { detail::copy_n(x + offset, slice, y + i * slice); });
}

// y = data (n elements; y may be data itself), then reduce(y[offset + j], updates[i * slice + j]) in
// index order: with an assignment, the last of duplicate indices wins.
template <typename T, typename Walk, typename R>
inline void scatter(const T *data, const T *updates, T *y, size_t n, size_t slice, const Walk &walk, R reduce)
{
   if (y != data)
      detail::copy_n(data, n, y);
   if (slice == 1) // one element per index (the common case): no inner loop of one trip per tuple
      return walk([&](size_t i, size_t offset) { reduce(y[offset], updates[i]); });
   walk([&](size_t i, size_t offset) {
      for (size_t j = 0; j < slice; ++j)
         reduce(y[offset + j], updates[i * slice + j]);
   });
}

// The one-hot position of index `i` (negatives count from the end; floating
// ones truncate), or -1 when it is outside [-depth, depth): ONNX leaves that
// row all off.  NaN and huge floating values are rejected before the cast,
// which would be undefined for them.
template <typename I>
inline int64_t one_hot_position(I i, int64_t depth)
{
   if constexpr (std::is_floating_point<I>::value) {
      if (!(i > static_cast<I>(-depth - 1) && i < static_cast<I>(depth)))
         return -1;
   }
   int64_t k = static_cast<int64_t>(i);
   k = k < 0 ? k + depth : k;
   return k >= 0 && k < depth ? k : -1;
}

// OneHot: y viewed as (outer, depth, inner) holds on (values[1]) where the index
// (viewed as (outer, inner)) selects the depth coordinate, off (values[0]) elsewhere.
template <typename I, typename T>
inline void one_hot(const I *indices, const T *values, T *y, size_t outer, size_t depth, size_t inner)
{
   detail::fill_n(y, outer * depth * inner, values[0]);
   for (size_t o = 0; o < outer; ++o)
      for (size_t i = 0; i < inner; ++i) {
         const int64_t k = one_hot_position(indices[o * inner + i], static_cast<int64_t>(depth));
         if (k >= 0)
            y[(o * depth + static_cast<size_t>(k)) * inner + i] = values[1];
      }
}

// Trilu: x is (batch, rows, cols) matrices; keeps element (r, c) when c - r >= k
// (upper) or c - r <= k (lower), zero elsewhere.  `k` may be null (0).
template <typename T>
inline void trilu(const T *x, const int64_t *k, T *y, size_t batch, size_t rows, size_t cols, bool upper)
{
   const int64_t diag = k ? k[0] : 0;
   for (size_t b = 0; b < batch; ++b)
      for (size_t r = 0; r < rows; ++r)
         for (size_t c = 0; c < cols; ++c) {
            const int64_t off = static_cast<int64_t>(c) - static_cast<int64_t>(r);
            const size_t at = (b * rows + r) * cols + c;
            y[at] = (upper ? off >= diag : off <= diag) ? x[at] : T{};
         }
}

// EyeLike: a rows x cols matrix of zeros with ones on diagonal k.
template <typename T>
inline void eye(T *y, size_t rows, size_t cols, int64_t k)
{
   detail::fill_n(y, rows * cols, T{});
   for (size_t r = 0; r < rows; ++r) {
      const int64_t c = static_cast<int64_t>(r) + k;
      if (c >= 0 && c < static_cast<int64_t>(cols))
         y[r * cols + static_cast<size_t>(c)] = static_cast<T>(1);
   }
}

// NeighbourGather (ops/fused.py): y[n][c][q][k] = act(base[n][c][q] + x at index i[n][q][k] + n * P of the
// (C, N * P) view of x), each index checked against that view as the Gather of weaver's exported chain checks
// it.  A batch row's Q * K offsets into x are computed once (`offsets`: Q * K of them) and serve its C channels,
// whose loops are then plain gathers.  base may be null (no centre term).
template <typename T, typename I, typename F>
inline void neighbour_gather(const T *x, const I *indices, const T *base, T *y, std::uint64_t *offsets,
                             size_t batch, size_t channels, size_t points, size_t queries, size_t k, F act)
{
   const size_t total = batch * points, per = queries * k;
   for (size_t n = 0; n < batch; ++n) {
      const I *in = indices + n * per;
      for (size_t j = 0; j < per; ++j) {
         const size_t f = checked_index(static_cast<int64_t>(in[j]) + static_cast<int64_t>(n * points), total,
                                        "NeighbourGather");
         offsets[j] = f / points * channels * points + f % points;
      }
      for (size_t c = 0; c < channels; ++c) {
         const T *xc = x + c * points;
         T *yc = y + (n * channels + c) * per;
         if (base == nullptr) {
            for (size_t j = 0; j < per; ++j)
               yc[j] = act(xc[offsets[j]]);
            continue;
         }
         const T *b = base + (n * channels + c) * queries;
         for (size_t q = 0; q < queries; ++q)
            for (size_t j = q * k; j < (q + 1) * k; ++j)
               yc[j] = act(b[q] + xc[offsets[j]]);
      }
   }
}
