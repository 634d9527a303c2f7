// The few OpenBLAS entry points the workbench uses, declared here so that the build does not depend
// on where a distribution puts cblas.h (Debian keeps it under an alternatives-managed folder).
#ifndef WORKBENCH_CBLAS_SHIM_H
#define WORKBENCH_CBLAS_SHIM_H

enum WBBlasOrder { WBBlasRowMajor = 101, WBBlasColMajor = 102 };
enum WBBlasTranspose { WBBlasNoTrans = 111, WBBlasTrans = 112 };

void cblas_sgemm(const enum WBBlasOrder order, const enum WBBlasTranspose transA,
                 const enum WBBlasTranspose transB, const int m, const int n, const int k,
                 const float alpha, const float *a, const int lda, const float *b, const int ldb,
                 const float beta, float *c, const int ldc);

void openblas_set_num_threads(int numThreads);
int openblas_get_num_threads(void);
char *openblas_get_config(void);
char *openblas_get_corename(void);

#endif
