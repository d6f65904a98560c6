// Spatial pooling (MaxPool, AveragePool, LpPool and their Global forms).
//
// One window walk serves every pooling operator: `pool` visits, for each plane
// (batch x channel) and each output position, the window's taps in row-major
// order and hands each to a reducer, which owns what differs between the ops
// (the running maximum and its index, a sum and a count, a sum of powers).
// A tap inside the input calls add(value, row_major, column_major) with the
// tap's flat input index in both spatial orders (MaxPool's Indices output);
// the taps in the explicit padding are counted once with pad(n) (AveragePool's
// count_include_pad); taps past the padding, which ceil_mode windows may have,
// are skipped.  Per output position the taps inside the input are a box, so
// the walk has no per-tap bounds checks.

constexpr size_t kMaxPoolRank = 8;

// Geometry of one pooling: per spatial dim, rank entries each.
struct PoolShape {
   size_t rank;
   const size_t *in;         // input spatial shape
   const size_t *out;        // output spatial shape
   const size_t *kernel;     // window shape
   const size_t *strides;    // output step
   const size_t *dilations;  // distance between taps
   const size_t *pads_begin; // padding before the input
   const size_t *pads_end;   // padding after the input
};

// Taps k in [0, kernel) whose coordinate start + k * dilation lies in [lo, hi).
inline size_t pool_taps_in(std::ptrdiff_t start, std::ptrdiff_t dilation, std::ptrdiff_t kernel, std::ptrdiff_t lo,
                           std::ptrdiff_t hi, size_t &first)
{
   const std::ptrdiff_t k0 = start >= lo ? 0 : (lo - start + dilation - 1) / dilation;
   const std::ptrdiff_t k1 = start >= hi ? 0 : std::min(kernel, (hi - start + dilation - 1) / dilation);
   first = static_cast<size_t>(k0);
   return k1 > k0 ? static_cast<size_t>(k1 - k0) : 0;
}

template <typename T, typename Reducer>
inline void pool(const T *x, size_t planes, const PoolShape &s, Reducer reducer)
{
   const size_t last = s.rank - 1;
   size_t in_size = 1, out_size = 1;
   std::ptrdiff_t row_stride[kMaxPoolRank], col_stride[kMaxPoolRank];
   for (size_t d = s.rank; d-- > 0;) {
      row_stride[d] = static_cast<std::ptrdiff_t>(in_size);
      in_size *= s.in[d];
   }
   for (size_t d = 0, acc = 1; d < s.rank; ++d) {
      col_stride[d] = static_cast<std::ptrdiff_t>(acc);
      acc *= s.in[d];
      out_size *= s.out[d];
   }
   for (size_t p = 0; p < planes; ++p) {
      const T *xp = x + p * in_size;
      const std::ptrdiff_t plane = static_cast<std::ptrdiff_t>(p * in_size);
      size_t o_index[kMaxPoolRank] = {};
      for (size_t o = 0; o < out_size; ++o) {
         // Per dim: first coordinate of the taps inside the input, their count and step.
         std::ptrdiff_t first[kMaxPoolRank], step[kMaxPoolRank];
         size_t count[kMaxPoolRank];
         size_t inside = 1, padded = 1;
         for (size_t d = 0; d < s.rank; ++d) {
            const std::ptrdiff_t start = static_cast<std::ptrdiff_t>(o_index[d] * s.strides[d]) -
                                         static_cast<std::ptrdiff_t>(s.pads_begin[d]);
            const std::ptrdiff_t dil = static_cast<std::ptrdiff_t>(s.dilations[d]);
            const std::ptrdiff_t k = static_cast<std::ptrdiff_t>(s.kernel[d]);
            const std::ptrdiff_t n = static_cast<std::ptrdiff_t>(s.in[d]);
            size_t k0 = 0, unused = 0;
            count[d] = pool_taps_in(start, dil, k, 0, n, k0);
            first[d] = start + static_cast<std::ptrdiff_t>(k0) * dil;
            step[d] = dil;
            inside *= count[d];
            padded *= pool_taps_in(start, dil, k, -static_cast<std::ptrdiff_t>(s.pads_begin[d]),
                                   n + static_cast<std::ptrdiff_t>(s.pads_end[d]), unused);
         }
         reducer.begin();
         if (inside > 0) {
            size_t t_index[kMaxPoolRank] = {};
            for (size_t rows = inside / count[last]; rows-- > 0;) {
               std::ptrdiff_t row = plane, col = plane;
               for (size_t d = 0; d < last; ++d) {
                  const std::ptrdiff_t c = first[d] + static_cast<std::ptrdiff_t>(t_index[d]) * step[d];
                  row += c * row_stride[d];
                  col += c * col_stride[d];
               }
               for (size_t k = 0; k < count[last]; ++k) { // the last dim: contiguous taps when undilated
                  const std::ptrdiff_t c = first[last] + static_cast<std::ptrdiff_t>(k) * step[last];
                  reducer.add(xp[row - plane + c], static_cast<size_t>(row + c),
                              static_cast<size_t>(col + c * col_stride[last]));
               }
               for (size_t d = last; d-- > 0;) { // next row of taps
                  if (++t_index[d] < count[d])
                     break;
                  t_index[d] = 0;
               }
            }
         }
         if (padded > inside)
            reducer.pad(padded - inside);
         reducer.end(p * out_size + o);
         for (size_t d = s.rank; d-- > 0;) { // next output position
            if (++o_index[d] < s.out[d])
               break;
            o_index[d] = 0;
         }
      }
   }
}

// Maximum of the taps inside the input (padding never wins); the first
// maximum in row-major order gives the index, as onnxruntime does.
template <typename T>
struct MaxPoolReducer {
   T *y;
   int64_t *indices;   // nullptr when the Indices output is not wanted
   bool column_major;  // storage_order = 1
   T best{};
   size_t arg = 0;

   MaxPoolReducer(T *y_, int64_t *indices_, bool column_major_) : y(y_), indices(indices_), column_major(column_major_) {}

   void begin()
   {
      best = std::numeric_limits<T>::lowest();
      arg = 0;
   }
   void add(T v, size_t row_major, size_t col_major)
   {
      if (v > best) {
         best = v;
         arg = column_major ? col_major : row_major;
      }
   }
   void pad(size_t) {}
   void end(size_t i)
   {
      y[i] = best;
      if (indices)
         indices[i] = static_cast<int64_t>(arg);
   }
};

// Mean of the taps; padding taps count in the divisor when count_include_pad.
template <typename T>
struct AveragePoolReducer {
   T *y;
   bool count_include_pad;
   T sum{};
   size_t count = 0, padding = 0;

   AveragePoolReducer(T *y_, bool count_include_pad_) : y(y_), count_include_pad(count_include_pad_) {}

   void begin()
   {
      sum = T(0);
      count = padding = 0;
   }
   void add(T v, size_t, size_t)
   {
      sum += v;
      ++count;
   }
   void pad(size_t n) { padding += n; }
   void end(size_t i)
   {
      const size_t n = count_include_pad ? count + padding : count;
      y[i] = n ? static_cast<T>(sum / static_cast<T>(n)) : T(0);
   }
};

// p-norm of the taps (padding adds zeros, so it changes nothing).
template <typename T>
struct LpPoolReducer {
   T *y;
   T p;
   T sum{};

   LpPoolReducer(T *y_, T p_) : y(y_), p(p_) {}

   void begin() { sum = T(0); }
   void add(T v, size_t, size_t) { sum += p == T(1) ? std::abs(v) : p == T(2) ? v * v : std::pow(std::abs(v), p); }
   void pad(size_t) {}
   void end(size_t i) { y[i] = p == T(1) ? sum : static_cast<T>(p == T(2) ? std::sqrt(sum) : std::pow(sum, T(1) / p)); }
};
