// Matrix products through cuBLAS on row-major tensors, and the epilogue applying a bias and an activation: in the
// product itself through cuBLASLt (gemm_bias: a bias over the columns, then ReLU or nothing), else as a kernel.
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

// The cuBLASLt element and compute types of T: fp32 products in fp32 (TF32 only by opt-in, as for cuBLAS).
inline constexpr cudaDataType_t lt_type(float) { return CUDA_R_32F; }
inline constexpr cudaDataType_t lt_type(double) { return CUDA_R_64F; }
#ifdef SOFIE_CUDA_ALLOW_TF32
inline constexpr cublasComputeType_t lt_compute(float) { return CUBLAS_COMPUTE_32F_FAST_TF32; }
#else
inline constexpr cublasComputeType_t lt_compute(float) { return CUBLAS_COMPUTE_32F; }
#endif
inline constexpr cublasComputeType_t lt_compute(double) { return CUBLAS_COMPUTE_64F; }

// The descriptors of one cuBLASLt product, destroyed with it (the call reads them when it is queued).
struct LtProduct {
   cublasLtMatmulDesc_t op = nullptr;
   cublasLtMatrixLayout_t first = nullptr, second = nullptr, out = nullptr;
   cublasLtMatmulPreference_t preference = nullptr;
   LtProduct() = default;
   LtProduct(const LtProduct &) = delete;
   LtProduct &operator=(const LtProduct &) = delete;
   ~LtProduct()
   {
      cublasLtMatmulPreferenceDestroy(preference);
      cublasLtMatrixLayoutDestroy(out);
      cublasLtMatrixLayoutDestroy(second);
      cublasLtMatrixLayoutDestroy(first);
      cublasLtMatmulDescDestroy(op);
   }
};

// Row-major Y = alpha op(A) op(B) + bias[j] over the M x N product, then ReLU where `relu`, as one cuBLASLt call
// whose epilogue adds the bias and applies the activation. Column-major as for gemm_batched: Y^T = op(B)^T
// op(A)^T, and the bias runs along Y^T's rows. The algorithm is cuBLASLt's first choice for these sizes, asked
// when the node runs directly or is captured, never when its graph is replayed.
template <typename T>
void gemm_bias(cublasLtHandle_t lt, bool trans_a, bool trans_b, size_t m, size_t n, size_t k, T alpha, const T *a,
               const T *b, const T *bias, bool relu, T *y, void *workspace, size_t workspace_bytes, cudaStream_t stream)
{
   if (m == 0 || n == 0)
      return;
   const cudaDataType_t type = lt_type(T());
   const cublasOperation_t op_first = trans_b ? CUBLAS_OP_T : CUBLAS_OP_N, op_second = trans_a ? CUBLAS_OP_T : CUBLAS_OP_N;
   const cublasLtEpilogue_t epilogue = relu ? CUBLASLT_EPILOGUE_RELU_BIAS : CUBLASLT_EPILOGUE_BIAS;
   LtProduct p;
   detail::check(cublasLtMatmulDescCreate(&p.op, lt_compute(T()), type), "cublasLtMatmulDescCreate");
   detail::check(cublasLtMatmulDescSetAttribute(p.op, CUBLASLT_MATMUL_DESC_TRANSA, &op_first, sizeof(op_first)),
                 "cublasLtMatmulDescSetAttribute");
   detail::check(cublasLtMatmulDescSetAttribute(p.op, CUBLASLT_MATMUL_DESC_TRANSB, &op_second, sizeof(op_second)),
                 "cublasLtMatmulDescSetAttribute");
   detail::check(cublasLtMatmulDescSetAttribute(p.op, CUBLASLT_MATMUL_DESC_EPILOGUE, &epilogue, sizeof(epilogue)),
                 "cublasLtMatmulDescSetAttribute");
   detail::check(cublasLtMatmulDescSetAttribute(p.op, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &bias, sizeof(bias)),
                 "cublasLtMatmulDescSetAttribute");
   // B as stored (k x n row-major, n x k if transposed) is column-major (n x k) or (k x n); A likewise.
   detail::check(cublasLtMatrixLayoutCreate(&p.first, type, trans_b ? k : n, trans_b ? n : k, trans_b ? k : n),
                 "cublasLtMatrixLayoutCreate");
   detail::check(cublasLtMatrixLayoutCreate(&p.second, type, trans_a ? m : k, trans_a ? k : m, trans_a ? m : k),
                 "cublasLtMatrixLayoutCreate");
   detail::check(cublasLtMatrixLayoutCreate(&p.out, type, n, m, n), "cublasLtMatrixLayoutCreate");
   detail::check(cublasLtMatmulPreferenceCreate(&p.preference), "cublasLtMatmulPreferenceCreate");
   detail::check(cublasLtMatmulPreferenceSetAttribute(p.preference, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES,
                                                      &workspace_bytes, sizeof(workspace_bytes)),
                 "cublasLtMatmulPreferenceSetAttribute");
   cublasLtMatmulHeuristicResult_t choice{};
   int found = 0;
   detail::check(cublasLtMatmulAlgoGetHeuristic(lt, p.op, p.first, p.second, p.out, p.out, p.preference, 1, &choice,
                                                &found),
                 "cublasLtMatmulAlgoGetHeuristic");
   if (found == 0)
      throw std::runtime_error("sofie-rdf: cuBLASLt has no algorithm for a product with a bias epilogue");
   const T zero = T(0);
   detail::check(cublasLtMatmul(lt, p.op, &alpha, b, p.first, a, p.second, &zero, y, p.out, y, p.out, &choice.algo,
                                workspace, workspace_bytes, stream),
                 "cublasLtMatmul");
}
