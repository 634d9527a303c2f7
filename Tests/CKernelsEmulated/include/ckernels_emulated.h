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
size_t emu_wb_conv_amx_weights_count(int out_channels, int in_channels, int kernel);
void emu_wb_conv_amx_weights(const float *weights, int out_channels, int in_channels, int kernel, int flipped,
                             uint32_t *packed);
size_t emu_wb_conv_amx_band_count(int in_channels, int width, int kernel, int padding, int rows);
void emu_wb_conv_amx_forward(const float *image, int in_channels, int height, int width, int kernel, int padding, int reflect,
                             const uint32_t *weights, const float *bias, int out_channels, int first_row, int rows,
                             uint32_t *band, float *out);
size_t emu_wb_conv_amx_gradient_planes_count(int in_channels, int height, int width, int kernel);
void emu_wb_conv_amx_gradient_planes(const float *image, int in_channels, int height, int width, int kernel, int reflect,
                                     int first_channel, int channels, uint16_t *planes);
size_t emu_wb_conv_amx_gradient_pairs_count(int out_channels, int height, int width);
void emu_wb_conv_amx_gradient_pairs(const float *gradient, int out_channels, int height, int width, uint32_t *pairs);
size_t emu_wb_conv_amx_gradient_units(int in_channels, int out_channels, int kernel);
void emu_wb_conv_amx_weight_gradient(const uint16_t *planes, size_t planes_stride, const uint32_t *pairs,
                                     size_t pairs_stride, int images, int in_channels, int out_channels, int height,
                                     int width, int kernel, int first_unit, int units, int accumulate, float *sums);
void emu_wb_conv_amx_weight_gradient_store(const float *sums, int in_channels, int out_channels, int kernel, float *gradient);

#endif
