// The OpenBLAS declarations in include/cblas_shim.h resolve against libopenblas; wb_gemm is in gemm_avx512.c.
#include "cblas_shim.h"
