// The workbench's bf16 GEMM: C = alpha·op(A)·op(B) + beta·C with A and B rounded to bfloat16
// (round to nearest even, as PyTorch's autocast rounds) while packing, and every product summed in
// float32 by vdpbf16ps, two k-steps per instruction. It runs inside the float32 GEMM's blocked
// driver (gemm_tiles.h) with its own packing and micro-kernel, so the callers' float32 tensors,
// threading and reproducibility are unchanged: each element of C is summed in a fixed order
// (slices in turn; within a slice pair q = (2q, 2q+1) after pair q−1, the odd step added before the
// even one, as the instruction defines).
#include "ckernels.h"

#include <stdint.h>
#include <stdlib.h>

#if defined(__x86_64__)
#include "gemm_tiles.h"

static int bf16_depth(int kc) { return (kc + 1) / 2; }

// `lines` (≤ 8) strided lines of kc floats as pairs: dst[q·stride + i] = (line i's 2q, 2q+1), zero
// for i ≥ lines and past kc. Each 16-float block becomes 8 pairs per line, transposed 8×8 in registers.
WB_BF16 static void interleave_pairs(const float *source, size_t line_stride, int lines, int kc, uint32_t *dst,
                                     int stride) {
    for (int p = 0; p < kc; p += 16) {
        int rest = kc - p < 16 ? kc - p : 16;
        __mmask16 mask = (__mmask16)(rest == 16 ? 0xFFFF : (1u << rest) - 1);
        __m256 r[8];
        for (int i = 0; i < 8; i++) {
            if (i < lines) {
                __m256bh half = _mm512_cvtneps_pbh(_mm512_maskz_loadu_ps(mask, source + (size_t)i * line_stride + p));
                r[i] = _mm256_castsi256_ps((__m256i)half);
            } else {
                r[i] = _mm256_setzero_ps();
            }
        }
        transpose8x8(r);
        int pairs = (rest + 1) / 2;
        for (int j = 0; j < pairs; j++) _mm256_storeu_ps((float *)(dst + (size_t)(p / 2 + j) * stride), r[j]);
    }
}

WB_BF16 static void pack_a_bf16(int trans_a, const float *a, int lda, int i0, int rows, int p0, int kc, void *panel) {
    uint32_t *dst = panel;
    if (trans_a) {
        // op(A)(i, p) = a[p·lda + i]: the rows of `a` at p and p+1 give MR pairs.
        __mmask8 mask = (__mmask8)((1u << rows) - 1);
        for (int p = 0; p < kc; p += 2) {
            const float *row0 = a + (size_t)(p0 + p) * lda + i0;
            __m256i low = _mm256_cvtepu16_epi32((__m128i)_mm256_cvtneps_pbh(_mm256_maskz_loadu_ps(mask, row0)));
            if (p + 1 < kc) {
                __m256i high = _mm256_cvtepu16_epi32(
                    (__m128i)_mm256_cvtneps_pbh(_mm256_maskz_loadu_ps(mask, row0 + lda)));
                low = _mm256_or_si256(low, _mm256_slli_epi32(high, 16));
            }
            _mm256_storeu_si256((__m256i *)(dst + (size_t)(p / 2) * MR), low);
        }
    } else {
        interleave_pairs(a + (size_t)i0 * lda + p0, (size_t)lda, rows, kc, dst, MR);
    }
}

WB_BF16 void wb_bf16_pack_b(int trans_b, const float *b, int ldb, int p0, int kc, int j0, int cols, void *panel) {
    uint32_t *dst = panel;
    if (!trans_b) {
        __mmask16 low, high;
        panel_masks(cols, &low, &high);
        for (int p = 0; p < kc; p += 2) {
            const float *row0 = b + (size_t)(p0 + p) * ldb + j0, *row1 = p + 1 < kc ? row0 + ldb : NULL;
            _mm512_store_si512(dst + (size_t)(p / 2) * NR, bf16_pairs(row0, row1, low));
            _mm512_store_si512(dst + (size_t)(p / 2) * NR + 16,
                               high ? bf16_pairs(row0 + 16, row1 ? row1 + 16 : NULL, high) : _mm512_setzero_si512());
        }
    } else {
        for (int c = 0; c < NR; c += 8) {
            int lines = cols - c < 0 ? 0 : cols - c > 8 ? 8 : cols - c;
            interleave_pairs(b + (size_t)(j0 + (lines ? c : 0)) * ldb + p0, (size_t)ldb, lines, kc, dst + c, NR);
        }
    }
}

WB_BF16 static void micro_kernel_bf16(int pairs, const void *a_panel, const void *b_panel, float *c, int ldc, int rows,
                                      int cols, float alpha, float beta, int stream_c) {
    (void)stream_c;  // stores through the cache, as the float32 kernel (gemm_tiles.h)
    const uint32_t *ap = a_panel, *bp = b_panel;
    __m512 c00 = _mm512_setzero_ps(), c01 = _mm512_setzero_ps(), c10 = _mm512_setzero_ps(), c11 = _mm512_setzero_ps();
    __m512 c20 = _mm512_setzero_ps(), c21 = _mm512_setzero_ps(), c30 = _mm512_setzero_ps(), c31 = _mm512_setzero_ps();
    __m512 c40 = _mm512_setzero_ps(), c41 = _mm512_setzero_ps(), c50 = _mm512_setzero_ps(), c51 = _mm512_setzero_ps();
    __m512 c60 = _mm512_setzero_ps(), c61 = _mm512_setzero_ps(), c70 = _mm512_setzero_ps(), c71 = _mm512_setzero_ps();
#define WB_PAIR(offset)                                                                                        \
    {                                                                                                          \
        __m512bh b0 = (__m512bh)_mm512_load_si512(bp + (offset) * NR);                                         \
        __m512bh b1 = (__m512bh)_mm512_load_si512(bp + (offset) * NR + 16);                                    \
        const uint32_t *ak = ap + (offset) * MR;                                                               \
        __m512bh a;                                                                                            \
        a = (__m512bh)_mm512_set1_epi32((int)ak[0]); c00 = _mm512_dpbf16_ps(c00, a, b0); c01 = _mm512_dpbf16_ps(c01, a, b1); \
        a = (__m512bh)_mm512_set1_epi32((int)ak[1]); c10 = _mm512_dpbf16_ps(c10, a, b0); c11 = _mm512_dpbf16_ps(c11, a, b1); \
        a = (__m512bh)_mm512_set1_epi32((int)ak[2]); c20 = _mm512_dpbf16_ps(c20, a, b0); c21 = _mm512_dpbf16_ps(c21, a, b1); \
        a = (__m512bh)_mm512_set1_epi32((int)ak[3]); c30 = _mm512_dpbf16_ps(c30, a, b0); c31 = _mm512_dpbf16_ps(c31, a, b1); \
        a = (__m512bh)_mm512_set1_epi32((int)ak[4]); c40 = _mm512_dpbf16_ps(c40, a, b0); c41 = _mm512_dpbf16_ps(c41, a, b1); \
        a = (__m512bh)_mm512_set1_epi32((int)ak[5]); c50 = _mm512_dpbf16_ps(c50, a, b0); c51 = _mm512_dpbf16_ps(c51, a, b1); \
        a = (__m512bh)_mm512_set1_epi32((int)ak[6]); c60 = _mm512_dpbf16_ps(c60, a, b0); c61 = _mm512_dpbf16_ps(c61, a, b1); \
        a = (__m512bh)_mm512_set1_epi32((int)ak[7]); c70 = _mm512_dpbf16_ps(c70, a, b0); c71 = _mm512_dpbf16_ps(c71, a, b1); \
    }
    for (int r = 0; r < rows; r++) {
        _mm_prefetch((const char *)(c + (size_t)r * ldc), _MM_HINT_T0);
        _mm_prefetch((const char *)(c + (size_t)r * ldc + 16), _MM_HINT_T0);
    }
    int q = 0;
    for (; q + 4 <= pairs; q += 4) {
        _mm_prefetch((const char *)(bp + 8 * NR), _MM_HINT_T0);
        WB_PAIR(0) WB_PAIR(1) WB_PAIR(2) WB_PAIR(3)
        ap += 4 * MR;
        bp += 4 * NR;
    }
    for (; q < pairs; q++) {
        WB_PAIR(0)
        ap += MR;
        bp += NR;
    }
#undef WB_PAIR
    __m512 acc[MR][2] = {{c00, c01}, {c10, c11}, {c20, c21}, {c30, c31},
                         {c40, c41}, {c50, c51}, {c60, c61}, {c70, c71}};
    __mmask16 low, high;
    panel_masks(cols, &low, &high);
    store_block(acc, rows, c, ldc, low, high, alpha, beta);
}

// The panel wb_bf16_pack_b makes from a written-out im2col matrix, read from the image instead: the
// same float32 values converted by the same instructions, so the same bytes, without writing the
// columns and reading them back (which cost more than the tiles' products in the small-channel
// layers, whose columns are kh·kw times the size of their output).
WB_BF16 void wb_bf16_pack_b_columns(const wb_convolution_columns *g, int p0, int kc, int j0, int cols, void *panel) {
    uint32_t *dst = panel;
    const int count = g->kernel_height * g->kernel_width;
    const size_t plane = (size_t)g->height * (size_t)g->width;
    // Panels start at multiples of 32 columns (wb_gemm_bf16_packed_columns' first_column is one), so
    // a panel's taps are prepared; lanes past `cols` read what the next panel would, and are masked.
    const wb_panel_tap *taps = g->panel_taps + (size_t)(j0 / NR) * (size_t)count;
    __mmask16 low, high;
    panel_masks(cols, &low, &high);
    const __mmask16 lanes[2] = {low, high};
    // Row r = channel·count + tap, advanced incrementally.
    int channel = p0 / count, t = p0 % count;
    for (int p = 0; p < kc; p += 2) {
        __m512 rows[2][2];
        for (int q = 0; q < 2; q++) {
            if (p + q >= kc) {
                rows[q][0] = rows[q][1] = _mm512_setzero_ps();
                continue;
            }
            const float *source = g->image + (size_t)channel * plane;
            for (int h = 0; h < 2; h++) rows[q][h] = column_half(source, taps + t, h, lanes[h]);
            if (++t == count) {
                t = 0;
                channel++;
            }
        }
        _mm512_store_si512(dst + (size_t)(p / 2) * NR, bf16_pairs_of(rows[0][0], rows[1][0]));
        _mm512_store_si512(dst + (size_t)(p / 2) * NR + 16, bf16_pairs_of(rows[0][1], rows[1][1]));
    }
}

// Products of at most 4 rows stay float32: they are memory-bound, and the skinny kernel streams B.
static const wb_gemm_variant bf16_variant = {MR, NR, bf16_depth, pack_a_bf16, wb_bf16_pack_b, wb_bf16_pack_b_columns,
                                             micro_kernel_bf16, NULL,
                                             &wb_float32_avx512_variant};

void wb_gemm_bf16(int trans_a, int trans_b, int m, int n, int k, float alpha, const float *a, int lda, const float *b,
                  int ldb, float beta, float *c, int ldc) {
    wb_gemm_run(&bf16_variant, trans_a, trans_b, m, n, k, alpha, a, lda, NULL, b, ldb, beta, c, ldc);
}

size_t wb_gemm_bf16_packed_a_count(int m, int k) { return wb_gemm_variant_packed_count(&bf16_variant, m, k); }

void wb_gemm_bf16_pack_a(int trans_a, int m, int k, const float *a, int lda, float *packed) {
    wb_gemm_variant_pack_a(&bf16_variant, trans_a, m, k, a, lda, packed);
}

void wb_gemm_bf16_packed(int m, int n, int k, float alpha, const float *packed_a_panels, int trans_b, const float *b,
                         int ldb, float beta, float *c, int ldc) {
    wb_gemm_run(&bf16_variant, 0, trans_b, m, n, k, alpha, NULL, 0, packed_a_panels, b, ldb, beta, c, ldc);
}

// 16 floats (lanes past `mask` zero) as bf16, widened to 32-bit lanes.
WB_BF16 static inline __m512i bf16_lanes(const float *source, __mmask16 mask) {
    __m256bh half = _mm512_cvtneps_pbh(_mm512_maskz_loadu_ps(mask, source));
    return _mm512_cvtepu16_epi32((__m256i)half);
}

WB_BF16 void wb_round_to_bf16(const float *x, float *y, size_t n) {
    size_t i = 0;
    for (; i < n; i += 16) {
        size_t rest = n - i < 16 ? n - i : 16;
        __mmask16 mask = (__mmask16)(rest == 16 ? 0xFFFF : (1u << rest) - 1);
        __m512i widened = _mm512_slli_epi32(bf16_lanes(x + i, mask), 16);
        _mm512_mask_storeu_ps(y + i, mask, _mm512_castsi512_ps(widened));
    }
}

void wb_gemm_bf16_packed_columns(int m, int n, int k, const float *packed_a_panels, const wb_convolution_columns *columns,
                                 int first_column, float *c, int ldc) {
    wb_gemm_run_columns(&bf16_variant, m, n, k, packed_a_panels, columns, first_column, c, ldc);
}

#else

void wb_gemm_bf16_packed_columns(int m, int n, int k, const float *packed_a_panels, const wb_convolution_columns *columns,
                                 int first_column, float *c, int ldc) { abort(); }
size_t wb_gemm_bf16_packed_a_count(int m, int k) { return 0; }
void wb_gemm_bf16(int trans_a, int trans_b, int m, int n, int k, float alpha, const float *a, int lda, const float *b,
                  int ldb, float beta, float *c, int ldc) { abort(); }
void wb_gemm_bf16_pack_a(int trans_a, int m, int k, const float *a, int lda, float *packed) { abort(); }
void wb_gemm_bf16_packed(int m, int n, int k, float alpha, const float *packed_a_panels, int trans_b, const float *b,
                         int ldb, float beta, float *c, int ldc) { abort(); }
void wb_round_to_bf16(const float *x, float *y, size_t n) { abort(); }

#endif
