// Row-major matrix products: C = alpha * op(A) * op(B) + beta * C.
// float and double go to BLAS (row-major is the column-major product of the
// transposes, so A and B swap places); other types use a plain loop.

// Small products (a few rows, as in per-event inference) are faster as plain
// loops than through BLAS, whose call overhead would dominate.  The loop order
// keeps the innermost loop contiguous in B and C so the compiler vectorises it;
// a pass stores constant B untransposed for that reason.
// The entry points of heavy kernels (a whole node's convolution or product), kept out of infer(): an
// instantiation on a node's own activation lambda is called once, and GCC inlines such a call whatever its
// size; inside a large infer() the register tiles then spill (a 16-channel convolution ran 1.7x slower in
// a ResNet than alone).  A call per node costs nothing.
#ifndef SOFIE_RDF_KERNEL
#define SOFIE_RDF_KERNEL [[gnu::noinline]] inline
#endif
// Kernels whose loops GCC vectorizes by itself (Winograd's transforms, conv_rows' padded copy and epilogue) run
// them in AVX-512's full 16 lanes: GCC prefers 8 where it tunes for Intel.  On a Sapphire Rapids-class Xeon,
// 0.81x to 0.97x the time of 3x3 layers of 4 to 64 channels on 8 to 24 pixels.  Not for every kernel: loops
// of a few dozen iterations (pooling lines of 11 outputs, 3-D layers of 8 channels) ran 1.08x to 1.1x slower
// with a whole model built so.
#if SOFIE_RDF_AVX512 && defined(__GNUC__) && !defined(__clang__)
#define SOFIE_RDF_WIDE __attribute__((target("prefer-vector-width=512")))
#else
#define SOFIE_RDF_WIDE
#endif

constexpr size_t kSmallGemmRows = 4;
// Products of at most this many terms per output (ConvTranspose's last layers: 16 x 1024 x 4) also run as
// loops: one pass over C, where BLAS's packing of both operands costs more than the product (0.7x its time).
constexpr size_t kSmallGemmDepth = 4;

// One row of C (N values) from one row of op(A) (K values, `a_stride` apart) and B (K x N, row-major): C starts as
// beta * start where `start` is given (a row of bias), else as beta * C.  The pointers do not overlap (restrict):
// without that promise the compiler checks at run time, for every row, whether they do, which costs more than
// the row itself when N and K are small (a pair-bias projection: 16384 rows of 8 outputs from 4 inputs).
// beta == 0 writes C without reading it, as BLAS does; with `start`, the first four terms are added as C is
// written, where a row stored first and read back at once waited on each store (the pair-bias projection: 4x
// its time alone, inside ParT).
// Always inlined: gemm_bias_act's row loop then sees N and K as the call's constants (8 outputs: one vector).
template <typename T>
[[gnu::always_inline]] inline void gemm_loop_row(T *__restrict c, const T *__restrict a, size_t a_stride,
                                                 const T *__restrict B, size_t N, size_t K, T alpha, T beta,
                                                 const T *__restrict start = nullptr)
{
   const size_t K4 = K - K % 4;
   size_t k = 0;
   if (K4 && (beta == T(0) || start)) { // the first four rows of B write C
      const T a0 = alpha * a[0], a1 = alpha * a[a_stride], a2 = alpha * a[2 * a_stride], a3 = alpha * a[3 * a_stride];
      const T *b0 = B, *b1 = b0 + N, *b2 = b1 + N, *b3 = b2 + N;
      if (start && beta != T(0))
         for (size_t j = 0; j < N; ++j)
            c[j] = beta * start[j] + a0 * b0[j] + a1 * b1[j] + a2 * b2[j] + a3 * b3[j];
      else
         for (size_t j = 0; j < N; ++j)
            c[j] = a0 * b0[j] + a1 * b1[j] + a2 * b2[j] + a3 * b3[j];
      k = 4;
   } else if (start && beta != T(0)) {
      for (size_t j = 0; j < N; ++j)
         c[j] = beta * start[j];
   } else if (beta == T(0)) {
      for (size_t j = 0; j < N; ++j)
         c[j] = T(0);
   } else if (beta != T(1)) {
      for (size_t j = 0; j < N; ++j)
         c[j] *= beta;
   }
   for (; k < K4; k += 4) { // four rows of B per pass over C: a quarter of the C traffic
      const T a0 = alpha * a[k * a_stride], a1 = alpha * a[(k + 1) * a_stride];
      const T a2 = alpha * a[(k + 2) * a_stride], a3 = alpha * a[(k + 3) * a_stride];
      const T *b0 = B + k * N, *b1 = b0 + N, *b2 = b1 + N, *b3 = b2 + N;
      for (size_t j = 0; j < N; ++j)
         c[j] += a0 * b0[j] + a1 * b1[j] + a2 * b2[j] + a3 * b3[j];
   }
   for (k = K4; k < K; ++k) {
      const T ak = alpha * a[k * a_stride];
      const T *b = B + k * N;
      for (size_t j = 0; j < N; ++j)
         c[j] += ak * b[j];
   }
}

template <typename T>
inline void gemm_loop(bool transA, bool transB, size_t M, size_t N, size_t K, T alpha, const T *A, const T *B, T beta,
                      T *C)
{
   for (size_t i = 0; i < M; ++i) {
      T *c = C + i * N;
      if (!transB) {
         gemm_loop_row(c, transA ? A + i : A + i * K, transA ? M : 1, B, N, K, alpha, beta);
         continue;
      }
      if (beta == T(0))
         detail::fill(c, c + N, T(0));
      else if (beta != T(1))
         for (size_t j = 0; j < N; ++j)
            c[j] *= beta;
      for (size_t j = 0; j < N; ++j) {
         const T *b = B + j * K;
         T sum = T(0);
         for (size_t k = 0; k < K; ++k)
            sum += (transA ? A[k * M + i] : A[i * K + k]) * b[k];
         c[j] += alpha * sum;
      }
   }
}

template <typename T, typename Blas>
inline void gemm_blas(Blas blas, bool transA, bool transB, size_t M, size_t N, size_t K, T alpha, const T *A,
                      const T *B, T beta, T *C)
{
   if (M == 0 || N == 0)
      return;
   if (M <= kSmallGemmRows || (K <= kSmallGemmDepth && !transB)) {
      gemm_loop(transA, transB, M, N, K, alpha, A, B, beta, C);
      return;
   }
   if (K == 0) {
      for (size_t i = 0; i < M * N; ++i)
         C[i] = beta == T(0) ? T(0) : beta * C[i];
      return;
   }
   const char ta = transA ? 'T' : 'N';
   const char tb = transB ? 'T' : 'N';
   const int m = static_cast<int>(M), n = static_cast<int>(N), k = static_cast<int>(K);
   const int lda = transA ? m : k;
   const int ldb = transB ? k : n;
   blas(&tb, &ta, &n, &m, &k, &alpha, B, &ldb, A, &lda, &beta, C, &n);
}

inline void gemm(bool transA, bool transB, size_t M, size_t N, size_t K, float alpha, const float *A, const float *B,
                 float beta, float *C)
{
   gemm_blas(SOFIE_BLAS_SGEMM, transA, transB, M, N, K, alpha, A, B, beta, C);
}

inline void gemm(bool transA, bool transB, size_t M, size_t N, size_t K, double alpha, const double *A,
                 const double *B, double beta, double *C)
{
   gemm_blas(SOFIE_BLAS_DGEMM, transA, transB, M, N, K, alpha, A, B, beta, C);
}

template <typename T>
inline void gemm(bool transA, bool transB, size_t M, size_t N, size_t K, T alpha, const T *A, const T *B, T beta, T *C)
{
   gemm_loop(transA, transB, M, N, K, alpha, A, B, beta, C);
}

// Outputs larger than this many elements (1 MB of floats: beyond L2) are streamed: see gemm_bias_act.
constexpr size_t kGemmStreamedOutput = size_t(1) << 18;

// Outputs of a few terms each (K <= kSmallGemmDepth) larger than this (L1: 32 kB of floats) get the bias row by
// row (gemm_bias_product); smaller ones in a pass of their own, which costs less set-up per row.
constexpr size_t kGemmRowByRow = size_t(1) << 13;

// C = beta * bias, the bias read with strides (0 along a broadcast dim); contiguous rows vectorized.
template <typename T>
inline void gemm_bias_fill(size_t M, size_t N, T beta, const T *bias, std::ptrdiff_t bias_row, std::ptrdiff_t bias_col,
                           T *C)
{
   for (size_t i = 0; i < M; ++i) {
      const T *b = bias + static_cast<std::ptrdiff_t>(i) * bias_row;
      T *c = C + i * N;
      if (bias_col == 1)
         for (size_t j = 0; j < N; ++j)
            c[j] = beta * b[j];
      else
         for (size_t j = 0; j < N; ++j)
            c[j] = beta * b[static_cast<std::ptrdiff_t>(j) * bias_col];
   }
}

// The product part of gemm_bias_act, shared by all its activations (the generated code has one lambda type
// per node; keeping this out of the template on F keeps one copy of it): C = beta * bias + product, or the
// product alone when the output is streamed (returned true: gemm_bias_act then adds the bias).
template <typename T>
inline bool gemm_bias_product(bool transA, bool transB, size_t M, size_t N, size_t K, T alpha, const T *A, const T *B,
                              T beta, const T *bias, std::ptrdiff_t bias_row, std::ptrdiff_t bias_col, T *C)
{
   const bool streamed = bias && M * N > kGemmStreamedOutput;
   if (bias && !streamed)
      gemm_bias_fill(M, N, beta, bias, bias_row, bias_col, C);
   gemm(transA, transB, M, N, K, alpha, A, B, bias && !streamed ? T(1) : T(0), C);
   return streamed;
}

// Y = act(alpha * op(A) * op(B) + beta * bias), the bias read with strides (bias_row, bias_col: 0 along a
// broadcast dim; bias may be null).  Y starts as the bias, the product accumulates into it and act runs
// over the result, all in cache; a large Y (64 x 40500 in a generator's last layer) is instead computed
// with beta = 0 and gets bias and act in one pass per row, read and written once after the product.
// Always inlined: the sizes at the call site are then constants for the per-event loop (Cling does not
// inline it by itself, and the Higgs MLP ran 2.5x slower through the JIT).
template <typename T, typename F>
[[gnu::always_inline]] inline void gemm_bias_act(bool transA, bool transB, size_t M, size_t N, size_t K, T alpha, const T *A, const T *B,
                          T beta, const std::common_type_t<T> *bias, std::ptrdiff_t bias_row, std::ptrdiff_t bias_col,
                          T *C, F act)
{
   bool streamed = false;
   if (M <= kSmallGemmRows) { // per-event rows: the loop called here, where the compiler specializes it for this call
      if (bias)
         gemm_bias_fill(M, N, beta, bias, bias_row, bias_col, C);
      gemm_loop(transA, transB, M, N, K, alpha, A, B, bias ? T(1) : T(0), C);
   } else if (bias && M * N <= kGemmStreamedOutput && M * N > kGemmRowByRow && K <= kSmallGemmDepth && !transB &&
              bias_col == 1) {
      // A few terms per output: bias and product in one pass per row.  Filled with the bias first, C was
      // written whole and then read and written again, and ParT's pair-bias projection (16384 x 8 outputs from
      // 4 inputs, among tensors that fill L2) took 170 us, 3.2x onnxruntime's time.  The loop is here, where N
      // and K are the call's constants: in gemm_bias_product they were constants only where GCC cloned that
      // function for the call, which the rest of the model decided (ParT's: 116 us uncloned, 21 us cloned).
      for (size_t i = 0; i < M; ++i)
         gemm_loop_row(C + i * N, transA ? A + i : A + i * K, transA ? M : 1, B, N, K, alpha, beta,
                       bias + static_cast<std::ptrdiff_t>(i) * bias_row);
   } else {
      streamed = gemm_bias_product(transA, transB, M, N, K, alpha, A, B, beta, bias, bias_row, bias_col, C);
   }
   if (!streamed) {
      for (size_t i = 0; i < M * N; ++i)
         C[i] = act(C[i]);
      return;
   }
   for (size_t i = 0; i < M; ++i) {
      const T *b = bias + static_cast<std::ptrdiff_t>(i) * bias_row;
      T *c = C + i * N;
      if (bias_col == 1) // contiguous: vectorized
         for (size_t j = 0; j < N; ++j)
            c[j] = act(c[j] + beta * b[j]);
      else
         for (size_t j = 0; j < N; ++j)
            c[j] = act(c[j] + beta * b[static_cast<std::ptrdiff_t>(j) * bias_col]);
   }
}

// ---- register tiles ---------------------------------------------------------
//
// Products whose right operand is constant and stored at generation time in panels of kPanelColumns
// columns (gemm_panels below, conv_rows in conv.hxx), for native compilers targeting AVX2 or AVX-512: Cling and
// builds for generic x86-64 compile these without AVX, far slower than BLAS, and code generated for them does not
// use them (targets/cpu: CpuTarget.register_tiles).

// A panel is 16 columns on every instruction set (the weights' layout does not depend on it): one AVX-512
// register, or two AVX ones (four SSE ones: the generic build splits each vector).  A register tile covers
// kTilePanels adjacent panels and up to kPanelRows rows, as many as the register file holds: AVX's 16
// registers hold 6 rows x 2 vectors of accumulators, 2 panel vectors and a broadcast (BLIS's AVX2 kernel);
// AVX-512's 32 hold 12 rows x 2 panels, 2 panel vectors and a broadcast, so that each broadcast value feeds two
// multiply-adds (with one panel, 12 broadcasts and a panel load per 12 multiply-adds make the tile load-bound:
// 0.8x the speed on 32 to 64 features).
#if SOFIE_RDF_AVX512
typedef float simd_float __attribute__((vector_size(64)));
constexpr size_t kPanelRows = 12;
constexpr size_t kTilePanels = 2;
#else
typedef float simd_float __attribute__((vector_size(32)));
constexpr size_t kPanelRows = 6;
constexpr size_t kTilePanels = 1;
#endif
constexpr size_t kSimdLanes = sizeof(simd_float) / sizeof(float);
constexpr size_t kPanelColumns = 16; // columns per panel (emitters/gemm.py: PANEL_COLUMNS)
constexpr size_t kPanelVectors = kPanelColumns / kSimdLanes;

// Loads each vector once per step: left alone, GCC folds it into every row's multiply-add, which makes the
// tile load-bound (it treats the memory operand as free).  An empty asm statement that claims to modify the
// vector in a vector register makes the compiler hold it in one; no instruction is emitted.  Not under Cling:
// with every kernel inlined into infer (isa.CLING_INLINE), ROOT's register allocator (-optimize-regalloc=0)
// found no register for it in a transformer encoder and refused the header.
#if defined(__GNUC__) && !defined(__CLING__)
#if SOFIE_RDF_AVX512
#define SOFIE_KEEP_IN_REGISTER(v) __asm__("" : "+v"(v)) // any of the 32 registers
#elif SOFIE_RDF_AVX2
#define SOFIE_KEEP_IN_REGISTER(v) __asm__("" : "+x"(v))
#endif
#endif
#if !defined(SOFIE_KEEP_IN_REGISTER)
#define SOFIE_KEEP_IN_REGISTER(v) static_cast<void>(v)
#endif

// acc[j] += p[0] * in[j] for j < Vectors: a register tile's row of multiply-adds, p[0] broadcast to every lane,
// either into a register of its own, once for the row, or (InFma) by each multiply-add from memory.
// InFma serves AMD's AVX-512 (kAvx512InHalves) in conv_rows' tiles of two vectors a row
// (kBroadcastInFma): a broadcast into a register takes a slot of the FMA pipes there, and they ran 0.87x to 0.97x
// as fast without it (16 -> 32 channels on 16 to 32 pixels with stride 2, 4 -> 32 on 16, 32 -> 64 on 8).  The same
// 12 x 2 tiles in gemm_panels took 1.02x to 1.05x the time with it, rows of one vector 1.17x (depth 512) and
// conv_shifted's rows of four 1.03x to 1.08x.  Intel's broadcast is a load alone: there one load per multiply-add
// would make a tile load-bound.
// AMD's AVX-512 (Zen 4, which GCC 12 names znver3 with AVX-512) runs a 16-float multiply-add as two 8-float halves,
// so an 8-float one takes half its time; Intel's AVX-512 cores run both widths at one a cycle per pipe.
#if defined(__AVX512F__) && (defined(__znver3__) || defined(__znver4__))
constexpr bool kAvx512InHalves = true;
#else
constexpr bool kAvx512InHalves = false;
#endif
constexpr bool kBroadcastInFma = kAvx512InHalves;
template <size_t Vectors, bool InFma = false, typename V = simd_float>
inline void fma_row(V *acc, const V *in, const float *p)
{
   if constexpr (InFma) {
#if SOFIE_RDF_AVX512
      static_assert(std::is_same_v<V, simd_float>, "the broadcast is {1to16}");
#pragma GCC unroll 16
      for (size_t j = 0; j < Vectors; ++j)
         __asm__("vfmadd231ps %2%{1to16%}, %1, %0" : "+v"(acc[j]) : "v"(in[j]), "m"(*p));
#else
      static_assert(!InFma, "a broadcast in the multiply-add is AVX-512's");
#endif
   } else {
      const V a = *p - V{}; // x - (+0) is x: a broadcast
#pragma GCC unroll 16
      for (size_t j = 0; j < Vectors; ++j)
         acc[j] += a * in[j];
   }
}

// The activation of a product or convolution that has none (emitters: ActivationCode): a type of its own, so
// that kernels can tell a copy from an activation (act_copy).
struct Identity {
   template <typename T>
   T operator()(T v) const
   {
      return v;
   }
};

// act applied to every lane of v, in registers, so that a register tile stores its outputs once, activated: the
// lanes go through a local array whose loop GCC vectorizes (compare, blend, fused multiply-add), and the array
// then vanishes.  A loop over the vector's own lanes stays straight-line scalar code (16 extracts and inserts), as
// does the array's loop unrolled first (GCC unrolls loops of a constant count early, and the basic-block vectorizer
// leaves a select such as ReLU's scalar): it is kept rolled until the loop vectorizer has seen it.
// Applied in a pass over the tile's stores instead, the activation took a fifth of conv_shifted_direct's time
// (1 -> 16 channels, 3x3 on 32 x 32 pixels with ReLU: 4.6 -> 3.6 us, Zen 4).
// v goes by reference: a vector wider than the target's registers (the generic build's) passed or returned by
// value trips GCC's -Wpsabi.
template <typename V, typename F>
inline void act_vector(V &v, F act)
{
   if constexpr (!std::is_same_v<F, Identity>) {
      float lanes[sizeof(V) / sizeof(float)];
      std::memcpy(lanes, &v, sizeof v);
#pragma GCC unroll 1
      for (size_t l = 0; l < sizeof(V) / sizeof(float); ++l)
         lanes[l] = act(lanes[l]);
      std::memcpy(&v, lanes, sizeof v);
   }
}

// dst[k] = src[k] for k < B (B floats: one vector or part of one), through a register: GCC turns a loop of
// copies into a `rep movs`, whose start-up costs more than the few dozen values of a tile's row
// (conv_shifted ran 1.2x slower than with ReLU).
template <size_t B>
inline void copy_block(const float *src, float *dst)
{
   typedef float block __attribute__((vector_size(B * sizeof(float))));
   block v;
   std::memcpy(&v, src, sizeof v);
   SOFIE_KEEP_IN_REGISTER(v);
   std::memcpy(dst, &v, sizeof v);
}

// dst[k] = act(src[k]) for k < n: a tile's row out to its place in y, an image row into its padded copy.
// Without an activation a copy in whole vectors, the last ending at n and overlapping the one before (its
// values written twice, equal), where a scalar loop of up to 15 values ended each row.
template <typename F>
inline void act_copy(const float *__restrict src, float *__restrict dst, size_t n, F act)
{
   if constexpr (std::is_same_v<F, Identity>) {
      size_t k = 0;
      for (; k + kSimdLanes <= n; k += kSimdLanes)
         copy_block<kSimdLanes>(src + k, dst + k);
      if (k == n)
         return;
      if (n >= kSimdLanes) {
         copy_block<kSimdLanes>(src + n - kSimdLanes, dst + n - kSimdLanes);
      } else if (n >= 8) {
         copy_block<8>(src, dst);
         copy_block<8>(src + n - 8, dst + n - 8);
      } else if (n >= 4) {
         copy_block<4>(src, dst);
         copy_block<4>(src + n - 4, dst + n - 4);
      } else {
         for (; k < n; ++k)
            dst[k] = src[k];
      }
   } else { // n may be a constant here once inlined: kept rolled, see act_vector
#pragma GCC unroll 1
      for (size_t k = 0; k < n; ++k)
         dst[k] = act(src[k]);
   }
}

// A product's rows summed in runs (passes/pool_fusion.py): row r (counted from the call's first row) is added
// to row r / rows_per of out (ldo floats apart), which starts zeroed; out == nullptr: no pooling, the rows stored.
struct RowPool {
   float *out = nullptr;
   size_t rows_per = 1, ldo = 0, row = 0; // row: the tile's first row

   RowPool at(size_t rows) const { return {out, rows_per, ldo, row + rows}; }
};

// A register tile's activated rows (Rows x Vectors vectors in `tile`) added to their pooled rows: consecutive rows
// of one run summed in registers, each run's sum then added to out.  The tile goes through a buffer: handed the
// accumulators themselves, panel_tile kept its panel vectors on the stack at every step (1.2x the time).
template <size_t Rows, size_t Vectors>
inline void pool_tile(const float *tile, const RowPool &pool)
{
   size_t group = pool.row / pool.rows_per, left = pool.rows_per - pool.row % pool.rows_per;
   simd_float sum[Vectors] = {};
   for (size_t i = 0; i < Rows; ++i) {
#pragma GCC unroll 16
      for (size_t j = 0; j < Vectors; ++j) {
         simd_float v;
         std::memcpy(&v, tile + (i * Vectors + j) * kSimdLanes, sizeof v);
         sum[j] += v;
      }
      if (--left > 0 && i + 1 < Rows)
         continue;
      float *o = pool.out + group * pool.ldo;
#pragma GCC unroll 16
      for (size_t j = 0; j < Vectors; ++j) {
         simd_float before;
         std::memcpy(&before, o + j * kSimdLanes, sizeof before);
         before += sum[j];
         std::memcpy(o + j * kSimdLanes, &before, sizeof before);
         sum[j] = simd_float{};
      }
      ++group;
      left = pool.rows_per;
   }
}

// Step k of a row of A at k * stride: tile_steps' offsets for gemm_panels (and conv_shifted_tile's for
// Winograd's products and conv_pointwise).
struct StridedSteps {
   std::ptrdiff_t stride;
   std::ptrdiff_t operator[](size_t k) const { return static_cast<std::ptrdiff_t>(k) * stride; }
};

// The loop over steps of AVX2's register tiles of 2 vectors a row (at most 6 rows: 12 accumulators, 2 input
// vectors and a broadcast in AVX's 16 registers) in extended inline assembly, the accumulators held in registers for
// the whole loop: loaded from a copy of `acc` at its start, handed back as the statement's outputs at its end.  For ROOT's
// Cling: it allocates registers with LLVM's fast allocator (-optimize-regalloc=0), which keeps no value in a
// register from one basic block to the next, so that the accumulators of the loop in C++ went to memory and back at
// every turn.  Row i broadcasts the float at `row` (an addressing mode) and adds it times the step's 2 vectors to
// accumulators x(2i) and x(2i + 1); rows from `Rows` on are skipped by the assembler (.if).  Outputs, not operands
// both read and written: GCC allows 30 operands, and counts those twice.  The same multiply-adds in the same order
// as the loop in C++, so the same numbers.  Under Cling only: g++'s own loop is as fast (DeepSets at batch 64 and a
// 3x3 convolution 1.00x and 0.97x its time with the assembly, a calorimeter CNN 1.15x; Zen 3); a build defining
// SOFIE_RDF_TILE_ASM_ALWAYS takes it too (tests/test_isa.py).  Under ROOT's own flags on AMD EPYC Zen 3, declared
// headers against g++ -O3 -march=native, before -> after: DeepSets at batch 64 1.93x -> 1.30x, a 3x3
// convolution of 16 channels 1.99x -> 1.64x, the two-layer encoder 1.86x -> 1.64x.  AVX-512's tiles: below
// (SOFIE_RDF_TILE_ASM512).  Each has a tile_asm_panel and a tile_asm_shifted of the same signature, and
// kPanelAsm, kShiftedAsm say which tile shapes they take.
#if SOFIE_RDF_AVX2 && !SOFIE_RDF_AVX512 && defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__)) && (defined(__CLING__) || defined(SOFIE_RDF_TILE_ASM_ALWAYS))
#define SOFIE_RDF_TILE_ASM 1
#define SOFIE_RDF_ASM_VR "%%ymm" // the vector registers' names, and their bytes
#define SOFIE_RDF_ASM_VB "32"
#define SOFIE_RDF_ASM_ROW(i, row, x0, x1) ".if %c[rows] > " #i "\n\t" "vbroadcastss " row ", %[b]\n\t" "vfmadd231ps %[i0], %[b], %[" #x0 "]\n\t" "vfmadd231ps %[i1], %[b], %[" #x1 "]\n\t" ".endif\n\t"
#define SOFIE_RDF_ASM_LOAD(i, x0, x1) ".if %c[rows] > " #i "\n\t" "vmovups " #i "*64(%[acc]), %[" #x0 "]\n\t" "vmovups " #i "*64+32(%[acc]), %[" #x1 "]\n\t" ".endif\n\t"
#define SOFIE_RDF_ASM_LOADS SOFIE_RDF_ASM_LOAD(0, x0, x1) SOFIE_RDF_ASM_LOAD(1, x2, x3) SOFIE_RDF_ASM_LOAD(2, x4, x5) SOFIE_RDF_ASM_LOAD(3, x6, x7) SOFIE_RDF_ASM_LOAD(4, x8, x9) SOFIE_RDF_ASM_LOAD(5, x10, x11)
#define SOFIE_RDF_ASM_OUTPUTS [x0] "=&x"(x[0]), [x1] "=&x"(x[1]), [x2] "=&x"(x[2]), [x3] "=&x"(x[3]), [x4] "=&x"(x[4]), [x5] "=&x"(x[5]), [x6] "=&x"(x[6]), [x7] "=&x"(x[7]), [x8] "=&x"(x[8]), [x9] "=&x"(x[9]), [x10] "=&x"(x[10]), [x11] "=&x"(x[11]), [i0] "=&x"(in0), [i1] "=&x"(in1), [b] "=&x"(bc)
// The rows of a step whose weights are Rows floats at w (tile_asm_shifted, conv.hxx's tile_asm_spots).
#define SOFIE_RDF_ASM_SHIFTED_ROWS SOFIE_RDF_ASM_ROW(0, "(%[w])", x0, x1) SOFIE_RDF_ASM_ROW(1, "4(%[w])", x2, x3) SOFIE_RDF_ASM_ROW(2, "8(%[w])", x4, x5) SOFIE_RDF_ASM_ROW(3, "12(%[w])", x6, x7) SOFIE_RDF_ASM_ROW(4, "16(%[w])", x8, x9) SOFIE_RDF_ASM_ROW(5, "20(%[w])", x10, x11)
#else
#define SOFIE_RDF_TILE_ASM 0
#endif

#if SOFIE_RDF_TILE_ASM
// acc[i][j] (Rows x Vectors) += a_i[k * a_step] * w[k * w_step + j * w_vector .. + lanes] over k < steps,
// a_i = a + i * a_row (strides in floats; steps > 0): tile_steps' loop for gemm_panels (w a panel: steps of 16
// floats) and attention's scores and values (w the keys or values: steps of a row).
template <size_t Rows, size_t Vectors>
constexpr bool kPanelAsm = Rows >= 1 && Rows <= 6 && Vectors == 2;

template <size_t Rows, size_t Vectors>
inline void tile_asm_panel(simd_float *acc, size_t steps, const float *a, std::ptrdiff_t a_row, std::ptrdiff_t a_step,
                           const float *w, std::ptrdiff_t w_step, std::ptrdiff_t w_vector)
{
   static_assert(kPanelAsm<Rows, Vectors>, "12 accumulators");
   simd_float x[12], in0, in1, bc, start[2 * Rows];
   for (size_t i = 0; i < 2 * Rows; ++i) // through a copy: acc's own address taken, GCC kept acc in memory
      start[i] = acc[i];
   const float *a3 = Rows > 3 ? a + 3 * a_row : a;
   constexpr std::ptrdiff_t f = sizeof(float);
   const std::ptrdiff_t ld = a_row * f, sb = a_step * f, wb = w_step * f, wv = w_vector * f;
   __asm__(SOFIE_RDF_ASM_LOADS //
           "1:\n\t"
           "vmovups (%[w]), %[i0]\n\t"
           "vmovups (%[w],%[wv]), %[i1]\n\t"                //
           SOFIE_RDF_ASM_ROW(0, "(%[a0])", x0, x1)          //
           SOFIE_RDF_ASM_ROW(1, "(%[a0],%[ld])", x2, x3)    //
           SOFIE_RDF_ASM_ROW(2, "(%[a0],%[ld],2)", x4, x5)  //
           SOFIE_RDF_ASM_ROW(3, "(%[a3])", x6, x7)          //
           SOFIE_RDF_ASM_ROW(4, "(%[a3],%[ld])", x8, x9)    //
           SOFIE_RDF_ASM_ROW(5, "(%[a3],%[ld],2)", x10, x11) //
           "add %[wb], %[w]\n\t"
           "add %[sb], %[a0]\n\t"
           "add %[sb], %[a3]\n\t"
           "dec %[n]\n\t"
           "jnz 1b"
           : SOFIE_RDF_ASM_OUTPUTS, [w] "+r"(w), [a0] "+r"(a), [a3] "+r"(a3), [n] "+r"(steps)
           : [acc] "r"(start), [ld] "r"(ld), [sb] "r"(sb), [wb] "r"(wb), [wv] "r"(wv), [rows] "i"(Rows)
           : "cc", "memory");
   for (size_t i = 0; i < 2 * Rows; ++i)
      acc[i] = x[i];
}

// acc[i][j] (Rows x 2) += w[k * Rows + i] * xp[at(k) + 8 j .. + 8] over k < steps, at(k) = k * stride, or table[k]
// where Table (conv_shifted's steps, a channel and a tap each): conv_shifted_tile's loop for Winograd's products,
// conv_pointwise and conv_shifted (steps > 0).  The inputs are read at (xp + 4 at) with at = 0 throughout without a
// table, xp then moving by a stride per step.
template <size_t Rows, size_t Vectors>
constexpr bool kShiftedAsm = Rows >= 1 && Rows <= 6 && Vectors == 2;

template <size_t Rows, size_t Vectors, bool Table>
inline void tile_asm_shifted(simd_float *acc, size_t steps, const float *xp, std::ptrdiff_t stride,
                             const std::int64_t *table, const float *w)
{
   static_assert(kShiftedAsm<Rows, Vectors>, "12 accumulators");
   simd_float x[12], in0, in1, bc, start[2 * Rows];
   for (size_t i = 0; i < 2 * Rows; ++i)
      start[i] = acc[i];
   const std::ptrdiff_t sb = stride * std::ptrdiff_t(sizeof(float));
   std::int64_t at = 0;
   __asm__(SOFIE_RDF_ASM_LOADS //
           "1:\n\t"
           ".if %c[table]\n\t" "mov (%[t]), %[at]\n\t" ".endif\n\t"
           "vmovups (%[p],%[at],4), %[i0]\n\t"
           "vmovups 32(%[p],%[at],4), %[i1]\n\t"       //
           SOFIE_RDF_ASM_SHIFTED_ROWS //
           "add %[wb], %[w]\n\t"
           ".if %c[table]\n\t" "add $8, %[t]\n\t" ".else\n\t" "add %[sb], %[p]\n\t" ".endif\n\t"
           "dec %[n]\n\t"
           "jnz 1b"
           : SOFIE_RDF_ASM_OUTPUTS, [w] "+r"(w), [p] "+r"(xp), [t] "+r"(table), [at] "+r"(at), [n] "+r"(steps)
           : [acc] "r"(start), [sb] "r"(sb), [wb] "i"(Rows * sizeof(float)), [rows] "i"(Rows), [table] "i"(Table)
           : "cc", "memory");
   for (size_t i = 0; i < 2 * Rows; ++i)
      acc[i] = x[i];
}
#endif

// AVX-512's register tiles for ROOT's Cling, as SOFIE_RDF_TILE_ASM gives AVX2's: the loop over steps in inline
// assembly, so that the fast register allocator keeps the accumulators in registers.  Up to 24 accumulators do not
// fit GCC's 30 operands, so the assembly names its registers itself and loads and stores the accumulators through
// `acc` (Rows x Vectors vectors, row after row).  Row i's vector j is in zmm(i), zmm(12 + i), zmm(6 + i),
// zmm(18 + i), zmm(22 + i) for j = 0..4, so that every shape kTileAsm512 takes (rows x vectors: 16 x 1, 12 x 2,
// 6 x 3, 6 x 4, 4 x 5: gemm_panels' tiles, Winograd's, conv_shifted's and conv_pointwise's) has its accumulators in
// registers of their own; zmm26-30 hold the step's input vectors, zmm31 the broadcast value.  Each row broadcasts its
// value once into zmm31 and adds it times every input vector (Intel's broadcast from memory is a load of its own,
// so a broadcast in every multiply-add would make the tile load-bound: fma_row; so too in tiles of one vector a row,
// where GCC's loop broadcasts in its multiply-adds: that form made Winograd's 16 x 1 products 1.04x slower under
// Cling).  Rows and vectors from `rows` and `vecs` on are skipped by the assembler (.if).  The same multiply-adds in
// the same order as the loops in C++, so the same numbers (tests/test_isa.py builds it with
// SOFIE_RDF_TILE_ASM_ALWAYS).  volatile: the results go through memory, and an assembly statement whose outputs are
// unused is otherwise dropped.
#if SOFIE_RDF_AVX512 && defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__)) && (defined(__CLING__) || defined(SOFIE_RDF_TILE_ASM_ALWAYS))
#define SOFIE_RDF_TILE_ASM512 1
#define SOFIE_RDF_ASM_VR "%%zmm"
#define SOFIE_RDF_ASM_VB "64"
#define SOFIE_RDF_ASM512_FMA(j, in, r) ".if %c[vecs] > " #j "\n\t" "vfmadd231ps " SOFIE_RDF_ASM_VR #in ", " SOFIE_RDF_ASM_VR "31, " SOFIE_RDF_ASM_VR #r "\n\t" ".endif\n\t"
#define SOFIE_RDF_ASM512_ROW(i, r1, r2, r3, r4, at) ".if %c[rows] > " #i "\n\t" "vbroadcastss " at ", " SOFIE_RDF_ASM_VR "31\n\t" "vfmadd231ps " SOFIE_RDF_ASM_VR "26, " SOFIE_RDF_ASM_VR "31, " SOFIE_RDF_ASM_VR #i "\n\t" SOFIE_RDF_ASM512_FMA(1, 27, r1) SOFIE_RDF_ASM512_FMA(2, 28, r2) SOFIE_RDF_ASM512_FMA(3, 29, r3) SOFIE_RDF_ASM512_FMA(4, 30, r4) ".endif\n\t"
#define SOFIE_RDF_ASM512_MOVES(i, r1, r2, r3, r4, load) SOFIE_RDF_ASM_MOVE(i, 0, i, load) SOFIE_RDF_ASM_MOVE(i, 1, r1, load) SOFIE_RDF_ASM_MOVE(i, 2, r2, load) SOFIE_RDF_ASM_MOVE(i, 3, r3, load) SOFIE_RDF_ASM_MOVE(i, 4, r4, load)
#define SOFIE_RDF_ASM512_SHIFTED_ROW(i, r1, r2, r3, r4, unused) SOFIE_RDF_ASM512_ROW(i, r1, r2, r3, r4, "4*" #i "(%[w])")
#define SOFIE_RDF_ASM512_ALL(each, ...) each(0, 12, 6, 18, 22, __VA_ARGS__) each(1, 13, 7, 19, 23, __VA_ARGS__) each(2, 14, 8, 20, 24, __VA_ARGS__) each(3, 15, 9, 21, 25, __VA_ARGS__) each(4, 16, 10, 22, 31, __VA_ARGS__) each(5, 17, 11, 23, 31, __VA_ARGS__) each(6, 18, 31, 31, 31, __VA_ARGS__) each(7, 19, 31, 31, 31, __VA_ARGS__) each(8, 20, 31, 31, 31, __VA_ARGS__) each(9, 21, 31, 31, 31, __VA_ARGS__) each(10, 22, 31, 31, 31, __VA_ARGS__) each(11, 23, 31, 31, 31, __VA_ARGS__) each(12, 31, 31, 31, 31, __VA_ARGS__) each(13, 31, 31, 31, 31, __VA_ARGS__) each(14, 31, 31, 31, 31, __VA_ARGS__) each(15, 31, 31, 31, 31, __VA_ARGS__)
#define SOFIE_RDF_ASM512_CLOBBERS "cc", "memory", "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7", "xmm8", "xmm9", "xmm10", "xmm11", "xmm12", "xmm13", "xmm14", "xmm15", "xmm16", "xmm17", "xmm18", "xmm19", "xmm20", "xmm21", "xmm22", "xmm23", "xmm24", "xmm25", "xmm26", "xmm27", "xmm28", "xmm29", "xmm30", "xmm31"
#else
#define SOFIE_RDF_TILE_ASM512 0
#endif

#if SOFIE_RDF_TILE_ASM || SOFIE_RDF_TILE_ASM512
// acc[i][j] (row after row) to or from register r (load: 1 or 0), where i < rows and j < vecs.
#define SOFIE_RDF_ASM_MOVE(i, j, r, load) ".if %c[rows] > " #i "\n\t" ".if %c[vecs] > " #j "\n\t" ".if " #load "\n\t" "vmovups " SOFIE_RDF_ASM_VB "*" #i "*%c[vecs]+" SOFIE_RDF_ASM_VB "*" #j "(%[acc]), " SOFIE_RDF_ASM_VR #r "\n\t" ".else\n\t" "vmovups " SOFIE_RDF_ASM_VR #r ", " SOFIE_RDF_ASM_VB "*" #i "*%c[vecs]+" SOFIE_RDF_ASM_VB "*" #j "(%[acc])\n\t" ".endif\n\t" ".endif\n\t" ".endif\n\t"
#endif

#if SOFIE_RDF_TILE_ASM512
// The tile shapes the assembly holds (rows x vectors): up to 16 x 1, 12 x 2, 6 x 3, 6 x 4, 4 x 5.
template <size_t Rows, size_t Vectors>
constexpr bool kTileAsm512 = Rows >= 1 && ((Vectors == 1 && Rows <= 16) || (Vectors == 2 && Rows <= 12) ||
                                           ((Vectors == 3 || Vectors == 4) && Rows <= 6) || (Vectors == 5 && Rows <= 4));

// tile_asm_panel as AVX2's (above): up to 12 rows (read from a, rows 3-5, 6-8 and 9-11 from pointers of their own:
// an addressing mode scales a register by at most 8 bytes, two rows), 1, 2 or 4 vectors.
template <size_t Rows, size_t Vectors>
constexpr bool kPanelAsm = kTileAsm512<Rows, Vectors> && Rows <= 12 && Vectors != 3 && Vectors != 5;

template <size_t Rows, size_t Vectors>
inline void tile_asm_panel(simd_float *acc, size_t steps, const float *a, std::ptrdiff_t a_row, std::ptrdiff_t a_step,
                           const float *w, std::ptrdiff_t w_step, std::ptrdiff_t w_vector)
{
   static_assert(kPanelAsm<Rows, Vectors>, "a shape with registers for its accumulators");
   const float *a3 = Rows > 3 ? a + 3 * a_row : a, *a6 = Rows > 6 ? a + 6 * a_row : a;
   const float *a9 = Rows > 9 ? a + 9 * a_row : a, *w3 = Vectors > 3 ? w + 3 * w_vector : w;
   constexpr std::ptrdiff_t f = sizeof(float);
   const std::ptrdiff_t ld = a_row * f, sb = a_step * f, wb = w_step * f, ps = w_vector * f;
   __asm__ volatile(SOFIE_RDF_ASM512_ALL(SOFIE_RDF_ASM512_MOVES, 1) //
           "1:\n\t"
           "vmovups (%[w]), %%zmm26\n\t"
           ".if %c[vecs] > 1\n\t" "vmovups (%[w],%[ps]), %%zmm27\n\t" ".endif\n\t"
           ".if %c[vecs] > 2\n\t" "vmovups (%[w],%[ps],2), %%zmm28\n\t" "vmovups (%[w3]), %%zmm29\n\t" ".endif\n\t"
           SOFIE_RDF_ASM512_ROW(0, 12, 6, 18, 22, "(%[a0])")          //
           SOFIE_RDF_ASM512_ROW(1, 13, 7, 19, 23, "(%[a0],%[ld])")    //
           SOFIE_RDF_ASM512_ROW(2, 14, 8, 20, 24, "(%[a0],%[ld],2)")  //
           SOFIE_RDF_ASM512_ROW(3, 15, 9, 21, 25, "(%[a3])")          //
           SOFIE_RDF_ASM512_ROW(4, 16, 10, 22, 31, "(%[a3],%[ld])")   //
           SOFIE_RDF_ASM512_ROW(5, 17, 11, 23, 31, "(%[a3],%[ld],2)") //
           SOFIE_RDF_ASM512_ROW(6, 18, 31, 31, 31, "(%[a6])")         //
           SOFIE_RDF_ASM512_ROW(7, 19, 31, 31, 31, "(%[a6],%[ld])")   //
           SOFIE_RDF_ASM512_ROW(8, 20, 31, 31, 31, "(%[a6],%[ld],2)") //
           SOFIE_RDF_ASM512_ROW(9, 21, 31, 31, 31, "(%[a9])")         //
           SOFIE_RDF_ASM512_ROW(10, 22, 31, 31, 31, "(%[a9],%[ld])")  //
           SOFIE_RDF_ASM512_ROW(11, 23, 31, 31, 31, "(%[a9],%[ld],2)") //
           "add %[wb], %[w]\n\t"
           ".if %c[vecs] > 2\n\t" "add %[wb], %[w3]\n\t" ".endif\n\t"
           "add %[sb], %[a0]\n\t"
           ".if %c[rows] > 3\n\t" "add %[sb], %[a3]\n\t" ".endif\n\t"
           ".if %c[rows] > 6\n\t" "add %[sb], %[a6]\n\t" ".endif\n\t"
           ".if %c[rows] > 9\n\t" "add %[sb], %[a9]\n\t" ".endif\n\t"
           "dec %[n]\n\t"
           "jnz 1b\n\t" //
           SOFIE_RDF_ASM512_ALL(SOFIE_RDF_ASM512_MOVES, 0)
           : [w] "+r"(w), [w3] "+r"(w3), [a0] "+r"(a), [a3] "+r"(a3), [a6] "+r"(a6), [a9] "+r"(a9), [n] "+r"(steps)
           : [acc] "r"(acc), [ld] "r"(ld), [sb] "r"(sb), [wb] "r"(wb), [ps] "r"(ps), [rows] "i"(Rows),
             [vecs] "i"(Vectors)
           : SOFIE_RDF_ASM512_CLOBBERS);
}

// acc[i][j] += w[k * Rows + i] * xp[at(k) + 16 j .. + 16] over k < steps, at(k) as tile_asm_shifted's: conv_shifted_tile's
// loop for Winograd's products, conv_pointwise and conv_shifted (steps > 0).
template <size_t Rows, size_t Vectors>
constexpr bool kShiftedAsm = kTileAsm512<Rows, Vectors>;

// The loop over steps of tile_asm_shifted and tile_asm_out: each step's input vectors from p (at table[k] where
// Table), multiplied by the step's Rows weights at w, added to the accumulators, n steps.
#define SOFIE_RDF_ASM512_SHIFTED_STEPS "1:\n\t" ".if %c[table]\n\t" "mov (%[t]), %[at]\n\t" ".endif\n\t" "vmovups (%[p],%[at],4), %%zmm26\n\t" ".if %c[vecs] > 1\n\t" "vmovups 64(%[p],%[at],4), %%zmm27\n\t" ".endif\n\t" ".if %c[vecs] > 2\n\t" "vmovups 128(%[p],%[at],4), %%zmm28\n\t" ".endif\n\t" ".if %c[vecs] > 3\n\t" "vmovups 192(%[p],%[at],4), %%zmm29\n\t" ".endif\n\t" ".if %c[vecs] > 4\n\t" "vmovups 256(%[p],%[at],4), %%zmm30\n\t" ".endif\n\t" SOFIE_RDF_ASM512_ALL(SOFIE_RDF_ASM512_SHIFTED_ROW, 0) "add %[wb], %[w]\n\t" ".if %c[table]\n\t" "add $8, %[t]\n\t" ".else\n\t" "add %[sb], %[p]\n\t" ".endif\n\t" "dec %[n]\n\t" "jnz 1b\n\t"

template <size_t Rows, size_t Vectors, bool Table>
inline void tile_asm_shifted(simd_float *acc, size_t steps, const float *xp, std::ptrdiff_t stride,
                             const std::int64_t *table, const float *w)
{
   static_assert(kShiftedAsm<Rows, Vectors>, "a shape with registers for its accumulators");
   const std::ptrdiff_t sb = stride * std::ptrdiff_t(sizeof(float));
   std::int64_t at = 0;
   __asm__ volatile(SOFIE_RDF_ASM512_ALL(SOFIE_RDF_ASM512_MOVES, 1) //
                    SOFIE_RDF_ASM512_SHIFTED_STEPS //
                    SOFIE_RDF_ASM512_ALL(SOFIE_RDF_ASM512_MOVES, 0)
                    : [w] "+r"(w), [p] "+r"(xp), [t] "+r"(table), [at] "+r"(at), [n] "+r"(steps)
                    : [acc] "r"(acc), [sb] "r"(sb), [wb] "i"(Rows * sizeof(float)), [rows] "i"(Rows),
                      [vecs] "i"(Vectors), [table] "i"(Table)
                    : SOFIE_RDF_ASM512_CLOBBERS);
}

// tile_asm_shifted's whole tile, for the identity activation: the sums start from the bias (b: Rows floats, zeros
// where there is none), the rows of `start` (start_stride floats apart) are added after the steps where it is not
// null, and the rows go to out (out_stride floats apart), all in the assembly, the sums never in memory
// (conv_shifted_tile under Cling).  Winograd's products are tiles over 16 channels or fewer, a few steps each, around
// which the sums' first values, their moves through memory and their stores in C++ weighed: declared into ROOT on a
// Xeon, a 3x3 layer of 16 -> 16 channels on 16 pixels took 0.94x the time with this, a calorimeter CNN 0.97x.  AVX2's
// 12 sums, operands of tile_asm_shifted, gained nothing so (0.99x to 1.02x).
#define SOFIE_RDF_ASM512_SET(j, from, r) ".if %c[vecs] > " #j "\n\t" "vmovaps %%zmm" #from ", %%zmm" #r "\n\t" ".endif\n\t"
#define SOFIE_RDF_ASM512_INIT(i, r1, r2, r3, r4, unused) ".if %c[rows] > " #i "\n\t" "vbroadcastss 4*" #i "(%[bias]), %%zmm" #i "\n\t" SOFIE_RDF_ASM512_SET(1, i, r1) SOFIE_RDF_ASM512_SET(2, i, r2) SOFIE_RDF_ASM512_SET(3, i, r3) SOFIE_RDF_ASM512_SET(4, i, r4) ".endif\n\t"
#define SOFIE_RDF_ASM512_ADD(j, r) ".if %c[vecs] > " #j "\n\t" "vaddps " #j "*64(%[s]), %%zmm" #r ", %%zmm" #r "\n\t" ".endif\n\t"
#define SOFIE_RDF_ASM512_START(i, r1, r2, r3, r4, unused) ".if %c[rows] > " #i "\n\t" SOFIE_RDF_ASM512_ADD(0, i) SOFIE_RDF_ASM512_ADD(1, r1) SOFIE_RDF_ASM512_ADD(2, r2) SOFIE_RDF_ASM512_ADD(3, r3) SOFIE_RDF_ASM512_ADD(4, r4) "add %[ss], %[s]\n\t" ".endif\n\t"
#define SOFIE_RDF_ASM512_STORE(j, r) ".if %c[vecs] > " #j "\n\t" "vmovups %%zmm" #r ", " #j "*64(%[o])\n\t" ".endif\n\t"
#define SOFIE_RDF_ASM512_OUT(i, r1, r2, r3, r4, unused) ".if %c[rows] > " #i "\n\t" SOFIE_RDF_ASM512_STORE(0, i) SOFIE_RDF_ASM512_STORE(1, r1) SOFIE_RDF_ASM512_STORE(2, r2) SOFIE_RDF_ASM512_STORE(3, r3) SOFIE_RDF_ASM512_STORE(4, r4) "add %[os], %[o]\n\t" ".endif\n\t"

// The first values of tile_asm_out's sums where a tile has no bias: one per row, 16 rows at most.
alignas(64) inline constexpr float kTileZeros[16] = {};

template <size_t Rows, size_t Vectors, bool Table>
inline void tile_asm_out(size_t steps, const float *xp, std::ptrdiff_t stride, const std::int64_t *table,
                         const float *w, const float *b, const float *start, std::ptrdiff_t start_stride, float *out,
                         std::ptrdiff_t out_stride)
{
   static_assert(kShiftedAsm<Rows, Vectors>, "a shape with registers for its accumulators");
   constexpr std::ptrdiff_t f = sizeof(float);
   const std::ptrdiff_t sb = stride * f, ss = start_stride * f, os = out_stride * f;
   std::int64_t at = 0;
   __asm__ volatile(SOFIE_RDF_ASM512_ALL(SOFIE_RDF_ASM512_INIT, 0) //
                    SOFIE_RDF_ASM512_SHIFTED_STEPS //
                    "test %[s], %[s]\n\t"
                    "jz 2f\n\t" //
                    SOFIE_RDF_ASM512_ALL(SOFIE_RDF_ASM512_START, 0) //
                    "2:\n\t"                                      //
                    SOFIE_RDF_ASM512_ALL(SOFIE_RDF_ASM512_OUT, 0)
                    : [w] "+r"(w), [p] "+r"(xp), [t] "+r"(table), [at] "+r"(at), [n] "+r"(steps), [s] "+r"(start),
                      [o] "+r"(out)
                    : [bias] "r"(b), [sb] "r"(sb), [ss] "r"(ss), [os] "r"(os), [wb] "i"(Rows * sizeof(float)),
                      [rows] "i"(Rows), [vecs] "i"(Vectors), [table] "i"(Table)
                    : SOFIE_RDF_ASM512_CLOBBERS);
}
#undef SOFIE_RDF_ASM512_SET
#undef SOFIE_RDF_ASM512_INIT
#undef SOFIE_RDF_ASM512_ADD
#undef SOFIE_RDF_ASM512_START
#undef SOFIE_RDF_ASM512_STORE
#undef SOFIE_RDF_ASM512_OUT
#undef SOFIE_RDF_ASM512_SHIFTED_STEPS
#endif

// rows_panels_tile's loop (an event or two at a time through a dense layer, across up to 8 vectors of its panels):
// acc[i][j] (Rows x Vectors, 1 or 2 rows) += a_i[k * a_step] * w[k * w_step + j-th vector .. + lanes] over
// k < steps, a_i = a + i * a_row, the panels panel_stride floats apart (AVX2: two vectors a panel, side by side;
// AVX-512: one).  Row 0's sums in registers 0-7, row 1's in 8-15 (AVX2's 16 registers: two rows of up to 4
// vectors); two rows load each panel vector into an input register (SOFIE_RDF_ASM_ROWS_VECTORS) and use it twice,
// one row reads it in its multiply-add, as the loop does.  The broadcast values in SOFIE_RDF_ASM_ROWS_B0 and _B1.
#if SOFIE_RDF_TILE_ASM512
#define SOFIE_RDF_ASM_ROWS_B0 "30"
#define SOFIE_RDF_ASM_ROWS_B1 "31"
#define SOFIE_RDF_ASM_ROWS_CLOBBERS SOFIE_RDF_ASM512_CLOBBERS
// vector j: its register for row 1, its input register, its address (vectors 0-2 from w, 3-5 from w3, 6-7 from w6)
#define SOFIE_RDF_ASM_ROWS_VECTORS SOFIE_RDF_ASM_ROWS_VECTOR(0, 8, 16, "(%[w])") SOFIE_RDF_ASM_ROWS_VECTOR(1, 9, 17, "(%[w],%[ps])") SOFIE_RDF_ASM_ROWS_VECTOR(2, 10, 18, "(%[w],%[ps],2)") SOFIE_RDF_ASM_ROWS_VECTOR(3, 11, 19, "(%[w3])") SOFIE_RDF_ASM_ROWS_VECTOR(4, 12, 20, "(%[w3],%[ps])") SOFIE_RDF_ASM_ROWS_VECTOR(5, 13, 21, "(%[w3],%[ps],2)") SOFIE_RDF_ASM_ROWS_VECTOR(6, 14, 22, "(%[w6])") SOFIE_RDF_ASM_ROWS_VECTOR(7, 15, 23, "(%[w6],%[ps])")
template <size_t Rows, size_t Vectors>
constexpr bool kRowsAsm = (Rows == 1 || Rows == 2) && Vectors >= 1 && Vectors <= 8;
constexpr std::ptrdiff_t kRowsAsmW3 = 3, kRowsAsmW6 = 6; // w3, w6: panels past w
#elif SOFIE_RDF_TILE_ASM
#define SOFIE_RDF_ASM_ROWS_B0 "12"
#define SOFIE_RDF_ASM_ROWS_B1 "13"
#define SOFIE_RDF_ASM_ROWS_CLOBBERS "cc", "memory", "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7", "xmm8", "xmm9", "xmm10", "xmm11", "xmm12", "xmm13"
// vector j (panel j / 2, its half j % 2): its register for row 1, its input register (two rows: vectors 0-3 alone),
// its address (panels 0-2 from w, 3 from w3)
#define SOFIE_RDF_ASM_ROWS_VECTORS SOFIE_RDF_ASM_ROWS_VECTOR(0, 8, 4, "(%[w])") SOFIE_RDF_ASM_ROWS_VECTOR(1, 9, 5, "32(%[w])") SOFIE_RDF_ASM_ROWS_VECTOR(2, 10, 6, "(%[w],%[ps])") SOFIE_RDF_ASM_ROWS_VECTOR(3, 11, 7, "32(%[w],%[ps])") SOFIE_RDF_ASM_ROWS_VECTOR(4, 12, 12, "(%[w],%[ps],2)") SOFIE_RDF_ASM_ROWS_VECTOR(5, 12, 12, "32(%[w],%[ps],2)") SOFIE_RDF_ASM_ROWS_VECTOR(6, 12, 12, "(%[w3])") SOFIE_RDF_ASM_ROWS_VECTOR(7, 12, 12, "32(%[w3])")
template <size_t Rows, size_t Vectors>
constexpr bool kRowsAsm = Vectors >= 1 && ((Rows == 1 && Vectors <= 8) || (Rows == 2 && Vectors <= 4));
constexpr std::ptrdiff_t kRowsAsmW3 = 3, kRowsAsmW6 = 8; // no w6: 4 panels at most
#endif

#if SOFIE_RDF_TILE_ASM || SOFIE_RDF_TILE_ASM512
#define SOFIE_RDF_ASM_ROWS_MOVES(load) SOFIE_RDF_ASM_MOVE(0, 0, 0, load) SOFIE_RDF_ASM_MOVE(0, 1, 1, load) SOFIE_RDF_ASM_MOVE(0, 2, 2, load) SOFIE_RDF_ASM_MOVE(0, 3, 3, load) SOFIE_RDF_ASM_MOVE(0, 4, 4, load) SOFIE_RDF_ASM_MOVE(0, 5, 5, load) SOFIE_RDF_ASM_MOVE(0, 6, 6, load) SOFIE_RDF_ASM_MOVE(0, 7, 7, load) SOFIE_RDF_ASM_MOVE(1, 0, 8, load) SOFIE_RDF_ASM_MOVE(1, 1, 9, load) SOFIE_RDF_ASM_MOVE(1, 2, 10, load) SOFIE_RDF_ASM_MOVE(1, 3, 11, load) SOFIE_RDF_ASM_MOVE(1, 4, 12, load) SOFIE_RDF_ASM_MOVE(1, 5, 13, load) SOFIE_RDF_ASM_MOVE(1, 6, 14, load) SOFIE_RDF_ASM_MOVE(1, 7, 15, load)
#define SOFIE_RDF_ASM_ROWS_VECTOR(j, r1, in, at) ".if %c[vecs] > " #j "\n\t" ".if %c[rows] > 1\n\t" "vmovups " at ", " SOFIE_RDF_ASM_VR #in "\n\t" "vfmadd231ps " SOFIE_RDF_ASM_VR #in ", " SOFIE_RDF_ASM_VR SOFIE_RDF_ASM_ROWS_B0 ", " SOFIE_RDF_ASM_VR #j "\n\t" "vfmadd231ps " SOFIE_RDF_ASM_VR #in ", " SOFIE_RDF_ASM_VR SOFIE_RDF_ASM_ROWS_B1 ", " SOFIE_RDF_ASM_VR #r1 "\n\t" ".else\n\t" "vfmadd231ps " at ", " SOFIE_RDF_ASM_VR SOFIE_RDF_ASM_ROWS_B0 ", " SOFIE_RDF_ASM_VR #j "\n\t" ".endif\n\t" ".endif\n\t"

template <size_t Rows, size_t Vectors>
inline void tile_asm_rows(simd_float *acc, size_t steps, const float *a, std::ptrdiff_t a_row, std::ptrdiff_t a_step,
                          const float *w, std::ptrdiff_t w_step, std::ptrdiff_t panel_stride)
{
   static_assert(kRowsAsm<Rows, Vectors>, "one or two rows whose sums and inputs fit the registers");
   constexpr size_t panels = (Vectors + kPanelVectors - 1) / kPanelVectors;
   const float *w3 = panels > size_t(kRowsAsmW3) ? w + kRowsAsmW3 * panel_stride : w;
   const float *w6 = panels > size_t(kRowsAsmW6) ? w + kRowsAsmW6 * panel_stride : w;
   constexpr std::ptrdiff_t f = sizeof(float);
   const std::ptrdiff_t ld = a_row * f, sb = a_step * f, wb = w_step * f, ps = panel_stride * f;
   __asm__ volatile(SOFIE_RDF_ASM_ROWS_MOVES(1) //
                    "1:\n\t"
                    "vbroadcastss (%[a0]), " SOFIE_RDF_ASM_VR SOFIE_RDF_ASM_ROWS_B0 "\n\t"
                    ".if %c[rows] > 1\n\t" "vbroadcastss (%[a0],%[ld]), " SOFIE_RDF_ASM_VR SOFIE_RDF_ASM_ROWS_B1 "\n\t" ".endif\n\t"
                    SOFIE_RDF_ASM_ROWS_VECTORS //
                    "add %[wb], %[w]\n\t"
                    ".if %c[panels] > %c[at3]\n\t" "add %[wb], %[w3]\n\t" ".endif\n\t"
                    ".if %c[panels] > %c[at6]\n\t" "add %[wb], %[w6]\n\t" ".endif\n\t"
                    "add %[sb], %[a0]\n\t"
                    "dec %[n]\n\t"
                    "jnz 1b\n\t" //
                    SOFIE_RDF_ASM_ROWS_MOVES(0)
                    : [w] "+r"(w), [w3] "+r"(w3), [w6] "+r"(w6), [a0] "+r"(a), [n] "+r"(steps)
                    : [acc] "r"(acc), [ld] "r"(ld), [sb] "r"(sb), [wb] "r"(wb), [ps] "r"(ps), [rows] "i"(Rows),
                      [vecs] "i"(Vectors), [panels] "i"(panels), [at3] "i"(kRowsAsmW3), [at6] "i"(kRowsAsmW6)
                    : SOFIE_RDF_ASM_ROWS_CLOBBERS);
}
#endif

// One register tile: Rows rows (values at a + bases[i] + offsets[k]) x Panels * kPanelColumns columns (Panels
// panels, panel_stride floats apart, kPanelColumns floats per step each), summed over `steps` steps, plus
// `start` (rows start_stride apart) when not null, else plus `bias` (one value per column) when not null;
// written to out (rows out_stride apart).  offsets[k] is a table (conv_rows: a step is a channel and a kernel
// tap) or StridedSteps (gemm_panels); InFma: see fma_row.  Inlined only into the functions below, which are not
// inlined: compiled on their own, the accumulators stay in registers, where inlined into the loops around them
// GCC spills some of them.
template <size_t Rows, size_t Panels, typename Steps, bool InFma, typename F>
[[gnu::always_inline]] inline void tile_steps(Steps offsets, size_t steps, const float *a, const size_t *bases,
                                              const float *panel, size_t panel_stride, const float *start,
                                              size_t start_stride, float *out, size_t out_stride, const float *bias,
                                              F act)
{
   constexpr size_t Vectors = Panels * kPanelVectors;
   simd_float acc[Rows][Vectors], first[Vectors];
#pragma GCC unroll 16
   for (size_t j = 0; j < Vectors; ++j) {
      first[j] = simd_float{};
      if (bias && !start)
         std::memcpy(&first[j], bias + j * kSimdLanes, sizeof(simd_float));
   }
   const float *src[Rows];
#pragma GCC unroll 16
   for (size_t i = 0; i < Rows; ++i) {
      src[i] = a + bases[i];
#pragma GCC unroll 16
      for (size_t j = 0; j < Vectors; ++j)
         acc[i][j] = first[j];
   }
   const float *w = panel;
#if SOFIE_RDF_TILE_ASM || SOFIE_RDF_TILE_ASM512
   if constexpr (std::is_same_v<Steps, StridedSteps> && kPanelAsm<Rows, Vectors> && !InFma) { // rows a_row apart: tile_bases
      if (steps)
         tile_asm_panel<Rows, Vectors>(&acc[0][0], steps, src[0], Rows > 1 ? std::ptrdiff_t(bases[1] - bases[0]) : 0,
                                       offsets.stride, w, kPanelColumns,
                                       kPanelVectors > 1 ? std::ptrdiff_t(kSimdLanes) : std::ptrdiff_t(panel_stride));
      steps = 0;
   }
#endif
   SOFIE_RDF_TERMS_LOOP
   for (size_t k = 0; k < steps; ++k, w += kPanelColumns) {
      simd_float in[Vectors];
#pragma GCC unroll 16
      for (size_t j = 0; j < Vectors; ++j) {
         std::memcpy(&in[j], w + j / kPanelVectors * panel_stride + j % kPanelVectors * kSimdLanes,
                     sizeof(simd_float));
         SOFIE_KEEP_IN_REGISTER(in[j]);
      }
      const std::int64_t o = offsets[k];
#pragma GCC unroll 16
      for (size_t i = 0; i < Rows; ++i) {
         fma_row<Vectors, InFma>(acc[i], in, src[i] + o);
      }
   }
   // Unrolled, so the accumulators go straight from registers to out as whole vectors: a loop makes GCC
   // copy them through the stack in halves, and the caller's vector loads of out then wait on two stores.
#pragma GCC unroll 16
   for (size_t i = 0; i < Rows; ++i)
#pragma GCC unroll 16
      for (size_t j = 0; j < Vectors; ++j) {
         if (start) {
            simd_float before;
            std::memcpy(&before, start + i * start_stride + j * kSimdLanes, sizeof before);
            acc[i][j] += before;
         }
         act_vector(acc[i][j], act);
         std::memcpy(out + i * out_stride + j * kSimdLanes, &acc[i][j], sizeof(simd_float));
      }
}

// One register tile (tile_steps), in a call of its own.
template <size_t Rows, size_t Panels, typename Steps, bool InFma = false, typename F = Identity>
[[gnu::noinline]] void panel_tile(Steps offsets, size_t steps, const float *a, const size_t *bases,
                                  const float *panel, size_t panel_stride, const float *start, size_t start_stride,
                                  float *out, size_t out_stride, const float *bias = nullptr, F act = {})
{
   tile_steps<Rows, Panels, Steps, InFma>(offsets, steps, a, bases, panel, panel_stride, start, start_stride, out,
                                          out_stride, bias, act);
}

// v, hidden from GCC's optimizer: a loop of tiles reads its strides through it, so that each tile computes its
// rows' offsets anew.  Hoisted out of the loop, the offsets of a tile's rows in A and in the output (24 values for
// 12 rows) go to vector registers and are copied back to general ones at every step (12 x 16 tiles of 16 terms:
// 1.1x the time).
inline size_t opaque(size_t v)
{
   __asm__("" : "+r"(v));
   return v;
}

// bases[i] = i * a_row (opaque), the offsets of a tile's rows in A.
template <size_t Rows>
inline void tile_bases(size_t *bases, size_t a_row)
{
   a_row = opaque(a_row);
   for (size_t i = 0; i < Rows; ++i)
      bases[i] = i * a_row;
}

// `tiles` whole register tiles one under the other (Rows rows each: A's rows a_row apart, out's ldo apart), plus
// bias, activated, in one call.  A call per tile costs about 100 cycles where the next tile's multiply-adds do not
// overlap the last one's (6 x 64 tiles of 64 terms: 94% -> 97% of the peak on Zen 4; 16 terms 81% -> 88%).  Each
// tile's output rows are fetched for writing while it is computed (outputs beyond L2, 4096 x 256 or 8192 x 128:
// 0.93x the time).
template <size_t Rows, size_t Panels, typename F>
[[gnu::noinline]] void panel_run(size_t tiles, StridedSteps steps, size_t K, const float *a, size_t a_row,
                                 const float *panel, float *out, size_t ldo, const float *bias, F act)
{
   for (size_t t = 0; t < tiles; ++t, a += Rows * a_row, out += Rows * ldo) {
      size_t bases[Rows];
      tile_bases<Rows>(bases, a_row);
      const size_t ld = opaque(ldo);
      for (size_t i = 0; i < Rows; ++i)
         for (size_t c = 0; c < Panels * kPanelColumns; c += kPanelColumns)
            __builtin_prefetch(out + i * ld + c, 1);
      tile_steps<Rows, Panels, StridedSteps, false>(steps, K, a, bases, panel, K * kPanelColumns, nullptr, 0, out,
                                                    ld, bias, act);
   }
}

// panel_run's tiles added to their pooled rows (RowPool), each through a buffer as it is computed.
template <size_t Rows, size_t Panels, typename F>
[[gnu::noinline]] void pooled_run(size_t tiles, StridedSteps steps, size_t K, const float *a, size_t a_row,
                                  const float *panel, const float *bias, F act, const RowPool &pool)
{
   constexpr size_t Width = Panels * kPanelColumns;
   alignas(sizeof(simd_float)) float tile[Rows * Width];
   for (size_t t = 0; t < tiles; ++t, a += Rows * a_row) {
      size_t bases[Rows];
      tile_bases<Rows>(bases, a_row);
      tile_steps<Rows, Panels, StridedSteps, false>(steps, K, a, bases, panel, K * kPanelColumns, nullptr, 0, tile,
                                                    Width, bias, act);
      pool_tile<Rows, Width / kSimdLanes>(tile, pool.at(t * Rows));
   }
}

// Rows in tiles of as even a size as possible (64 = 4 x 6 + 8 x 5, not 10 x 6 + 4; 49 = 4 x 6 + 5 x 5,
// not 8 x 6 + 1): a tile of one or two rows is bound by its loads.  Tile q has rows_of(q) rows.
struct PanelTiles {
   size_t count, base, extra;

   explicit PanelTiles(size_t rows, size_t most = kPanelRows)
      : count((rows + most - 1) / most), base(count ? rows / count : 0), extra(count ? rows % count : 0)
   {
   }
   size_t rows_of(size_t q) const { return base + (q < extra); }
};

// Panels of the register tile that starts at column f of n: `widest` (kTilePanels, or gemm_panels' wide
// tiles) where that many panels remain, else kTilePanels, else 1 (the last panel may be partial, its columns
// zero-padded).
inline size_t tile_panels(size_t f, size_t n, size_t widest = kTilePanels)
{
   const size_t left = n - f;
   if (left > (widest - 1) * kPanelColumns)
      return widest;
   return left > (kTilePanels - 1) * kPanelColumns ? kTilePanels : 1;
}

// y[j] = act(alpha * t[j] + beta * bias[j]) for j < Width (bias may be null).  The pointers do not overlap
// (restrict), so GCC vectorizes the row with no run-time check and stores it to y straight from registers: through
// a row buffer copied with memcpy, GCC's copy for Zen 3 (16-byte pieces) read back halves of 32-byte stores, whose
// forwarding fails (DeepSets at batch 64 and at batch 1 took 1.08x this time on Zen 3, built for AVX2).  The loop
// is kept rolled until the vectorizer has seen it: unrolled first (GCC unrolls loops of a constant count early),
// its lanes went to the basic-block vectorizer, which leaves a conditional such as ReLU's scalar.
template <size_t Width, typename F>
inline void act_row(const float *__restrict t, float alpha, float beta, const float *__restrict bias,
                    float *__restrict y, F act)
{
   if (bias) {
#pragma GCC unroll 1
      for (size_t j = 0; j < Width; ++j)
         y[j] = act(alpha * t[j] + beta * bias[j]);
   } else {
#pragma GCC unroll 1
      for (size_t j = 0; j < Width; ++j)
         y[j] = act(alpha * t[j]);
   }
}

// A tile's products out to their rows of y, act(alpha * product + beta * bias) over its first `cols` of Width
// columns (bias may be null).  A whole tile goes in one pass per row from the tile to y, where made
// in place (bias, then act) and then copied it took three passes, as long as its whole product at 64 terms
// (DeepSets' 64 -> 64 layers).
template <size_t Rows, size_t Width, typename F>
inline void panel_tile_out(const float *tile, size_t cols, float alpha, float beta, const float *bias, float *y,
                           size_t ldy, F act)
{
   if (cols < Width) { // the last panel's columns: a count known only here, nothing for GCC to unroll early
      for (size_t i = 0; i < Rows; ++i)
         for (size_t j = 0; j < cols; ++j)
            y[i * ldy + j] = act(alpha * tile[i * Width + j] + (bias ? beta * bias[j] : 0.0f));
      return;
   }
   for (size_t i = 0; i < Rows; ++i)
      act_row<Width>(tile + i * Width, alpha, beta, bias, y + i * ldy, act);
}

// Whether a tile of Width columns stores act(product + bias) straight from its registers: all its columns kept,
// alpha 1 and the bias (if any) added as it is.
template <size_t Width>
inline bool whole_tile(size_t cols, float alpha, float beta, const float *bias)
{
   return cols == Width && alpha == 1.0f && (!bias || beta == 1.0f);
}

// Rows [0, rows) (rows <= Rows) of A (a, rows a_row apart, steps along a row) times Panels panels (K floats x
// kPanelColumns apart), out to y: the first `cols` columns.
template <size_t Rows, size_t Panels, typename F>
inline void gemm_panel_block(size_t rows, StridedSteps steps, size_t K, const float *a, size_t a_row,
                             const float *panel, float alpha, float beta, const float *bias, size_t cols, float *y,
                             size_t ldy, F act, RowPool pool)
{
   if constexpr (Rows > 1) {
      if (rows < Rows) {
         gemm_panel_block<Rows - 1, Panels>(rows, steps, K, a, a_row, panel, alpha, beta, bias, cols, y, ldy, act,
                                            pool);
         return;
      }
   }
   constexpr size_t Width = Panels * kPanelColumns;
   if (whole_tile<Width>(cols, alpha, beta, bias)) {
      if (pool.out)
         pooled_run<Rows, Panels>(1, steps, K, a, a_row, panel, bias, act, pool);
      else
         panel_run<Rows, Panels>(1, steps, K, a, a_row, panel, y, ldy, bias, act);
      return;
   }
   size_t bases[Rows];
   tile_bases<Rows>(bases, a_row);
   alignas(sizeof(simd_float)) float tile[Rows * Width];
   panel_tile<Rows, Panels>(steps, K, a, bases, panel, K * kPanelColumns, nullptr, 0, tile, Width);
   if (!pool.out) {
      panel_tile_out<Rows, Width>(tile, cols, alpha, beta, bias, y, ldy, act);
      return;
   }
   for (size_t i = 0; i < Rows; ++i) { // the last panel's columns, pooled
      float *o = pool.out + (pool.row + i) / pool.rows_per * pool.ldo;
      for (size_t j = 0; j < cols; ++j)
         o[j] += act(alpha * tile[i * Width + j] + (bias ? beta * bias[j] : 0.0f));
   }
}

#if SOFIE_RDF_AVX512
// Wide tiles of gemm_panels where 64 columns remain: 6 rows x 4 panels (24 accumulators, 4 panel vectors and a
// broadcast in 32 registers), each broadcast value of A feeding four multiply-adds and each row of A read once
// per 64 columns, where 12 x 2 tiles read it twice (DeepSets' 64 -> 64 layers on 4096 rows: 0.9x the time).
constexpr size_t kWideRows = 6;
constexpr size_t kWidePanels = 4;
#else
constexpr size_t kWideRows = kPanelRows; // AVX's 16 registers hold no wider tile than kTilePanels
constexpr size_t kWidePanels = kTilePanels;
#endif
// Deeper products keep 12 x 2 tiles: 4 panels of more than 256 steps (64 KB) leave L1, and each panel vector
// loaded from L2 then feeds 12 multiply-adds instead of 6 (128 x 384..2048 x 64..512 on a Sapphire Rapids-class
// Xeon: 0.83x to 0.94x the time, with one run of 128 x 1024 x 128 at 1.1x within this machine's noise).
constexpr size_t kWideMaxDepth = 256;

// Rows of A per run of gemm_panels: as many as keep the run's part of A and one group of panels within this many
// bytes, in L1, while the run goes over each group in turn (a multiple of kPanelRows, which both tiles' rows
// divide, from kPanelRows to kRunRows); the last run takes a tail of fewer than kPanelRows rows.  Counting A alone
// (12 KB), a generator's 64 x 100 x 40500 layer took runs of 24 rows beside panels of 25 KB, and 1.04x the time of
// runs of 12.  Products whose panels fill more than two blocks (weights streamed from L3 or memory, block after
// block) take runs of 12 rows: built for AVX2 (groups of 16 columns), runs of 48 took 1.3x the time of the
// generator's layer and 1.1x that of 64 x 64 x 16000, runs of 6 1.05x (AVX-512: 0.99x to 1.02x either way; 2
// blocks, 256 x 64 x 2048, 0.97x).
constexpr size_t kRunBytes = size_t(28) << 10;
constexpr size_t kRunRows = 48;
constexpr size_t kStreamedRunRows = 12;

// Rows [0, rows) of A times Panels panels, out to y's first `cols` columns: the run's whole tiles of Rows rows in
// one call (panel_run) where they store straight from registers, the rest tile by tile.
template <size_t Rows, size_t Panels, typename F>
inline void gemm_panel_rows(size_t rows, StridedSteps steps, size_t K, const float *a, size_t a_row,
                            const float *panel, float alpha, float beta, const float *bias, size_t cols, float *y,
                            size_t ldy, F act, RowPool pool)
{
   constexpr size_t Width = Panels * kPanelColumns;
   const PanelTiles tiles(rows, Rows); // whole tiles first
   size_t q = 0, row = 0;
   if (whole_tile<Width>(cols, alpha, beta, bias) && tiles.rows_of(0) == Rows) {
      q = tiles.base == Rows ? tiles.count : tiles.extra;
      row = q * Rows;
      if (pool.out)
         pooled_run<Rows, Panels>(q, steps, K, a, a_row, panel, bias, act, pool);
      else
         panel_run<Rows, Panels>(q, steps, K, a, a_row, panel, y, ldy, bias, act);
   }
   for (; q < tiles.count; row += tiles.rows_of(q), ++q)
      gemm_panel_block<Rows, Panels>(tiles.rows_of(q), steps, K, a + row * a_row, a_row, panel, alpha, beta, bias,
                                     cols, pool.out ? y : y + row * ldy, ldy, act, pool.at(row));
}

// Panels per block of gemm_panels: as many as fill this many bytes, a part of L2 that every run of rows reuses.
constexpr size_t kPanelBlockBytes = size_t(256) << 10;

// Y = act(alpha * A B + beta * bias) for a constant B stored in panels at generation time (emitters/gemm.py:
// its N columns in blocks of kPanelColumns, each K x kPanelColumns, the last one zero-padded).  A (M x K)
// is read at A[i * a_row + k * a_col] (transA swaps the strides); bias is a row of N values, or null.
// Each register tile gets bias and activation as it is written, so a Y larger than the caches (a
// generator's 64 x 40500 last layer) is written once, where BLAS and a pass for the activation after it
// go over it twice; and B's panels need no packing per call.
// The panels go in blocks that stay in L2 while each run of rows goes over the whole block, its part of A
// staying in L1: panel by panel, every tile of A passed through L1 beside the panel (64 rows of depth 100
// fill it), and the product took 1.11x this order's time.
// pool_rows P > 0 (passes/pool_fusion.py): Y is (M / P) x N, the sum (mean: the average) of each run of P rows of
// the activated product, added up from the register tiles (RowPool), the product itself never stored.
template <typename F>
SOFIE_RDF_KERNEL void gemm_panels(size_t M, size_t N, size_t K, float alpha, const float *A, size_t a_row, std::ptrdiff_t a_col,
                 const float *Bp, float beta, const float *bias, float *Y, F act, size_t pool_rows = 0,
                 bool mean = false)
{
   if (pool_rows)
      detail::fill_n(Y, M / pool_rows * N, 0.0f);
   const size_t panel_bytes = K * kPanelColumns * sizeof(float);
   const size_t tiles_per_block = detail::max_of<size_t>(1, kPanelBlockBytes / detail::max_of<size_t>(1, panel_bytes) / kWidePanels);
   const size_t block = tiles_per_block * kWidePanels * kPanelColumns;
   size_t run = N > 2 * block ? kStreamedRunRows : kRunRows;
   while (run > kPanelRows && (run + kWidePanels * kPanelColumns) * K * sizeof(float) > kRunBytes)
      run -= kPanelRows;
   const size_t widest = K <= kWideMaxDepth ? kWidePanels : kTilePanels;
   for (size_t f0 = 0; f0 < N; f0 += block) {
      const size_t f1 = detail::min_of(N, f0 + block);
      for (size_t row = 0, rows; row < M; row += rows) {
         rows = M - row < run + kPanelRows ? M - row : run;
         for (size_t f = f0, panels; f < f1; f += panels * kPanelColumns) {
            panels = tile_panels(f, f1, widest);
            const float *a = A + row * a_row, *bf = bias ? bias + f : nullptr;
            const size_t cols = detail::min_of(panels * kPanelColumns, N - f);
            const RowPool pool = pool_rows ? RowPool{Y + f, pool_rows, N, row} : RowPool{};
            float *y = pool_rows ? Y + f : Y + row * N + f;
            if (kWidePanels > kTilePanels && panels == kWidePanels)
               gemm_panel_rows<kWideRows, kWidePanels>(rows, StridedSteps{a_col}, K, a, a_row, Bp + f * K, alpha,
                                                       beta, bf, cols, y, N, act, pool);
            else if (panels == kTilePanels)
               gemm_panel_rows<kPanelRows, kTilePanels>(rows, StridedSteps{a_col}, K, a, a_row, Bp + f * K, alpha,
                                                        beta, bf, cols, y, N, act, pool);
            else
               gemm_panel_rows<kPanelRows, 1>(rows, StridedSteps{a_col}, K, a, a_row, Bp + f * K, alpha, beta, bf,
                                              cols, y, N, act, pool);
         }
      }
   }
   if (mean && pool_rows)
      for (size_t i = 0; i < M / pool_rows * N; ++i)
         Y[i] /= static_cast<float>(pool_rows);
}

// ---- a row count known only when the code runs ---------------------------------------------------------------
//
// A batch dim left open (every exported model's) makes a product's row count a value the code reads while running:
// the events of a call times the particles or tokens of each.  gemm_panels' tiles serve many rows; a few rows (an
// event at a time through a Gemm, 1 to 15 rows) would leave its tiles latency-bound (one or two accumulators), so
// those rows go through tiles of one or two rows that span up to rows_panels_width() panels, each row of A read once per
// such span and as many multiply-adds in flight as accumulators: B streamed once per pair of rows.

// Rows at which gemm_panels takes over from gemm_rows_panels, and from which it does for outputs beyond L2
// (emitters/gemm.py: PANEL_MIN_ROWS, PANEL_MIN_STREAMED_ROWS, PANEL_MIN_OUTPUTS).
constexpr size_t kPanelMinRows = 16;
constexpr size_t kPanelMinStreamedRows = 4;
// Panels of a rows_panels tile of Rows rows: the rows' sums and a row of B's vectors fill AVX-512's 32 registers at
// 8 panels (two rows: 16 + 8 vectors), AVX2's 16 at 4 panels for one row, 2 for two (8 + 8, 8 + 4: at AVX-512's 8
// panels, 48 vectors, the spills made an open batch of one event 1.6x the time of the batch fixed at 1 on an AMD
// EPYC), SSE's at half that.
template <size_t Rows>
constexpr size_t rows_panels_width()
{
#if SOFIE_RDF_AVX512
   return 8;
#elif SOFIE_RDF_AVX2
   return Rows == 1 ? 4 : 2;
#else
   return Rows == 1 ? 2 : 1;
#endif
}

// Rows rows x Panels panels of Y (its first `cols` columns), out through a buffer: act(alpha A B + beta bias).
// A tile of fewer than kRowsChains accumulators (one row over the last one or two panels: an event through a
// 100-wide layer ends in such tiles) would wait on each multiply-add's latency: its terms go round Chains sets of
// accumulators, summed at the end (one row of 100 x 100: 0.6 -> 0.4 us, the time of the batch fixed at 1).
constexpr size_t kRowsChains = 8;

template <size_t Rows, size_t Panels, typename F>
[[gnu::noinline]] void rows_panels_tile(size_t K, const float *a, size_t a_row, std::ptrdiff_t a_col,
                                        const float *panel, float alpha, float beta, const float *bias, size_t cols,
                                        float *y, size_t ldy, F act)
{
   constexpr size_t Vectors = Panels * kPanelVectors, Width = Panels * kPanelColumns;
   constexpr size_t Chains = Rows * Vectors >= kRowsChains ? 1 : kRowsChains / (Rows * Vectors);
   simd_float acc[Chains][Rows][Vectors];
#pragma GCC unroll 16
   for (size_t c = 0; c < Chains; ++c)
#pragma GCC unroll 16
      for (size_t i = 0; i < Rows; ++i)
#pragma GCC unroll 16
         for (size_t j = 0; j < Vectors; ++j)
            acc[c][i][j] = simd_float{};
   const auto step = [&](simd_float (&sums)[Rows][Vectors], size_t k) {
      simd_float in[Vectors];
#pragma GCC unroll 16
      for (size_t j = 0; j < Vectors; ++j) {
         std::memcpy(&in[j], panel + j / kPanelVectors * K * kPanelColumns + k * kPanelColumns +
                                j % kPanelVectors * kSimdLanes, sizeof(simd_float));
         if constexpr (Rows > 1)  // one row reads each vector once: from memory, in its multiply-add
            SOFIE_KEEP_IN_REGISTER(in[j]);
      }
#pragma GCC unroll 16
      for (size_t i = 0; i < Rows; ++i)
         fma_row<Vectors, false>(sums[i], in, a + i * a_row + static_cast<std::ptrdiff_t>(k) * a_col);
   };
   size_t k = 0;
#if SOFIE_RDF_TILE_ASM || SOFIE_RDF_TILE_ASM512
   if constexpr (Chains == 1 && kRowsAsm<Rows, Vectors>) { // Cling's register tiles (above)
      if (K)
         tile_asm_rows<Rows, Vectors>(&acc[0][0][0], K, a, a_row, a_col, panel, kPanelColumns, K * kPanelColumns);
      k = K;
   }
#endif
   SOFIE_RDF_TERMS_LOOP
   for (; k + Chains <= K; k += Chains)
#pragma GCC unroll 8
      for (size_t c = 0; c < Chains; ++c)
         step(acc[c], k + c);
   for (; k < K; ++k)
      step(acc[0], k);
#pragma GCC unroll 8
   for (size_t c = 1; c < Chains; ++c)
#pragma GCC unroll 16
      for (size_t i = 0; i < Rows; ++i)
#pragma GCC unroll 16
         for (size_t j = 0; j < Vectors; ++j)
            acc[0][i][j] += acc[c][i][j];
   alignas(sizeof(simd_float)) float tile[Rows * Width];
   std::memcpy(tile, acc[0], sizeof tile);
   panel_tile_out<Rows, Width>(tile, cols, alpha, beta, bias, y, ldy, act);
}

// Rows rows of Y, every column: tiles of rows_panels_width panels, the last columns in one tile of as many panels as
// they fill (a 100-wide layer: one pass of 7 panels over A's row rather than tiles of 4, 2 and 1).
template <size_t Rows, size_t Panels = rows_panels_width<Rows>(), typename F>
inline void rows_panels_tail(size_t panels, size_t K, const float *a, size_t a_row, std::ptrdiff_t a_col,
                             const float *Bp, float alpha, float beta, const float *bias, size_t cols, float *y,
                             size_t ldy, F act)
{
   if constexpr (Panels > 1) {
      if (panels < Panels) {
         rows_panels_tail<Rows, Panels - 1>(panels, K, a, a_row, a_col, Bp, alpha, beta, bias, cols, y, ldy, act);
         return;
      }
   }
   rows_panels_tile<Rows, Panels>(K, a, a_row, a_col, Bp, alpha, beta, bias, cols, y, ldy, act);
}

template <size_t Rows, typename F>
inline void rows_panels(size_t N, size_t K, const float *a, size_t a_row, std::ptrdiff_t a_col, const float *Bp,
                        float alpha, float beta, const float *bias, float *y, F act)
{
   for (size_t f = 0, panels; f < N; f += panels * kPanelColumns) {
      panels = detail::min_of((N - f + kPanelColumns - 1) / kPanelColumns, rows_panels_width<Rows>());
      const size_t cols = detail::min_of(panels * kPanelColumns, N - f);
      rows_panels_tail<Rows>(panels, K, a, a_row, a_col, Bp + f * K, alpha, beta, bias ? bias + f : nullptr, cols,
                             y + f, N, act);
   }
}

// gemm_panels' product for an M known only while running: its tiles from kPanelMinRows rows (or
// kPanelMinStreamedRows when Y is beyond L2), else rows_panels two rows at a time.
template <typename F>
SOFIE_RDF_KERNEL void gemm_panels_rows(size_t M, size_t N, size_t K, float alpha, const float *A, size_t a_row,
                                       std::ptrdiff_t a_col, const float *Bp, float beta, const float *bias, float *Y,
                                       F act)
{
   if (M >= kPanelMinRows || (M >= kPanelMinStreamedRows && M * N >= kGemmStreamedOutput)) {
      gemm_panels(M, N, K, alpha, A, a_row, a_col, Bp, beta, bias, Y, act);
      return;
   }
   size_t i = 0;
   for (; i + 2 <= M; i += 2)
      rows_panels<2>(N, K, A + i * a_row, a_row, a_col, Bp, alpha, beta, bias, Y + i * N, act);
   if (i < M)
      rows_panels<1>(N, K, A + i * a_row, a_row, a_col, Bp, alpha, beta, bias, Y + i * N, act);
}

// ---- products of a few terms ------------------------------------------------
//
// A network's first layer on a handful of inputs (8 particle features: 4096 x 8 x 64 in Deep Sets at batch 64):
// K steps per tile leave gemm_panels' tiles a third of their time starting and ending.  Here B's K x 32 columns
// (16 with AVX2) stay in registers, 2K vectors, while the rows of A stream past, two multiply-adds a term each
// and the row stored from registers, activated (the emitters choose it for K <= 12: emitters/gemm.py).  On Zen 4,
// 4096 x 8 x 64 with bias and ReLU 0.83x the time; 16 to 1000 rows of 3 to 12 terms and 20 to 256 columns 0.54x
// to 0.97x; built for AVX2, whose 16 registers B fills at K = 8 (beyond, some of it is read again from L1), 0.63x
// to 0.9x, 12 terms 0.99x.

// Rows [0, M) of Y's columns [0, cols) (cols <= Panels * kPanelColumns) from the K x Panels panels of B.
template <size_t K, size_t Panels, typename F>
inline void shallow_rows(size_t M, float alpha, const float *A, size_t a_row, std::ptrdiff_t a_col,
                         const float *panel, size_t panel_stride, float beta, const float *bias, size_t cols,
                         float *y, size_t ldy, F act)
{
   constexpr size_t Vectors = Panels * kPanelVectors, Width = Panels * kPanelColumns;
   simd_float b[K][Vectors], first[Vectors];
   for (size_t k = 0; k < K; ++k)
      for (size_t j = 0; j < Vectors; ++j) {
         std::memcpy(&b[k][j], panel + j / kPanelVectors * panel_stride + k * kPanelColumns +
                                  j % kPanelVectors * kSimdLanes, sizeof(simd_float));
         b[k][j] *= alpha;
      }
   for (size_t j = 0; j < Vectors; ++j) {
      first[j] = simd_float{};
      for (size_t l = 0; bias && l < kSimdLanes && j * kSimdLanes + l < cols; ++l)
         first[j][l] = beta * bias[j * kSimdLanes + l];
   }
   for (size_t i = 0; i < M; ++i) {
      simd_float acc[Vectors];
      for (size_t j = 0; j < Vectors; ++j)
         acc[j] = first[j];
      const float *a = A + i * a_row;
      SOFIE_RDF_TERMS_LOOP
      for (size_t k = 0; k < K; ++k)
         fma_row<Vectors, kBroadcastInFma>(acc, b[k], a + static_cast<std::ptrdiff_t>(k) * a_col);
      float row[Width];
      float *out = cols == Width ? y + i * ldy : row; // a partial block's row through a buffer
#pragma GCC unroll 4
      for (size_t j = 0; j < Vectors; ++j) {
         act_vector(acc[j], act);
         std::memcpy(out + j * kSimdLanes, &acc[j], sizeof(simd_float));
      }
      if (cols < Width)
         act_copy(row, y + i * ldy, cols, Identity{});
   }
}

// gemm_panels for K <= 12 terms (no pooling): blocks of kTilePanels panels, then of one.
template <size_t K, typename F>
SOFIE_RDF_KERNEL void gemm_shallow(size_t M, size_t N, float alpha, const float *A, size_t a_row,
                                   std::ptrdiff_t a_col, const float *Bp, float beta, const float *bias, float *Y, F act)
{
   for (size_t f = 0, cols; f < N; f += cols) { // whole blocks of kTilePanels panels, then single panels
      cols = detail::min_of(N - f, N - f >= kTilePanels * kPanelColumns ? kTilePanels * kPanelColumns : kPanelColumns);
      const float *bf = bias ? bias + f : nullptr;
      if (cols > kPanelColumns)
         shallow_rows<K, kTilePanels>(M, alpha, A, a_row, a_col, Bp + f * K, K * kPanelColumns, beta, bf, cols,
                                      Y + f, N, act);
      else
         shallow_rows<K, 1>(M, alpha, A, a_row, a_col, Bp + f * K, K * kPanelColumns, beta, bf, cols, Y + f, N, act);
   }
}

// Batched product over broadcast batch dims: for every index of `shape`
// (rank dims), C[...] = A[...] * B[...] with per-dim element strides sa, sb
// (0 where an operand is broadcast); C is contiguous, M x N per matrix.
template <typename T>
inline void matmul_batched_rec(const T *A, const std::ptrdiff_t *sa, const T *B, const std::ptrdiff_t *sb, T *&C,
                               const size_t *shape, size_t rank, size_t M, size_t N, size_t K)
{
   if (rank == 0) {
      gemm(false, false, M, N, K, T(1), A, B, T(0), C);
      C += M * N;
      return;
   }
   for (size_t i = 0; i < shape[0]; ++i)
      matmul_batched_rec(A + static_cast<std::ptrdiff_t>(i) * sa[0], sa + 1, B + static_cast<std::ptrdiff_t>(i) * sb[0], sb + 1, C, shape + 1, rank - 1, M, N, K);
}

template <typename T>
inline void matmul_batched(const T *A, const std::ptrdiff_t *sa, const T *B, const std::ptrdiff_t *sb, T *C,
                           const size_t *shape, size_t rank, size_t M, size_t N, size_t K)
{
   matmul_batched_rec(A, sa, B, sb, C, shape, rank, M, N, K);
}

// SelectionGemm (ops/fused.py): Y = alpha A B for a constant B with one nonzero per column (gather: Y[m][j] =
// alpha scale[j] A[m][index[j]]) or per row (scatter: Y[m][j] = alpha sum of scale[t] A[m][index[t]] over t in
// [offsets[j], offsets[j + 1]), A's columns grouped by the column they add to, each sum in four partial sums
// that run side by side).  An A holding an infinity or a NaN takes the whole product with B, whose zero multiples
// of it make NaNs: the result is always the product's.
template <typename I>
inline void selection_gemm(size_t M, size_t N, size_t K, float alpha, const float *A, const float *B,
                           const I *index, const float *scale, const I *offsets, float *Y)
{
   bool finite = true;
   for (size_t i = 0; i < M * K; ++i)
      finite &= A[i] - A[i] == 0.0f; // false for infinities and NaNs
   if (!finite) {
      gemm(false, false, M, N, K, alpha, A, B, 0.0f, Y);
      return;
   }
   for (size_t m = 0; m < M; ++m) {
      const float *a = A + m * K;
      float *y = Y + m * N;
      if (offsets == nullptr) {
         for (size_t j = 0; j < N; ++j)
            y[j] = alpha * scale[j] * a[index[j]];
         continue;
      }
      for (size_t j = 0; j < N; ++j) {
         float s[4] = {};
         auto t = static_cast<size_t>(offsets[j]);
         const auto end = static_cast<size_t>(offsets[j + 1]);
         for (; t + 4 <= end; t += 4)
            for (size_t u = 0; u < 4; ++u)
               s[u] += scale[t + u] * a[index[t + u]];
         for (; t < end; ++t)
            s[0] += scale[t] * a[index[t]];
         y[j] = alpha * ((s[0] + s[1]) + (s[2] + s[3]));
      }
   }
}
