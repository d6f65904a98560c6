// Integer matrix products: int32 sums of int8/uint8 products, their zero points subtracted, handed to an
// output stage that stores int32, requantizes to 8 bits or scales to float as the tile leaves the registers.
//
// C[m][n] = sum_k (A[m][k] - za[m]) (B[k][n] - zb[n]).  A is read as it is, row after row; B is packed
// (qgemm_pack, at generation time for weights, while running for a convolution's image columns): panels of
// kQPanelColumns columns, each ceil(K / 4) groups of 64 bytes holding, column after column, four consecutive
// k of that column (zero past K), the groups padded with zeros to a multiple of 16 (64 k: one AMX tile of B).
// One group is one AVX-512 register: VNNI's vpdpbusd adds to every int32 lane
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
constexpr size_t kQTileDepth = 64; // k of one AMX tile: a panel's groups come in sixteens (emitters/quantized.py: TILE_DEPTH)

// Bytes of one packed panel of depth k.
constexpr size_t qgemm_panel_bytes(size_t k)
{
   return (k + kQTileDepth - 1) / kQTileDepth * kQTileDepth / kQGroup * kQGroupBytes;
}

// The int32 vectors the tiles hold: one register of the instruction set the compiler targets.
#if SOFIE_RDF_AVX512
typedef int32_t qvec __attribute__((vector_size(64)));
#elif SOFIE_RDF_AVX2
typedef int32_t qvec __attribute__((vector_size(32)));
#else
typedef int32_t qvec __attribute__((vector_size(16)));
#endif
constexpr size_t kQLanes = sizeof(qvec) / sizeof(int32_t);
constexpr size_t kQPanelVectors = kQPanelColumns / kQLanes;

// Rows of A and panels of B in one register tile: AVX-512's 32 registers hold 4 x 4 accumulators, the 4 panel
// loads and a broadcast; AVX's 16 (two registers a panel) 2 x 2 panels' four.  A single row (one event) takes
// twice the panels, so that enough independent sums are in flight to cover vpdpbusd's latency.
//
// Without VNNI (AVX2, the generic x86-64 build) the products are exact through pmaddwd instead (qgemm_step_widened):
// each group's bytes widened to 16 bits, pairs multiplied and summed into int32.  vpmaddubsw, which onnxruntime's
// MLAS uses there, sums two uint8 x int8 products in 16 bits and saturates (onnxruntime's numbers are then wrong
// for full-range weights, tests/ops/test_quantized.py says where).  A panel's vectors widen into twice the
// registers, so a tile takes one panel (four rows, one event: two).
#if SOFIE_RDF_AVX512VNNI || defined(__AVXVNNI__) || !SOFIE_RDF_X86
constexpr bool kQWiden = false;
#else
constexpr bool kQWiden = true;
#endif
#if SOFIE_RDF_AVX512
constexpr size_t kQTileRows = 4, kQTilePanels = kQWiden ? 1 : 4;
#else
constexpr size_t kQTileRows = kQWiden ? 4 : 2, kQTilePanels = kQWiden ? 1 : 2;
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

// acc += four unsigned bytes of u times the four signed bytes of s, summed, lane by lane: VNNI's vpdpbusd, through
// the compiler's builtin (the register allocator then keeps a tile's accumulators in place; an asm statement per
// product made GCC copy them between registers and the stack: 0.55x the speed).
inline void dot4(qvec &acc, const qvec &u, const qvec &s)
{
#if SOFIE_RDF_AVX512VNNI && defined(__clang__)
   acc = __builtin_ia32_vpdpbusd512(acc, u, s);
#elif SOFIE_RDF_AVX512VNNI
   acc = __builtin_ia32_vpdpbusd_v16si(acc, u, s);
#elif defined(__AVXVNNI__) && defined(__clang__)
   acc = __builtin_ia32_vpdpbusd256(acc, u, s);
#elif defined(__AVXVNNI__)
   acc = __builtin_ia32_vpdpbusd_v8si(acc, u, s);
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

// ---- the exact route without VNNI: pmaddwd ------------------------------------------------------------------
#if SOFIE_RDF_X86

// A vector's bytes as 16-bit lanes, each lane two consecutive bytes of one group of four.
typedef int16_t qvec16 __attribute__((vector_size(sizeof(qvec))));
typedef uint16_t qvecu16 __attribute__((vector_size(sizeof(qvec))));

// Bytes 0 and 2 (`even`) and 1 and 3 (`odd`) of every group of four, widened to 16 bits as `Signed` bytes: in each
// int32 lane, the two values pmaddwd multiplies with the other operand's same bytes.
template <bool Signed>
[[gnu::always_inline]] inline void qwiden(const qvec &v, qvec16 &even, qvec16 &odd)
{
   qvec16 w;
   std::memcpy(&w, &v, sizeof w);
   if constexpr (Signed) {
      even = (w << 8) >> 8;
      odd = w >> 8;
   } else {
      qvecu16 u;
      std::memcpy(&u, &w, sizeof u);
      const qvecu16 low = u & 0xff, high = u >> 8;
      std::memcpy(&even, &low, sizeof even);
      std::memcpy(&odd, &high, sizeof odd);
   }
}

// acc += x . y lane by lane: each int32 lane the sum of its two 16-bit products (pmaddwd, exact), on each 32 bytes
// (AVX2 and wider) or 16 (SSE2) of the vectors.
[[gnu::always_inline]] inline void qmadd(qvec &acc, const qvec16 &x, const qvec16 &y)
{
#if SOFIE_RDF_AVX2
   typedef short half __attribute__((vector_size(32)));
   typedef int sums __attribute__((vector_size(32)));
#define SOFIE_RDF_PMADDWD __builtin_ia32_pmaddwd256
#else
   typedef short half __attribute__((vector_size(16)));
   typedef int sums __attribute__((vector_size(16)));
#define SOFIE_RDF_PMADDWD __builtin_ia32_pmaddwd128
#endif
#pragma GCC unroll 2
   for (size_t i = 0; i < sizeof(qvec) / sizeof(half); ++i) {
      half a, b;
      sums c;
      std::memcpy(&a, reinterpret_cast<const char *>(&x) + i * sizeof a, sizeof a);
      std::memcpy(&b, reinterpret_cast<const char *>(&y) + i * sizeof b, sizeof b);
      std::memcpy(&c, reinterpret_cast<const char *>(&acc) + i * sizeof c, sizeof c);
      c += SOFIE_RDF_PMADDWD(a, b);
      std::memcpy(reinterpret_cast<char *>(&acc) + i * sizeof c, &c, sizeof c);
   }
#undef SOFIE_RDF_PMADDWD
}

// One group of the P panels' vectors widened (B's bytes have the signedness A's lack).
template <size_t P, bool AUnsigned>
[[gnu::always_inline]] inline void qwiden_panels(const uint8_t *b, size_t panel_bytes, qvec16 (&even)[P * kQPanelVectors],
                                                 qvec16 (&odd)[P * kQPanelVectors])
{
#pragma GCC unroll 16
   for (size_t v = 0; v < P * kQPanelVectors; ++v) {
      qvec panel;
      std::memcpy(&panel, b + (v / kQPanelVectors) * panel_bytes + (v % kQPanelVectors) * sizeof panel, sizeof panel);
      qwiden<AUnsigned>(panel, even[v], odd[v]);
   }
}

// One row's sums += its widened bytes times the widened panels (a row at a time: the rows' widened bytes never
// all wait in registers, which AVX2's 16 do not hold beside a tile).
template <size_t V>
[[gnu::always_inline]] inline void qmadd_row(const qvec16 &x_even, const qvec16 &x_odd, const qvec16 (&even)[V],
                                             const qvec16 (&odd)[V], qvec (&acc)[V])
{
#pragma GCC unroll 16
   for (size_t v = 0; v < V; ++v) {
      qmadd(acc[v], x_even, even[v]);
      qmadd(acc[v], x_odd, odd[v]);
   }
}

// qgemm_step by pmaddwd: the panels' vectors widened once, each row's broadcast bytes widened the same way.
template <size_t R, size_t P, bool AUnsigned>
[[gnu::always_inline]] inline void qgemm_step_widened(const uint8_t *a, size_t lda, const uint8_t *b, size_t panel_bytes,
                                                      size_t count, qvec (&acc)[R][P * kQPanelVectors])
{
   qvec16 even[P * kQPanelVectors], odd[P * kQPanelVectors];
   qwiden_panels<P, AUnsigned>(b, panel_bytes, even, odd);
#pragma GCC unroll 16
   for (size_t r = 0; r < R; ++r) {
      qvec x;
      broadcast4(x, a + r * lda, count);
      qvec16 x_even, x_odd;
      qwiden<!AUnsigned>(x, x_even, x_odd);
      qmadd_row(x_even, x_odd, even, odd, acc[r]);
   }
}

// Rows of A widened once for all the panels of a product (qgemm_widen_rows): word 2g of a row holds its bytes
// 4g and 4g + 2 as 16-bit values, word 2g + 1 bytes 4g + 1 and 4g + 3 (x_even and x_odd above, before their
// broadcast).  Up to kQWideGroups groups (K of 2048) a row, on the stack; deeper products widen as they go.
constexpr size_t kQWideGroups = 512;

template <bool AUnsigned>
inline void qgemm_widen_rows(const uint8_t *a, size_t lda, size_t rows, size_t k, uint32_t *wide)
{
   typedef int16_t i16x8 __attribute__((vector_size(16)));
   typedef uint16_t u16x8 __attribute__((vector_size(16)));
   typedef uint32_t u32x4 __attribute__((vector_size(16)));
   const size_t groups = (k + kQGroup - 1) / kQGroup;
   for (size_t r = 0; r < rows; ++r) {
      const uint8_t *row = a + r * lda;
      uint32_t *out = wide + r * groups * 2;
      size_t g = 0;
      for (; (g + 4) * kQGroup <= k; g += 4) {  // four groups: 16 bytes as 8 pairs, widened as qwiden does
         i16x8 pairs, even, odd;
         std::memcpy(&pairs, row + g * kQGroup, sizeof pairs);
         if constexpr (AUnsigned) {
            u16x8 u;
            std::memcpy(&u, &pairs, sizeof u);
            const u16x8 low = u & 0xff, high = u >> 8;
            std::memcpy(&even, &low, sizeof even);
            std::memcpy(&odd, &high, sizeof odd);
         } else {
            even = (pairs << 8) >> 8;
            odd = pairs >> 8;
         }
         u32x4 e, o;
         std::memcpy(&e, &even, sizeof e);
         std::memcpy(&o, &odd, sizeof o);
         const u32x4 first = __builtin_shufflevector(e, o, 0, 4, 1, 5), second = __builtin_shufflevector(e, o, 2, 6, 3, 7);
         std::memcpy(out + 2 * g, &first, sizeof first);
         std::memcpy(out + 2 * g + 4, &second, sizeof second);
      }
      for (; g < groups; ++g) {
         uint8_t bytes[kQGroup] = {};
         std::memcpy(bytes, row + g * kQGroup, detail::min_of(kQGroup, k - g * kQGroup));
         uint32_t half[kQGroup];
         for (size_t i = 0; i < kQGroup; ++i)
            half[i] = AUnsigned ? bytes[i] : static_cast<uint16_t>(static_cast<int8_t>(bytes[i]));
         out[2 * g] = half[0] | half[2] << 16;
         out[2 * g + 1] = half[1] | half[3] << 16;
      }
   }
}

// qgemm_step_widened with the rows' words widened before (`row_words` apart: two per group).
template <size_t R, size_t P, bool AUnsigned>
[[gnu::always_inline]] inline void qgemm_step_words(const uint32_t *wide, size_t row_words, const uint8_t *b,
                                                    size_t panel_bytes, qvec (&acc)[R][P * kQPanelVectors])
{
   qvec16 even[P * kQPanelVectors], odd[P * kQPanelVectors];
   qwiden_panels<P, AUnsigned>(b, panel_bytes, even, odd);
#pragma GCC unroll 16
   for (size_t r = 0; r < R; ++r) {
      const qvec e = qvec{} + static_cast<int32_t>(wide[r * row_words]);
      const qvec o = qvec{} + static_cast<int32_t>(wide[r * row_words + 1]);
      qvec16 x_even, x_odd;
      std::memcpy(&x_even, &e, sizeof e);
      std::memcpy(&x_odd, &o, sizeof o);
      qmadd_row(x_even, x_odd, even, odd, acc[r]);
   }
}
#endif

// One group of four k of a register tile: the P panels' vectors loaded once, each row's four bytes broadcast
// (`count` of them: fewer at the end of K) and multiplied into every vector.  Unrolled whole, so that the
// accumulators stay in registers.
template <size_t R, size_t P, bool AUnsigned>
[[gnu::always_inline]] inline void qgemm_step(const uint8_t *a, size_t lda, const uint8_t *b, size_t panel_bytes,
                                              size_t count, qvec (&acc)[R][P * kQPanelVectors])
{
#if SOFIE_RDF_X86
   if constexpr (kQWiden) {
      qgemm_step_widened<R, P, AUnsigned>(a, lda, b, panel_bytes, count, acc);
      return;
   }
#endif
   constexpr size_t V = P * kQPanelVectors;
   qvec panel[V];
#pragma GCC unroll 16
   for (size_t p = 0; p < P; ++p)
      std::memcpy(&panel[p * kQPanelVectors], b + p * panel_bytes, kQGroupBytes);
#pragma GCC unroll 16
   for (size_t r = 0; r < R; ++r) {
      qvec x;
      broadcast4(x, a + r * lda, count);
#pragma GCC unroll 16
      for (size_t v = 0; v < V; ++v) {
         if constexpr (AUnsigned)
            dot4(acc[r][v], x, panel[v]);
         else
            dot4(acc[r][v], panel[v], x);
      }
   }
}

// One register tile: R rows of A (AUnsigned: uint8) by P panels over all of K; acc[r][p * kQPanelVectors + v]
// ends as vector v of panel p of row r.
template <size_t R, size_t P, bool AUnsigned>
inline void qgemm_tile(const uint8_t *a, size_t lda, const uint32_t *wide, const uint8_t *b, size_t panel_bytes, size_t k,
                       qvec (&acc)[R][P * kQPanelVectors])
{
   constexpr size_t V = P * kQPanelVectors;
#pragma GCC unroll 16
   for (size_t r = 0; r < R; ++r)
#pragma GCC unroll 16
      for (size_t v = 0; v < V; ++v)
         acc[r][v] = qvec{};
   const size_t whole = k / kQGroup;
#if SOFIE_RDF_X86
   if (kQWiden && wide) {  // the rows' words widened before (qgemm_widen_rows)
      const size_t groups = (k + kQGroup - 1) / kQGroup;
      for (size_t g = 0; g < groups; ++g)
         qgemm_step_words<R, P, AUnsigned>(wide + 2 * g, 2 * groups, b + g * kQGroupBytes, panel_bytes, acc);
      return;
   }
#endif
   static_cast<void>(wide);
   for (size_t g = 0; g < whole; ++g)
      qgemm_step<R, P, AUnsigned>(a + g * kQGroup, lda, b + g * kQGroupBytes, panel_bytes, kQGroup, acc);
   if (k % kQGroup)
      qgemm_step<R, P, AUnsigned>(a + whole * kQGroup, lda, b + whole * kQGroupBytes, panel_bytes, k % kQGroup, acc);
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

// One panel's row of C as the registers hold it (16 int32: one AVX-512 register, two AVX ones): its zero-point
// corrections and the output stages work on it in registers, a register at a time (GCC lowers a 64-byte vector
// type on AVX2 through the stack: with the byte narrowing done lane by lane, 40% of an int8 convolution's
// product time went to its output stage on an AMD EPYC); the last, partial panel of a product goes through arrays.
typedef qvec qpanel[kQPanelVectors];
// Floats in one register of qvec's width (the output stages' arithmetic).
typedef float qfloat __attribute__((vector_size(sizeof(qvec))));

// v's bytes from p (an out-parameter: a function returning a 64-byte vector changes the ABI where the target has
// no such registers, and GCC warns).
template <typename T>
inline void qload(T &v, const void *p)
{
   std::memcpy(&v, p, sizeof v);
}

// C's corrections of one panel's row (row m, columns n0 ...): the whole panel as vectors.
[[gnu::always_inline]] inline void qgemm_correct_panel(const QSums &q, size_t m, size_t n0, int32_t row_sum, qpanel &v)
{
#pragma GCC unroll 4
   for (size_t h = 0; h < kQPanelVectors; ++h) {
      const size_t n = n0 + h * kQLanes;
      if (q.row_offset)
         v[h] += q.row_offset[m];
      qvec t;
      if (q.column_offset) {
         qload(t, q.column_offset + n);
         v[h] += t;
      }
      if (q.column_sum) {
         qload(t, q.column_sum + n);
         v[h] -= q.row_zero[m] * t;
      }
      if (q.column_zero) {
         qload(t, q.column_zero + n);
         v[h] -= t * row_sum;
      }
      if (q.addend)
         for (size_t j = 0; j < kQLanes; ++j)
            v[h][j] += q.addend[m * q.addend_row_step + (n + j) * q.addend_column_step];
   }
}

// The same for the first `count` columns, value by value.
inline void qgemm_correct(const QSums &q, size_t m, size_t n0, size_t count, int32_t row_sum, int32_t *v)
{
   for (size_t j = 0; j < count; ++j) {
      const size_t n = n0 + j;
      v[j] += (q.row_offset ? q.row_offset[m] : 0) + (q.column_offset ? q.column_offset[n] : 0) -
              (q.column_sum ? q.row_zero[m] * q.column_sum[n] : 0) - (q.column_zero ? q.column_zero[n] * row_sum : 0) +
              (q.addend ? q.addend[m * q.addend_row_step + n * q.addend_column_step] : 0);
   }
}

// C's row of one panel corrected and handed to the stage: store_panel for a whole one, store for the rest.
template <typename Stage>
[[gnu::always_inline]] inline void qgemm_store(const Stage &stage, const QSums &q, size_t m, size_t n0, size_t count,
                                               const qvec *acc, int32_t row_sum)
{
   if (count == kQPanelColumns) {
      qpanel v;
      std::memcpy(v, acc, sizeof v);
      qgemm_correct_panel(q, m, n0, row_sum, v);
      stage.store_panel(m, n0, v);
   } else {
      int32_t v[kQPanelColumns];
      std::memcpy(v, acc, sizeof v);
      qgemm_correct(q, m, n0, count, row_sum, v);
      stage.store(m, n0, v, count);
   }
}

// One tile computed and stored: rows m0 ... m0 + R - 1, panels p0 ... p0 + P - 1.
template <size_t R, size_t P, bool AUnsigned, typename Stage>
inline void qgemm_block(const Stage &stage, const QSums &q, const uint8_t *a, size_t lda, const uint32_t *wide,
                        const uint8_t *b, size_t panel_bytes, size_t m0, size_t p0, size_t n, size_t k,
                        const int32_t *row_sums)
{
   qvec acc[R][P * kQPanelVectors];
   qgemm_tile<R, P, AUnsigned>(a, lda, wide, b + p0 * panel_bytes, panel_bytes, k, acc);
   for (size_t r = 0; r < R; ++r)
      for (size_t p = 0; p < P; ++p) {
         const size_t n0 = (p0 + p) * kQPanelColumns;
         qgemm_store(stage, q, m0 + r, n0, n - n0 < kQPanelColumns ? n - n0 : kQPanelColumns, &acc[r][p * kQPanelVectors],
                     row_sums[r]);
      }
}

// ---- AMX: Intel's tile matrix unit (Sapphire Rapids and later), where the native compiler targets it --------
//
// A tile is up to 16 rows of 64 bytes; one tdpbusd adds a 16 x 64 block of A times 64 k of a panel (16 of its
// groups: the packed layout is AMX's) into a 16 x 16 int32 tile of C, 16384 products.  A block of 32 rows of A is
// copied into `scratch` first, its depth padded with zeros to the panels' (rows and the end of a buffer are then
// never read past); the tiles of C go to a buffer and through the same epilogue as the VNNI tiles.  Linux lends
// the tile registers to a process that asks (arch_prctl ARCH_REQ_XCOMP_PERM for XTILEDATA), once: where it
// refuses, the VNNI tiles run.
constexpr size_t kAmxRows = 16;
constexpr size_t kAmxBlockRows = 2 * kAmxRows; // rows of A per block: two tiles
#if defined(__AMX_INT8__) && defined(__AMX_TILE__) && defined(__linux__) && defined(__x86_64__)
#define SOFIE_RDF_AMX 1

inline bool amx_permitted()
{
   static const bool permitted = [] {
      long result;
      constexpr long kArchPrctl = 158, kRequestPermission = 0x1023, kTileData = 18;
      __asm__ volatile("syscall" : "=a"(result) : "a"(kArchPrctl), "D"(kRequestPermission), "S"(kTileData)
                       : "rcx", "r11", "memory");
      return result == 0;
   }();
   return permitted;
}

// Eight tiles of 16 rows x 64 bytes: C in tmm0-3, A in tmm4-5, B in tmm6-7.
inline void amx_configure()
{
   struct alignas(64) {
      uint8_t palette, start_row, reserved[14];
      uint16_t colsb[16];
      uint8_t rows[16];
   } config{};
   config.palette = 1;
   for (size_t t = 0; t < 8; ++t) {
      config.colsb[t] = 64;
      config.rows[t] = kAmxRows;
   }
   __asm__ volatile("ldtilecfg %0" ::"m"(config));
}

#define SOFIE_RDF_TILE_LOAD(tile, base, stride) \
   __asm__ volatile("tileloadd (%0,%1,1), %%tmm" #tile ::"r"(base), "r"(static_cast<long>(stride)) : "memory")
#define SOFIE_RDF_TILE_STORE(tile, base, stride) \
   __asm__ volatile("tilestored %%tmm" #tile ", (%0,%1,1)" ::"r"(base), "r"(static_cast<long>(stride)) : "memory")
// C += A B with A's bytes unsigned and B's signed (tdpbusd) or the other way round (tdpbsud).
#define SOFIE_RDF_TILE_DOT(a_unsigned, c, a, b)                        \
   do {                                                                   \
      if constexpr (a_unsigned)                                           \
         __asm__ volatile("tdpbusd %%tmm" #b ", %%tmm" #a ", %%tmm" #c ::); \
      else                                                                \
         __asm__ volatile("tdpbsud %%tmm" #b ", %%tmm" #a ", %%tmm" #c ::); \
   } while (0)

// One block: rows m0 ... m0 + 31 of A (copied to `block`, kp bytes a row) by panels p0 and, where `two`, p0 + 1.
template <bool AUnsigned, typename Stage>
inline void qgemm_amx_block(const Stage &stage, const QSums &q, const uint8_t *block, size_t kp, const uint8_t *b,
                            size_t panel_bytes, size_t m0, size_t p0, bool two, size_t n, const int32_t *row_sums)
{
   alignas(64) int32_t c[kAmxBlockRows][2 * kQPanelColumns];
   const uint8_t *b0 = b + p0 * panel_bytes, *b1 = b0 + panel_bytes;
   __asm__ volatile("tilezero %%tmm0\n\ttilezero %%tmm1\n\ttilezero %%tmm2\n\ttilezero %%tmm3" ::);
   for (size_t chunk = 0; chunk < kp / kQTileDepth; ++chunk) {
      SOFIE_RDF_TILE_LOAD(4, block + chunk * kQTileDepth, kp);
      SOFIE_RDF_TILE_LOAD(5, block + kAmxRows * kp + chunk * kQTileDepth, kp);
      SOFIE_RDF_TILE_LOAD(6, b0 + chunk * kAmxRows * kQGroupBytes, kQGroupBytes);
      SOFIE_RDF_TILE_DOT(AUnsigned, 0, 4, 6);
      SOFIE_RDF_TILE_DOT(AUnsigned, 2, 5, 6);
      if (two) {
         SOFIE_RDF_TILE_LOAD(7, b1 + chunk * kAmxRows * kQGroupBytes, kQGroupBytes);
         SOFIE_RDF_TILE_DOT(AUnsigned, 1, 4, 7);
         SOFIE_RDF_TILE_DOT(AUnsigned, 3, 5, 7);
      }
   }
   constexpr size_t ldc = sizeof c[0];
   SOFIE_RDF_TILE_STORE(0, &c[0][0], ldc);
   SOFIE_RDF_TILE_STORE(1, &c[0][kQPanelColumns], ldc);
   SOFIE_RDF_TILE_STORE(2, &c[kAmxRows][0], ldc);
   SOFIE_RDF_TILE_STORE(3, &c[kAmxRows][kQPanelColumns], ldc);
   for (size_t r = 0; r < kAmxBlockRows; ++r)
      for (size_t p = 0; p < (two ? 2u : 1u); ++p) {
         const size_t n0 = (p0 + p) * kQPanelColumns;
         qgemm_store(stage, q, m0 + r, n0, n - n0 < kQPanelColumns ? n - n0 : kQPanelColumns,
                     reinterpret_cast<const qvec *>(&c[r][p * kQPanelColumns]), row_sums[r]);
      }
}

// The rows of A in whole blocks through the tiles; how many it did (0 where AMX is not permitted).
template <bool AUnsigned, typename Stage>
inline size_t qgemm_amx(size_t m, size_t n, size_t k, const uint8_t *a, size_t lda, const uint8_t *b, const QSums &q,
                        const Stage &stage, uint8_t *scratch)
{
   if (!scratch || m < kAmxBlockRows || !amx_permitted())
      return 0;
   const size_t panel_bytes = qgemm_panel_bytes(k), panels = (n + kQPanelColumns - 1) / kQPanelColumns;
   const size_t kp = (k + kQTileDepth - 1) / kQTileDepth * kQTileDepth;
   amx_configure();
   int32_t row_sums[kAmxBlockRows] = {};
   size_t m0 = 0;
   for (; m0 + kAmxBlockRows <= m; m0 += kAmxBlockRows) {
      for (size_t r = 0; r < kAmxBlockRows; ++r) {
         std::memcpy(scratch + r * kp, a + (m0 + r) * lda, k);
         std::memset(scratch + r * kp + k, 0, kp - k);
      }
      if (q.column_zero)
         qgemm_row_sums<AUnsigned>(a + m0 * lda, lda, kAmxBlockRows, k, row_sums);
      for (size_t p0 = 0; p0 < panels; p0 += 2)
         qgemm_amx_block<AUnsigned>(stage, q, scratch, kp, b, panel_bytes, m0, p0, p0 + 1 < panels, n, row_sums);
   }
   __asm__ volatile("tilerelease" ::);
   return m0;
}
#endif

// Bytes of the scratch qgemm's AMX blocks need for depth k (a target without AMX passes none).
constexpr size_t qgemm_scratch_bytes(size_t k)
{
   return kAmxBlockRows * ((k + kQTileDepth - 1) / kQTileDepth * kQTileDepth);
}

// C = A B for m x k A (lda apart) and packed B (n columns, in panels of kQPanelColumns), corrected as `q` says and
// stored by `stage` (an object with store_panel and store, see QStoreInt32).  `scratch` (qgemm_scratch_bytes(k), or
// null) lets whole blocks of rows run on AMX where the compiler targets it; the rest run the VNNI tiles.
template <bool AUnsigned, typename Stage>
SOFIE_RDF_KERNEL void qgemm(size_t m, size_t n, size_t k, const uint8_t *a, size_t lda, const uint8_t *b,
                            const QSums &q, Stage stage, uint8_t *scratch = nullptr)
{
   const size_t panel_bytes = qgemm_panel_bytes(k), panels = (n + kQPanelColumns - 1) / kQPanelColumns;
   int32_t row_sums[kQTileRows] = {};
   size_t m0 = 0;
#if defined(SOFIE_RDF_AMX)
   m0 = qgemm_amx<AUnsigned>(m, n, k, a, lda, b, q, stage, scratch);
#else
   static_cast<void>(scratch);
#endif
   // Without VNNI, each block of rows widened once for all the panels (qgemm_widen_rows).
   alignas(64) uint32_t words[kQWiden ? 2 * kQTileRows * kQWideGroups : 1];
   const bool widen = kQWiden && (k + kQGroup - 1) / kQGroup <= kQWideGroups;
   const uint32_t *wide = widen ? words : nullptr;
   for (; m0 + kQTileRows <= m; m0 += kQTileRows) {
      const uint8_t *rows = a + m0 * lda;
      if (q.column_zero)
         qgemm_row_sums<AUnsigned>(rows, lda, kQTileRows, k, row_sums);
#if SOFIE_RDF_X86
      if (widen)
         qgemm_widen_rows<AUnsigned>(rows, lda, kQTileRows, k, words);
#endif
      size_t p0 = 0;
      for (; p0 + kQTilePanels <= panels; p0 += kQTilePanels)
         qgemm_block<kQTileRows, kQTilePanels, AUnsigned>(stage, q, rows, lda, wide, b, panel_bytes, m0, p0, n, k, row_sums);
      for (; p0 < panels; ++p0)
         qgemm_block<kQTileRows, 1, AUnsigned>(stage, q, rows, lda, wide, b, panel_bytes, m0, p0, n, k, row_sums);
   }
   for (; m0 < m; ++m0) {
      const uint8_t *row = a + m0 * lda;
      if (q.column_zero)
         qgemm_row_sums<AUnsigned>(row, lda, 1, k, row_sums);
#if SOFIE_RDF_X86
      if (widen)
         qgemm_widen_rows<AUnsigned>(row, lda, 1, k, words);
#endif
      size_t p0 = 0;
      for (; p0 + kQRowPanels <= panels; p0 += kQRowPanels)
         qgemm_block<1, kQRowPanels, AUnsigned>(stage, q, row, lda, wide, b, panel_bytes, m0, p0, n, k, row_sums);
      for (; p0 < panels; ++p0)
         qgemm_block<1, 1, AUnsigned>(stage, q, row, lda, wide, b, panel_bytes, m0, p0, n, k, row_sums);
   }
}

// ---- output stages: what becomes of C's int32 values ----------------------------------------------------

// C as it is (MatMulInteger, ConvInteger).
struct QStoreInt32 {
   int32_t *y;
   size_t ldy;
   QStoreInt32 moved(size_t offset, size_t) const { return {y + offset, ldy}; }
   void store_panel(size_t m, size_t n0, const qpanel &v) const { std::memcpy(y + m * ldy + n0, v, sizeof v); }
   void store(size_t m, size_t n0, const int32_t *v, size_t count) const
   {
      std::memcpy(y + m * ldy + n0, v, count * sizeof *v);
   }
};

// A panel's 16 int32, each in T's range, stored as T: on x86 by SSE2's packs (four registers of four to 16 bytes:
// GCC narrows a vector lane by lane, through general registers), else as the compiler converts vectors.
template <typename T>
[[gnu::always_inline]] inline void qnarrow(const qpanel &r, T *out)
{
#if SOFIE_RDF_X86
   typedef int32_t i32x4 __attribute__((vector_size(16)));
   typedef short i16x8 __attribute__((vector_size(16)));
   typedef char i8x16 __attribute__((vector_size(16)));
   i32x4 q[4];
   std::memcpy(q, r, sizeof q);
   const i16x8 low = __builtin_ia32_packssdw128(q[0], q[1]), high = __builtin_ia32_packssdw128(q[2], q[3]);
   i8x16 bytes;
   if constexpr (std::is_signed<T>::value)
      bytes = __builtin_ia32_packsswb128(low, high);
   else
      bytes = __builtin_ia32_packuswb128(low, high);
   std::memcpy(out, &bytes, sizeof bytes);
#else
   typedef T qbytes __attribute__((vector_size(kQLanes)));
   for (size_t h = 0; h < kQPanelVectors; ++h) {
      const qbytes b = __builtin_convertvector(r[h], qbytes);
      std::memcpy(out + h * kQLanes, &b, sizeof b);
   }
#endif
}

// saturate(round_half_even(C * multiplier) + zero), clamped to [lo, hi] (T's range; a fused ReLU or Clip narrows
// it to the quantized bounds); the multiplier per row or per column (steps 0 or 1), rounded to float as
// onnxruntime's MlasRequantizeOutput computes it.  Rounding adds and subtracts 1.5 x 2^23 (exact below 2^22 in
// magnitude, which the clamp to the 8-bit range ensures; std::nearbyint is a call no loop vectorizes around).
template <typename T>
struct QRequantize {
   static constexpr float kRound = 12582912.0f;
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
   // A whole panel's row, in vectors of the registers' width, its bytes narrowed in a loop the compilers vectorize.
   // The panel as one 64-byte vector ran lane by lane on AVX2 (GCC lowers the clamps and the narrowing of vectors
   // wider than the registers so: 60% of a convolution's product time), and so do plain loops' clamps (if-converted,
   // not vectorized, under trapping math).  The members are read into locals first: a store through T, a byte type,
   // may change any of them.
   void store_panel(size_t m, size_t n0, const qpanel &v) const
   {
      store_vectors(m, n0, [&](size_t h) { return __builtin_convertvector(v[h], qfloat); });
   }
   // The same of a panel's row of float sums (qconv_float_output's), read from v.
   void store_floats(size_t m, size_t n0, const float *v) const
   {
      store_vectors(m, n0, [&](size_t h) {
         qfloat f;
         qload(f, v + h * kQLanes);
         return f;
      });
   }
   // The panel's row whose vector h is value(h), as floats.
   template <typename Value>
   [[gnu::always_inline]] void store_vectors(size_t m, size_t n0, Value value) const
   {
      const float *mult = multiplier + m * row_step + n0 * column_step;
      const float low = static_cast<float>(lo - zero), high = static_cast<float>(hi - zero);
      const int32_t z = zero;
      qpanel r;
#pragma GCC unroll 4
      for (size_t h = 0; h < kQPanelVectors; ++h) {
         qfloat factor = qfloat{} + mult[0];
         if (column_step)
            qload(factor, mult + h * kQLanes);
         qfloat f = value(h) * factor;
         f = f < low ? low : f;
         f = f > high ? high : f;
         r[h] = __builtin_convertvector((f + kRound) - kRound, qvec) + z;
      }
      qnarrow<T>(r, y + m * ldy + n0);
   }
   template <typename V>
   void store(size_t m, size_t n0, const V *v, size_t count) const
   {
      const float *mult = multiplier + m * row_step + n0 * column_step;
      const float low = static_cast<float>(lo - zero), high = static_cast<float>(hi - zero);
      for (size_t j = 0; j < count; ++j) {
         float f = static_cast<float>(v[j]) * mult[j * column_step];
         f = f < low ? low : (f > high ? high : f);
         y[m * ldy + n0 + j] = static_cast<T>(static_cast<int32_t>((f + kRound) - kRound) + zero);
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
   // The `count` values of row m from column n0, in loops the compilers vectorize (QRequantize::store_panel says why).
   [[gnu::always_inline]] void scale_values(size_t m, size_t n0, const int32_t *v, size_t count) const
   {
      const float *s = scale + m * row_step + n0 * column_step;
      float f[kQPanelColumns];
      if (column_step)
         for (size_t j = 0; j < count; ++j)
            f[j] = static_cast<float>(v[j]) * s[j];
      else
         for (size_t j = 0; j < count; ++j)
            f[j] = static_cast<float>(v[j]) * s[0];
      if (bias && bias_column_step) {
         const float *b = bias + m * bias_row_step + n0;
         for (size_t j = 0; j < count; ++j)
            f[j] += b[j];
      } else if (bias) {
         const float b = bias[m * bias_row_step];
         for (size_t j = 0; j < count; ++j)
            f[j] += b;
      }
      float *out = y + m * ldy + n0;
      for (size_t j = 0; j < count; ++j)
         out[j] = act(f[j]);
   }
   // A whole panel's row in vectors of the registers' width, as QRequantize::store_panel: scale_values' loops over
   // a panel ran scalar under GCC (vcvtsi2ss and vmulss per value: a fifth of a dynamically quantized MLP's product
   // time at batch 64, Xeon, AVX-512).  The same operations per value, in the same order.
   void store_panel(size_t m, size_t n0, const qpanel &v) const
   {
      const float *s = scale + m * row_step + n0 * column_step;
      const float *b = bias ? bias + m * bias_row_step + (bias_column_step ? n0 : 0) : nullptr;
      float *out = y + m * ldy + n0;
#pragma GCC unroll 4
      for (size_t h = 0; h < kQPanelVectors; ++h) {
         qfloat factor = qfloat{} + s[0];
         if (column_step)
            qload(factor, s + h * kQLanes);
         qfloat f = __builtin_convertvector(v[h], qfloat) * factor;
         if (b) {
            qfloat add = qfloat{} + b[0];
            if (bias_column_step)
               qload(add, b + h * kQLanes);
            f += add;
         }
         float lanes[kQLanes];
         std::memcpy(lanes, &f, sizeof f);
#pragma GCC unroll 16
         for (size_t j = 0; j < kQLanes; ++j)
            out[h * kQLanes + j] = act(lanes[j]);
      }
   }
   void store(size_t m, size_t n0, const int32_t *v, size_t count) const { scale_values(m, n0, v, count); }
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
   const size_t panel_bytes = qgemm_panel_bytes(k), panels = (n + kQPanelColumns - 1) / kQPanelColumns;
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
   return (n + kQPanelColumns - 1) / kQPanelColumns * qgemm_panel_bytes(k);
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

// A convolution's geometry, every one seen as 3-D (lower ranks padded with ones in front); `padded` is the extent
// of the padded image each position of the grid reads (emitters/quantized.py: padded_extent).
struct QConvShape {
   size_t channels; // input channels of one group
   size_t image[3], kernel[3], grid[3], strides[3], dilations[3], pads[3], padded[3];

   size_t padded_plane() const { return padded[0] * padded[1] * padded[2]; }
   size_t depth() const { return channels * kernel[0] * kernel[1] * kernel[2]; }
   size_t columns() const { return grid[0] * grid[1] * grid[2]; }
};

// The bytes a convolution's packing needs: the padded copy of one group's channels plus a plane of zeros (what
// the rows past the depth read), then the packed columns.
inline size_t qconv_workspace_bytes(const QConvShape &s)
{
   return (s.channels + 1) * s.padded_plane() + qgemm_packed_bytes(s.columns(), s.depth());
}

// One group's channels (c0 ...) copied into `padded` with their padding filled with `pad` (x's zero point as
// stored, which subtracts to nothing), every byte flipped where `flip`; then a plane of zeros.
inline void qconv_pad(const uint8_t *x, size_t c0, const QConvShape &s, uint8_t pad, bool flip, uint8_t *padded)
{
   const size_t plane = s.image[0] * s.image[1] * s.image[2], padded_plane = s.padded_plane();
   const size_t width = s.image[2];  // a local: the byte stores below may alias s, and its loop would not vectorize
   const uint8_t mask = flip ? 0x80u : 0u;
   std::memset(padded, pad, s.channels * padded_plane);
   std::memset(padded + s.channels * padded_plane, 0, padded_plane);
   for (size_t c = 0; c < s.channels; ++c)
      for (size_t z = 0; z < s.image[0]; ++z)
         for (size_t y = 0; y < s.image[1]; ++y) {
            const uint8_t *src = x + (c0 + c) * plane + (z * s.image[1] + y) * width;
            uint8_t *dst = padded + c * padded_plane + ((z + s.pads[0]) * s.padded[1] + y + s.pads[1]) * s.padded[2] +
                           s.pads[2];
            for (size_t i = 0; i < width; ++i)
               dst[i] = static_cast<uint8_t>(src[i] ^ mask);
         }
}

// out[i] = the bytes i * step of four lines, as one little-endian word each.
template <typename Step>
[[gnu::always_inline]] inline void qconv_words(const uint8_t *l0, const uint8_t *l1, const uint8_t *l2, const uint8_t *l3,
                                               Step step, size_t count, uint32_t *out)
{
   const size_t stride = detail::stride_value(step);
   for (size_t i = 0; i < count; ++i) {
      const size_t at = i * stride;
      out[i] = static_cast<uint32_t>(l0[at]) | static_cast<uint32_t>(l1[at]) << 8 | static_cast<uint32_t>(l2[at]) << 16 |
               static_cast<uint32_t>(l3[at]) << 24;
   }
}

// The same for 16 consecutive bytes of each line, as vectors: the lines' bytes interleaved in pairs, then the
// pairs interleaved, into one 64-byte row of a panel: unpack instructions on 16-byte vectors (widening each byte
// to a word made GCC 12 write scalar code, and so did one 64-byte shuffle on AVX2).
inline void qconv_panel_words(const uint8_t *l0, const uint8_t *l1, const uint8_t *l2, const uint8_t *l3, uint32_t *out)
{
   typedef uint8_t u8x16 __attribute__((vector_size(16)));
   typedef uint16_t u16x8 __attribute__((vector_size(16)));
   u8x16 a, b, c, d;
   qload(a, l0), qload(b, l1), qload(c, l2), qload(d, l3);
   const u8x16 ab[2] = {__builtin_shufflevector(a, b, 0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23),
                        __builtin_shufflevector(a, b, 8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31)};
   const u8x16 cd[2] = {__builtin_shufflevector(c, d, 0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23),
                        __builtin_shufflevector(c, d, 8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31)};
#pragma GCC unroll 2
   for (size_t h = 0; h < 2; ++h) {
      u16x8 low, high;
      qload(low, &ab[h]), qload(high, &cd[h]);
      const u16x8 first = __builtin_shufflevector(low, high, 0, 8, 1, 9, 2, 10, 3, 11);
      const u16x8 second = __builtin_shufflevector(low, high, 4, 12, 5, 13, 6, 14, 7, 15);
      std::memcpy(out + 8 * h, &first, sizeof first);
      std::memcpy(out + 8 * h + 4, &second, sizeof second);
   }
}

// Packs the image columns from the padded copy: row k = (channel, kernel offset) in the weights' order, column j
// = output position, four consecutive k of a column in one 32-bit word; each group of four rows is read as four
// lines of the padded image and written as words, runs of a panel's columns at a time.
inline void qconv_pack(const uint8_t *padded, const QConvShape &s, uint8_t *packed)
{
   const size_t depth = s.depth(), groups = (depth + kQGroup - 1) / kQGroup;
   const size_t panel_words = qgemm_panel_bytes(depth) / sizeof(uint32_t), plane = s.padded_plane();
   const size_t taps = s.kernel[0] * s.kernel[1] * s.kernel[2], sx = s.strides[2];
   for (size_t g = 0; g < groups; ++g) {
      const uint8_t *base[kQGroup];
      for (size_t i = 0; i < kQGroup; ++i) {
         const size_t kk = g * kQGroup + i;
         if (kk >= depth) { // past the depth: the plane of zeros
            base[i] = padded + s.channels * plane;
            continue;
         }
         const size_t c = kk / taps, t = kk % taps;
         const size_t a = t / (s.kernel[1] * s.kernel[2]), b = t / s.kernel[2] % s.kernel[1], d = t % s.kernel[2];
         base[i] = padded + c * plane + (a * s.dilations[0] * s.padded[1] + b * s.dilations[1]) * s.padded[2] +
                   d * s.dilations[2];
      }
      uint32_t *words = reinterpret_cast<uint32_t *>(packed) + g * kQPanelColumns;
      size_t j = 0;
      for (size_t oz = 0; oz < s.grid[0]; ++oz)
         for (size_t oy = 0; oy < s.grid[1]; ++oy) {
            const size_t line = (oz * s.strides[0] * s.padded[1] + oy * s.strides[1]) * s.padded[2];
            const uint8_t *l0 = base[0] + line, *l1 = base[1] + line, *l2 = base[2] + line, *l3 = base[3] + line;
            for (size_t ox = 0; ox < s.grid[2];) {
               const size_t lane = j % kQPanelColumns;
               const size_t run = detail::min_of(kQPanelColumns - lane, s.grid[2] - ox);
               uint32_t *out = words + (j / kQPanelColumns) * panel_words + lane;
               if (sx == 1 && run == kQPanelColumns)  // a whole panel row from contiguous lines
                  qconv_panel_words(l0 + ox, l1 + ox, l2 + ox, l3 + ox, out);
               else if (sx == 1)
                  qconv_words(l0 + ox, l1 + ox, l2 + ox, l3 + ox, std::integral_constant<size_t, 1>{}, run, out);
               else
                  qconv_words(l0 + ox * sx, l1 + ox * sx, l2 + ox * sx, l3 + ox * sx, sx, run, out);
               ox += run;
               j += run;
            }
         }
      for (; j % kQPanelColumns; ++j) // the last panel's columns past the grid
         words[(j / kQPanelColumns) * panel_words + j % kQPanelColumns] = 0;
   }
   const size_t padding = panel_words - groups * kQPanelColumns;  // the groups past the depth: zeros
   for (size_t p = 0; p < (s.columns() + kQPanelColumns - 1) / kQPanelColumns; ++p)
      std::memset(reinterpret_cast<uint32_t *>(packed) + p * panel_words + groups * kQPanelColumns, 0,
                  padding * sizeof(uint32_t));
}

// The sum of each packed column's bytes (as `Signed` ones), for a weight zero point's term.
template <bool Signed>
inline void qconv_column_sums(const uint8_t *packed, size_t columns, size_t depth, int32_t *sums)
{
   const size_t panel_bytes = qgemm_panel_bytes(depth);
   for (size_t j = 0; j < columns; ++j) {
      const uint8_t *column = packed + (j / kQPanelColumns) * panel_bytes + (j % kQPanelColumns) * kQGroup;
      int32_t sum = 0;
      for (size_t kk = 0; kk < depth; ++kk) {
         const uint8_t byte = column[(kk / kQGroup) * kQGroupBytes + kk % kQGroup];
         sum += Signed ? static_cast<int32_t>(static_cast<int8_t>(byte)) : static_cast<int32_t>(byte);
      }
      sums[j] = sum;
   }
}

// Y = conv(x, w) for `batch` images of `groups` groups, w's rows (out_per_group per group, depth values each) the
// product's A (WUnsigned: uint8) and each group's packed image columns its B (x's bytes flipped where x has w's
// signedness, `pad` its zero point as stored).  row_offset[m] = bias[m] - x_zero S_w[m] as stored; w_zero per
// output channel (null: none), whose term needs the packed columns' sums (`column_sums`, one int32 per output
// position).  `work` holds qconv_workspace_bytes(s) bytes; `scratch` is qgemm's (null: no AMX blocks).
template <bool WUnsigned, typename Stage>
SOFIE_RDF_KERNEL void qconv(const uint8_t *x, const uint8_t *w, size_t batch, size_t groups, size_t out_per_group,
                            const QConvShape &s, uint8_t pad, bool flip, const int32_t *row_offset, const int32_t *w_zero,
                            uint8_t *work, int32_t *column_sums, Stage stage, uint8_t *scratch)
{
   const size_t plane = s.image[0] * s.image[1] * s.image[2], columns = s.columns(), depth = s.depth();
   uint8_t *padded = work, *packed = work + (s.channels + 1) * s.padded_plane();
   for (size_t i = 0; i < batch; ++i)
      for (size_t g = 0; g < groups; ++g) {
         qconv_pad(x + i * groups * s.channels * plane, g * s.channels, s, pad, flip, padded);
         qconv_pack(padded, s, packed);
         if (w_zero)
            qconv_column_sums<WUnsigned>(packed, columns, depth, column_sums);
         const size_t m0 = g * out_per_group;
         const QSums q{row_offset + m0, nullptr, w_zero ? w_zero + m0 : nullptr, w_zero ? column_sums : nullptr,
                       nullptr, nullptr, nullptr, 0, 0};
         qgemm<WUnsigned>(out_per_group, columns, depth, w + m0 * depth, depth, packed, q,
                          stage.moved((i * groups * out_per_group + m0) * columns, m0), scratch);
      }
}

// ---- convolutions in float where the integer products are slow ------------------------------------------------
//
// Without VNNI (AVX2, the generic build) the exact integer products run at half the rate of VNNI's, while a float
// 3x3 layer runs as Winograd with a quarter to 0.44 of the multiplications, and the float register tiles need no
// im2col (whose depth is padded to kQTileDepth: a first layer of one channel and 9 taps computes 64): the float
// convolution of the same integers is then up to twice as fast (a QDQ CNN on an AMD EPYC Zen 3).  So
// emitters/quantized.py lets such a layer (QLinearConv, a QDQ Conv; FLOAT_LAYOUTS says which kernels) compute
// conv(x - x_zero, w - w_zero) + bias in float where kQWiden holds, the integers taken exactly as floats, and
// requantize the sums as the integer stage does: what the QDQ graph itself computes in float, up to the rounding of
// the Winograd transforms (a byte may then differ by one where a value lies on a rounding boundary, as
// onnxruntime's own fusions allow).  With VNNI too, unless the compiler targets AMX: the integer route's im2col and
// tiles took 1.8x the float layers' time on a QDQ CNN (Xeon with AVX-512 VNNI, no AMX: 111 us against 62 us at
// batch 1), where the float route costs the conversions alone.
#if defined(SOFIE_RDF_AMX)
constexpr bool kQFloatConv = kQWiden;
#else
constexpr bool kQFloatConv = true;
#endif

// x - zero as floats: the input of a quantized convolution computed in float.
template <typename T>
SOFIE_RDF_KERNEL void qconv_float_input(const T *x, size_t count, int32_t zero, float *out)
{
   const float z = static_cast<float>(zero);
   for (size_t i = 0; i < count; ++i)
      out[i] = static_cast<float>(x[i]) - z;
}

// The float sums of `images` images of `channels` x `positions` requantized by `stage` (multipliers per channel
// or one): whole panels of 16 positions in vectors, the rest one by one.
template <typename T>
SOFIE_RDF_KERNEL void qconv_float_output(const float *sums, size_t images, size_t channels, size_t positions,
                                         const QRequantize<T> &stage)
{
   const size_t whole = positions / kQPanelColumns * kQPanelColumns;
   for (size_t i = 0; i < images; ++i) {
      const QRequantize<T> image = stage.moved(i * channels * positions, 0);
      for (size_t m = 0; m < channels; ++m) {
         const float *row = sums + (i * channels + m) * positions;
         for (size_t n0 = 0; n0 < whole; n0 += kQPanelColumns)
            image.store_floats(m, n0, row + n0);
         image.store(m, whole, row + whole, positions - whole);
      }
   }
}

// ---- convolutions on AMX without im2col ----------------------------------------------------------------------
//
// Where the compiler targets AMX, a convolution of one group whose stride along the lines is 1 reads its tiles
// of B straight from a copy of the image laid out four channels to a 32-bit word (each quad of channels a padded
// plane of words): the 16 words of 16 consecutive output positions at one kernel offset are one tile row of 64
// bytes, four consecutive k of a column as AMX wants them, and a tile's rows (up to 16 quads, `quads` of them)
// lie a plane apart.  C (16 output channels x 16 positions) then sums, over every kernel offset and every chunk
// of `quads` quads, the weights of that offset and chunk (tile A, laid out by emitters/quantized.py:
// amx_conv_weights) times that tile of the image: what im2col would have packed (the image read again for each
// offset, from L1) is never written.  Blocks are 2 x 2 tiles of C (32 channels x 32 positions), or 1 x 2 where
// the channels come in sixteens; positions past a line's end are computed from the next line's words and never
// stored.  The padded copy holds the image's bytes flipped as qconv's do (x's zero point as stored in the
// padding), and the same row offsets correct C.

// The most kernel offsets qconv_amx takes (emitters/quantized.py: AMX_CONV_TAPS).
constexpr size_t kQConvAmxTaps = 64;

// Bytes of a convolution's word-interleaved padded copy: `quads` quads of planes, then one tile row (what the
// last position tile of the last line reads past the end) and one line of the image's width, both `pad` (what a
// channel past the image's reads).
inline size_t qconv_amx_bytes(const QConvShape &s, size_t quads)
{
   return quads * s.padded_plane() * kQGroup + kQGroupBytes + s.image[2];
}

// The padded copy of one image: every byte `pad` (padding and the channels past the image's), then each line of
// four channels interleaved into words, flipped where `flip`.
inline void qconv_amx_pad(const uint8_t *x, const QConvShape &s, size_t quads, uint8_t pad, bool flip, uint8_t *out)
{
   const size_t plane = s.image[0] * s.image[1] * s.image[2], padded_plane = s.padded_plane(), width = s.image[2];
   const uint32_t mask = flip ? 0x80808080u : 0u;
   std::memset(out, pad, qconv_amx_bytes(s, quads));
   const uint8_t *pad_line = out + quads * padded_plane * kQGroup + kQGroupBytes;
   for (size_t q = 0; q < quads; ++q)
      for (size_t z = 0; z < s.image[0]; ++z)
         for (size_t y = 0; y < s.image[1]; ++y) {
            const uint8_t *line[kQGroup];
            for (size_t c = 0; c < kQGroup; ++c) {
               const size_t channel = q * kQGroup + c;
               line[c] = channel < s.channels ? x + channel * plane + (z * s.image[1] + y) * width : pad_line;
            }
            uint32_t *words = reinterpret_cast<uint32_t *>(out) + q * padded_plane +
                              ((z + s.pads[0]) * s.padded[1] + y + s.pads[1]) * s.padded[2] + s.pads[2];
            size_t i = 0;
            for (; i + kQPanelColumns <= width; i += kQPanelColumns)
               qconv_panel_words(line[0] + i, line[1] + i, line[2] + i, line[3] + i, words + i);
            qconv_words(line[0] + i, line[1] + i, line[2] + i, line[3] + i, std::integral_constant<size_t, 1>{},
                        width - i, words + i);
            if (mask)
               for (size_t j = 0; j < width; ++j)
                  words[j] ^= mask;
         }
}

#if defined(SOFIE_RDF_AMX)
// Tiles of C in tmm0-3 (16 x 16 int32), of the weights in tmm4-5 (16 channels x 4 quads bytes), of the image
// in tmm6-7 (quads rows of 16 words).
inline void amx_configure_conv(size_t quads)
{
   struct alignas(64) {
      uint8_t palette, start_row, reserved[14];
      uint16_t colsb[16];
      uint8_t rows[16];
   } config{};
   config.palette = 1;
   for (size_t t = 0; t < 8; ++t) {
      config.colsb[t] = static_cast<uint16_t>(t == 4 || t == 5 ? quads * kQGroup : kQGroupBytes);
      config.rows[t] = static_cast<uint8_t>(t >= 6 ? quads : kAmxRows);
   }
   __asm__ volatile("ldtilecfg %0" ::"m"(config));
}

// Where one block reads: the weights' tiles of its first 16 channels (`channel_step` bytes to the next 16), the
// image's words at its first position for kernel offset 0 (`offset` bytes on for each offset), a plane of quads
// between tile rows.
struct QConvAmxBlock {
   const uint8_t *w, *x;
   size_t channel_step, tap_bytes, plane_bytes, chunk_bytes, chunks;
   const size_t *offset;
   size_t taps;
};

// One block of MT x 2 tiles of C (MT 16-channel tiles by two 16-position tiles), its sums into c.
template <size_t MT, bool WUnsigned>
inline void qconv_amx_tiles(const QConvAmxBlock &b, int32_t (*c)[2 * kQPanelColumns])
{
   __asm__ volatile("tilezero %%tmm0\n\ttilezero %%tmm1\n\ttilezero %%tmm2\n\ttilezero %%tmm3" ::);
   const uint8_t *w = b.w;
   for (size_t t = 0; t < b.taps; ++t)
      for (size_t chunk = 0; chunk < b.chunks; ++chunk, w += b.tap_bytes) {
         const uint8_t *x = b.x + b.offset[t] + chunk * b.chunk_bytes;
         SOFIE_RDF_TILE_LOAD(6, x, b.plane_bytes);
         SOFIE_RDF_TILE_LOAD(7, x + kQGroupBytes, b.plane_bytes);
         SOFIE_RDF_TILE_LOAD(4, w, b.tap_bytes / kAmxRows);
         SOFIE_RDF_TILE_DOT(WUnsigned, 0, 4, 6);
         SOFIE_RDF_TILE_DOT(WUnsigned, 1, 4, 7);
         if constexpr (MT == 2) {
            SOFIE_RDF_TILE_LOAD(5, w + b.channel_step, b.tap_bytes / kAmxRows);
            SOFIE_RDF_TILE_DOT(WUnsigned, 2, 5, 6);
            SOFIE_RDF_TILE_DOT(WUnsigned, 3, 5, 7);
         }
      }
   constexpr size_t ldc = sizeof c[0];
   SOFIE_RDF_TILE_STORE(0, &c[0][0], ldc);
   SOFIE_RDF_TILE_STORE(1, &c[0][kQPanelColumns], ldc);
   if constexpr (MT == 2) {
      SOFIE_RDF_TILE_STORE(2, &c[kAmxRows][0], ldc);
      SOFIE_RDF_TILE_STORE(3, &c[kAmxRows][kQPanelColumns], ldc);
   }
}

// The blocks of channels `first` ... `last` - 1 of one image, MT tiles of channels at a time, each line of the
// output grid in runs of 32 positions.
template <size_t MT, bool WUnsigned, typename Stage>
inline void qconv_amx_image(const uint8_t *x4, const uint8_t *w_tiles, size_t first, size_t last, const QConvShape &s,
                            size_t quads, size_t chunks, const size_t *offset, const QSums &q, const Stage &stage)
{
   alignas(64) int32_t c[MT * kAmxRows][2 * kQPanelColumns];
   const size_t taps = s.kernel[0] * s.kernel[1] * s.kernel[2], width = s.grid[2];
   const size_t tap_bytes = kAmxRows * quads * kQGroup, plane_bytes = s.padded_plane() * kQGroup;
   for (size_t m0 = first; m0 < last; m0 += MT * kAmxRows)
      for (size_t oz = 0; oz < s.grid[0]; ++oz)
         for (size_t oy = 0; oy < s.grid[1]; ++oy) {
            const size_t line = ((oz * s.strides[0]) * s.padded[1] + oy * s.strides[1]) * s.padded[2];
            for (size_t ox = 0; ox < width; ox += 2 * kQPanelColumns) {
               const QConvAmxBlock b{w_tiles + m0 / kAmxRows * taps * chunks * tap_bytes, x4 + (line + ox) * kQGroup,
                                     taps * chunks * tap_bytes, tap_bytes, plane_bytes, quads * plane_bytes, chunks,
                                     offset, taps};
               qconv_amx_tiles<MT, WUnsigned>(b, c);
               const size_t n0 = (oz * s.grid[1] + oy) * width + ox;
               for (size_t r = 0; r < MT * kAmxRows; ++r)
                  for (size_t p = 0; p < 2 && ox + p * kQPanelColumns < width; ++p) {
                     const size_t first = ox + p * kQPanelColumns;
                     const size_t count = width - first < kQPanelColumns ? width - first : kQPanelColumns;
                     qgemm_store(stage, q, m0 + r, n0 + p * kQPanelColumns, count,
                                 reinterpret_cast<const qvec *>(&c[r][p * kQPanelColumns]), 0);
                  }
            }
         }
}
#endif

// Y = conv(x, w) for `batch` images of one group through the AMX tiles, as the comment above says: w_tiles from
// emitters/quantized.py (amx_conv_weights: out_channels a multiple of 16, `quads` quads of channels a chunk, `chunks`
// chunks), `work` qconv_amx_bytes(s, quads * chunks) bytes; the rest as qconv has them.  False, computing nothing,
// where the tiles cannot run (the compiler does not target AMX, or Linux does not lend the tile registers).
template <bool WUnsigned, typename Stage>
SOFIE_RDF_KERNEL bool qconv_amx(const uint8_t *x, const uint8_t *w_tiles, size_t batch, size_t out_channels,
                                const QConvShape &s, size_t quads, size_t chunks, uint8_t pad, bool flip,
                                const int32_t *row_offset, uint8_t *work, Stage stage)
{
#if defined(SOFIE_RDF_AMX)
   if (!amx_permitted())
      return false;
   size_t offset[kQConvAmxTaps];
   size_t t = 0;
   for (size_t a = 0; a < s.kernel[0]; ++a)
      for (size_t b = 0; b < s.kernel[1]; ++b)
         for (size_t d = 0; d < s.kernel[2]; ++d)
            offset[t++] = ((a * s.dilations[0] * s.padded[1] + b * s.dilations[1]) * s.padded[2] + d * s.dilations[2]) *
                          kQGroup;
   const size_t plane = s.image[0] * s.image[1] * s.image[2], columns = s.columns();
   const QSums q{row_offset, nullptr, nullptr, nullptr, nullptr, nullptr, nullptr, 0, 0};
   amx_configure_conv(quads);
   for (size_t i = 0; i < batch; ++i) {
      qconv_amx_pad(x + i * s.channels * plane, s, quads * chunks, pad, flip, work);
      const Stage image = stage.moved(i * out_channels * columns, 0);
      const size_t pairs = out_channels / (2 * kAmxRows) * (2 * kAmxRows); // channels in 32s, then a 16
      qconv_amx_image<2, WUnsigned>(work, w_tiles, 0, pairs, s, quads, chunks, offset, q, image);
      qconv_amx_image<1, WUnsigned>(work, w_tiles, pairs, out_channels, s, quads, chunks, offset, q, image);
   }
   __asm__ volatile("tilerelease" ::);
   return true;
#else
   static_cast<void>(x), static_cast<void>(w_tiles), static_cast<void>(batch), static_cast<void>(out_channels);
   static_cast<void>(s), static_cast<void>(quads), static_cast<void>(chunks), static_cast<void>(pad);
   static_cast<void>(flip), static_cast<void>(row_offset), static_cast<void>(work), static_cast<void>(stage);
   return false;
#endif
}
