// cuBLAS, emulated on the host for the tests (see cuda_runtime.h here): the strided batched products as cuBLAS
// defines them (column-major), recorded like any stream work while a graph is captured.
#pragma once

#include "cuda_runtime.h"

enum cublasStatus_t { CUBLAS_STATUS_SUCCESS = 0, CUBLAS_STATUS_INVALID_VALUE = 7 };
enum cublasOperation_t { CUBLAS_OP_N, CUBLAS_OP_T };
enum cublasMath_t { CUBLAS_DEFAULT_MATH, CUBLAS_TF32_TENSOR_OP_MATH };
typedef struct emu_blas *cublasHandle_t;

inline const char *cublasGetStatusString(cublasStatus_t) { return "emulated cuBLAS error"; }
inline cublasStatus_t cublasCreate(cublasHandle_t *h)
{
   *h = reinterpret_cast<cublasHandle_t>(new char);
   return CUBLAS_STATUS_SUCCESS;
}
inline cublasStatus_t cublasDestroy(cublasHandle_t h) { delete reinterpret_cast<char *>(h); return CUBLAS_STATUS_SUCCESS; }
inline cublasStatus_t cublasSetStream(cublasHandle_t, cudaStream_t) { return CUBLAS_STATUS_SUCCESS; }
inline cublasStatus_t cublasSetWorkspace(cublasHandle_t, void *, size_t) { return CUBLAS_STATUS_SUCCESS; }
inline cublasStatus_t cublasSetMathMode(cublasHandle_t, cublasMath_t) { return CUBLAS_STATUS_SUCCESS; }

namespace emu {
template <typename T>
void column_major(cublasOperation_t ta, cublasOperation_t tb, int64_t m, int64_t n, int64_t k, T alpha, const T *a,
                  int64_t lda, long long sa, const T *b, int64_t ldb, long long sb, T beta, T *c, int64_t ldc,
                  long long sc, int64_t batch)
{
   for (int64_t p = 0; p < batch; ++p)
      for (int64_t i = 0; i < m; ++i)
         for (int64_t j = 0; j < n; ++j) {
            T sum = 0;
            for (int64_t l = 0; l < k; ++l)
               sum += (ta == CUBLAS_OP_N ? a[p * sa + i + l * lda] : a[p * sa + l + i * lda]) *
                      (tb == CUBLAS_OP_N ? b[p * sb + l + j * ldb] : b[p * sb + j + l * ldb]);
            T &out = c[p * sc + i + j * ldc];
            out = alpha * sum + (beta == T(0) ? T(0) : beta * out);
         }
}
} // namespace emu

template <typename T>
cublasStatus_t emu_gemm(cublasOperation_t ta, cublasOperation_t tb, int64_t m, int64_t n, int64_t k, const T *alpha,
                        const T *a, int64_t lda, long long sa, const T *b, int64_t ldb, long long sb, const T *beta,
                        T *c, int64_t ldc, long long sc, int64_t batch)
{
   const T al = *alpha, be = *beta;
   emu::submit(emu::kLibrary, [=] { emu::column_major(ta, tb, m, n, k, al, a, lda, sa, b, ldb, sb, be, c, ldc, sc, batch); });
   return CUBLAS_STATUS_SUCCESS;
}

inline cublasStatus_t cublasSgemmStridedBatched_64(cublasHandle_t, cublasOperation_t ta, cublasOperation_t tb,
                                                   int64_t m, int64_t n, int64_t k, const float *alpha, const float *a,
                                                   int64_t lda, long long sa, const float *b, int64_t ldb, long long sb,
                                                   const float *beta, float *c, int64_t ldc, long long sc,
                                                   int64_t batch)
{
   return emu_gemm(ta, tb, m, n, k, alpha, a, lda, sa, b, ldb, sb, beta, c, ldc, sc, batch);
}

inline cublasStatus_t cublasDgemmStridedBatched_64(cublasHandle_t, cublasOperation_t ta, cublasOperation_t tb,
                                                   int64_t m, int64_t n, int64_t k, const double *alpha,
                                                   const double *a, int64_t lda, long long sa, const double *b,
                                                   int64_t ldb, long long sb, const double *beta, double *c,
                                                   int64_t ldc, long long sc, int64_t batch)
{
   return emu_gemm(ta, tb, m, n, k, alpha, a, lda, sa, b, ldb, sb, beta, c, ldc, sc, batch);
}
