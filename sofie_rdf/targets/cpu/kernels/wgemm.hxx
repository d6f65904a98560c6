// Products with weights stored smaller than float (sr.compile(..., weights="bf16" | "fp16" | "int8")), computed in
// float: Y = act(alpha * A W + beta * C), W read 16 columns at a time and widened to float in registers.
//
// At a few rows (one event) a product streams its weights from memory once per call and does little else, so
// half (bfloat16, float16) or a quarter (int8, one scale per column applied to the sums) of the bytes is about
// that fraction of the time.  W is stored in panels of 64 columns, each K x 64 (N zero-padded to whole panels),
// so that a tile streams its weights from contiguous memory.  The widening: a bfloat16 is
// the upper half of its float; a float16's exponent and mantissa shifted into a float's and rescaled by 2^112
// (exact, subnormals included; infinities and NaNs kept) where the compiler targets no F16C (generic x86-64),
// else vcvtph2ps; an int8 sign-extended.  A vector of 16 columns is held as kWeightParts registers of the target's
// width (simd.hxx's vfloat: one AVX-512, two AVX, four SSE): GCC lowers a 64-byte vector type on a narrower
// target through the stack, and the Generator's bf16 weights then ran 4x slower than float32 on an AMD EPYC.
#ifndef SOFIE_RDF_KERNEL
#define SOFIE_RDF_KERNEL [[gnu::noinline]] inline
#endif
constexpr size_t kWeightColumns = 16;                                  // columns per vector of weights
constexpr size_t kWeightVectors = 4;                                   // vectors per panel
constexpr size_t kWeightPanel = kWeightColumns * kWeightVectors;       // emitters/reduced.py: PANEL_COLUMNS
constexpr size_t kWeightParts = kWeightColumns / kVFloatLanes;         // registers per vector
typedef uint32_t wuint __attribute__((vector_size(sizeof(vfloat))));   // vfloat's lanes as bits
typedef vfloat wvector[kWeightParts];                                   // 16 columns

// A register tile: kWeightTileRows rows of A by kWeightTileVectors vectors of columns, kWeightRowVectors for a
// single row (one event: more independent sums in flight).  The tiles shrink with the registers: AVX-512's 32
// hold 4 x 4 vectors of sums, AVX2's 16 (two a vector) 2 x 2, SSE's 16 (four a vector) one row of two.
#if SOFIE_RDF_AVX512
constexpr size_t kWeightTileRows = 4, kWeightTileVectors = 4, kWeightRowVectors = 8;
#elif SOFIE_RDF_AVX2
constexpr size_t kWeightTileRows = 2, kWeightTileVectors = 2, kWeightRowVectors = 4;
#else
constexpr size_t kWeightTileRows = 1, kWeightTileVectors = 2, kWeightRowVectors = 2;
#endif

// bfloat16 is stored with each 32 columns interleaved (column i, then column 16 + i; emitters/reduced.py: store):
// a register of pairs is then, its low halves shifted up, floats of the first 16 columns and, its high halves
// masked, of the next 16: two instructions for 2 x kVFloatLanes weights.
struct Bf16Weights {
   using Stored = uint16_t;
   [[gnu::always_inline]] static void widen_pair(const uint16_t *w, wvector &first, wvector &second)
   {
#pragma GCC unroll 4
      for (size_t p = 0; p < kWeightParts; ++p) {
         wuint pairs;
         std::memcpy(&pairs, w + 2 * p * kVFloatLanes, sizeof pairs);
         const wuint low = pairs << 16, high = pairs & 0xffff0000u;
         std::memcpy(&first[p], &low, sizeof low);
         std::memcpy(&second[p], &high, sizeof high);
      }
   }
};

// Weights stored column after column (float16, int8): two vectors are the next 2 x 16 columns, each widened
// register by register by Widen::widen.
template <typename Widen, typename T>
struct ColumnWeights {
   using Stored = T;
   [[gnu::always_inline]] static void widen_pair(const T *w, wvector &first, wvector &second)
   {
#pragma GCC unroll 4
      for (size_t p = 0; p < kWeightParts; ++p) {
         Widen::widen(w + p * kVFloatLanes, first[p]);
         Widen::widen(w + kWeightColumns + p * kVFloatLanes, second[p]);
      }
   }
};

struct Fp16Weights : ColumnWeights<Fp16Weights, uint16_t> {
   [[gnu::always_inline]] static void widen(const uint16_t *w, vfloat &out)
   {
#if SOFIE_RDF_AVX512  // vcvtph2ps, sixteen at once (in halves GCC assembled the register through the stack: 2.9x
                      // the Generator's float32 time on a Xeon, where the half bytes made it 0.66x before)
      typedef short hx16 __attribute__((vector_size(32)));
      hx16 bits;
      std::memcpy(&bits, w, sizeof bits);
      out = __builtin_ia32_vcvtph2ps512_mask(bits, vfloat{}, static_cast<unsigned short>(0xffff), 4);  // 4: as MXCSR says
#elif SOFIE_RDF_F16C  // vcvtph2ps, eight at a time
      typedef short hx8 __attribute__((vector_size(16)));
      typedef float fx8 __attribute__((vector_size(32)));
#pragma GCC unroll 2
      for (size_t i = 0; i < kVFloatLanes / 8; ++i) {
         hx8 bits;
         std::memcpy(&bits, w + 8 * i, sizeof bits);
         const fx8 f = __builtin_ia32_vcvtph2ps256(bits);
         std::memcpy(reinterpret_cast<char *>(&out) + i * sizeof f, &f, sizeof f);
      }
#else
      typedef uint16_t half_bits __attribute__((vector_size(sizeof(vfloat) / 2)));
      half_bits bits;
      std::memcpy(&bits, w, sizeof bits);
      const wuint h = __builtin_convertvector(bits, wuint);
      const wuint magnitude = (h & 0x7fffu) << 13;
      vfloat f;
      std::memcpy(&f, &magnitude, sizeof f);
      f *= 0x1.0p112f;
      wuint result;
      std::memcpy(&result, &f, sizeof result);
      result = (h & 0x7c00u) == 0x7c00u ? magnitude | 0x7f800000u : result;  // infinities and NaNs
      result |= (h & 0x8000u) << 16;
      std::memcpy(&out, &result, sizeof out);
#endif
   }
};

// int8 through int16: GCC 12 widens bytes to 32 bits one lane at a time, in two steps with vector instructions
// (with AVX2 and AVX-512, vpmovsxbd at once: through int16, AVX-512 took 1.23x the Generator's float32 time).
struct Int8Weights : ColumnWeights<Int8Weights, int8_t> {
   [[gnu::always_inline]] static void widen(const int8_t *w, vfloat &out)
   {
#if SOFIE_RDF_AVX512 && !defined(__clang__)  // vpmovsxbd, sixteen bytes to a register
      typedef char bytes16 __attribute__((vector_size(16)));
      typedef int ints16 __attribute__((vector_size(64)));
      bytes16 bytes;
      std::memcpy(&bytes, w, sizeof bytes);
      out = __builtin_convertvector(__builtin_ia32_pmovsxbd512_mask(bytes, ints16{}, static_cast<unsigned short>(0xffff)),
                                    vfloat);
#elif SOFIE_RDF_AVX2 && !SOFIE_RDF_AVX512 && !defined(__clang__)  // vpmovsxbd: GCC 12 widens in 16-byte pieces
      typedef char bytes16 __attribute__((vector_size(16)));
      typedef long long words2 __attribute__((vector_size(16)));
      long long eight;
      std::memcpy(&eight, w, sizeof eight);
      const words2 words = {eight, 0};
      bytes16 bytes;
      std::memcpy(&bytes, &words, sizeof bytes);
      out = __builtin_convertvector(__builtin_ia32_pmovsxbd256(bytes), vfloat);
#else
      typedef int8_t bytes_t __attribute__((vector_size(kVFloatLanes)));
      typedef int16_t shorts_t __attribute__((vector_size(2 * kVFloatLanes)));
      typedef int32_t ints_t __attribute__((vector_size(4 * kVFloatLanes)));
      bytes_t bytes;
      std::memcpy(&bytes, w, sizeof bytes);
      out = __builtin_convertvector(__builtin_convertvector(__builtin_convertvector(bytes, shorts_t), ints_t), vfloat);
#endif
   }
};

// Where a product's C (bias) is read: C[m * row + n * column] (0 along a broadcast dim), null for none.
struct StoredBias {
   const float *c;
   size_t row, column;
   float beta;
};

// Where vector v (of 16 columns, counted from the first column) of row k of the panels starts.
template <typename Stored>
inline const Stored *stored_vector(const Stored *W, size_t K, size_t k, size_t v)
{
   return W + (v / kWeightVectors) * K * kWeightPanel + k * kWeightPanel + (v % kWeightVectors) * kWeightColumns;
}

// One register tile: R rows of A (row m0 ...) by V vectors of columns (from vector v0), over all of K.
template <typename Weights, size_t R, size_t V>
inline void gemm_stored_tile(const float *A, size_t a_row, size_t a_col, const typename Weights::Stored *W, size_t K,
                             size_t m0, size_t v0, wvector (&acc)[R][V])
{
#pragma GCC unroll 16
   for (size_t r = 0; r < R; ++r)
#pragma GCC unroll 16
      for (size_t v = 0; v < V; ++v)
#pragma GCC unroll 4
         for (size_t p = 0; p < kWeightParts; ++p)
            acc[r][v][p] = vfloat{};
   for (size_t k = 0; k < K; ++k) {
      float a[R];
#pragma GCC unroll 16
      for (size_t r = 0; r < R; ++r)
         a[r] = A[(m0 + r) * a_row + k * a_col];
      // Each pair of vectors widened and used at once: a tile's widened weights never all wait in registers.
#pragma GCC unroll 16
      for (size_t v = 0; v < V; v += 2) {
         wvector first, second;
         Weights::widen_pair(stored_vector(W, K, k, v0 + v), first, second);
#pragma GCC unroll 16
         for (size_t r = 0; r < R; ++r)
#pragma GCC unroll 4
            for (size_t p = 0; p < kWeightParts; ++p) {
               acc[r][v][p] += a[r] * first[p];
               acc[r][v + 1][p] += a[r] * second[p];
            }
      }
   }
}

// `count` of a row's 16 sums (columns first ...) scaled (alpha, and the columns' scales for int8), C added, act
// applied and stored: as vectors, and a loop the compiler vectorizes where count is the whole 16.
template <typename Count, typename F>
[[gnu::always_inline]] inline void gemm_stored_row(const wvector &sums, float alpha, const float *scale,
                                                   const StoredBias &bias, size_t m, size_t first, Count count, float *y,
                                                   F act)
{
   float out[kWeightColumns];
   std::memcpy(out, &sums, sizeof out);
   for (size_t j = 0; j < count; ++j)
      out[j] *= alpha * (scale ? scale[first + j] : 1.0f);
   if (bias.c)
      for (size_t j = 0; j < count; ++j)
         out[j] += bias.beta * bias.c[m * bias.row + (first + j) * bias.column];
   for (size_t j = 0; j < count; ++j)
      y[j] = act(out[j]);
}

// The tile's rows through gemm_stored_row (the last vector's columns cut at N).
template <typename Weights, size_t R, size_t V, typename F>
inline void gemm_stored_block(size_t N, size_t K, float alpha, const float *A, size_t a_row, size_t a_col,
                              const typename Weights::Stored *W, const float *scale, const StoredBias &bias, float *Y,
                              size_t m0, size_t v0, F act)
{
   wvector acc[R][V];
   gemm_stored_tile<Weights, R, V>(A, a_row, a_col, W, K, m0, v0, acc);
   for (size_t r = 0; r < R; ++r)
      for (size_t v = 0; v < V; ++v) {
         const size_t first = (v0 + v) * kWeightColumns;
         if (first >= N)
            continue;
         const size_t count = detail::min_of(kWeightColumns, N - first);
         float *y = Y + (m0 + r) * N + first;
         if (count == kWeightColumns)
            gemm_stored_row(acc[r][v], alpha, scale, bias, m0 + r, first, kWeightColumns, y, act);
         else
            gemm_stored_row(acc[r][v], alpha, scale, bias, m0 + r, first, count, y, act);
      }
}

// Y (M x N) = act(alpha * A W + beta * C), A read with strides (a_row, a_col) (transA reads it in place), W stored
// as Weights in panels (see above), `scale` one per column for int8 weights (null otherwise).
template <typename Weights, typename F>
SOFIE_RDF_KERNEL void gemm_stored(size_t M, size_t N, size_t K, float alpha, const float *A, size_t a_row, size_t a_col,
                                  const typename Weights::Stored *W, const float *scale, StoredBias bias, float *Y, F act)
{
   const size_t vectors = (N + kWeightPanel - 1) / kWeightPanel * kWeightVectors;  // whole panels
   static_assert(kWeightVectors % kWeightTileVectors == 0, "a tile's vectors divide a panel's");
   size_t m0 = 0;
   for (; kWeightTileRows > 1 && m0 + kWeightTileRows <= M; m0 += kWeightTileRows)
      for (size_t v0 = 0; v0 < vectors; v0 += kWeightTileVectors)
         gemm_stored_block<Weights, kWeightTileRows, kWeightTileVectors>(N, K, alpha, A, a_row, a_col, W, scale, bias, Y,
                                                                         m0, v0, act);
   for (; m0 < M; ++m0) {
      size_t v0 = 0;
      for (; v0 + kWeightRowVectors <= vectors; v0 += kWeightRowVectors)
         gemm_stored_block<Weights, 1, kWeightRowVectors>(N, K, alpha, A, a_row, a_col, W, scale, bias, Y, m0, v0, act);
      for (; v0 < vectors; v0 += kWeightTileVectors)
         gemm_stored_block<Weights, 1, kWeightTileVectors>(N, K, alpha, A, a_row, a_col, W, scale, bias, Y, m0, v0, act);
   }
}
