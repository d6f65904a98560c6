// Row-major matrix products: C = alpha * op(A) * op(B) + beta * C.
// float and double go to BLAS (row-major is the column-major product of the
// transposes, so A and B swap places); other types use a plain loop.

// Small products (a few rows, as in per-event inference) are faster as plain
// loops than through BLAS, whose call overhead would dominate.  The loop order
// keeps the innermost loop contiguous in B and C so the compiler vectorises it;
// a pass stores constant B untransposed for that reason.
constexpr size_t kSmallGemmRows = 4;
// Products of at most this many terms per output (ConvTranspose's last layers: 16 x 1024 x 4) also run as
// loops: one pass over C, where BLAS's packing of both operands costs more than the product (0.7x its time).
constexpr size_t kSmallGemmDepth = 4;

template <typename T>
inline void gemm_loop(bool transA, bool transB, size_t M, size_t N, size_t K, T alpha, const T *A, const T *B, T beta,
                      T *C)
{
   for (size_t i = 0; i < M; ++i) {
      T *c = C + i * N;
      if (beta == T(0))
         std::fill(c, c + N, T(0));
      else if (beta != T(1))
         for (size_t j = 0; j < N; ++j)
            c[j] *= beta;
      if (!transB) {
         auto a = [&](size_t k) { return alpha * (transA ? A[k * M + i] : A[i * K + k]); };
         const size_t K4 = K - K % 4;
         for (size_t k = 0; k < K4; k += 4) { // four rows of B per pass over C: a quarter of the C traffic
            const T a0 = a(k), a1 = a(k + 1), a2 = a(k + 2), a3 = a(k + 3);
            const T *b0 = B + k * N, *b1 = b0 + N, *b2 = b1 + N, *b3 = b2 + N;
            for (size_t j = 0; j < N; ++j)
               c[j] += a0 * b0[j] + a1 * b1[j] + a2 * b2[j] + a3 * b3[j];
         }
         for (size_t k = K4; k < K; ++k) {
            const T ak = a(k);
            const T *b = B + k * N;
            for (size_t j = 0; j < N; ++j)
               c[j] += ak * b[j];
         }
      } else {
         for (size_t j = 0; j < N; ++j) {
            const T *b = B + j * K;
            T sum = T(0);
            for (size_t k = 0; k < K; ++k)
               sum += (transA ? A[k * M + i] : A[i * K + k]) * b[k];
            c[j] += alpha * sum;
         }
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

// ---- products with B packed at generation time ------------------------------
//
// A constant B (K x N) stored in panels of kPanelColumns columns, each K x kPanelColumns (zero-padded past
// N; ops/gemm.py: pack_columns), is read as one contiguous stream per panel.  A register tile holds up to
// kPanelRows rows of A x one panel: per step k it broadcasts each row's value (at a[bases[i] + offsets[k]],
// so that A may be transposed, or an image read in place: conv_rows) and multiplies it by the panel's row
// k, two vectors.  No per-call packing, unlike BLAS (which re-packs B on every call: for a generator's
// 100 x 40500 weights that is most of the product's time), and bias and activation are applied as each
// tile is written.

typedef float simd_float __attribute__((vector_size(32))); // 8 floats: one AVX register, two SSE ones
constexpr size_t kSimdLanes = sizeof(simd_float) / sizeof(float);
constexpr size_t kPanelVectors = 2;
constexpr size_t kPanelColumns = kPanelVectors * kSimdLanes; // columns per panel (must match ops/gemm.py)
constexpr size_t kPanelRows = 6;        // rows of A per register tile: 12 accumulators + 2 panel vectors + 1
constexpr size_t kPackedMaxDepth = 512; // gemm_packed's K (ops/gemm.py): larger products go to BLAS

// Loads each vector once per step: left alone, GCC folds it into every row's multiply-add, which makes the
// tile load-bound (it treats the memory operand as free).  An empty asm statement that claims to modify the
// vector in a vector register makes the compiler hold it in one; no instruction is emitted.
#if defined(__GNUC__) && defined(__AVX__) && !defined(SOFIE_KEEP_IN_REGISTER)
#define SOFIE_KEEP_IN_REGISTER(v) __asm__("" : "+x"(v))
#endif
#ifndef SOFIE_KEEP_IN_REGISTER
#define SOFIE_KEEP_IN_REGISTER(v) static_cast<void>(v)
#endif

// One register tile: Rows rows (values at a + bases[i] + offsets[k]) x kPanelColumns columns (the panel,
// kPanelColumns floats per step), summed over `steps` steps, plus `start` (rows start_stride apart) when
// not null; written to out (rows out_stride apart).  Not inlined: compiled on its own, the accumulators
// stay in registers, where inlined into the loops around it GCC spills some of them.
template <size_t Rows>
[[gnu::noinline]] void panel_tile(const std::int64_t *offsets, size_t steps, const float *a, const size_t *bases,
                                  const float *panel, const float *start, size_t start_stride, float *out,
                                  size_t out_stride)
{
   simd_float acc[Rows][kPanelVectors];
   const float *src[Rows];
   for (size_t i = 0; i < Rows; ++i) {
      src[i] = a + bases[i];
      for (size_t j = 0; j < kPanelVectors; ++j)
         acc[i][j] = simd_float{};
   }
   const float *w = panel;
   for (size_t k = 0; k < steps; ++k, w += kPanelColumns) {
      simd_float in[kPanelVectors];
#pragma GCC unroll 8
      for (size_t j = 0; j < kPanelVectors; ++j) {
         std::memcpy(&in[j], w + j * kSimdLanes, sizeof(simd_float));
         SOFIE_KEEP_IN_REGISTER(in[j]);
      }
      const std::int64_t o = offsets[k];
#pragma GCC unroll 8
      for (size_t i = 0; i < Rows; ++i) {
         const simd_float ai = src[i][o] - simd_float{}; // x - (+0) is x: a broadcast
#pragma GCC unroll 8
         for (size_t j = 0; j < kPanelVectors; ++j)
            acc[i][j] += ai * in[j];
      }
   }
   for (size_t i = 0; i < Rows; ++i)
      for (size_t j = 0; j < kPanelVectors; ++j) {
         if (start) {
            simd_float before;
            std::memcpy(&before, start + i * start_stride + j * kSimdLanes, sizeof before);
            acc[i][j] += before;
         }
         std::memcpy(out + i * out_stride + j * kSimdLanes, &acc[i][j], sizeof(simd_float));
      }
}

// Rows in tiles of as even a size as possible (64 = 4 x 6 + 8 x 5, not 10 x 6 + 4; 49 = 4 x 6 + 5 x 5,
// not 8 x 6 + 1): a tile of one or two rows is bound by its loads.  Tile q has rows_of(q) rows.
struct PanelTiles {
   size_t count, base, extra;

   explicit PanelTiles(size_t rows)
      : count((rows + kPanelRows - 1) / kPanelRows), base(count ? rows / count : 0), extra(count ? rows % count : 0)
   {
   }
   size_t rows_of(size_t q) const { return base + (q < extra); }
};

// The tile of `rows` <= Rows rows starting at row p, for the panel of columns [f, f + kPanelColumns):
// C = act(alpha * sum + beta * bias) on the columns below N.
template <size_t Rows, typename F>
inline void gemm_packed_tile(size_t rows, const std::int64_t *offsets, size_t K, const float *a, const size_t *bases,
                             const float *panel, size_t p, size_t f, size_t N, float alpha, float beta,
                             const float *bias, std::ptrdiff_t bias_row, std::ptrdiff_t bias_col, float *C, F act)
{
   if constexpr (Rows > 1) {
      if (rows < Rows) {
         gemm_packed_tile<Rows - 1>(rows, offsets, K, a, bases, panel, p, f, N, alpha, beta, bias, bias_row, bias_col,
                                    C, act);
         return;
      }
   }
   alignas(sizeof(simd_float)) float tile[Rows * kPanelColumns];
   panel_tile<Rows>(offsets, K, a, bases, panel, nullptr, 0, tile, kPanelColumns);
   const size_t columns = std::min(kPanelColumns, N - f);
   for (size_t i = 0; i < Rows; ++i) {
      float *c = C + (p + i) * N + f;
      const float *t = tile + i * kPanelColumns;
      if (!bias) {
         for (size_t j = 0; j < columns; ++j)
            c[j] = act(alpha * t[j]);
         continue;
      }
      const float *b = bias + static_cast<std::ptrdiff_t>(p + i) * bias_row + static_cast<std::ptrdiff_t>(f) * bias_col;
      if (bias_col == 1) // contiguous: vectorized
         for (size_t j = 0; j < columns; ++j)
            c[j] = act(alpha * t[j] + beta * b[j]);
      else
         for (size_t j = 0; j < columns; ++j)
            c[j] = act(alpha * t[j] + beta * b[static_cast<std::ptrdiff_t>(j) * bias_col]);
   }
}

// Y (M x N) = act(alpha * op(A) * B + beta * bias) with B in panels (see above), K <= kPackedMaxDepth;
// offsets has room for K steps.  Per panel, every tile of rows reads it while it is in cache.
template <typename F>
inline void gemm_packed(bool transA, size_t M, size_t N, size_t K, float alpha, const float *A, const float *B,
                        float beta, const float *bias, std::ptrdiff_t bias_row, std::ptrdiff_t bias_col, float *C,
                        std::int64_t *offsets, F act)
{
   for (size_t k = 0; k < K; ++k)
      offsets[k] = static_cast<std::int64_t>(transA ? k * M : k);
   const PanelTiles tiles(M);
   for (size_t f = 0; f < N; f += kPanelColumns)
      for (size_t q = 0, p = 0; q < tiles.count; p += tiles.rows_of(q), ++q) {
         size_t bases[kPanelRows];
         const size_t rows = tiles.rows_of(q);
         for (size_t i = 0; i < rows; ++i)
            bases[i] = transA ? p + i : (p + i) * K;
         gemm_packed_tile<kPanelRows>(rows, offsets, K, A, bases, B + f * K, p, f, N, alpha, beta, bias, bias_row,
                                      bias_col, C, act);
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
