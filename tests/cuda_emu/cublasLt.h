// cuBLASLt, emulated on the host for the tests (see cuda_runtime.h here): the descriptors keep what is set on them,
// the heuristic offers one algorithm, and cublasLtMatmul computes D = alpha op(A) op(B) + beta C on the layouts
// as cuBLASLt defines them (column-major), then the epilogue (bias over D's rows, ReLU), as one library call.
#pragma once

#include "cublas_v2.h"


enum cudaDataType_t { CUDA_R_32F, CUDA_R_64F };
typedef cudaDataType_t cudaDataType;
enum cublasComputeType_t { CUBLAS_COMPUTE_32F, CUBLAS_COMPUTE_32F_FAST_TF32, CUBLAS_COMPUTE_64F };
enum cublasLtEpilogue_t { CUBLASLT_EPILOGUE_DEFAULT = 1, CUBLASLT_EPILOGUE_RELU = 2, CUBLASLT_EPILOGUE_BIAS = 4,
                          CUBLASLT_EPILOGUE_RELU_BIAS = 6 };
enum cublasLtMatmulDescAttributes_t { CUBLASLT_MATMUL_DESC_TRANSA = 3, CUBLASLT_MATMUL_DESC_TRANSB = 4,
                                      CUBLASLT_MATMUL_DESC_EPILOGUE = 7, CUBLASLT_MATMUL_DESC_BIAS_POINTER = 8 };
enum cublasLtMatrixLayoutAttribute_t { CUBLASLT_MATRIX_LAYOUT_BATCH_COUNT = 5,
                                       CUBLASLT_MATRIX_LAYOUT_STRIDED_BATCH_OFFSET = 6 };
enum cublasLtMatmulPreferenceAttributes_t { CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES = 1 };

namespace emu {
struct LtMatmul {
   cudaDataType_t type;
   cublasOperation_t trans_a = CUBLAS_OP_N, trans_b = CUBLAS_OP_N;
   cublasLtEpilogue_t epilogue = CUBLASLT_EPILOGUE_DEFAULT;
   const void *bias = nullptr;
};
struct LtLayout {
   cudaDataType_t type;
   uint64_t rows, cols;
   int64_t ld;
   int32_t batch = 1;
   int64_t stride = 0;
};
struct LtPreference {
   size_t workspace = 0;
};

// Copies an attribute's value, checking its size as cuBLASLt does.
template <typename T>
bool set(T &field, const void *buf, size_t bytes)
{
   if (bytes != sizeof(T))
      return false;
   std::memcpy(&field, buf, sizeof(T));
   return true;
}

template <typename T>
void lt_matmul(const LtMatmul &op, T alpha, const T *a, const LtLayout &la, const T *b, const LtLayout &lb, T beta,
               const T *c, T *d, const LtLayout &ld)
{
   const int64_t m = int64_t(ld.rows), n = int64_t(ld.cols);
   const int64_t k = op.trans_a == CUBLAS_OP_N ? int64_t(la.cols) : int64_t(la.rows);
   const T *bias = static_cast<const T *>(op.bias);
   const bool with_bias = op.epilogue == CUBLASLT_EPILOGUE_BIAS || op.epilogue == CUBLASLT_EPILOGUE_RELU_BIAS;
   const bool relu = op.epilogue == CUBLASLT_EPILOGUE_RELU || op.epilogue == CUBLASLT_EPILOGUE_RELU_BIAS;
   for (int64_t p = 0; p < ld.batch; ++p)
      for (int64_t i = 0; i < m; ++i)
         for (int64_t j = 0; j < n; ++j) {
            T sum = 0;
            for (int64_t l = 0; l < k; ++l)
               sum += (op.trans_a == CUBLAS_OP_N ? a[p * la.stride + i + l * la.ld] : a[p * la.stride + l + i * la.ld]) *
                      (op.trans_b == CUBLAS_OP_N ? b[p * lb.stride + l + j * lb.ld] : b[p * lb.stride + j + l * lb.ld]);
            T v = alpha * sum + (beta == T(0) ? T(0) : beta * c[p * ld.stride + i + j * ld.ld]);
            if (with_bias)
               v += bias[i];
            d[p * ld.stride + i + j * ld.ld] = relu && v < T(0) ? T(0) : v;
         }
}
} // namespace emu

typedef struct emu_lt *cublasLtHandle_t;
typedef emu::LtMatmul *cublasLtMatmulDesc_t;
typedef emu::LtLayout *cublasLtMatrixLayout_t;
typedef emu::LtPreference *cublasLtMatmulPreference_t;
struct cublasLtMatmulAlgo_t {
   uint64_t data[8];
};
struct cublasLtMatmulHeuristicResult_t {
   cublasLtMatmulAlgo_t algo;
   size_t workspaceSize;
   cublasStatus_t state;
   float wavesCount;
   int reserved[4];
};

inline cublasStatus_t cublasLtCreate(cublasLtHandle_t *h)
{
   *h = reinterpret_cast<cublasLtHandle_t>(new char);
   return CUBLAS_STATUS_SUCCESS;
}
inline cublasStatus_t cublasLtDestroy(cublasLtHandle_t h) { delete reinterpret_cast<char *>(h); return CUBLAS_STATUS_SUCCESS; }
inline cublasStatus_t cublasLtMatmulDescCreate(cublasLtMatmulDesc_t *desc, cublasComputeType_t, cudaDataType_t scale)
{
   *desc = new emu::LtMatmul{scale};
   return CUBLAS_STATUS_SUCCESS;
}
inline cublasStatus_t cublasLtMatmulDescDestroy(cublasLtMatmulDesc_t desc) { delete desc; return CUBLAS_STATUS_SUCCESS; }
inline cublasStatus_t cublasLtMatmulDescSetAttribute(cublasLtMatmulDesc_t desc, cublasLtMatmulDescAttributes_t attr,
                                                     const void *buf, size_t bytes)
{
   const bool ok = attr == CUBLASLT_MATMUL_DESC_TRANSA      ? emu::set(desc->trans_a, buf, bytes)
                   : attr == CUBLASLT_MATMUL_DESC_TRANSB    ? emu::set(desc->trans_b, buf, bytes)
                   : attr == CUBLASLT_MATMUL_DESC_EPILOGUE  ? emu::set(desc->epilogue, buf, bytes)
                                                            : emu::set(desc->bias, buf, bytes);
   return ok ? CUBLAS_STATUS_SUCCESS : CUBLAS_STATUS_INVALID_VALUE;
}
inline cublasStatus_t cublasLtMatrixLayoutCreate(cublasLtMatrixLayout_t *layout, cudaDataType type, uint64_t rows,
                                                 uint64_t cols, int64_t ld)
{
   *layout = new emu::LtLayout{type, rows, cols, ld};
   return CUBLAS_STATUS_SUCCESS;
}
inline cublasStatus_t cublasLtMatrixLayoutDestroy(cublasLtMatrixLayout_t layout) { delete layout; return CUBLAS_STATUS_SUCCESS; }
inline cublasStatus_t cublasLtMatrixLayoutSetAttribute(cublasLtMatrixLayout_t layout,
                                                       cublasLtMatrixLayoutAttribute_t attr, const void *buf,
                                                       size_t bytes)
{
   const bool ok = attr == CUBLASLT_MATRIX_LAYOUT_BATCH_COUNT ? emu::set(layout->batch, buf, bytes)
                                                              : emu::set(layout->stride, buf, bytes);
   return ok ? CUBLAS_STATUS_SUCCESS : CUBLAS_STATUS_INVALID_VALUE;
}
inline cublasStatus_t cublasLtMatmulPreferenceCreate(cublasLtMatmulPreference_t *pref)
{
   *pref = new emu::LtPreference;
   return CUBLAS_STATUS_SUCCESS;
}
inline cublasStatus_t cublasLtMatmulPreferenceDestroy(cublasLtMatmulPreference_t pref) { delete pref; return CUBLAS_STATUS_SUCCESS; }
inline cublasStatus_t cublasLtMatmulPreferenceSetAttribute(cublasLtMatmulPreference_t pref,
                                                           cublasLtMatmulPreferenceAttributes_t, const void *buf,
                                                           size_t bytes)
{
   return emu::set(pref->workspace, buf, bytes) ? CUBLAS_STATUS_SUCCESS : CUBLAS_STATUS_INVALID_VALUE;
}
inline cublasStatus_t cublasLtMatmulAlgoGetHeuristic(cublasLtHandle_t, cublasLtMatmulDesc_t, cublasLtMatrixLayout_t,
                                                     cublasLtMatrixLayout_t, cublasLtMatrixLayout_t,
                                                     cublasLtMatrixLayout_t, cublasLtMatmulPreference_t, int requested,
                                                     cublasLtMatmulHeuristicResult_t results[], int *found)
{
   *found = requested > 0 ? 1 : 0;
   if (*found)
      results[0] = cublasLtMatmulHeuristicResult_t{};
   return CUBLAS_STATUS_SUCCESS;
}
inline cublasStatus_t cublasLtMatmul(cublasLtHandle_t, cublasLtMatmulDesc_t desc, const void *alpha, const void *a,
                                     cublasLtMatrixLayout_t la, const void *b, cublasLtMatrixLayout_t lb,
                                     const void *beta, const void *c, cublasLtMatrixLayout_t, void *d,
                                     cublasLtMatrixLayout_t ld, const cublasLtMatmulAlgo_t *, void *, size_t,
                                     cudaStream_t)
{
   const emu::LtMatmul op = *desc;  // the call keeps what the descriptors say now: they may be destroyed next
   const emu::LtLayout layout_a = *la, layout_b = *lb, layout_d = *ld;
   if (op.type == CUDA_R_32F) {
      const float al = *static_cast<const float *>(alpha), be = *static_cast<const float *>(beta);
      emu::submit(emu::kLibrary, [=] {
         emu::lt_matmul(op, al, static_cast<const float *>(a), layout_a, static_cast<const float *>(b), layout_b, be,
                        static_cast<const float *>(c), static_cast<float *>(d), layout_d);
      });
   } else {
      const double al = *static_cast<const double *>(alpha), be = *static_cast<const double *>(beta);
      emu::submit(emu::kLibrary, [=] {
         emu::lt_matmul(op, al, static_cast<const double *>(a), layout_a, static_cast<const double *>(b), layout_b, be,
                        static_cast<const double *>(c), static_cast<double *>(d), layout_d);
      });
   }
   return CUBLAS_STATUS_SUCCESS;
}
