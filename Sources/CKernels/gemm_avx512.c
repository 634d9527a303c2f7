// The workbench's own single-precision GEMM for CPUs with AVX-512, in the BLIS layout: A is packed
// into panels of MR rows and B into panels of NR columns, and an MR×NR micro-kernel keeps its
// block of C in registers over a KC-long slice of the inner dimension.
//
// Why it exists: older OpenBLAS builds, such as the 0.3.21 that Debian 12 ships, compute wrong
// results or crash on AMD's AVX-512 processors, so these machines pin OpenBLAS to its AVX2
// "Haswell" kernels (OPENBLAS_CORETYPE), at half the arithmetic rate of the hardware. Every convolution of both models is a GEMM, so this one kernel
// serves the forward pass, the input gradient and the weight gradient alike.
//
// Each element of C is one dot product summed in a fixed order (KC slices in turn, k ascending
// within a slice), whatever the caller's threading, so results are reproducible.
#include "ckernels.h"

#include <stdlib.h>

#if defined(__x86_64__)
#include "gemm_tiles.h"

// Packs rows [i0, i0+rows) × columns [p0, p0+kc) of op(A) as dst[p·MR + r], zero rows past `rows`.
WB_AVX512 static void pack_a(int trans_a, const float *a, int lda, int i0, int rows, int p0, int kc, void *panel) {
    float *dst = panel;
    if (trans_a) {
        // op(A)(i, p) = a[p·lda + i]: MR consecutive floats per p.
        __mmask16 mask = (__mmask16)((1u << rows) - 1);
        for (int p = 0; p < kc; p++) {
            __m256 v = _mm256_maskz_loadu_ps((__mmask8)mask, a + (size_t)(p0 + p) * lda + i0);
            _mm256_storeu_ps(dst + (size_t)p * MR, v);
        }
    } else {
        // Rows of A are contiguous in p: transpose them into the panel.
        interleave_lines(a + (size_t)i0 * lda + p0, (size_t)lda, rows, kc, dst, MR);
    }
}

// Packs rows [p0, p0+kc) × columns [j0, j0+cols) of op(B) as dst[p·NR + c], zero columns past `cols`.
WB_AVX512 static void pack_b(int trans_b, const float *b, int ldb, int p0, int kc, int j0, int cols, void *panel) {
    float *dst = panel;
    if (!trans_b) {
        __mmask16 low, high;
        panel_masks(cols, &low, &high);
        for (int p = 0; p < kc; p++) {
            const float *row = b + (size_t)(p0 + p) * ldb + j0;
            _mm512_store_ps(dst + (size_t)p * NR, _mm512_maskz_loadu_ps(low, row));
            _mm512_store_ps(dst + (size_t)p * NR + 16, _mm512_maskz_loadu_ps(high, row + 16));
        }
    } else {
        // op(B)(p, j) = b[j·ldb + p]: each column of op(B) is contiguous; transpose 8 columns at a time.
        for (int c = 0; c < NR; c += 8) {
            int lines = cols - c < 0 ? 0 : cols - c > 8 ? 8 : cols - c;
            interleave_lines(b + (size_t)(j0 + (lines ? c : 0)) * ldb + p0, (size_t)ldb, lines, kc, dst + c, NR);
        }
    }
}

// pack_b's panel of a convolution's im2col matrix, read from the image (wb_convolution_columns):
// the same floats, so the same products, without writing the columns and reading them back.
WB_AVX512 static void pack_b_columns(const wb_convolution_columns *g, int p0, int kc, int j0, int cols, void *panel) {
    float *dst = panel;
    const int count = g->kernel_height * g->kernel_width;
    const size_t plane = (size_t)g->height * (size_t)g->width;
    const wb_panel_tap *taps = g->panel_taps + (size_t)(j0 / NR) * (size_t)count;  // j0: a multiple of 32
    __mmask16 low, high;
    panel_masks(cols, &low, &high);
    int channel = p0 / count, t = p0 % count;  // row p0 + p = channel·count + t
    for (int p = 0; p < kc; p++) {
        const float *source = g->image + (size_t)channel * plane;
        _mm512_store_ps(dst + (size_t)p * NR, column_half(source, taps + t, 0, low));
        _mm512_store_ps(dst + (size_t)p * NR + 16, column_half(source, taps + t, 1, high));
        if (++t == count) {
            t = 0;
            channel++;
        }
    }
}

// C[0..rows, 0..cols] = alpha·(Ap·Bp) + beta·C, with Ap MR×kc and Bp kc×NR packed as above.
WB_AVX512 static void micro_kernel(int kc, const void *a_panel, const void *b_panel, float *c, int ldc, int rows,
                                   int cols, float alpha, float beta, int stream_c) {
    (void)stream_c;  // its stores go through the cache, which measured faster (gemm_tiles.h)
    const float *ap = a_panel, *bp = b_panel;
    __m512 c00 = _mm512_setzero_ps(), c01 = _mm512_setzero_ps(), c10 = _mm512_setzero_ps(), c11 = _mm512_setzero_ps();
    __m512 c20 = _mm512_setzero_ps(), c21 = _mm512_setzero_ps(), c30 = _mm512_setzero_ps(), c31 = _mm512_setzero_ps();
    __m512 c40 = _mm512_setzero_ps(), c41 = _mm512_setzero_ps(), c50 = _mm512_setzero_ps(), c51 = _mm512_setzero_ps();
    __m512 c60 = _mm512_setzero_ps(), c61 = _mm512_setzero_ps(), c70 = _mm512_setzero_ps(), c71 = _mm512_setzero_ps();
#define WB_STEP(offset)                                                                        \
    {                                                                                          \
        __m512 b0 = _mm512_load_ps(bp + (offset) * NR), b1 = _mm512_load_ps(bp + (offset) * NR + 16); \
        const float *ak = ap + (offset) * MR;                                                  \
        __m512 a;                                                                              \
        a = _mm512_set1_ps(ak[0]); c00 = _mm512_fmadd_ps(a, b0, c00); c01 = _mm512_fmadd_ps(a, b1, c01); \
        a = _mm512_set1_ps(ak[1]); c10 = _mm512_fmadd_ps(a, b0, c10); c11 = _mm512_fmadd_ps(a, b1, c11); \
        a = _mm512_set1_ps(ak[2]); c20 = _mm512_fmadd_ps(a, b0, c20); c21 = _mm512_fmadd_ps(a, b1, c21); \
        a = _mm512_set1_ps(ak[3]); c30 = _mm512_fmadd_ps(a, b0, c30); c31 = _mm512_fmadd_ps(a, b1, c31); \
        a = _mm512_set1_ps(ak[4]); c40 = _mm512_fmadd_ps(a, b0, c40); c41 = _mm512_fmadd_ps(a, b1, c41); \
        a = _mm512_set1_ps(ak[5]); c50 = _mm512_fmadd_ps(a, b0, c50); c51 = _mm512_fmadd_ps(a, b1, c51); \
        a = _mm512_set1_ps(ak[6]); c60 = _mm512_fmadd_ps(a, b0, c60); c61 = _mm512_fmadd_ps(a, b1, c61); \
        a = _mm512_set1_ps(ak[7]); c70 = _mm512_fmadd_ps(a, b0, c70); c71 = _mm512_fmadd_ps(a, b1, c71); \
    }
    // C's tile is read (beta ≠ 0) and written after the loop: start fetching it now.
    for (int r = 0; r < rows; r++) {
        _mm_prefetch((const char *)(c + (size_t)r * ldc), _MM_HINT_T0);
        _mm_prefetch((const char *)(c + (size_t)r * ldc + 16), _MM_HINT_T0);
    }
    int p = 0;
    for (; p + 4 <= kc; p += 4) {
        _mm_prefetch((const char *)(bp + 8 * NR), _MM_HINT_T0);
        WB_STEP(0) WB_STEP(1) WB_STEP(2) WB_STEP(3)
        ap += 4 * MR;
        bp += 4 * NR;
    }
    for (; p < kc; p++) {
        WB_STEP(0)
        ap += MR;
        bp += NR;
    }
#undef WB_STEP
    __m512 acc[MR][2] = {{c00, c01}, {c10, c11}, {c20, c21}, {c30, c31},
                         {c40, c41}, {c50, c51}, {c60, c61}, {c70, c71}};
    __mmask16 low, high;
    panel_masks(cols, &low, &high);
    store_block(acc, rows, c, ldc, low, high, alpha, beta);
}

// C (m ≤ SKINNY_ROWS rows) = alpha·A·B + beta·C with A as one packed panel (panel[p·MR + r]) and B
// row-major, read in place: a convolution's 1- or 3-channel output layer. With so few rows an
// 8×32 tile would be mostly padding and packing B would cost more than using it; this streams B
// once, 32 columns at a time, summing each element over k in order.
WB_AVX512 static void skinny_gemm(int m, int n, int k, float alpha, const float *panel, const float *b, int ldb, float beta,
                                  float *c, int ldc) {
    for (int j = 0; j < n; j += NR) {
        int cols = n - j < NR ? n - j : NR;
        __mmask16 low, high;
        panel_masks(cols, &low, &high);
        __m512 acc[SKINNY_ROWS][2];
        for (int r = 0; r < SKINNY_ROWS; r++) acc[r][0] = acc[r][1] = _mm512_setzero_ps();
        const float *row = b + j;
        for (int p = 0; p < k; p++, row += ldb) {
            _mm_prefetch((const char *)(row + 8 * (size_t)ldb), _MM_HINT_T0);
            __m512 b0 = _mm512_maskz_loadu_ps(low, row), b1 = _mm512_maskz_loadu_ps(high, row + 16);
            for (int r = 0; r < SKINNY_ROWS; r++) {
                __m512 a = _mm512_set1_ps(panel[(size_t)p * MR + r]);
                acc[r][0] = _mm512_fmadd_ps(a, b0, acc[r][0]);
                acc[r][1] = _mm512_fmadd_ps(a, b1, acc[r][1]);
            }
        }
        store_block(acc, m, c + j, ldc, low, high, alpha, beta);
    }
}

static int float32_depth(int kc) { return kc; }

const wb_gemm_variant wb_float32_avx512_variant = {MR,           NR,          float32_depth, pack_a, pack_b,
                                                   pack_b_columns, micro_kernel, skinny_gemm,   &wb_float32_avx512_variant};
void wb_gemm(int trans_a, int trans_b, int m, int n, int k, float alpha, const float *a, int lda, const float *b,
             int ldb, float beta, float *c, int ldc) {
    wb_gemm_run(&wb_float32_avx512_variant, trans_a, trans_b, m, n, k, alpha, a, lda, NULL, b, ldb, beta, c, ldc);
}

size_t wb_gemm_packed_a_count(int m, int k) { return wb_gemm_variant_packed_count(&wb_float32_avx512_variant, m, k); }

void wb_gemm_pack_a(int trans_a, int m, int k, const float *a, int lda, float *packed) {
    wb_gemm_variant_pack_a(&wb_float32_avx512_variant, trans_a, m, k, a, lda, packed);
}

void wb_gemm_packed(int m, int n, int k, float alpha, const float *packed_a_panels, int trans_b, const float *b,
                    int ldb, float beta, float *c, int ldc) {
    wb_gemm_run(&wb_float32_avx512_variant, 0, trans_b, m, n, k, alpha, NULL, 0, packed_a_panels, b, ldb, beta, c, ldc);
}

void wb_gemm_packed_columns(int m, int n, int k, const float *packed_a_panels, const wb_convolution_columns *columns,
                            int first_column, float *c, int ldc) {
    wb_gemm_run_columns(&wb_float32_avx512_variant, m, n, k, packed_a_panels, columns, first_column, c, ldc);
}

#else

size_t wb_gemm_packed_a_count(int m, int k) { return 0; }
void wb_gemm_pack_a(int trans_a, int m, int k, const float *a, int lda, float *packed) { abort(); }
void wb_gemm_packed(int m, int n, int k, float alpha, const float *packed_a_panels, int trans_b, const float *b,
                    int ldb, float beta, float *c, int ldc) { abort(); }
void wb_gemm_packed_columns(int m, int n, int k, const float *packed_a_panels, const wb_convolution_columns *columns,
                            int first_column, float *c, int ldc) { abort(); }

void wb_gemm(int trans_a, int trans_b, int m, int n, int k, float alpha, const float *a, int lda, const float *b,
             int ldb, float beta, float *c, int ldc) {
    abort();  // Never called: wb_avx512_available() is false.
}

#endif
