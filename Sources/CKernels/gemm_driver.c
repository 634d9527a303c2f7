// The blocked driver of the workbench's GEMMs (gemm_tiles.h): loops over C in NC-column blocks,
// the inner dimension in KC slices and the rows in MC blocks, packing A and B through a variant and
// running its micro-kernel over every MR×NR tile. Compiled for AVX2 so that it runs on every CPU a
// variant runs on (the AVX-512 and bf16 variants need more, the AVX2 one no less).
#include "ckernels.h"

#include <stdio.h>
#include <stdlib.h>

#if defined(__x86_64__)
#include "gemm_tiles.h"

// Per-thread packing buffers of fixed size (MC·KC and KC·NC units), allocated on a thread's first
// product and reused for its life (the workbench's threads are pooled); both variants use them.
static __thread float *packed_a, *packed_b;

static float *buffer(float **slot, size_t count) {
    if (*slot == NULL) {
        *slot = aligned_alloc(64, count * sizeof(float));
        if (*slot == NULL) {
            fprintf(stderr, "error: out of memory for a %zu-byte GEMM packing buffer\n", count * sizeof(float));
            abort();
        }
    }
    return *slot;
}

WB_AVX2 static void scale_c(int m, int n, float beta, float *c, int ldc) {
    for (int i = 0; i < m; i++) {
        float *row = c + (size_t)i * ldc;
        for (int j = 0; j < n; j++) row[j] = beta == 0 ? 0 : beta * row[j];
    }
}

// The inner dimension is cut into equal slices of at most KC units (KC k-steps in float32, 2·KC in
// bf16, so both fill the same panels): a short last slice would spend more of its time loading and
// storing C than multiplying.
static int slice_length(const wb_gemm_variant *v, int k) {
    int longest = KC * KC / v->depth(KC);
    int slices = (k + longest - 1) / longest;
    return (k + slices - 1) / slices;
}

// Units of slice `pc` (a multiple of `slice`) and its length kc in a prepacked A: every slice but
// the last is `slice` long.
static size_t slice_offset(const wb_gemm_variant *v, size_t padded_m, int pc, int slice) {
    return (size_t)(pc / slice) * padded_m * (size_t)v->depth(slice);
}

// A product's B: a row-major matrix, or a convolution's columns read from the image.
typedef struct {
    int trans;
    const float *matrix;
    int ld;
    const wb_convolution_columns *columns;
    int first_column;
} gemm_b;

static void pack_b_panel(const wb_gemm_variant *v, const gemm_b *b, int pc, int kc, int j, int cols, void *dst) {
    if (b->columns) {
        v->pack_b_columns(b->columns, pc, kc, b->first_column + j, cols, dst);
    } else {
        v->pack_b(b->trans, b->matrix, b->ld, pc, kc, j, cols, dst);
    }
}

static void gemm_blocked(const wb_gemm_variant *v, int trans_a, int m, int n, int k, float alpha, const float *a,
                         int lda, const void *prepacked, const gemm_b *bop, float beta, float *c, int ldc);

WB_AVX2 void wb_gemm_run(const wb_gemm_variant *v, int trans_a, int trans_b, int m, int n, int k, float alpha,
                           const float *a, int lda, const void *prepacked, const float *b, int ldb, float beta, float *c,
                           int ldc) {
    gemm_b matrix = {trans_b, b, ldb, NULL, 0};
    gemm_blocked(v, trans_a, m, n, k, alpha, a, lda, prepacked, &matrix, beta, c, ldc);
}

void wb_gemm_run_columns(const wb_gemm_variant *v, int m, int n, int k, const void *prepacked,
                         const wb_convolution_columns *columns, int first_column, float *c, int ldc) {
    if (m <= 0 || n <= 0) return;
    // Each panel's read positions are prepared per 32 columns (wb_convolution_panel_taps).
    if (m <= SKINNY_ROWS || !v->pack_b_columns || !prepacked || first_column % NR != 0) {
        fprintf(stderr, "error: a GEMM over convolution columns needs a variant that packs them, more than %d rows, "
                        "packed A and a first column that is a multiple of %d\n", SKINNY_ROWS, NR);
        abort();
    }
    gemm_b source = {0, NULL, 0, columns, first_column};
    gemm_blocked(v, 0, m, n, k, 1, NULL, 0, prepacked, &source, 0, c, ldc);
}

// Loops over C in NC-column blocks, the inner dimension in KC slices and the rows in MC blocks.
WB_AVX2 static void gemm_blocked(const wb_gemm_variant *v, int trans_a, int m, int n, int k, float alpha,
                                 const float *a, int lda, const void *prepacked, const gemm_b *bop, float beta,
                                 float *c, int ldc) {
    const float *b = bop->matrix;
    const int trans_b = bop->trans, ldb = bop->ld;
    if (m <= 0 || n <= 0) return;
    if (k <= 0 || alpha == 0) {
        scale_c(m, n, beta, c, ldc);
        return;
    }
    // A 1- to 4-row product streams B (memory-bound whatever the arithmetic), in float32.
    if (m <= SKINNY_ROWS) v = v->narrow;
    const int mr = v->mr, nr = v->nr, block_rows = MC / v->mr * v->mr;
    if (m <= SKINNY_ROWS && v->skinny && !trans_b && (prepacked || (size_t)k * mr <= (size_t)MC * KC)) {
        // A single panel of at most mr rows is laid out [k][mr] however k is sliced (padded_m = mr).
        const float *panel = prepacked;
        if (!panel) {
            float *pa = buffer(&packed_a, (size_t)MC * KC);
            v->pack_a(trans_a, a, lda, 0, m, 0, k, pa);
            panel = pa;
        }
        v->skinny(m, n, k, alpha, panel, b, ldb, beta, c, ldc);
        return;
    }
    size_t padded_m = (size_t)(m + mr - 1) / mr * mr;
    float *pa = prepacked ? NULL : buffer(&packed_a, (size_t)MC * KC);
    float *pb = buffer(&packed_b, (size_t)KC * NC);
    int slice = slice_length(v, k);
    // A shallow product that overwrites a large C (the weight gradient of one image's 8×8 plane:
    // 512×4608 outputs of 64-long sums) is bound by writing C: the AMX tiles' stores into lines
    // that are not cached ran a 512×4608×64 product at 50–100 GFLOP/s, non-temporal stores at
    // 310–340 (no reads for ownership, no eviction of the panels). Only when C is written once
    // (one slice, beta 0) and exceeds L2: a C read back soon is better left in the cache.
    int stream_c = alpha == 1 && beta == 0 && slice >= k && (size_t)m * (size_t)n >= STREAM_C_MIN;
    for (int jc = 0; jc < n; jc += NC) {
        int nc = n - jc < NC ? n - jc : NC;
        for (int pc = 0; pc < k; pc += slice) {
            int kc = k - pc < slice ? k - pc : slice;
            size_t depth = (size_t)v->depth(kc);
            float slice_beta = pc == 0 ? beta : 1;
            for (int jr = 0; jr < nc; jr += nr) {
                int cols = nc - jr < nr ? nc - jr : nr;
                pack_b_panel(v, bop, pc, kc, jc + jr, cols, pb + (size_t)jr * depth);
            }
            for (int ic = 0; ic < m; ic += block_rows) {
                int mc = m - ic < block_rows ? m - ic : block_rows;
                const float *block;
                if (prepacked) {
                    block = (const float *)prepacked + slice_offset(v, padded_m, pc, slice) + (size_t)ic * depth;
                } else {
                    for (int ir = 0; ir < mc; ir += mr) {
                        int rows = mc - ir < mr ? mc - ir : mr;
                        v->pack_a(trans_a, a, lda, ic + ir, rows, pc, kc, pa + (size_t)ir * depth);
                    }
                    block = pa;
                }
                for (int jr = 0; jr < nc; jr += nr) {
                    int cols = nc - jr < nr ? nc - jr : nr;
                    for (int ir = 0; ir < mc; ir += mr) {
                        int rows = mc - ir < mr ? mc - ir : mr;
                        v->micro_kernel((int)depth, block + (size_t)ir * depth, pb + (size_t)jr * depth,
                                        c + (size_t)(ic + ir) * ldc + jc + jr, ldc, rows, cols, alpha, slice_beta,
                                        stream_c);
                    }
                }
            }
        }
    }
    // Non-temporal stores are weakly ordered: C must be complete before another thread reads it.
    if (stream_c) _mm_sfence();
}

int wb_gemm_float32_slice(void) { return KC; }

// Where the panels of a convolution's columns read (wb_convolution_columns), for every variant that
// packs them.
size_t wb_convolution_panel_taps_count(const wb_convolution_columns *g) {
    size_t columns = (size_t)g->out_height * (size_t)g->out_width;
    return (columns + NR - 1) / NR * (size_t)g->kernel_height * (size_t)g->kernel_width;
}

void wb_convolution_panel_taps(const wb_convolution_columns *g, wb_panel_tap *taps) {
    const int ow = g->out_width, count = g->kernel_height * g->kernel_width, n = g->out_height * ow;
    int y = 0, x = 0;  // output pixel of the panel's first column
    for (int j0 = 0; j0 < n; j0 += NR) {
        // The panel's columns as output pixels (-1: past the matrix), advanced without divisions.
        int rows[NR], columns[NR];
        for (int lane = 0; lane < NR; lane++) {
            rows[lane] = j0 + lane < n ? y : -1;
            columns[lane] = x;
            if (++x == ow) {
                x = 0;
                y++;
            }
        }
        for (int t = 0; t < count; t++) {
            wb_panel_tap *tap = taps + (size_t)(j0 / NR) * (size_t)count + t;
            const int32_t *row_sources = g->row_sources + (t / g->kernel_width) * g->out_height;
            const int32_t *column_sources = g->column_sources + (t % g->kernel_width) * ow;
            for (int h = 0; h < 2; h++) {
                int first = -1;
                tap->valid[h] = 0;
                tap->run[h] = 1;
                tap->start[h] = 0;
                for (int lane = 0; lane < 16; lane++) {
                    int col = 16 * h + lane, offset = -1;
                    if (rows[col] >= 0) {
                        int sy = row_sources[rows[col]], sx = column_sources[columns[col]];
                        if (sy >= 0 && sx >= 0) offset = sy * g->width + sx;
                    }
                    tap->offsets[col] = offset;
                    if (offset < 0) continue;
                    tap->valid[h] |= (uint16_t)(1u << lane);
                    if (first < 0) {
                        first = lane;
                        tap->start[h] = offset - lane;
                    } else if (offset != tap->start[h] + lane) {
                        tap->run[h] = 0;
                    }
                }
            }
        }
    }
}

size_t wb_gemm_variant_packed_count(const wb_gemm_variant *v, int m, int k) {
    if (m <= SKINNY_ROWS) v = v->narrow;
    if (m <= 0 || k <= 0) return 0;
    const int mr = v->mr;
    size_t padded_m = (size_t)(m + mr - 1) / mr * mr;
    int slice = slice_length(v, k), last = k - (k - 1) / slice * slice;
    return padded_m * ((size_t)((k - 1) / slice) * (size_t)v->depth(slice) + (size_t)v->depth(last));
}

// Slice pc of every row panel, in the order `wb_gemm_run` reads them.
void wb_gemm_variant_pack_a(const wb_gemm_variant *v, int trans_a, int m, int k, const float *a, int lda,
                            void *packed) {
    if (m <= SKINNY_ROWS) v = v->narrow;
    const int mr = v->mr;
    size_t padded_m = (size_t)(m + mr - 1) / mr * mr;
    int slice = slice_length(v, k);
    for (int pc = 0; pc < k; pc += slice) {
        int kc = k - pc < slice ? k - pc : slice;
        size_t depth = (size_t)v->depth(kc);
        for (int ir = 0; ir < m; ir += mr) {
            int rows = m - ir < mr ? m - ir : mr;
            v->pack_a(trans_a, a, lda, ir, rows, pc, kc,
                      (float *)packed + slice_offset(v, padded_m, pc, slice) + (size_t)ir * depth);
        }
    }
}

#endif
