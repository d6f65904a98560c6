// BLAS entry points used by generated code (Fortran interface, column-major).
// The default build links scipy-openblas32, whose symbols carry the prefix
// "scipy_"; build with -DSOFIE_BLAS_PREFIX= (empty) for any reference BLAS
// (sgemm_), or with another prefix for another vendor's mangling.
#ifndef SOFIE_RDF_BLAS_DECLARED
#define SOFIE_RDF_BLAS_DECLARED
#ifndef SOFIE_BLAS_PREFIX
#define SOFIE_BLAS_PREFIX scipy_
#endif
#define SOFIE_BLAS_CAT2(a, b) a##b
#define SOFIE_BLAS_CAT(a, b) SOFIE_BLAS_CAT2(a, b)
#define SOFIE_BLAS_SGEMM SOFIE_BLAS_CAT(SOFIE_BLAS_PREFIX, sgemm_)
#define SOFIE_BLAS_DGEMM SOFIE_BLAS_CAT(SOFIE_BLAS_PREFIX, dgemm_)
extern "C" void SOFIE_BLAS_SGEMM(const char *transa, const char *transb, const int *m, const int *n, const int *k,
                                 const float *alpha, const float *a, const int *lda, const float *b, const int *ldb,
                                 const float *beta, float *c, const int *ldc);
extern "C" void SOFIE_BLAS_DGEMM(const char *transa, const char *transb, const int *m, const int *n, const int *k,
                                 const double *alpha, const double *a, const int *lda, const double *b,
                                 const int *ldb, const double *beta, double *c, const int *ldc);
#endif
