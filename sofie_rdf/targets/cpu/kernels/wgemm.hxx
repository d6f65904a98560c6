// Products with weights stored smaller than float (sr.compile(..., weights="bf16" | "fp16" | "int8")), computed in
// float: Y = act(alpha * A W + beta * C), W read 16 columns at a time and widened to float in registers.
//
// At a few rows (one event) a product streams its weights from memory once per call and does little else, so
// half (bfloat16, float16) or a quarter (int8, one scale per column applied to the sums) of the bytes is about
// that fraction of the time.  W is stored in panels of 64 columns, each K x 64 (N zero-padded to whole panels),
// so that a tile streams its weights from contiguous memory.  The widening: a bfloat16 is
// the upper half of its float; a float16's exponent and mantissa shifted into a float's and rescaled by 2^112
// (exact, subnormals included; infinities and NaNs kept) where the compiler targets no F16C (generic x86-64),
// else vcvtph2ps; an int8 sign-extended.  Vector types of 16 lanes: one AVX-512 register, two AVX or four SSE ones.
#ifndef SOFIE_RDF_KERNEL
#define SOFIE_RDF_KERNEL [[gnu::noinline]] inline
#endif
typedef float wf32x16 __attribute__((vector_size(64)));
typedef uint32_t wu32x16 __attribute__((vector_size(64)));
typedef int32_t wi32x16 __attribute__((vector_size(64)));
typedef uint16_t wu16x16 __attribute__((vector_size(32)));
typedef int8_t wi8x16 __attribute__((vector_size(16)));
constexpr size_t kWeightColumns = 16;                                  // columns per vector of weights
constexpr size_t kWeightVectors = 4;                                   // vectors per panel and per tile's row
constexpr size_t kWeightPanel = kWeightColumns * kWeightVectors;       // emitters/reduced.py: PANEL_COLUMNS
constexpr size_t kWeightTileRows = 4;           // rows of A per register tile

// bfloat16 is stored with each 32 columns interleaved (column i, then column 16 + i; emitters/reduced.py: store):
// one 64-byte load is then 16 pairs, whose low halves shifted up are the first 16 columns' floats and whose high
// halves masked are the next 16's: two instructions for 32 weights.
struct Bf16Weights {
   using Stored = uint16_t;
   static void widen_pair(const uint16_t *w, wf32x16 &first, wf32x16 &second)
   {
      wu32x16 pairs;
      std::memcpy(&pairs, w, sizeof pairs);
      const wu32x16 low = pairs << 16, high = pairs & 0xffff0000u;
      std::memcpy(&first, &low, sizeof first);
      std::memcpy(&second, &high, sizeof second);
   }
};

struct Fp16Weights {
   using Stored = uint16_t;
   static void widen_pair(const uint16_t *w, wf32x16 &first, wf32x16 &second)
   {
      widen(w, first);
      widen(w + kWeightColumns, second);
   }
   static void widen(const uint16_t *w, wf32x16 &out)
   {
#if SOFIE_RDF_F16C  // vcvtph2ps, eight at a time
      typedef short hx8 __attribute__((vector_size(16)));
      typedef float fx8 __attribute__((vector_size(32)));
      hx8 low, high;
      std::memcpy(&low, w, sizeof low);
      std::memcpy(&high, w + 8, sizeof high);
      const fx8 a = __builtin_ia32_vcvtph2ps256(low), b = __builtin_ia32_vcvtph2ps256(high);
      std::memcpy(&out, &a, sizeof a);
      std::memcpy(reinterpret_cast<char *>(&out) + sizeof a, &b, sizeof b);
#else
      wu16x16 bits;
      std::memcpy(&bits, w, sizeof bits);
      const wu32x16 h = __builtin_convertvector(bits, wu32x16);
      const wu32x16 magnitude = (h & 0x7fffu) << 13;
      wf32x16 f;
      std::memcpy(&f, &magnitude, sizeof f);
      f *= 0x1.0p112f;
      wu32x16 result;
      std::memcpy(&result, &f, sizeof result);
      result = (h & 0x7c00u) == 0x7c00u ? magnitude | 0x7f800000u : result;  // infinities and NaNs
      result |= (h & 0x8000u) << 16;
      std::memcpy(&out, &result, sizeof out);
#endif
   }
};

// int8 through int16: GCC 12 widens bytes to 32 bits one lane at a time, in two steps with vector instructions.
struct Int8Weights {
   using Stored = int8_t;
   static void widen_pair(const int8_t *w, wf32x16 &first, wf32x16 &second)
   {
      widen(w, first);
      widen(w + kWeightColumns, second);
   }
   static void widen(const int8_t *w, wf32x16 &out)
   {
      typedef int16_t wi16x16 __attribute__((vector_size(32)));
      wi8x16 bytes;
      std::memcpy(&bytes, w, sizeof bytes);
      out = __builtin_convertvector(__builtin_convertvector(__builtin_convertvector(bytes, wi16x16), wi32x16), wf32x16);
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
                             size_t m0, size_t v0, wf32x16 (&acc)[R][V])
{
#pragma GCC unroll 16
   for (size_t r = 0; r < R; ++r)
#pragma GCC unroll 16
      for (size_t v = 0; v < V; ++v)
         acc[r][v] = wf32x16{};
   for (size_t k = 0; k < K; ++k) {
      wf32x16 w[V];
#pragma GCC unroll 16
      for (size_t v = 0; v < V; v += 2)
         Weights::widen_pair(stored_vector(W, K, k, v0 + v), w[v], w[v + 1]);
#pragma GCC unroll 16
      for (size_t r = 0; r < R; ++r) {
         const float a = A[(m0 + r) * a_row + k * a_col];
#pragma GCC unroll 16
         for (size_t v = 0; v < V; ++v)
            acc[r][v] += a * w[v];
      }
   }
}

// `count` of a row's 16 sums (columns first ...) scaled (alpha, and the columns' scales for int8), C added, act
// applied and stored: as vectors, and a loop the compiler vectorizes where count is the whole 16.
template <typename Count, typename F>
[[gnu::always_inline]] inline void gemm_stored_row(const wf32x16 &sums, float alpha, const float *scale,
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
   wf32x16 acc[R][V];
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
   size_t m0 = 0;
   for (; m0 + kWeightTileRows <= M; m0 += kWeightTileRows)
      for (size_t v0 = 0; v0 < vectors; v0 += kWeightVectors)
         gemm_stored_block<Weights, kWeightTileRows, kWeightVectors>(N, K, alpha, A, a_row, a_col, W, scale, bias, Y, m0,
                                                                     v0, act);
   for (; m0 < M; ++m0) {  // one row: two panels at a time, more sums in flight
      size_t v0 = 0;
      for (; v0 + 2 * kWeightVectors <= vectors; v0 += 2 * kWeightVectors)
         gemm_stored_block<Weights, 1, 2 * kWeightVectors>(N, K, alpha, A, a_row, a_col, W, scale, bias, Y, m0, v0, act);
      for (; v0 < vectors; v0 += kWeightVectors)
         gemm_stored_block<Weights, 1, kWeightVectors>(N, K, alpha, A, a_row, a_col, W, scale, bias, Y, m0, v0, act);
   }
}
