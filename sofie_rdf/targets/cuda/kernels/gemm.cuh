// Matrix products through cuBLAS on row-major tensors, and the epilogue applying a bias and an activation.
//
// cuBLAS is column-major: a row-major M x N product Y = op(A) op(B) is the column-major N x M product
// Y^T = op(B)^T op(A)^T, so B is passed first and every transpose flag keeps its meaning. The 64-bit API takes
// sizes past 2^31. Math mode stays CUBLAS_DEFAULT_MATH: fp32 products in fp32, no TF32.

inline cublasStatus_t gemm_call(cublasHandle_t h, cublasOperation_t ta, cublasOperation_t tb, int64_t m, int64_t n,
                                int64_t k, const float *alpha, const float *a, int64_t lda, const float *b,
                                int64_t ldb, const float *beta, float *c, int64_t ldc, int64_t sa, int64_t sb,
                                int64_t sc, int64_t batch)
{
   return cublasSgemmStridedBatched_64(h, ta, tb, m, n, k, alpha, a, lda, sa, b, ldb, sb, beta, c, ldc, sc, batch);
}

inline cublasStatus_t gemm_call(cublasHandle_t h, cublasOperation_t ta, cublasOperation_t tb, int64_t m, int64_t n,
                                int64_t k, const double *alpha, const double *a, int64_t lda, const double *b,
                                int64_t ldb, const double *beta, double *c, int64_t ldc, int64_t sa, int64_t sb,
                                int64_t sc, int64_t batch)
{
   return cublasDgemmStridedBatched_64(h, ta, tb, m, n, k, alpha, a, lda, sa, b, ldb, sb, beta, c, ldc, sc, batch);
}

// `batch` row-major products Y_i = alpha op(A_i) op(B_i) + beta Y_i, operand i at stride_* elements from the
// last (0: the same matrix for every product).
template <typename T>
void gemm_batched(cublasHandle_t blas, bool trans_a, bool trans_b, size_t m, size_t n, size_t k, T alpha, const T *a,
                  size_t stride_a, const T *b, size_t stride_b, T beta, T *y, size_t stride_y, size_t batch)
{
   if (m == 0 || n == 0 || batch == 0)
      return;
   const auto op_a = trans_a ? CUBLAS_OP_T : CUBLAS_OP_N;
   const auto op_b = trans_b ? CUBLAS_OP_T : CUBLAS_OP_N;
   const int64_t lda = trans_a ? m : k, ldb = trans_b ? k : n;
   detail::check(gemm_call(blas, op_b, op_a, n, m, k, &alpha, b, ldb, a, lda, &beta, y, n, stride_b, stride_a, stride_y, batch),
         "cuBLAS gemm");
}

// One row-major product Y = alpha op(A) op(B) (+ beta Y).
template <typename T>
void gemm(cublasHandle_t blas, bool trans_a, bool trans_b, size_t m, size_t n, size_t k, T alpha, const T *a,
          const T *b, T beta, T *y)
{
   gemm_batched(blas, trans_a, trans_b, m, n, k, alpha, a, 0, b, 0, beta, y, 0, 1);
}

// Y[i, j] = f(Y[i, j] + beta C[i * c_row + j * c_col]) over an M x N product (C null: no bias).
template <typename T, typename F>
__global__ void bias_act_kernel(T *y, size_t m, size_t n, T beta, const T *c, size_t c_row, size_t c_col, F f)
{
   const size_t total = m * n;
   for (size_t i = blockIdx.x * size_t(blockDim.x) + threadIdx.x; i < total; i += size_t(gridDim.x) * blockDim.x) {
      T v = y[i];
      if (c)
         v += beta * c[i / n * c_row + i % n * c_col];
      y[i] = f(v);
   }
}

template <typename T, typename F>
void bias_act(T *y, size_t m, size_t n, T beta, const T *c, size_t c_row, size_t c_col, F f, cudaStream_t stream)
{
   if (m != 0 && n != 0)
      bias_act_kernel<<<blocks_for(m * n), kThreads, 0, stream>>>(y, m, n, beta, c, c_row, c_col, f);
}
