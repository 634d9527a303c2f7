// The workbench's AVX-512 and AMX GEMMs (float32 and bf16) compiled against emulated AVX-512 instructions,
// so that their packing, blocking and micro-kernels are tested on every x86-64 machine, including
// those without AVX-512 or AVX512_BF16 (see emulated_gemm.c).
#ifndef WORKBENCH_CKERNELS_EMULATED_H
#define WORKBENCH_CKERNELS_EMULATED_H

#include <stddef.h>

void emu_wb_gemm(int trans_a, int trans_b, int m, int n, int k, float alpha, const float *a, int lda,
                 const float *b, int ldb, float beta, float *c, int ldc);
void emu_wb_gemm_bf16(int trans_a, int trans_b, int m, int n, int k, float alpha, const float *a, int lda,
                      const float *b, int ldb, float beta, float *c, int ldc);
size_t emu_wb_gemm_packed_a_count(int m, int k);
void emu_wb_gemm_pack_a(int trans_a, int m, int k, const float *a, int lda, float *packed);
void emu_wb_gemm_packed(int m, int n, int k, float alpha, const float *packed_a_panels, int trans_b,
                        const float *b, int ldb, float beta, float *c, int ldc);
size_t emu_wb_gemm_bf16_packed_a_count(int m, int k);
void emu_wb_gemm_bf16_pack_a(int trans_a, int m, int k, const float *a, int lda, float *packed);
void emu_wb_gemm_bf16_packed(int m, int n, int k, float alpha, const float *packed_a_panels, int trans_b,
                             const float *b, int ldb, float beta, float *c, int ldc);
void emu_wb_round_to_bf16(const float *x, float *y, size_t n);
void emu_wb_gemm_amx(int trans_a, int trans_b, int m, int n, int k, float alpha, const float *a, int lda,
                     const float *b, int ldb, float beta, float *c, int ldc);
size_t emu_wb_gemm_amx_packed_a_count(int m, int k);
void emu_wb_gemm_amx_pack_a(int trans_a, int m, int k, const float *a, int lda, float *packed);
void emu_wb_gemm_amx_packed(int m, int n, int k, float alpha, const float *packed_a_panels, int trans_b,
                            const float *b, int ldb, float beta, float *c, int ldc);

#include "../../../Sources/CKernels/include/ckernels.h"

void emu_wb_gemm_packed_columns(int m, int n, int k, const float *packed_a_panels, const wb_convolution_columns *columns,
                                int first_column, float *c, int ldc);
void emu_wb_gemm_bf16_packed_columns(int m, int n, int k, const float *packed_a_panels, const wb_convolution_columns *columns,
                                     int first_column, float *c, int ldc);
void emu_wb_gemm_amx_packed_columns(int m, int n, int k, const float *packed_a_panels, const wb_convolution_columns *columns,
                                    int first_column, float *c, int ldc);

#endif
