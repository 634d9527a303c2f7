// The workbench's C kernels: the few OpenBLAS entry points it uses (declared here so that the build
// does not depend on where a distribution puts cblas.h), its own AVX-512 GEMM (gemm_avx512.c),
// vectorised activations (vector_math.c), dropout masks (philox.c) and normalisation passes
// (normalization.c). Each has a portable path for CPUs without AVX-512 (cpu.c decides).
#ifndef WORKBENCH_CKERNELS_H
#define WORKBENCH_CKERNELS_H

#include <stddef.h>
#include <stdint.h>

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

/// 1 when this CPU can run the AVX-512 kernels (x86-64 with AVX-512 F/VL/BW/DQ) and the environment
/// does not set WORKBENCH_AVX512=0, else 0.
int wb_avx512_available(void);

/// The workbench's AVX-512 GEMM, row-major: C = alpha·op(A)·op(B) + beta·C (gemm_avx512.c).
void wb_gemm(int trans_a, int trans_b, int m, int n, int k, float alpha, const float *a, int lda,
             const float *b, int ldb, float beta, float *c, int ldc);

/// The longest inner dimension the float32 GEMMs (`wb_gemm`, `wb_gemm_avx2`) sum in one slice: a
/// product with beta = 1 and k up to this adds its whole sum to C in one rounding.
int wb_gemm_float32_slice(void);

/// Floats `wb_gemm_pack_a` writes for an m×k op(A).
size_t wb_gemm_packed_a_count(int m, int k);

/// Packs op(A) (m×k) once, for products that reuse it (a convolution's weights across images).
void wb_gemm_pack_a(int trans_a, int m, int k, const float *a, int lda, float *packed);

/// `wb_gemm` with A packed by `wb_gemm_pack_a`.
void wb_gemm_packed(int m, int n, int k, float alpha, const float *packed_a_panels, int trans_b, const float *b,
                    int ldb, float beta, float *c, int ldc);

/// 1 when this CPU has AVX2 and FMA (x86-64-v3) and the environment does not set WORKBENCH_AVX2=0:
/// the element-wise kernels' path on CPUs without AVX-512.
int wb_avx2_available(void);

/// The workbench's float32 GEMM for AVX2 + FMA CPUs (gemm_avx2.c): `wb_gemm`'s panels and
/// summation order, so the same bits; needs wb_avx2_available().
void wb_gemm_avx2(int trans_a, int trans_b, int m, int n, int k, float alpha, const float *a, int lda,
                  const float *b, int ldb, float beta, float *c, int ldc);
size_t wb_gemm_avx2_packed_a_count(int m, int k);
void wb_gemm_avx2_pack_a(int trans_a, int m, int k, const float *a, int lda, float *packed);
void wb_gemm_avx2_packed(int m, int n, int k, float alpha, const float *packed_a_panels, int trans_b, const float *b,
                         int ldb, float beta, float *c, int ldc);

/// 1 when the AVX-512 kernels are available and the CPU also has AVX512_BF16 (vdpbf16ps), else 0.
int wb_avx512_bf16_available(void);

/// `wb_gemm` with op(A) and op(B) rounded to bfloat16 (nearest even) and every product summed in
/// float32 by vdpbf16ps (gemm_bf16.c). Needs wb_avx512_bf16_available(); products of at most 4
/// rows stay float32.
void wb_gemm_bf16(int trans_a, int trans_b, int m, int n, int k, float alpha, const float *a, int lda,
                  const float *b, int ldb, float beta, float *c, int ldc);

/// Floats `wb_gemm_bf16_pack_a` writes for an m×k op(A).
size_t wb_gemm_bf16_packed_a_count(int m, int k);

/// Packs op(A) once for `wb_gemm_bf16_packed`.
void wb_gemm_bf16_pack_a(int trans_a, int m, int k, const float *a, int lda, float *packed);

/// `wb_gemm_bf16` with A packed by `wb_gemm_bf16_pack_a`.
void wb_gemm_bf16_packed(int m, int n, int k, float alpha, const float *packed_a_panels, int trans_b, const float *b,
                         int ldb, float beta, float *c, int ldc);

/// 1 when the bf16 kernels are available, the CPU has AMX-TILE and AMX-BF16, Linux grants this
/// process the tile state and the environment does not set WORKBENCH_AMX=0, else 0.
int wb_amx_available(void);

/// `wb_gemm_bf16` on AMX tiles (gemm_amx.c): the same rounding of the operands, products summed in
/// float32 by TDPBF16PS (so other last bits than vdpbf16ps's). Needs wb_amx_available().
void wb_gemm_amx(int trans_a, int trans_b, int m, int n, int k, float alpha, const float *a, int lda,
                 const float *b, int ldb, float beta, float *c, int ldc);
size_t wb_gemm_amx_packed_a_count(int m, int k);
void wb_gemm_amx_pack_a(int trans_a, int m, int k, const float *a, int lda, float *packed);
void wb_gemm_amx_packed(int m, int n, int k, float alpha, const float *packed_a_panels, int trans_b, const float *b,
                        int ldb, float beta, float *c, int ldc);

/// Where the 32 columns of one panel read for one kernel tap: offsets in a plane (-1: zero), and
/// per half panel the lanes that read something and whether they read one run (offset = start + lane).
typedef struct {
    int32_t offsets[32];
    int32_t start[2];
    uint16_t valid[2];
    uint8_t run[2];
    uint8_t reserved[2];
} wb_panel_tap;

/// One image's im2col matrix, which the bf16 GEMMs read in place instead of from a column buffer:
/// row (c·kernel_height + i)·kernel_width + j, column x + out_width·y is
/// image[(c·height + row_sources[i·out_height + y])·width + column_sources[j·out_width + x]],
/// zero where either table holds -1 (a padding cell; reflected cells are in the tables).
/// `panel_taps` ([panel][tap], from wb_convolution_panel_taps) serves every image of a convolution.
typedef struct {
    const float *image;
    const int32_t *row_sources, *column_sources;
    const wb_panel_tap *panel_taps;
    int height, width, kernel_height, kernel_width, out_height, out_width;
} wb_convolution_columns;

/// Entries `wb_convolution_panel_taps` writes: 32-column panels × kernel taps.
size_t wb_convolution_panel_taps_count(const wb_convolution_columns *columns);

/// Fills taps[panel · kernel taps + tap] for every 32-column panel of the matrix (image not read).
void wb_convolution_panel_taps(const wb_convolution_columns *columns, wb_panel_tap *taps);

/// C (m×n) = A·B with A packed by `wb_gemm_bf16_pack_a` (m > 4 rows) and B columns
/// [first_column, first_column + n) of a convolution's im2col matrix (k rows; first_column a
/// multiple of 32), read in place: the bytes `wb_gemm_bf16_packed` gives for the matrix written out.
void wb_gemm_bf16_packed_columns(int m, int n, int k, const float *packed_a_panels, const wb_convolution_columns *columns,
                                 int first_column, float *c, int ldc);

/// `wb_gemm_bf16_packed_columns` in float32 (the AVX-512 kernel), with A packed by `wb_gemm_pack_a`:
/// the bytes of `wb_gemm_packed` on the written-out matrix.
void wb_gemm_packed_columns(int m, int n, int k, const float *packed_a_panels, const wb_convolution_columns *columns,
                            int first_column, float *c, int ldc);

/// `wb_gemm_bf16_packed_columns` on AMX tiles, with A packed by `wb_gemm_amx_pack_a`.
void wb_gemm_amx_packed_columns(int m, int n, int k, const float *packed_a_panels, const wb_convolution_columns *columns,
                                int first_column, float *c, int ldc);

/// Direct convolution on AMX tiles (convolution_amx.c), bf16 products summed in float32, for stride 1
/// and a square kernel of odd size `kernel`: the forward pass with zero padding up to kernel − 1 or
/// reflect padding (kernel − 1)/2 (`reflect` ≠ 0), the weight gradient with padding (kernel − 1)/2.
/// Needs wb_amx_available().

/// Units `wb_conv_amx_weights` writes for OIHW weights.
size_t wb_conv_amx_weights_count(int out_channels, int in_channels, int kernel);
/// The weights as bf16 tiles: [16 outputs][kernel²][32 inputs] blocks of 16 rows × 16 input-channel pairs.
/// With `flipped`, those of W̃[o][c][i][j] = W[c][o][k−1−i][k−1−j] (an input gradient's convolution),
/// read from `weights` = W [in_channels][out_channels][k][k].
void wb_conv_amx_weights(const float *weights, int out_channels, int in_channels, int kernel, int flipped,
                         uint32_t *packed);
/// Units of the scratch band `wb_conv_amx_forward` needs for `rows` output rows (`width`: the input's).
size_t wb_conv_amx_band_count(int in_channels, int width, int kernel, int padding, int rows);
/// Output rows [first_row, first_row + rows) of one image: out (the image's [out_channels, height +
/// 2·padding − kernel + 1, width + 2·padding − kernel + 1]) = conv(image [in_channels, height, width])
/// + bias (NULL: none), through `band`.
void wb_conv_amx_forward(const float *image, int in_channels, int height, int width, int kernel, int padding, int reflect,
                         const uint32_t *weights, const float *bias, int out_channels, int first_row, int rows,
                         uint32_t *band, float *out);
/// Units (4 bytes) of one image's input planes for the weight gradient.
size_t wb_conv_amx_gradient_planes_count(int in_channels, int height, int width, int kernel);
/// Channels [first_channel, first_channel + channels) of one image's input planes (channels past
/// in_channels, up to a multiple of 16, are written as zeros; the call that reaches them also writes the slack).
void wb_conv_amx_gradient_planes(const float *image, int in_channels, int height, int width, int kernel, int reflect,
                                 int first_channel, int channels, uint16_t *planes);
/// Units of one image's output gradient as pixel pairs.
size_t wb_conv_amx_gradient_pairs_count(int out_channels, int height, int width);
/// One image's output gradient [out_channels, height, width] as pairs [pixel pair][out_channels padded to 16].
void wb_conv_amx_gradient_pairs(const float *gradient, int out_channels, int height, int width, uint32_t *pairs);
/// Work units of the weight gradient (each a 32×32 block of sums of one tap), split over threads by the caller.
size_t wb_conv_amx_gradient_units(int in_channels, int out_channels, int kernel);
/// sums [kernel²][in_channels padded to 16][out_channels padded to 16] (+)= the weight gradient of
/// `images` images (planes_stride bf16 values and pairs_stride pairs apart), for units [first_unit, first_unit + units);
/// with accumulate 0 the units' sums start from zero.
void wb_conv_amx_weight_gradient(const uint16_t *planes, size_t planes_stride, const uint32_t *pairs, size_t pairs_stride,
                                 int images, int in_channels, int out_channels, int height, int width, int kernel,
                                 int first_unit, int units, int accumulate, float *sums);

/// The weight gradient [out_channels, in_channels, kernel, kernel] from sums laid out as
/// `wb_conv_amx_weight_gradient` writes them.
void wb_conv_amx_weight_gradient_store(const float *sums, int in_channels, int out_channels, int kernel, float *gradient);

/// The float32 weight gradient of a 3×3, stride-1 convolution with padding 1 as dot products over
/// the pixels (convolution_weight_gradient.c, AVX-512), summed over a group of `images` images:
/// `pad_input` writes image `index`'s padded planes into `planes` (`plane_count(images, …)` floats
/// per input channel), `pad_output` its output gradient into `rows` (`row_count(images, …)` floats
/// per output channel), and `wb_conv_weight_gradient` writes the elements of input channels
/// [first_channel, first_channel + channels) of the [out, in, 3, 3] gradient, with
/// `sums_count(channels, out_channels)` floats of scratch `sums`.
size_t wb_conv_weight_gradient_plane_count(int images, int height, int width);
size_t wb_conv_weight_gradient_row_count(int images, int height, int width);
size_t wb_conv_weight_gradient_sums_count(int in_channels, int out_channels);
void wb_conv_weight_gradient_pad_input(const float *image, int channels, int height, int width, int reflect, int index,
                                       int images, float *planes);
void wb_conv_weight_gradient_pad_output(const float *gradient, int channels, int height, int width, int index, int images,
                                        float *rows);
void wb_conv_weight_gradient(const float *planes, const float *gradient_rows, int images, int in_channels,
                             int out_channels, int height, int width, int first_channel, int channels, float *sums,
                             float *gradient);

/// Winograd F(2×2, 3×3) (winograd.c): a 3×3, stride-1 convolution with padding 1 as sixteen products
/// M[ξ] = U[ξ]·V[ξ] over the input channels, one per element ξ of a transformed 4×4 tile; a tile
/// is a 2×2 block of outputs, tile (ty, tx) the outputs at rows 2ty…2ty+1 and columns 2tx…2tx+1.

/// U[ξ] (out_channels × in_channels, row-major, ξ after ξ) = G·g·Gᵀ of the OIHW 3×3 weights g.
void wb_winograd_f2x3_weights(const float *weights, int out_channels, int in_channels, float *u);
/// `wb_winograd_f2x3_weights` for kernels [first, first + count) of the out_channels·in_channels
/// (row-major [o][c]), into their places in U: ranges may be transformed on different threads.
/// `flipped`: `weights` holds W [in_channels][out_channels][3][3] and the kernels transformed are
/// W̃[o][c] = W[c][o] reversed (an input gradient's convolution), the same values as transforming
/// a flipped copy.
void wb_winograd_f2x3_weights_range(const float *weights, int out_channels, int in_channels, int first, int count,
                                    int flipped, float *u);

/// V[ξ] = Bᵀ·d·B for the tiles of rows [first_tile_row, first_tile_row + tile_rows) of one image
/// [channels, height, width], read with zero or (`reflect` ≠ 0, width and height ≥ 2) reflect
/// padding 1: V[ξ] is a channels × ldv row-major matrix (ξ after ξ, channels·ldv apart) whose
/// columns from 0 are the tiles, row-major (⌈width/2⌉ per tile row); ldv ≥ their count, so that several
/// images' tiles can sit side by side.
void wb_winograd_f2x3_input(const float *image, int channels, int height, int width, int reflect, int first_tile_row,
                            int tile_rows, float *v, size_t ldv);

/// The outputs of those tiles, Aᵀ·M[·]·A + bias (bias may be NULL), written into one image
/// [out_channels, height, width] from M[ξ] (out_channels × ldm, laid out as V).
void wb_winograd_f2x3_output(const float *m, size_t ldm, int out_channels, int height, int width, int first_tile_row,
                             int tile_rows, const float *bias, float *out);

/// One Adam step over n parameters (adam.c): g' = g + decay·p (decay 0: g), m += (1−β1)·(g' − m),
/// v = v·β2 + ((1−β2)·g')·g', p = p·shrink − step_size·(m / (√v / bias2_sqrt + ε)) (shrink: AdamW's
/// decoupled decay, 1 otherwise), each operation rounded on its own (PyTorch's order).
void wb_adam_update(float *p, const float *g, float *m, float *v, size_t n, float beta1_complement, float beta2,
                    float beta2_complement, float bias2_sqrt, float epsilon, float step_size, float decay, float shrink);

/// y = x rounded to the nearest bfloat16 (ties to even), as floats: the rounding the bf16 GEMM applies.
void wb_round_to_bf16(const float *x, float *y, size_t n);

/// y = 1 / (1 + exp(-x)) over n floats.
void wb_sigmoid(const float *x, float *y, size_t n);

/// y = x / (1 + exp(-x)) (SiLU, PyTorch's formula) over n floats.
void wb_silu(const float *x, float *y, size_t n);

/// dx = g · s · (1 + x · (1 − s)) with s = sigmoid(x): SiLU's backward.
void wb_silu_backward(const float *x, const float *g, float *dx, size_t n);

/// Dropout keep masks: bytes out[0..<count] from Philox-4x32-10 blocks first_block… (counter
/// (block, stream), key seed), element 8b+l kept (1) when 16-bit half l of block b < threshold.
void wb_philox_keep_mask(uint64_t seed, uint64_t stream, uint64_t first_block, size_t blocks, size_t count,
                         uint32_t threshold, uint8_t *out);

/// A normalised plane's last steps in one pass: u = (x·a + b) + shift, z = mask ? u·mask_scale : 0
/// (mask may be NULL: z = u), y = SiLU(z).
void wb_affine_dropout_silu(const float *x, float *y, size_t n, float a, float b, float shift, const uint8_t *mask,
                            float mask_scale);

/// The upstream gradient of the normalised plane in `wb_affine_dropout_silu`'s backward pass:
/// dz = g · SiLU'(z), with z recomputed from x as the forward pass computes it (the same bits).
void wb_affine_dropout_silu_backward(const float *x, const float *g, float *dz, size_t n, float a, float b, float shift,
                                     const uint8_t *mask, float mask_scale);

/// Σ x in float64 (sixteen lanes, fixed order).
double wb_sum(const float *x, size_t n);

/// Σ (x − mean)² in float64.
double wb_sum_squared_deviations(const float *x, size_t n, double mean);

/// y = leaky(mask ? (x·a + b)·mask_scale : 0) with negative slope `slope` (mask may be NULL; slope 1
/// makes it the plain affine map).
void wb_affine_dropout_leaky(const float *x, float *y, size_t n, float a, float b, const uint8_t *mask,
                             float mask_scale, float slope);

/// sums[0] += Σ d, sums[1] += Σ d·(x − mean)·inv_std, where d = g·gain, times leaky'(y) when y is
/// not NULL, times mask·mask_scale when mask is not NULL.
void wb_normalization_gradient_sums(const float *g, const float *x, size_t n, float mean, float inv_std, float gain,
                                    const float *y, float slope, const uint8_t *mask, float mask_scale,
                                    double sums[2]);

/// gx = a·(d − mean_d − x̂·mean_dx) with batch statistics, else a·d (d as above).
void wb_normalization_input_gradient(const float *g, const float *x, size_t n, float mean, float inv_std, float gain,
                                     const float *y, float slope, const uint8_t *mask, float mask_scale, float a,
                                     float mean_d, float mean_dx, int batch_statistics, float *gx);

#endif
