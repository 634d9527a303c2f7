// What the workbench's two GEMMs share (gemm_avx512.c: float32; gemm_bf16.c: bf16 inputs with
// float32 accumulation): the BLIS blocking, the helpers that store a register tile into C, and the
// blocked driver, which packs A and B through a variant's packing functions and runs its
// micro-kernel over every MR×NR tile.
//
// Both variants pack into 4-byte units: a float32 panel holds one float per (row, k); a bf16 panel
// holds one pair of bf16 values (k = 2q and 2q+1 of a row, the even one in the low half) per
// (row, q), which is the operand layout of vdpbf16ps. A slice of kc steps of k is `depth(kc)` units.
#ifndef WORKBENCH_GEMM_TILES_H
#define WORKBENCH_GEMM_TILES_H

#include <stddef.h>
#include <stdint.h>

#if defined(__x86_64__)
#include <immintrin.h>

// KC, MC and NC count 4-byte units of packed panels (a float32 k-step, or a bf16 pair of them).
enum { MR = 8, NR = 32, KC = 256, MC = 128, NC = 1536, SKINNY_ROWS = 4 };

// Products that overwrite at least this many elements of C (4 MB: more than a core's L2 cache) in
// one slice of k let the micro-kernel stream C past the cache (see wb_gemm_run).
enum { STREAM_C_MIN = 1 << 20 };

// (Tests/CKernelsEmulated defines it empty to run these kernels on emulated instructions.)
#ifndef WB_AVX512
#define WB_AVX512 __attribute__((target("avx512f,avx512vl,avx512bw,avx512dq,fma,avx2,bmi2")))
#endif

// Masks of the first and second 16 columns of a 32-column panel with `cols` valid columns.
static inline void panel_masks(int cols, __mmask16 *low, __mmask16 *high) {
    *low = (__mmask16)(cols >= 16 ? 0xFFFF : (1u << cols) - 1);
    *high = (__mmask16)(cols >= 32 ? 0xFFFF : cols > 16 ? (1u << (cols - 16)) - 1 : 0);
}

// Columns [16h, 16h + 16) of a panel in one plane for one tap, zero outside `lanes`.
WB_AVX512 static inline __m512 column_half(const float *plane, const wb_panel_tap *tap, int h, __mmask16 lanes) {
    if (tap->run[h]) {
        // Integer arithmetic: a run may start before the plane (its first lanes are masked off).
        const float *run = (const float *)((uintptr_t)plane + (intptr_t)tap->start[h] * (intptr_t)sizeof(float));
        return _mm512_maskz_loadu_ps((__mmask16)(tap->valid[h] & lanes), run);
    }
    float gathered[16] __attribute__((aligned(64)));
    for (int lane = 0; lane < 16; lane++) {
        int offset = tap->offsets[16 * h + lane];
        gathered[lane] = offset < 0 || !((lanes >> lane) & 1) ? 0 : plane[offset];
    }
    return _mm512_load_ps(gathered);
}

// C[r][0..32) = alpha·acc[r] + beta·C[r] for rows [0, rows), within the panel masks. BLAS
// semantics: C is not read when beta is zero (it may hold NaNs).
WB_AVX512 static inline void store_block(__m512 acc[][2], int rows, float *c, int ldc, __mmask16 low, __mmask16 high,
                                         float alpha, float beta) {
    __m512 alpha_v = _mm512_set1_ps(alpha), beta_v = _mm512_set1_ps(beta);
    for (int r = 0; r < rows; r++) {
        float *row = c + (size_t)r * ldc;
        __m512 v0 = _mm512_mul_ps(alpha_v, acc[r][0]), v1 = _mm512_mul_ps(alpha_v, acc[r][1]);
        if (beta != 0) {
            v0 = _mm512_fmadd_ps(beta_v, _mm512_maskz_loadu_ps(low, row), v0);
            v1 = _mm512_fmadd_ps(beta_v, _mm512_maskz_loadu_ps(high, row + 16), v1);
        }
        _mm512_mask_storeu_ps(row, low, v0);
        _mm512_mask_storeu_ps(row + 16, high, v1);
    }
}

// In-register transpose of an 8×8 block of 4-byte units: r[i] holds row i on entry and column i on return.
WB_AVX512 static inline void transpose8x8(__m256 r[8]) {
    __m256 t0 = _mm256_unpacklo_ps(r[0], r[1]), t1 = _mm256_unpackhi_ps(r[0], r[1]);
    __m256 t2 = _mm256_unpacklo_ps(r[2], r[3]), t3 = _mm256_unpackhi_ps(r[2], r[3]);
    __m256 t4 = _mm256_unpacklo_ps(r[4], r[5]), t5 = _mm256_unpackhi_ps(r[4], r[5]);
    __m256 t6 = _mm256_unpacklo_ps(r[6], r[7]), t7 = _mm256_unpackhi_ps(r[6], r[7]);
    __m256 s0 = _mm256_shuffle_ps(t0, t2, 0x44), s1 = _mm256_shuffle_ps(t0, t2, 0xEE);
    __m256 s2 = _mm256_shuffle_ps(t1, t3, 0x44), s3 = _mm256_shuffle_ps(t1, t3, 0xEE);
    __m256 s4 = _mm256_shuffle_ps(t4, t6, 0x44), s5 = _mm256_shuffle_ps(t4, t6, 0xEE);
    __m256 s6 = _mm256_shuffle_ps(t5, t7, 0x44), s7 = _mm256_shuffle_ps(t5, t7, 0xEE);
    r[0] = _mm256_permute2f128_ps(s0, s4, 0x20), r[1] = _mm256_permute2f128_ps(s1, s5, 0x20);
    r[2] = _mm256_permute2f128_ps(s2, s6, 0x20), r[3] = _mm256_permute2f128_ps(s3, s7, 0x20);
    r[4] = _mm256_permute2f128_ps(s0, s4, 0x31), r[5] = _mm256_permute2f128_ps(s1, s5, 0x31);
    r[6] = _mm256_permute2f128_ps(s2, s6, 0x31), r[7] = _mm256_permute2f128_ps(s3, s7, 0x31);
}

// AVX2 and FMA: what the driver and the AVX2 variant need (and every AVX-512 CPU has).
#ifndef WB_AVX2
#define WB_AVX2 __attribute__((target("avx2,fma")))
#endif

// Copies `lines` (≤ 8) strided lines of kc floats into dst so that dst[p·stride + i] = line i's
// element p (zeros for i ≥ lines): 8×8 blocks transposed in registers, the tail element by element.
// dst need not be aligned: A panels may be packed into a caller's buffer.
WB_AVX2 static inline void interleave_lines(const float *source, size_t line_stride, int lines, int kc, float *dst,
                                       int stride) {
    int p = 0;
    for (; p + 8 <= kc; p += 8) {
        __m256 r[8];
        for (int i = 0; i < 8; i++)
            r[i] = i < lines ? _mm256_loadu_ps(source + (size_t)i * line_stride + p) : _mm256_setzero_ps();
        transpose8x8(r);
        for (int j = 0; j < 8; j++) _mm256_storeu_ps(dst + (size_t)(p + j) * stride, r[j]);
    }
    for (; p < kc; p++)
        for (int i = 0; i < 8; i++) dst[(size_t)p * stride + i] = i < lines ? source[(size_t)i * line_stride + p] : 0;
}

// bf16 packing (gemm_bf16.c, gemm_amx.c): AVX-512 with AVX512_BF16's conversions.
#ifndef WB_BF16
#define WB_BF16 __attribute__((target("avx512f,avx512vl,avx512bw,avx512dq,avx512bf16,fma,avx2,bmi2")))
#endif

// Pairs (row0[j], row1[j]) as bf16 for 16 columns (lanes past `mask` zero; row1 NULL means zeros,
// k past the end): one two-source conversion (row0 in the low half, row1 in the high half) and one
// word permutation that interleaves them.
WB_BF16 static inline __m512i bf16_pairs_of(__m512 row0, __m512 row1) {
    static const uint16_t interleave[32] = {0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23,
                                            8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31};
    __m512bh both = _mm512_cvtne2ps_pbh(row1, row0);
    return _mm512_permutexvar_epi16(_mm512_loadu_si512(interleave), (__m512i)both);
}

WB_BF16 static inline __m512i bf16_pairs(const float *row0, const float *row1, __mmask16 mask) {
    return bf16_pairs_of(_mm512_maskz_loadu_ps(mask, row0), row1 ? _mm512_maskz_loadu_ps(mask, row1) : _mm512_setzero_ps());
}

/// Loads the AMX tile configuration every AMX kernel uses (tiles 0–7 of 16 rows × 64 bytes), once
/// per thread (gemm_amx.c).
void wb_amx_configure_tiles(void);

/// One GEMM variant: how it packs (into 4-byte units) and multiplies.
typedef struct wb_gemm_variant {
    /// Rows of an A panel and columns of a B panel (the micro-kernel's tile): MR×NR for the AVX-512
    /// variants, 6×16 for AVX2's sixteen registers.
    int mr, nr;
    /// Units per panel row for a kc-long slice of k.
    int (*depth)(int kc);
    /// Packs rows [i0, i0+rows) × k [p0, p0+kc) of op(A) as mr-row panel units dst[u·mr + r], zero rows past `rows`.
    void (*pack_a)(int trans_a, const float *a, int lda, int i0, int rows, int p0, int kc, void *dst);
    /// Packs k [p0, p0+kc) × columns [j0, j0+cols) of op(B) as dst[u·nr + c], zero columns past `cols`.
    void (*pack_b)(int trans_b, const float *b, int ldb, int p0, int kc, int j0, int cols, void *dst);
    /// The same panel of a convolution's im2col matrix, read from the image (bf16 variants; else NULL).
    void (*pack_b_columns)(const wb_convolution_columns *columns, int p0, int kc, int j0, int cols, void *dst);
    /// C[0..rows, 0..cols] = alpha·(Ap·Bp) + beta·C over `depth` units of packed panels. With
    /// `stream_c` (then alpha = 1, beta = 0) the kernel may write whole blocks of C with
    /// non-temporal stores, which bypass the cache (see wb_gemm_run). Only the AMX kernel does:
    /// the vector kernels' own stores were faster (float32 512×4608×64: 93 GFLOP/s cached, 75 streamed).
    void (*micro_kernel)(int depth, const void *ap, const void *bp, float *c, int ldc, int rows, int cols, float alpha,
                         float beta, int stream_c);
    /// C (m ≤ SKINNY_ROWS rows) = alpha·A·B + beta·C with A one float32 panel and B row-major read in
    /// place, or NULL (such products then run blocked).
    void (*skinny)(int m, int n, int k, float alpha, const float *panel, const float *b, int ldb, float beta, float *c,
                   int ldc);
    /// The variant that runs products of at most SKINNY_ROWS rows (itself, or a float32 one).
    const struct wb_gemm_variant *narrow;
} wb_gemm_variant;

/// The float32 variants (gemm_avx512.c, gemm_avx2.c).
extern const wb_gemm_variant wb_float32_avx512_variant, wb_float32_avx2_variant;

/// The bf16 variants' B panels (gemm_bf16.c): k [p0, p0+kc) × columns [j0, j0+cols) of op(B) as
/// pairs dst[q·NR + c] = (bf16 of k = p0+2q, of p0+2q+1 in the high half), zero past `cols` and for
/// an odd kc's last high half.
void wb_bf16_pack_b(int trans_b, const float *b, int ldb, int p0, int kc, int j0, int cols, void *dst);

/// C = alpha·op(A)·op(B) + beta·C by `variant` (products of at most SKINNY_ROWS rows by its
/// `narrow` variant, streaming B when that has a skinny kernel). With `prepacked` (from wb_gemm_variant_pack_a),
/// A's panels are read from there instead of packed per call.
void wb_gemm_run(const wb_gemm_variant *variant, int trans_a, int trans_b, int m, int n, int k, float alpha,
                 const float *a, int lda, const void *prepacked, const float *b, int ldb, float beta, float *c, int ldc);

/// C (m×n, m > SKINNY_ROWS) = A·B with A prepacked and B columns [first_column, first_column + n) of
/// `columns`, packed by the variant's pack_b_columns.
void wb_gemm_run_columns(const wb_gemm_variant *variant, int m, int n, int k, const void *prepacked,
                         const wb_convolution_columns *columns, int first_column, float *c, int ldc);

/// The bf16 variants' panels of a convolution's columns (gemm_bf16.c), as wb_bf16_pack_b packs them
/// from the written-out matrix (the float32 AVX-512 variant has its own, gemm_avx512.c).
void wb_bf16_pack_b_columns(const wb_convolution_columns *columns, int p0, int kc, int j0, int cols, void *dst);

/// Units `wb_gemm_variant_pack_a` writes for an m×k op(A).
size_t wb_gemm_variant_packed_count(const wb_gemm_variant *variant, int m, int k);

/// Packs op(A) once in the order `wb_gemm_run` reads it.
void wb_gemm_variant_pack_a(const wb_gemm_variant *variant, int trans_a, int m, int k, const float *a, int lda,
                            void *packed);

#endif
#endif
