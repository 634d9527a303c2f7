// The workbench's bf16 GEMM on AMX tiles (Intel Sapphire Rapids onwards): C = alpha·op(A)·op(B) +
// beta·C with A and B rounded to bfloat16 (nearest even) while packing and every product summed in
// float32 by TDPBF16PS, 16 pairs of k-steps per instruction into 16×16 float32 tiles. It runs in
// the float32 GEMM's blocked driver (gemm_tiles.h) like the vdpbf16ps variant (gemm_bf16.c), so
// threading and reproducibility are the same: every element of C is summed over the same slices in
// the same order however C is split over threads or ranks.
//
// Why a second bf16 kernel: on Intel's cores vdpbf16ps issues on one port, no faster than float32's
// two FMA ports, while one TDPBF16PS does 8192 multiply-adds; the tiles run the bf16 products
// several times faster than any vector kernel. The sums are not vdpbf16ps's (TDPBF16PS adds a
// block's pairs before it adds them to the tile), so AMX and vdpbf16ps runs differ in the last
// bits; each is reproducible on its own.
//
// Layout: the micro-kernel keeps a 32×32 block of C in four tiles (0–3: rows 0–15/16–31 × columns
// 0–15/16–31); A tiles 4–5 and B tiles 6–7 hold 16 pairs of k for 16 rows or columns. The inner
// dimension is padded with zero pairs to whole blocks of 16 pairs. An A panel holds, per block of 16
// pairs, 32 rows of 16 pair units (the tile's row-major rows, 64 bytes each); a B panel is the
// vdpbf16ps variant's (pairs × 32 columns), read as tiles of 64-byte rows 128 bytes apart.
#include "ckernels.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#if defined(__x86_64__)
#include "gemm_tiles.h"

#ifndef WB_AMX
#define WB_AMX __attribute__((target("amx-tile,amx-bf16,avx512f,avx512vl,avx512bw,avx512dq,avx512bf16,fma,avx2,bmi2")))
#endif

enum { AMX_ROWS = 32, TILE_PAIRS = 16 };

// Units (pairs) per panel row for kc k-steps: whole blocks of 16 pairs.
static int amx_depth(int kc) { return ((kc + 1) / 2 + TILE_PAIRS - 1) / TILE_PAIRS * TILE_PAIRS; }

// LDTILECFG's 64-byte operand: palette 1, tiles 0–7 of 16 rows × 64 bytes.
typedef struct {
    uint8_t palette, start_row, reserved[14];
    uint16_t bytes_per_row[16];
    uint8_t rows[16];
} amx_tile_config;

// The tile configuration is per thread and stays loaded (the kernel saves it with the thread's
// state); nothing else in the process configures tiles.
static __thread int tiles_configured;

WB_AMX void wb_amx_configure_tiles(void) {
    if (tiles_configured) return;
    amx_tile_config config;
    memset(&config, 0, sizeof config);
    config.palette = 1;
    for (int t = 0; t < 8; t++) {
        config.rows[t] = 16;
        config.bytes_per_row[t] = 64;
    }
    _tile_loadconfig(&config);
    tiles_configured = 1;
}

// A panel: for each block of 16 pairs, AMX_ROWS rows of 16 units (zero rows past `rows`, zero pairs past kc).
WB_AMX static void pack_a_amx(int trans_a, const float *a, int lda, int i0, int rows, int p0, int kc, void *panel) {
    uint32_t *dst = panel;
    int blocks = amx_depth(kc) / TILE_PAIRS;
    if (!trans_a) {
        // A row's 32 k-steps of a block convert to its 16 pairs in order (even step in the low half).
        for (int block = 0; block < blocks; block++) {
            int p = block * 2 * TILE_PAIRS, rest = kc - p < 2 * TILE_PAIRS ? kc - p : 2 * TILE_PAIRS;
            __mmask16 low = (__mmask16)(rest >= 16 ? 0xFFFF : (1u << rest) - 1);
            __mmask16 high = (__mmask16)(rest >= 32 ? 0xFFFF : rest > 16 ? (1u << (rest - 16)) - 1 : 0);
            for (int r = 0; r < AMX_ROWS; r++) {
                uint32_t *row = dst + ((size_t)block * AMX_ROWS + r) * TILE_PAIRS;
                if (r >= rows) {
                    _mm512_storeu_si512(row, _mm512_setzero_si512());
                    continue;
                }
                const float *source = a + (size_t)(i0 + r) * lda + p0 + p;
                __m512bh pairs = _mm512_cvtne2ps_pbh(_mm512_maskz_loadu_ps(high, source + 16),
                                                     _mm512_maskz_loadu_ps(low, source));
                _mm512_storeu_si512(row, (__m512i)pairs);
            }
        }
    } else {
        // op(A)(i, p) = a[p·lda + i]: rows p and p+1 of `a` give 16 rows' pairs for one pair index;
        // 16 of them are transposed into the tile's rows through a small buffer.
        for (int block = 0; block < blocks; block++) {
            for (int r0 = 0; r0 < AMX_ROWS; r0 += 16) {
                int lines = rows - r0 < 0 ? 0 : rows - r0 > 16 ? 16 : rows - r0;
                __mmask16 mask = (__mmask16)(lines >= 16 ? 0xFFFF : (1u << lines) - 1);
                uint32_t by_pair[TILE_PAIRS][16] __attribute__((aligned(64)));
                for (int q = 0; q < TILE_PAIRS; q++) {
                    int p = block * 2 * TILE_PAIRS + 2 * q;
                    __m512i pairs = _mm512_setzero_si512();
                    if (lines > 0 && p < kc) {
                        const float *row0 = a + (size_t)(p0 + p) * lda + i0 + r0;
                        pairs = bf16_pairs(row0, p + 1 < kc ? row0 + lda : NULL, mask);
                    }
                    _mm512_store_si512(by_pair[q], pairs);
                }
                for (int r = 0; r < 16; r++) {
                    uint32_t *row = dst + ((size_t)block * AMX_ROWS + r0 + r) * TILE_PAIRS;
                    for (int q = 0; q < TILE_PAIRS; q++) row[q] = by_pair[q][r];
                }
            }
        }
    }
}

// The vdpbf16ps variant's B panel, with zero pairs up to the whole block.
WB_AMX static void pack_b_amx(int trans_b, const float *b, int ldb, int p0, int kc, int j0, int cols, void *panel) {
    wb_bf16_pack_b(trans_b, b, ldb, p0, kc, j0, cols, panel);
    int pairs = (kc + 1) / 2, depth = amx_depth(kc);
    memset((uint32_t *)panel + (size_t)pairs * NR, 0, (size_t)(depth - pairs) * NR * sizeof(uint32_t));
}

// A convolution's columns as the vdpbf16ps panels, with zero pairs up to the whole block.
WB_AMX static void pack_b_columns_amx(const wb_convolution_columns *columns, int p0, int kc, int j0, int cols,
                                      void *panel) {
    wb_bf16_pack_b_columns(columns, p0, kc, j0, cols, panel);
    int pairs = (kc + 1) / 2, depth = amx_depth(kc);
    memset((uint32_t *)panel + (size_t)pairs * NR, 0, (size_t)(depth - pairs) * NR * sizeof(uint32_t));
}

WB_AMX static void micro_kernel_amx(int depth, const void *a_panel, const void *b_panel, float *c, int ldc, int rows,
                                    int cols, float alpha, float beta, int stream_c) {
    wb_amx_configure_tiles();
    const uint32_t *ap = a_panel, *bp = b_panel;
    const int a_stride = TILE_PAIRS * sizeof(uint32_t), b_stride = NR * sizeof(uint32_t);
    const int block_units = AMX_ROWS * TILE_PAIRS;  // = TILE_PAIRS·NR: one block of either panel
    const size_t row_bytes = (size_t)ldc * sizeof(float);
    // With alpha 1 and beta 1 (a later slice, or a caller accumulating over images) the tiles start
    // from C and the products are summed onto it; otherwise they start from zero. The choice is the
    // call's, never a block's, so every element of C is summed the same way wherever it lies.
    const int accumulate = alpha == 1 && beta == 1;
    const int whole = cols == NR && (rows == 16 || rows == AMX_ROWS);
    __mmask16 low, high;
    panel_masks(cols, &low, &high);
    float block[AMX_ROWS][NR] __attribute__((aligned(64)));
    if (accumulate && whole) {
        _tile_loadd(0, c, row_bytes);
        _tile_loadd(1, c + 16, row_bytes);
        if (rows == AMX_ROWS) {
            _tile_loadd(2, c + 16 * (size_t)ldc, row_bytes);
            _tile_loadd(3, c + 16 * (size_t)ldc + 16, row_bytes);
        }
    } else if (accumulate) {
        for (int r = 0; r < AMX_ROWS; r++) {
            const float *row = c + (size_t)r * ldc;
            _mm512_store_ps(&block[r][0], r < rows ? _mm512_maskz_loadu_ps(low, row) : _mm512_setzero_ps());
            _mm512_store_ps(&block[r][16], r < rows ? _mm512_maskz_loadu_ps(high, row + 16) : _mm512_setzero_ps());
        }
        _tile_loadd(0, &block[0][0], sizeof block[0]);
        _tile_loadd(1, &block[0][16], sizeof block[0]);
        _tile_loadd(2, &block[16][0], sizeof block[0]);
        _tile_loadd(3, &block[16][16], sizeof block[0]);
    } else {
        _tile_zero(0);
        _tile_zero(1);
        _tile_zero(2);
        _tile_zero(3);
    }
    if (rows > 16 && cols > 16) {
        for (int u = 0; u < depth; u += TILE_PAIRS, ap += block_units, bp += block_units) {
            _tile_loadd(4, ap, a_stride);
            _tile_loadd(6, bp, b_stride);
            _tile_loadd(7, bp + 16, b_stride);
            _tile_loadd(5, ap + 16 * TILE_PAIRS, a_stride);
            _tile_dpbf16ps(0, 4, 6);
            _tile_dpbf16ps(1, 4, 7);
            _tile_dpbf16ps(2, 5, 6);
            _tile_dpbf16ps(3, 5, 7);
        }
    } else {
        // Edge blocks: only the tiles that hold rows or columns of C.
        for (int u = 0; u < depth; u += TILE_PAIRS, ap += block_units, bp += block_units) {
            _tile_loadd(4, ap, a_stride);
            _tile_loadd(6, bp, b_stride);
            _tile_dpbf16ps(0, 4, 6);
            if (cols > 16) {
                _tile_loadd(7, bp + 16, b_stride);
                _tile_dpbf16ps(1, 4, 7);
            }
            if (rows > 16) {
                _tile_loadd(5, ap + 16 * TILE_PAIRS, a_stride);
                _tile_dpbf16ps(2, 5, 6);
            }
        }
    }
    if (stream_c && whole && ((uintptr_t)c & 63) == 0 && (ldc & 15) == 0) {
        // Whole 64-byte lines of C, written past the cache (wb_gemm_run says when).
        _tile_stored(0, &block[0][0], sizeof block[0]);
        _tile_stored(1, &block[0][16], sizeof block[0]);
        _tile_stored(2, &block[16][0], sizeof block[0]);
        _tile_stored(3, &block[16][16], sizeof block[0]);
        for (int r = 0; r < rows; r++) {
            _mm512_stream_ps(c + (size_t)r * ldc, _mm512_load_ps(&block[r][0]));
            _mm512_stream_ps(c + (size_t)r * ldc + 16, _mm512_load_ps(&block[r][16]));
        }
        return;
    }
    if (whole && alpha == 1 && (beta == 0 || accumulate)) {
        _tile_stored(0, c, row_bytes);
        _tile_stored(1, c + 16, row_bytes);
        if (rows == AMX_ROWS) {
            _tile_stored(2, c + 16 * (size_t)ldc, row_bytes);
            _tile_stored(3, c + 16 * (size_t)ldc + 16, row_bytes);
        }
        return;
    }
    _tile_stored(0, &block[0][0], sizeof block[0]);
    _tile_stored(1, &block[0][16], sizeof block[0]);
    _tile_stored(2, &block[16][0], sizeof block[0]);
    _tile_stored(3, &block[16][16], sizeof block[0]);
    if (accumulate) {
        for (int r = 0; r < rows; r++) {
            _mm512_mask_storeu_ps(c + (size_t)r * ldc, low, _mm512_load_ps(&block[r][0]));
            _mm512_mask_storeu_ps(c + (size_t)r * ldc + 16, high, _mm512_load_ps(&block[r][16]));
        }
        return;
    }
    for (int r0 = 0; r0 < rows; r0 += MR) {
        __m512 acc[MR][2];
        int count = rows - r0 < MR ? rows - r0 : MR;
        for (int r = 0; r < count; r++) {
            acc[r][0] = _mm512_load_ps(&block[r0 + r][0]);
            acc[r][1] = _mm512_load_ps(&block[r0 + r][16]);
        }
        store_block(acc, count, c + (size_t)r0 * ldc, ldc, low, high, alpha, beta);
    }
}

// Products of at most 4 rows stay float32, as in the vdpbf16ps variant.
static const wb_gemm_variant amx_variant = {AMX_ROWS,           NR,         amx_depth, pack_a_amx, pack_b_amx,
                                            pack_b_columns_amx, micro_kernel_amx, NULL, &wb_float32_avx512_variant};

void wb_gemm_amx(int trans_a, int trans_b, int m, int n, int k, float alpha, const float *a, int lda, const float *b,
                 int ldb, float beta, float *c, int ldc) {
    wb_gemm_run(&amx_variant, trans_a, trans_b, m, n, k, alpha, a, lda, NULL, b, ldb, beta, c, ldc);
}

size_t wb_gemm_amx_packed_a_count(int m, int k) { return wb_gemm_variant_packed_count(&amx_variant, m, k); }

void wb_gemm_amx_pack_a(int trans_a, int m, int k, const float *a, int lda, float *packed) {
    wb_gemm_variant_pack_a(&amx_variant, trans_a, m, k, a, lda, packed);
}

void wb_gemm_amx_packed(int m, int n, int k, float alpha, const float *packed_a_panels, int trans_b, const float *b,
                        int ldb, float beta, float *c, int ldc) {
    wb_gemm_run(&amx_variant, 0, trans_b, m, n, k, alpha, NULL, 0, packed_a_panels, b, ldb, beta, c, ldc);
}

void wb_gemm_amx_packed_columns(int m, int n, int k, const float *packed_a_panels, const wb_convolution_columns *columns,
                                int first_column, float *c, int ldc) {
    wb_gemm_run_columns(&amx_variant, m, n, k, packed_a_panels, columns, first_column, c, ldc);
}

#else

void wb_gemm_amx_packed_columns(int m, int n, int k, const float *packed_a_panels, const wb_convolution_columns *columns,
                                int first_column, float *c, int ldc) { abort(); }
size_t wb_gemm_amx_packed_a_count(int m, int k) { return 0; }
void wb_gemm_amx(int trans_a, int trans_b, int m, int n, int k, float alpha, const float *a, int lda, const float *b,
                 int ldb, float beta, float *c, int ldc) { abort(); }
void wb_gemm_amx_pack_a(int trans_a, int m, int k, const float *a, int lda, float *packed) { abort(); }
void wb_gemm_amx_packed(int m, int n, int k, float alpha, const float *packed_a_panels, int trans_b, const float *b,
                        int ldb, float beta, float *c, int ldc) { abort(); }

#endif
