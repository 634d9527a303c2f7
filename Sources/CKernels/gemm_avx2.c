// The workbench's float32 GEMM for CPUs with AVX2 and FMA but no AVX-512 (AMD Zen 2/3, Intel
// client cores): the blocked driver of the AVX-512 variant (gemm_tiles.h) with 6×16 tiles, the
// most that AVX2's sixteen registers hold. Every element of C is the same chain of fused
// multiply-adds in k order as in the AVX-512 kernel, so the two give the same bits; like it, the
// result does not depend on how the caller splits C over threads (OpenBLAS's does).
#include "ckernels.h"

#include <stdlib.h>

#if defined(__x86_64__)
#include "gemm_tiles.h"

enum { AVX2_MR = 6, AVX2_NR = 16 };

// Lanes [0, count) of eight, as a maskload/maskstore mask.
WB_AVX2 static inline __m256i lanes(int count) {
    count = count < 0 ? 0 : count > 8 ? 8 : count;
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(count), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

WB_AVX2 static void pack_a_avx2(int trans_a, const float *a, int lda, int i0, int rows, int p0, int kc, void *panel) {
    float *dst = panel;
    if (trans_a) {
        // op(A)(i, p) = a[p·lda + i]: six consecutive floats per p.
        for (int p = 0; p < kc; p++) {
            const float *line = a + (size_t)(p0 + p) * lda + i0;
            for (int r = 0; r < AVX2_MR; r++) dst[(size_t)p * AVX2_MR + r] = r < rows ? line[r] : 0;
        }
    } else {
        // Rows of A are contiguous in p; the panel interleaves six of them (A is usually packed
        // once per convolution, so plain loads serve).
        for (int p = 0; p < kc; p++)
            for (int r = 0; r < AVX2_MR; r++)
                dst[(size_t)p * AVX2_MR + r] = r < rows ? a[(size_t)(i0 + r) * lda + p0 + p] : 0;
    }
}

WB_AVX2 static void pack_b_avx2(int trans_b, const float *b, int ldb, int p0, int kc, int j0, int cols, void *panel) {
    float *dst = panel;
    if (!trans_b) {
        __m256i low = lanes(cols), high = lanes(cols - 8);
        for (int p = 0; p < kc; p++) {
            const float *row = b + (size_t)(p0 + p) * ldb + j0;
            int full = cols == AVX2_NR;
            _mm256_store_ps(dst + (size_t)p * AVX2_NR, full ? _mm256_loadu_ps(row) : _mm256_maskload_ps(row, low));
            _mm256_store_ps(dst + (size_t)p * AVX2_NR + 8, full ? _mm256_loadu_ps(row + 8) : _mm256_maskload_ps(row + 8, high));
        }
    } else {
        for (int c = 0; c < AVX2_NR; c += 8) {
            int lines = cols - c < 0 ? 0 : cols - c > 8 ? 8 : cols - c;
            interleave_lines(b + (size_t)(j0 + (lines ? c : 0)) * ldb + p0, (size_t)ldb, lines, kc, dst + c, AVX2_NR);
        }
    }
}

// C[0..rows, 0..cols] = alpha·(Ap·Bp) + beta·C for a 6×16 tile: twelve accumulators, two B
// vectors and one broadcast A value fill fifteen of the sixteen ymm registers.
WB_AVX2 static void micro_kernel_avx2(int kc, const void *a_panel, const void *b_panel, float *c, int ldc, int rows,
                                      int cols, float alpha, float beta, int stream_c) {
    (void)stream_c;  // stores through the cache, as the AVX-512 float32 kernel (gemm_tiles.h)
    const float *a = a_panel, *b = b_panel;
    __m256 c00 = _mm256_setzero_ps(), c01 = _mm256_setzero_ps(), c10 = _mm256_setzero_ps(), c11 = _mm256_setzero_ps();
    __m256 c20 = _mm256_setzero_ps(), c21 = _mm256_setzero_ps(), c30 = _mm256_setzero_ps(), c31 = _mm256_setzero_ps();
    __m256 c40 = _mm256_setzero_ps(), c41 = _mm256_setzero_ps(), c50 = _mm256_setzero_ps(), c51 = _mm256_setzero_ps();
    for (int p = 0; p < kc; p++, a += AVX2_MR, b += AVX2_NR) {
        __m256 b0 = _mm256_load_ps(b), b1 = _mm256_load_ps(b + 8), x;
        x = _mm256_broadcast_ss(a + 0); c00 = _mm256_fmadd_ps(x, b0, c00); c01 = _mm256_fmadd_ps(x, b1, c01);
        x = _mm256_broadcast_ss(a + 1); c10 = _mm256_fmadd_ps(x, b0, c10); c11 = _mm256_fmadd_ps(x, b1, c11);
        x = _mm256_broadcast_ss(a + 2); c20 = _mm256_fmadd_ps(x, b0, c20); c21 = _mm256_fmadd_ps(x, b1, c21);
        x = _mm256_broadcast_ss(a + 3); c30 = _mm256_fmadd_ps(x, b0, c30); c31 = _mm256_fmadd_ps(x, b1, c31);
        x = _mm256_broadcast_ss(a + 4); c40 = _mm256_fmadd_ps(x, b0, c40); c41 = _mm256_fmadd_ps(x, b1, c41);
        x = _mm256_broadcast_ss(a + 5); c50 = _mm256_fmadd_ps(x, b0, c50); c51 = _mm256_fmadd_ps(x, b1, c51);
    }
    __m256 acc[AVX2_MR][2] = {{c00, c01}, {c10, c11}, {c20, c21}, {c30, c31}, {c40, c41}, {c50, c51}};
    __m256i low = lanes(cols), high = lanes(cols - 8);
    __m256 alpha_v = _mm256_set1_ps(alpha), beta_v = _mm256_set1_ps(beta);
    for (int r = 0; r < rows; r++) {
        float *row = c + (size_t)r * ldc;
        __m256 v0 = _mm256_mul_ps(alpha_v, acc[r][0]), v1 = _mm256_mul_ps(alpha_v, acc[r][1]);
        // Masked moves only at the right edge: AMD cores run vmaskmovps stores far slower than plain ones.
        if (cols == AVX2_NR) {
            if (beta != 0) {  // BLAS semantics: C is not read when beta is zero (it may hold NaNs)
                v0 = _mm256_fmadd_ps(beta_v, _mm256_loadu_ps(row), v0);
                v1 = _mm256_fmadd_ps(beta_v, _mm256_loadu_ps(row + 8), v1);
            }
            _mm256_storeu_ps(row, v0);
            _mm256_storeu_ps(row + 8, v1);
        } else {
            if (beta != 0) {
                v0 = _mm256_fmadd_ps(beta_v, _mm256_maskload_ps(row, low), v0);
                v1 = _mm256_fmadd_ps(beta_v, _mm256_maskload_ps(row + 8, high), v1);
            }
            _mm256_maskstore_ps(row, low, v0);
            _mm256_maskstore_ps(row + 8, high, v1);
        }
    }
}

// C (m ≤ SKINNY_ROWS rows) = alpha·A·B + beta·C with A one packed panel (panel[p·6 + r]) and B
// row-major, read in place 16 columns at a time: a convolution's 1- or 3-channel output layer,
// where a 6-row tile would be mostly padding. Each element is summed over k in order.
WB_AVX2 static void skinny_avx2(int m, int n, int k, float alpha, const float *panel, const float *b, int ldb, float beta,
                                float *c, int ldc) {
    __m256 alpha_v = _mm256_set1_ps(alpha), beta_v = _mm256_set1_ps(beta);
    for (int j = 0; j < n; j += AVX2_NR) {
        int cols = n - j < AVX2_NR ? n - j : AVX2_NR, full = cols == AVX2_NR;
        __m256i low = lanes(cols), high = lanes(cols - 8);
        __m256 acc[SKINNY_ROWS][2];
        for (int r = 0; r < SKINNY_ROWS; r++) acc[r][0] = acc[r][1] = _mm256_setzero_ps();
        const float *row = b + j;
        for (int p = 0; p < k; p++, row += ldb) {
            __m256 b0 = full ? _mm256_loadu_ps(row) : _mm256_maskload_ps(row, low);
            __m256 b1 = full ? _mm256_loadu_ps(row + 8) : _mm256_maskload_ps(row + 8, high);
            for (int r = 0; r < SKINNY_ROWS; r++) {
                __m256 a = _mm256_broadcast_ss(panel + (size_t)p * AVX2_MR + r);
                acc[r][0] = _mm256_fmadd_ps(a, b0, acc[r][0]);
                acc[r][1] = _mm256_fmadd_ps(a, b1, acc[r][1]);
            }
        }
        for (int r = 0; r < m; r++) {
            float *out = c + (size_t)r * ldc + j;
            __m256 v0 = _mm256_mul_ps(alpha_v, acc[r][0]), v1 = _mm256_mul_ps(alpha_v, acc[r][1]);
            if (beta != 0) {
                v0 = _mm256_fmadd_ps(beta_v, full ? _mm256_loadu_ps(out) : _mm256_maskload_ps(out, low), v0);
                v1 = _mm256_fmadd_ps(beta_v, full ? _mm256_loadu_ps(out + 8) : _mm256_maskload_ps(out + 8, high), v1);
            }
            if (full) {
                _mm256_storeu_ps(out, v0);
                _mm256_storeu_ps(out + 8, v1);
            } else {
                _mm256_maskstore_ps(out, low, v0);
                _mm256_maskstore_ps(out + 8, high, v1);
            }
        }
    }
}

static int float32_depth(int kc) { return kc; }

const wb_gemm_variant wb_float32_avx2_variant = {AVX2_MR,     AVX2_NR,           float32_depth,
                                                 pack_a_avx2, pack_b_avx2, NULL, micro_kernel_avx2,
                                                 skinny_avx2, &wb_float32_avx2_variant};

void wb_gemm_avx2(int trans_a, int trans_b, int m, int n, int k, float alpha, const float *a, int lda, const float *b,
                  int ldb, float beta, float *c, int ldc) {
    wb_gemm_run(&wb_float32_avx2_variant, trans_a, trans_b, m, n, k, alpha, a, lda, NULL, b, ldb, beta, c, ldc);
}

size_t wb_gemm_avx2_packed_a_count(int m, int k) { return wb_gemm_variant_packed_count(&wb_float32_avx2_variant, m, k); }

void wb_gemm_avx2_pack_a(int trans_a, int m, int k, const float *a, int lda, float *packed) {
    wb_gemm_variant_pack_a(&wb_float32_avx2_variant, trans_a, m, k, a, lda, packed);
}

void wb_gemm_avx2_packed(int m, int n, int k, float alpha, const float *packed_a_panels, int trans_b, const float *b,
                         int ldb, float beta, float *c, int ldc) {
    wb_gemm_run(&wb_float32_avx2_variant, 0, trans_b, m, n, k, alpha, NULL, 0, packed_a_panels, b, ldb, beta, c, ldc);
}

#else

void wb_gemm_avx2(int trans_a, int trans_b, int m, int n, int k, float alpha, const float *a, int lda, const float *b,
                  int ldb, float beta, float *c, int ldc) { abort(); }
size_t wb_gemm_avx2_packed_a_count(int m, int k) { return 0; }
void wb_gemm_avx2_pack_a(int trans_a, int m, int k, const float *a, int lda, float *packed) { abort(); }
void wb_gemm_avx2_packed(int m, int n, int k, float alpha, const float *packed_a_panels, int trans_b, const float *b,
                         int ldb, float beta, float *c, int ldc) { abort(); }

#endif
