// Row-major matrix products: C = alpha * op(A) * op(B) + beta * C.
// float and double go to BLAS (row-major is the column-major product of the
// transposes, so A and B swap places); other types use a plain loop.

template <typename T>
inline void gemm_loop(bool transA, bool transB, size_t M, size_t N, size_t K, T alpha, const T *A, const T *B, T beta,
                      T *C)
{
   for (size_t i = 0; i < M; ++i) {
      for (size_t j = 0; j < N; ++j) {
         T sum = T(0);
         for (size_t k = 0; k < K; ++k) {
            const T a = transA ? A[k * M + i] : A[i * K + k];
            const T b = transB ? B[j * K + k] : B[k * N + j];
            sum += a * b;
         }
         C[i * N + j] = alpha * sum + (beta == T(0) ? T(0) : beta * C[i * N + j]);
      }
   }
}

template <typename T, typename Blas>
inline void gemm_blas(Blas blas, bool transA, bool transB, size_t M, size_t N, size_t K, T alpha, const T *A,
                      const T *B, T beta, T *C)
{
   if (M == 0 || N == 0)
      return;
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
