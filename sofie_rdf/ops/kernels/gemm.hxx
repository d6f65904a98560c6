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
