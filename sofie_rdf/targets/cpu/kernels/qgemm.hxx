// Integer matrix products: int32 sums of int8/uint8 products, their zero points subtracted, handed to an
// output stage that stores int32, requantizes to 8 bits or scales to float as the tile leaves the registers.
//
// C[m][n] = sum_k (A[m][k] - za[m]) (B[k][n] - zb[n]).  A is read as it is, row after row; B is packed
// (qgemm_pack, at generation time for weights, while running for a convolution's image columns): panels of
// kQPanelColumns columns, each ceil(K / 4) groups of 64 bytes holding, column after column, four consecutive
// k of that column (zero past K).  One group is one AVX-512 register: VNNI's vpdpbusd adds to every int32 lane
// the four products of its column's bytes with four bytes of A broadcast to all lanes.  vpdpbusd multiplies
// unsigned by signed bytes, so B is stored with the signedness A does not have (flipped by adding 128 where
// they agree) and its zero point moves with it.  Expanding the product,
//    C[m][n] = R[m][n] + row_offset[m] + column_offset[n] - row_zero[m] column_sum[n] - column_zero[n] row_sum[m]
// with R the raw sum of products: for weights B, column_offset = bias - za S_B (S_B the column sums of
// B - zb) and the last term where B's stored zero point is not 0, row_sum being A's row sums; for a convolution
// (A its weights, B the image) the same with rows and columns swapped (QSums).
// Heavy kernels stay out of infer() (kernels/gemm.hxx says why).
#ifndef SOFIE_RDF_KERNEL
#define SOFIE_RDF_KERNEL [[gnu::noinline]] inline
#endif
constexpr size_t kQPanelColumns = 16; // emitters/quantized.py: PANEL_COLUMNS
constexpr size_t kQGroup = 4;         // bytes of one column in a 64-byte group
constexpr size_t kQGroupBytes = kQPanelColumns * kQGroup;

// The int32 vectors the tiles hold: one register of the instruction set the compiler targets.
#if defined(__AVX512F__)
typedef int32_t qvec __attribute__((vector_size(64)));
#elif defined(__AVX__)
typedef int32_t qvec __attribute__((vector_size(32)));
#else
typedef int32_t qvec __attribute__((vector_size(16)));
#endif
constexpr size_t kQLanes = sizeof(qvec) / sizeof(int32_t);
constexpr size_t kQPanelVectors = kQPanelColumns / kQLanes;

// Rows of A and panels of B in one register tile: AVX-512's 32 registers hold 4 x 4 accumulators, the 4 panel
// loads and a broadcast; AVX's 16 (two registers a panel) 2 x 2 panels' four.  A single row (one event) takes
// twice the panels, so that enough independent sums are in flight to cover vpdpbusd's latency.
#if defined(__AVX512F__)
constexpr size_t kQTileRows = 4, kQTilePanels = 4;
#else
constexpr size_t kQTileRows = 2, kQTilePanels = 2;
#endif
constexpr size_t kQRowPanels = 2 * kQTilePanels;

// The corrections of C's expansion (any may be null: no such term).  Offsets and zero points are per row of A
// or per column of B; the sums are the row sums of A / column sums of the packed B as stored.  `addend` is an
// int32 matrix added to C, read with the given steps (QGemm's C, broadcast).
struct QSums {
   const int32_t *row_offset, *column_offset;
   const int32_t *row_zero, *column_sum;
   const int32_t *column_zero, *row_sum;
   const int32_t *addend;
   size_t addend_row_step, addend_column_step;
};

// acc += four unsigned bytes of u times the four signed bytes of s, summed, lane by lane: VNNI's vpdpbusd.
inline void dot4(qvec &acc, const qvec &u, const qvec &s)
{
#if defined(__AVX512VNNI__) && defined(__AVX512F__)
   __asm__("vpdpbusd %2, %1, %0" : "+v"(acc) : "v"(u), "v"(s));
#elif defined(__AVXVNNI__)
   __asm__("{vex} vpdpbusd %2, %1, %0" : "+x"(acc) : "x"(u), "x"(s));
#else
   uint8_t ub[sizeof(qvec)];
   int8_t sb[sizeof(qvec)];
   std::memcpy(ub, &u, sizeof ub);
   std::memcpy(sb, &s, sizeof sb);
   for (size_t lane = 0; lane < kQLanes; ++lane) {
      int32_t sum = 0;
      for (size_t j = 0; j < kQGroup; ++j)
         sum += static_cast<int32_t>(ub[kQGroup * lane + j]) * static_cast<int32_t>(sb[kQGroup * lane + j]);
      acc[lane] += sum;
   }
#endif
}

// Four bytes of A (k, k + 1, k + 2, k + 3 of one row; fewer at the end of K, the rest zero) in every lane.
inline void broadcast4(qvec &x, const uint8_t *a, size_t count)
{
   int32_t word = 0;
   std::memcpy(&word, a, count);
   x = qvec{} + word;
}

// One register tile: R rows of A (AUnsigned: uint8) by P panels over all of K; acc[r][p * kQPanelVectors + v]
// ends as vector v of panel p of row r.
template <size_t R, size_t P, bool AUnsigned>
inline void qgemm_tile(const uint8_t *a, size_t lda, const uint8_t *b, size_t panel_bytes, size_t k,
                       qvec (&acc)[R][P * kQPanelVectors])
{
   constexpr size_t V = P * kQPanelVectors;
   for (size_t r = 0; r < R; ++r)
      for (size_t v = 0; v < V; ++v)
         acc[r][v] = qvec{};
   const size_t groups = (k + kQGroup - 1) / kQGroup;
   for (size_t g = 0; g < groups; ++g) {
      const size_t count = g + 1 < groups ? kQGroup : k - g * kQGroup;
      qvec panel[V];
      for (size_t p = 0; p < P; ++p)
         std::memcpy(&panel[p * kQPanelVectors], b + p * panel_bytes + g * kQGroupBytes, kQGroupBytes);
      for (size_t r = 0; r < R; ++r) {
         qvec x;
         broadcast4(x, a + r * lda + g * kQGroup, count);
         for (size_t v = 0; v < V; ++v) {
            if constexpr (AUnsigned)
               dot4(acc[r][v], x, panel[v]);
            else
               dot4(acc[r][v], panel[v], x);
         }
      }
   }
}

// The sum of each of `rows` rows of A (k values, lda apart), for the column-zero term.
template <bool AUnsigned>
inline void qgemm_row_sums(const uint8_t *a, size_t lda, size_t rows, size_t k, int32_t *sums)
{
   for (size_t r = 0; r < rows; ++r) {
      int32_t s = 0;
      for (size_t i = 0; i < k; ++i)
         s += AUnsigned ? static_cast<int32_t>(a[r * lda + i]) : static_cast<int32_t>(static_cast<int8_t>(a[r * lda + i]));
      sums[r] = s;
   }
}

// Adds C's corrections to the tile's row (row m, columns n0 ... of one panel) and hands it to the stage.
template <typename Stage>
inline void qgemm_store(Stage &stage, const QSums &q, size_t m, size_t n0, size_t count, const qvec *acc,
                        int32_t row_sum)
{
   int32_t v[kQPanelColumns];
   std::memcpy(v, acc, sizeof v);
   const int32_t row_offset = q.row_offset ? q.row_offset[m] : 0;
   const int32_t row_zero = q.row_zero ? q.row_zero[m] : 0;
   for (size_t j = 0; j < count; ++j) {
      const size_t n = n0 + j;
      v[j] += row_offset + (q.column_offset ? q.column_offset[n] : 0) - (q.column_sum ? row_zero * q.column_sum[n] : 0) -
              (q.column_zero ? q.column_zero[n] * row_sum : 0) +
              (q.addend ? q.addend[m * q.addend_row_step + n * q.addend_column_step] : 0);
   }
   stage.store(m, n0, v, count);
}

// One tile computed and stored: rows m0 ... m0 + R - 1, panels p0 ... p0 + P - 1.
template <size_t R, size_t P, bool AUnsigned, typename Stage>
inline void qgemm_block(Stage &stage, const QSums &q, const uint8_t *a, size_t lda, const uint8_t *b, size_t panel_bytes,
                        size_t m0, size_t p0, size_t n, size_t k, const int32_t *row_sums)
{
   qvec acc[R][P * kQPanelVectors];
   qgemm_tile<R, P, AUnsigned>(a, lda, b + p0 * panel_bytes, panel_bytes, k, acc);
   for (size_t r = 0; r < R; ++r)
      for (size_t p = 0; p < P; ++p) {
         const size_t n0 = (p0 + p) * kQPanelColumns;
         qgemm_store(stage, q, m0 + r, n0, n - n0 < kQPanelColumns ? n - n0 : kQPanelColumns, &acc[r][p * kQPanelVectors],
                     row_sums[r]);
      }
}

// C = A B for m x k A (lda apart) and packed B (n columns, in panels of kQPanelColumns), corrected as `q` says and
// stored by `stage` (an object with store(m, n0, const int32_t *values, count)).
template <bool AUnsigned, typename Stage>
SOFIE_RDF_KERNEL void qgemm(size_t m, size_t n, size_t k, const uint8_t *a, size_t lda, const uint8_t *b,
                            const QSums &q, Stage stage)
{
   const size_t groups = (k + kQGroup - 1) / kQGroup, panel_bytes = groups * kQGroupBytes;
   const size_t panels = (n + kQPanelColumns - 1) / kQPanelColumns;
   int32_t row_sums[kQTileRows] = {};
   size_t m0 = 0;
   for (; m0 + kQTileRows <= m; m0 += kQTileRows) {
      if (q.column_zero)
         qgemm_row_sums<AUnsigned>(a + m0 * lda, lda, kQTileRows, k, row_sums);
      size_t p0 = 0;
      for (; p0 + kQTilePanels <= panels; p0 += kQTilePanels)
         qgemm_block<kQTileRows, kQTilePanels, AUnsigned>(stage, q, a + m0 * lda, lda, b, panel_bytes, m0, p0, n, k, row_sums);
      for (; p0 < panels; ++p0)
         qgemm_block<kQTileRows, 1, AUnsigned>(stage, q, a + m0 * lda, lda, b, panel_bytes, m0, p0, n, k, row_sums);
   }
   for (; m0 < m; ++m0) {
      if (q.column_zero)
         qgemm_row_sums<AUnsigned>(a + m0 * lda, lda, 1, k, row_sums);
      size_t p0 = 0;
      for (; p0 + kQRowPanels <= panels; p0 += kQRowPanels)
         qgemm_block<1, kQRowPanels, AUnsigned>(stage, q, a + m0 * lda, lda, b, panel_bytes, m0, p0, n, k, row_sums);
      for (; p0 < panels; ++p0)
         qgemm_block<1, 1, AUnsigned>(stage, q, a + m0 * lda, lda, b, panel_bytes, m0, p0, n, k, row_sums);
   }
}

// ---- output stages: what becomes of C's int32 values ----------------------------------------------------

// C as it is (MatMulInteger, ConvInteger).
struct QStoreInt32 {
   int32_t *y;
   size_t ldy;
   void store(size_t m, size_t n0, const int32_t *v, size_t count) const { std::memcpy(y + m * ldy + n0, v, count * sizeof *v); }
   QStoreInt32 moved(size_t offset, size_t) const { return {y + offset, ldy}; }
};

// saturate(round_half_even(C * multiplier) + zero), clamped to [lo, hi] (T's range; a fused ReLU or Clip narrows
// it to the quantized bounds); the multiplier per row or per column (steps 0 or 1), rounded to float as
// onnxruntime's MlasRequantizeOutput computes it.
template <typename T>
struct QRequantize {
   T *y;
   size_t ldy;
   const float *multiplier;
   size_t row_step, column_step;
   int32_t zero, lo, hi;
   // The stage of a part of C: its values `offset` elements on, its row parameters `rows` rows on.
   QRequantize moved(size_t offset, size_t rows) const
   {
      QRequantize part = *this;
      part.y += offset;
      part.multiplier += rows * row_step;
      return part;
   }
   void store(size_t m, size_t n0, const int32_t *v, size_t count) const
   {
      const float low = static_cast<float>(lo - zero), high = static_cast<float>(hi - zero);
      const float *mult = multiplier + m * row_step + n0 * column_step;
      T *out = y + m * ldy + n0;
      for (size_t j = 0; j < count; ++j) {
         float f = static_cast<float>(v[j]) * mult[j * column_step];
         f = f < low ? low : (f > high ? high : f);
         out[j] = static_cast<T>(static_cast<int32_t>(std::nearbyint(f)) + zero);
      }
   }
};

// The activation of a float stage that applies none.
struct QIdentity {
   float operator()(float x) const { return x; }
};

// act(C * scale + bias) in float (MatMulIntegerToFloat, a product whose output is dequantized); scale and bias
// per row or per column (steps 0 or 1), bias may be null.
template <typename Act>
struct QScaleFloat {
   float *y;
   size_t ldy;
   const float *scale;
   size_t row_step, column_step;
   const float *bias;
   size_t bias_row_step, bias_column_step;
   Act act;
   QScaleFloat moved(size_t offset, size_t rows) const
   {
      QScaleFloat part = *this;
      part.y += offset;
      part.scale += rows * row_step;
      if (bias)
         part.bias += rows * bias_row_step;
      return part;
   }
   void store(size_t m, size_t n0, const int32_t *v, size_t count) const
   {
      const float *s = scale + m * row_step + n0 * column_step;
      float *out = y + m * ldy + n0;
      if (bias) {
         const float *b = bias + m * bias_row_step + n0 * bias_column_step;
         for (size_t j = 0; j < count; ++j)
            out[j] = act(static_cast<float>(v[j]) * s[j * column_step] + b[j * bias_column_step]);
      } else {
         for (size_t j = 0; j < count; ++j)
            out[j] = act(static_cast<float>(v[j]) * s[j * column_step]);
      }
   }
};

// ---- operands ---------------------------------------------------------------------------------------------------

// column_offset[n] = bias[n] - zero * sums[n] (bias may be null): the per-column (or per-row) constant part of C's
// expansion, where A's zero point is known only while running (DynamicQuantizeLinear's).
inline void qgemm_offsets(size_t n, const int32_t *bias, int32_t zero, const int32_t *sums, int32_t *offsets)
{
   for (size_t j = 0; j < n; ++j)
      offsets[j] = (bias ? bias[j] : 0) - zero * sums[j];
}

// The output multipliers of a product, alpha a_scale b_scale, divided by y_scale where the output is requantized
// (y_scale not null), in float as onnxruntime rounds them: out[i * b_count + j] for a_count scales of A (per row or
// one) and b_count of B (per column or one).
template <typename S>
inline void qlinear_multipliers(float alpha, const S *a_scale, size_t a_count, const S *b_scale, size_t b_count,
                                const S *y_scale, float *out)
{
   for (size_t i = 0; i < a_count; ++i)
      for (size_t j = 0; j < b_count; ++j) {
         const float m = alpha * static_cast<float>(a_scale[i]) * static_cast<float>(b_scale[j]);
         out[i * b_count + j] = y_scale ? m / static_cast<float>(y_scale[0]) : m;
      }
}

// A convolution's row offsets, bias[m] - x_zero S_w[m] with S_w[m] = sum_k (w[m][k] - w_zero[m]) (x_zero as
// stored), and w's zero points as int32 (`zeros`, where w_zero is not null); w_zero per output channel
// (w_zero_step 1) or one for all (0).
template <typename W>
inline void qconv_offsets(size_t m, size_t k, const W *w, const W *w_zero, size_t w_zero_step, int32_t x_zero,
                          const int32_t *bias, int32_t *offsets, int32_t *zeros)
{
   for (size_t i = 0; i < m; ++i) {
      const int32_t z = w_zero ? static_cast<int32_t>(w_zero[i * w_zero_step]) : 0;
      int32_t sum = 0;
      for (size_t j = 0; j < k; ++j)
         sum += static_cast<int32_t>(w[i * k + j]);
      offsets[i] = (bias ? bias[i] : 0) - x_zero * (sum - static_cast<int32_t>(k) * z);
      if (zeros)
         zeros[i] = z;
   }
}

// The stored byte of a value of the operand's type, its top bit flipped where the packed operand must change
// signedness (`flip`): (x + 128) as uint8 for int8, (x - 128) as int8 for uint8.
inline uint8_t qbyte(uint8_t bits, bool flip) { return flip ? static_cast<uint8_t>(bits ^ 0x80u) : bits; }

// Packs rows k0 ... k0 + rows - 1 of a K x N operand B: element (k, n) at value(k, n) (its stored byte); the
// column sums of the stored bytes (as `Signed` ones where set) are added to `sums` when it is not null.
template <bool Signed, typename Value>
inline void qgemm_pack(size_t n, size_t k, Value value, uint8_t *packed, int32_t *sums)
{
   const size_t groups = (k + kQGroup - 1) / kQGroup, panel_bytes = groups * kQGroupBytes;
   const size_t panels = (n + kQPanelColumns - 1) / kQPanelColumns;
   std::memset(packed, 0, panels * panel_bytes);
   if (sums)
      std::memset(sums, 0, n * sizeof *sums);
   for (size_t kk = 0; kk < k; ++kk) {
      uint8_t *group = packed + (kk / kQGroup) * kQGroupBytes + kk % kQGroup;
      for (size_t j = 0; j < n; ++j) {
         const uint8_t byte = value(kk, j);
         group[(j / kQPanelColumns) * panel_bytes + (j % kQPanelColumns) * kQGroup] = byte;
         if (sums)
            sums[j] += Signed ? static_cast<int32_t>(static_cast<int8_t>(byte)) : static_cast<int32_t>(byte);
      }
   }
}

// Bytes of one panel-packed operand of n columns and depth k (the workspace a packed image needs).
constexpr size_t qgemm_packed_bytes(size_t n, size_t k)
{
   return (n + kQPanelColumns - 1) / kQPanelColumns * ((k + kQGroup - 1) / kQGroup) * kQGroupBytes;
}

// ---- the general product: B as it is, zero points per row / column, batches broadcast ------------------------

// Where the plain loop reads one batch's operands: A's (row, column) and B's (row, column) element steps, so
// that transposed operands need no copy, and the int32 matrix C starts from (null: zero) with its steps.
struct QPlainLayout {
   size_t a_row, a_column, b_row, b_column;
   const int32_t *addend;
   size_t addend_row, addend_column;
};

// One batch's C = addend + (A - za) (B - zb) for m x k A and k x n B of element types TA and TB, zero points per
// row (za_step 1) or per tensor (0), null for none; stored by `stage` 16 columns at a time.
template <typename TA, typename TB, typename Stage>
inline void qmatmul_plain(const TA *a, const TB *b, const QPlainLayout &l, size_t m, size_t n, size_t k, const TA *za,
                          size_t za_step, const TB *zb, size_t zb_step, const Stage &stage)
{
   int32_t v[kQPanelColumns];
   for (size_t i = 0; i < m; ++i) {
      const int32_t a_zero = za ? static_cast<int32_t>(za[i * za_step]) : 0;
      for (size_t n0 = 0; n0 < n; n0 += kQPanelColumns) {
         const size_t count = n - n0 < kQPanelColumns ? n - n0 : kQPanelColumns;
         for (size_t j = 0; j < count; ++j)
            v[j] = l.addend ? l.addend[i * l.addend_row + (n0 + j) * l.addend_column] : 0;
         for (size_t kk = 0; kk < k; ++kk) {
            const int32_t x = static_cast<int32_t>(a[i * l.a_row + kk * l.a_column]) - a_zero;
            for (size_t j = 0; j < count; ++j) {
               const int32_t b_zero = zb ? static_cast<int32_t>(zb[(n0 + j) * zb_step]) : 0;
               v[j] += x * (static_cast<int32_t>(b[kk * l.b_row + (n0 + j) * l.b_column]) - b_zero);
            }
         }
         stage.store(i, n0, v, count);
      }
   }
}

// qmatmul_plain over broadcast batch dims (coalesced: `shape` of `rank` dims, element strides of A and B per dim,
// C contiguous), each batch's stage writing its own m rows.
template <typename TA, typename TB, typename Stage>
SOFIE_RDF_KERNEL void qmatmul_batched(const TA *a, const std::ptrdiff_t *sa, const TB *b, const std::ptrdiff_t *sb,
                                      const size_t *shape, size_t rank, const QPlainLayout &l, size_t m, size_t n,
                                      size_t k, const TA *za, size_t za_step, const TB *zb, size_t zb_step, Stage stage)
{
   size_t batches = 1;
   for (size_t d = 0; d < rank; ++d)
      batches *= shape[d];
   for (size_t t = 0; t < batches; ++t) {
      std::ptrdiff_t oa = 0, ob = 0;
      for (size_t d = rank, rest = t; d-- > 0; rest /= shape[d]) {
         oa += static_cast<std::ptrdiff_t>(rest % shape[d]) * sa[d];
         ob += static_cast<std::ptrdiff_t>(rest % shape[d]) * sb[d];
      }
      qmatmul_plain(a + oa, b + ob, l, m, n, k, za, za_step, zb, zb_step, stage.moved(t * m * stage.ldy, 0));
   }
}

// ---- convolutions ---------------------------------------------------------------------------------------------

// A convolution's geometry, every one seen as 3-D (lower ranks padded with ones in front).
struct QConvShape {
   size_t channels; // input channels of one group
   size_t image[3], kernel[3], grid[3], strides[3], dilations[3], pads[3];
};

// Packs the image columns of one group (channels c0 ...): row k = (channel, kernel offset) of the weights' order,
// column j = output position; positions in the padding hold `pad`, x's zero point as stored, which subtracts to
// nothing.  Column sums as stored (Signed: int8) go to `sums` where it is not null.
template <bool Signed>
inline void qconv_pack(const uint8_t *x, size_t c0, const QConvShape &s, uint8_t pad, bool flip, uint8_t *packed,
                       int32_t *sums)
{
   const size_t plane = s.image[0] * s.image[1] * s.image[2], columns = s.grid[0] * s.grid[1] * s.grid[2];
   const size_t depth = s.channels * s.kernel[0] * s.kernel[1] * s.kernel[2];
   const size_t panel_bytes = (depth + kQGroup - 1) / kQGroup * kQGroupBytes;
   std::memset(packed, 0, qgemm_packed_bytes(columns, depth));
   if (sums)
      std::memset(sums, 0, columns * sizeof *sums);
   size_t kk = 0;
   for (size_t c = 0; c < s.channels; ++c)
      for (size_t a = 0; a < s.kernel[0]; ++a)
         for (size_t b = 0; b < s.kernel[1]; ++b)
            for (size_t d = 0; d < s.kernel[2]; ++d, ++kk) {
               uint8_t *row = packed + (kk / kQGroup) * kQGroupBytes + kk % kQGroup;
               const uint8_t *src = x + (c0 + c) * plane;
               size_t j = 0;
               for (size_t oz = 0; oz < s.grid[0]; ++oz) {
                  const size_t iz = oz * s.strides[0] + a * s.dilations[0] - s.pads[0];  // wraps below 0: out of range
                  for (size_t oy = 0; oy < s.grid[1]; ++oy) {
                     const size_t iy = oy * s.strides[1] + b * s.dilations[1] - s.pads[1];
                     const bool inside = iz < s.image[0] && iy < s.image[1];
                     const uint8_t *line = src + (iz * s.image[1] + iy) * s.image[2];
                     for (size_t ox = 0; ox < s.grid[2]; ++ox, ++j) {
                        const size_t ix = ox * s.strides[2] + d * s.dilations[2] - s.pads[2];
                        const uint8_t byte = inside && ix < s.image[2] ? qbyte(line[ix], flip) : pad;
                        row[(j / kQPanelColumns) * panel_bytes + (j % kQPanelColumns) * kQGroup] = byte;
                        if (sums)
                           sums[j] += Signed ? static_cast<int32_t>(static_cast<int8_t>(byte)) : static_cast<int32_t>(byte);
                     }
                  }
               }
            }
}

// Y = conv(x, w) for `batch` images of `groups` groups, w's rows (out_per_group per group, depth values each) the
// product's A (WUnsigned: uint8) and each group's packed image columns its B (x's bytes flipped where x has w's
// signedness, `pad` its zero point as stored).  row_offset[m] = bias[m] - x_zero S_w[m] as stored; w_zero per
// output channel (null: none), whose term needs the packed columns' sums (`column_sums`, a workspace of one int32
// per output position, else null).  `packed` holds qgemm_packed_bytes(positions, depth) bytes.
template <bool WUnsigned, typename Stage>
SOFIE_RDF_KERNEL void qconv(const uint8_t *x, const uint8_t *w, size_t batch, size_t groups, size_t out_per_group,
                            const QConvShape &s, uint8_t pad, bool flip, const int32_t *row_offset, const int32_t *w_zero,
                            uint8_t *packed, int32_t *column_sums, Stage stage)
{
   const size_t plane = s.image[0] * s.image[1] * s.image[2], columns = s.grid[0] * s.grid[1] * s.grid[2];
   const size_t depth = s.channels * s.kernel[0] * s.kernel[1] * s.kernel[2];
   for (size_t i = 0; i < batch; ++i)
      for (size_t g = 0; g < groups; ++g) {
         qconv_pack<WUnsigned>(x + i * groups * s.channels * plane, g * s.channels, s, pad, flip, packed,
                               w_zero ? column_sums : nullptr);
         const size_t m0 = g * out_per_group;
         const QSums q{row_offset + m0, nullptr, w_zero ? w_zero + m0 : nullptr, w_zero ? column_sums : nullptr,
                       nullptr, nullptr};
         qgemm<WUnsigned>(out_per_group, columns, depth, w + m0 * depth, depth, packed, q,
                          stage.moved((i * groups * out_per_group + m0) * columns, m0));
      }
}
