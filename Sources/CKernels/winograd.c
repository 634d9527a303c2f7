// Winograd F(2×2, 3×3) transforms (Lavin & Gray, "Fast Algorithms for Convolutional Neural
// Networks", 2016). A 3×3 stride-1 convolution with padding 1 becomes, per 2×2 block of outputs
// (a tile), Y = Aᵀ [ Σ_c (G g Gᵀ) ⊙ (Bᵀ d B) ] A with d the tile's 4×4 input patch: sixteen
// matrix products over the input channels, one per element ξ of the transformed tile, with 16
// multiply-adds per 2×2 outputs and channel pair instead of im2col's 36 (2.25 times fewer). The
// transforms are a few additions per element; the products run on the workbench's GEMM.
//
//   G = [1 0 0; ½ ½ ½; ½ −½ ½; 0 0 1]   Bᵀ = [1 0 −1 0; 0 1 1 0; 0 −1 1 0; 0 1 0 −1]
//   Aᵀ = [1 1 1 0; 0 1 −1 −1]
//
// The AVX-512 functions run sixteen tiles (or kernels) per vector, masked at a row's end; the
// portable loops are their scalar definition. Both do the same operations in the same order, none
// contracted into an FMA, so both give the same bits (WinogradTests checks each against a scalar
// reference; the CI runs them with WORKBENCH_AVX512=0 too).
#include "ckernels.h"

#include <stdio.h>
#include <stdlib.h>

#if defined(__x86_64__)
#include <immintrin.h>
#endif

#pragma clang fp contract(off)

#if defined(__x86_64__)
#define WB_AVX512 __attribute__((target("avx512f,avx512vl,avx512bw,avx512dq")))
#else
#define WB_AVX512
#endif
#define WB_INLINE static inline __attribute__((always_inline))

// U = G·g·Gᵀ for `count` kernels g (9 floats each), u[ξ·plane + kernel] (the portable loop).
static void transform_weights(const float *weights, size_t count, size_t plane, float *u) {
    for (size_t oc = 0; oc < count; oc++) {
        const float *g = weights + 9 * oc;
        float t[4][3];  // G·g
        for (int j = 0; j < 3; j++) {
            t[0][j] = g[j];
            t[1][j] = 0.5f * ((g[j] + g[3 + j]) + g[6 + j]);
            t[2][j] = 0.5f * ((g[j] - g[3 + j]) + g[6 + j]);
            t[3][j] = g[6 + j];
        }
        for (int i = 0; i < 4; i++) {  // (G·g)·Gᵀ
            u[(4 * i + 0) * plane + oc] = t[i][0];
            u[(4 * i + 1) * plane + oc] = 0.5f * ((t[i][0] + t[i][1]) + t[i][2]);
            u[(4 * i + 2) * plane + oc] = 0.5f * ((t[i][0] - t[i][1]) + t[i][2]);
            u[(4 * i + 3) * plane + oc] = t[i][2];
        }
    }
}

#if defined(__x86_64__)
// transform_weights sixteen kernels at a time (gathered), the same operations in the same order:
// kernels [first, first + count) of planes `plane` apart.
WB_AVX512 static void transform_weights_avx512(const float *weights, size_t first, size_t count, size_t plane, float *u) {
    const __m512i nine = _mm512_mullo_epi32(_mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15),
                                            _mm512_set1_epi32(9));
    const __m512 half = _mm512_set1_ps(0.5f);
    size_t whole = first + count / 16 * 16, end = first + count;
    for (size_t oc = first; oc < whole; oc += 16) {
        const float *base = weights + 9 * oc;
        __m512 g[9];
        for (int e = 0; e < 9; e++) g[e] = _mm512_i32gather_ps(nine, base + e, 4);
        __m512 t[4][3];
        for (int j = 0; j < 3; j++) {
            t[0][j] = g[j];
            t[1][j] = _mm512_mul_ps(half, _mm512_add_ps(_mm512_add_ps(g[j], g[3 + j]), g[6 + j]));
            t[2][j] = _mm512_mul_ps(half, _mm512_add_ps(_mm512_sub_ps(g[j], g[3 + j]), g[6 + j]));
            t[3][j] = g[6 + j];
        }
        for (int i = 0; i < 4; i++) {
            _mm512_storeu_ps(u + (4 * i + 0) * plane + oc, t[i][0]);
            _mm512_storeu_ps(u + (4 * i + 1) * plane + oc,
                             _mm512_mul_ps(half, _mm512_add_ps(_mm512_add_ps(t[i][0], t[i][1]), t[i][2])));
            _mm512_storeu_ps(u + (4 * i + 2) * plane + oc,
                             _mm512_mul_ps(half, _mm512_add_ps(_mm512_sub_ps(t[i][0], t[i][1]), t[i][2])));
            _mm512_storeu_ps(u + (4 * i + 3) * plane + oc, t[i][2]);
        }
    }
    // The last kernels (fewer than sixteen) by the portable loop, into the same planes.
    float tail[16 * 16];
    transform_weights(weights + 9 * whole, end - whole, 16, tail);
    for (int xi = 0; xi < 16; xi++) {
        for (size_t oc = whole; oc < end; oc++) u[xi * plane + oc] = tail[xi * 16 + (oc - whole)];
    }
}
#endif

void wb_winograd_f2x3_weights_range(const float *weights, int out_channels, int in_channels, int first, int count,
                                    int flipped, float *u) {
    size_t plane = (size_t)out_channels * (size_t)in_channels;
    if (flipped) {
        // Kernel k = c·in_channels + o of W̃ is W[o][c] reversed: gathered sixteen at a time into a
        // block in the usual layout and transformed from there, by the same operations.
        float block[16 * 9];
        for (int k0 = first; k0 < first + count; k0 += 16) {
            int n = first + count - k0 < 16 ? first + count - k0 : 16;
            for (int l = 0; l < n; l++) {
                int c = (k0 + l) / in_channels, o = (k0 + l) % in_channels;
                const float *source = weights + ((size_t)o * (size_t)out_channels + (size_t)c) * 9;
                for (int e = 0; e < 9; e++) block[9 * l + e] = source[8 - e];
            }
#if defined(__x86_64__)
            if (wb_avx512_available()) {
                transform_weights_avx512(block, 0, (size_t)n, plane, u + k0);
                continue;
            }
#endif
            transform_weights(block, (size_t)n, plane, u + k0);
        }
        return;
    }
#if defined(__x86_64__)
    if (wb_avx512_available()) {
        transform_weights_avx512(weights, (size_t)first, (size_t)count, plane, u);
        return;
    }
#endif
    transform_weights(weights + 9 * (size_t)first, (size_t)count, plane, u + first);
}

void wb_winograd_f2x3_weights(const float *weights, int out_channels, int in_channels, float *u) {
    wb_winograd_f2x3_weights_range(weights, out_channels, in_channels, 0, out_channels * in_channels, 0, u);
}

static void *scratch(size_t floats) {
    void *memory = malloc(floats * sizeof(float));
    if (!memory) {
        fprintf(stderr, "workbench: out of memory for a Winograd convolution's scratch (%zu floats)\n", floats);
        abort();
    }
    return memory;
}

// The input index padded position q (one left of the input's first element is −1) reads, or −1 for a
// zero: padding 1, mirrored without repeating the edge when `reflect`. Positions further out only
// feed outputs past the image's edge (an odd size's last tile), which are never stored.
WB_INLINE int source(int q, int size, int reflect) {
    if (q >= 0 && q < size) return q;
    if (!reflect || q < -1 || q > size) return -1;
    return q < 0 ? 1 : size - 2;
}

#if defined(__x86_64__)
WB_AVX512 static inline __mmask16 lanes(int count) {
    return count >= 16 ? (__mmask16)0xFFFF : count <= 0 ? (__mmask16)0 : (__mmask16)((1u << count) - 1);
}

// dst[t] = source[2t] for t < count: every other float, sixteen at a time.
WB_AVX512 static void every_other(const float *source, int count, float *dst) {
    const __m512i even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
    for (int t = 0; t < count; t += 16) {
        int read = 2 * (count - t) - 1;  // the last lane reads float 2·(lanes − 1)
        __m512 low = _mm512_maskz_loadu_ps(lanes(read), source + 2 * t);
        __m512 high = _mm512_maskz_loadu_ps(lanes(read - 16), source + 2 * t + 16);
        _mm512_mask_storeu_ps(dst + t, lanes(count - t), _mm512_permutex2var_ps(low, even, high));
    }
}

// transform_tile_row sixteen tiles at a time (masked at the row's end): the same operations in the
// same order, so the same bits.
WB_AVX512 static void transform_tile_row_avx512(const float *e0, const float *e1, const float *e2, const float *e3,
                                                const float *o0, const float *o1, const float *o2, const float *o3,
                                                float *out, size_t stride, int columns) {
    const float *even[4] = {e0, e1, e2, e3}, *odd[4] = {o0, o1, o2, o3};
    for (int t = 0; t < columns; t += 16) {
        __mmask16 k = lanes(columns - t);
        __m512 e[4], o[4], f[4], p[4];  // even and odd padded columns at t and at t + 1
        for (int r = 0; r < 4; r++) {
            e[r] = _mm512_maskz_loadu_ps(k, even[r] + t);
            o[r] = _mm512_maskz_loadu_ps(k, odd[r] + t);
            f[r] = _mm512_maskz_loadu_ps(k, even[r] + t + 1);
            p[r] = _mm512_maskz_loadu_ps(k, odd[r] + t + 1);
        }
        __m512 a[4] = {_mm512_sub_ps(e[0], e[2]), _mm512_add_ps(e[1], e[2]), _mm512_sub_ps(e[2], e[1]), _mm512_sub_ps(e[1], e[3])};
        __m512 b[4] = {_mm512_sub_ps(o[0], o[2]), _mm512_add_ps(o[1], o[2]), _mm512_sub_ps(o[2], o[1]), _mm512_sub_ps(o[1], o[3])};
        __m512 c[4] = {_mm512_sub_ps(f[0], f[2]), _mm512_add_ps(f[1], f[2]), _mm512_sub_ps(f[2], f[1]), _mm512_sub_ps(f[1], f[3])};
        __m512 d[4] = {_mm512_sub_ps(p[0], p[2]), _mm512_add_ps(p[1], p[2]), _mm512_sub_ps(p[2], p[1]), _mm512_sub_ps(p[1], p[3])};
        for (int i = 0; i < 4; i++) {
            _mm512_mask_storeu_ps(out + (4 * i + 0) * stride + t, k, _mm512_sub_ps(a[i], c[i]));
            _mm512_mask_storeu_ps(out + (4 * i + 1) * stride + t, k, _mm512_add_ps(b[i], c[i]));
            _mm512_mask_storeu_ps(out + (4 * i + 2) * stride + t, k, _mm512_sub_ps(c[i], b[i]));
            _mm512_mask_storeu_ps(out + (4 * i + 3) * stride + t, k, _mm512_sub_ps(b[i], d[i]));
        }
    }
}
#endif

// Padded row `line` (input row, or NULL for zeros) split into its even and odd padded columns, n each:
// even[t] is padded column 2t (input column 2t − 1), odd[t] padded column 2t + 1.
WB_INLINE void split_row(const float *line, int width, int reflect, int n, float *even, float *odd, int vector) {
    if (!line) {
        for (int t = 0; t < n; t++) { even[t] = 0; odd[t] = 0; }
        return;
    }
    int even_end = width / 2 + 1 < n ? width / 2 + 1 : n;        // 2t − 1 ≤ width − 1
    int odd_end = (width + 1) / 2 < n ? (width + 1) / 2 : n;      // 2t ≤ width − 1
    int s = source(-1, width, reflect);
    even[0] = s < 0 ? 0 : line[s];
#if defined(__x86_64__)
    if (vector) {
        if (even_end > 1) every_other(line + 1, even_end - 1, even + 1);
        every_other(line, odd_end, odd);
    } else
#endif
    {
        for (int t = 1; t < even_end; t++) even[t] = line[2 * t - 1];
        for (int t = 0; t < odd_end; t++) odd[t] = line[2 * t];
    }
    for (int t = even_end; t < n; t++) { s = source(2 * t - 1, width, reflect); even[t] = s < 0 ? 0 : line[s]; }
    for (int t = odd_end; t < n; t++) { s = source(2 * t, width, reflect); odd[t] = s < 0 ? 0 : line[s]; }
}

// Bᵀ·d·B for one row of tiles from the split padded rows (e: even, o: odd padded columns of
// rows 0…3); element 4i + j of tile t goes to out[(4i + j)·stride + t].
WB_INLINE void transform_tile_row(const float *restrict e0, const float *restrict e1, const float *restrict e2,
                                  const float *restrict e3, const float *restrict o0, const float *restrict o1,
                                  const float *restrict o2, const float *restrict o3, float *restrict out, size_t stride,
                                  int columns) {
    for (int t = 0; t < columns; t++) {
        // Bᵀ·d for the tile's four columns (padded columns 2t … 2t + 3) …
        float a0 = e0[t] - e2[t], a1 = e1[t] + e2[t], a2 = e2[t] - e1[t], a3 = e1[t] - e3[t];
        float b0 = o0[t] - o2[t], b1 = o1[t] + o2[t], b2 = o2[t] - o1[t], b3 = o1[t] - o3[t];
        float c0 = e0[t + 1] - e2[t + 1], c1 = e1[t + 1] + e2[t + 1], c2 = e2[t + 1] - e1[t + 1], c3 = e1[t + 1] - e3[t + 1];
        float d0 = o0[t + 1] - o2[t + 1], d1 = o1[t + 1] + o2[t + 1], d2 = o2[t + 1] - o1[t + 1], d3 = o1[t + 1] - o3[t + 1];
        // … times B.
        out[0 * stride + t] = a0 - c0;   out[1 * stride + t] = b0 + c0;
        out[2 * stride + t] = c0 - b0;   out[3 * stride + t] = b0 - d0;
        out[4 * stride + t] = a1 - c1;   out[5 * stride + t] = b1 + c1;
        out[6 * stride + t] = c1 - b1;   out[7 * stride + t] = b1 - d1;
        out[8 * stride + t] = a2 - c2;   out[9 * stride + t] = b2 + c2;
        out[10 * stride + t] = c2 - b2;  out[11 * stride + t] = b2 - d2;
        out[12 * stride + t] = a3 - c3;  out[13 * stride + t] = b3 + c3;
        out[14 * stride + t] = c3 - b3;  out[15 * stride + t] = b3 - d3;
    }
}

// V for the tile rows, split row by row. Instantiated twice with a constant `vector` (below), so that
// the AVX-512 build inlines its row helpers into a driver compiled for AVX-512.
WB_INLINE void input_tiles(const float *image, int channels, int height, int width, int reflect, int first_tile_row,
                           int tile_rows, float *v, size_t ldv, float *rows, int vector) {
    int columns = (width + 1) / 2, n = columns + 1;
    size_t stride = (size_t)channels * ldv;
    float *even[4], *odd[4];
    for (int r = 0; r < 4; r++) { even[r] = rows + (size_t)(2 * r) * n; odd[r] = even[r] + n; }
    for (int c = 0; c < channels; c++) {
        const float *plane = image + (size_t)c * height * width;
        for (int ty = first_tile_row; ty < first_tile_row + tile_rows; ty++) {
            for (int r = 0; r < 4; r++) {
                int sy = source(2 * ty + r - 1, height, reflect);
                split_row(sy < 0 ? NULL : plane + (size_t)sy * width, width, reflect, n, even[r], odd[r], vector);
            }
            float *out = v + (size_t)c * ldv + (size_t)(ty - first_tile_row) * columns;
#if defined(__x86_64__)
            if (vector) {
                transform_tile_row_avx512(even[0], even[1], even[2], even[3], odd[0], odd[1], odd[2], odd[3], out, stride,
                                          columns);
                continue;
            }
#endif
            transform_tile_row(even[0], even[1], even[2], even[3], odd[0], odd[1], odd[2], odd[3], out, stride, columns);
        }
    }
}

#if defined(__x86_64__)
WB_AVX512 static void input_tiles_avx512(const float *image, int channels, int height, int width, int reflect,
                                         int first_tile_row, int tile_rows, float *v, size_t ldv, float *rows) {
    input_tiles(image, channels, height, width, reflect, first_tile_row, tile_rows, v, ldv, rows, 1);
}
#endif

static void input_tiles_portable(const float *image, int channels, int height, int width, int reflect,
                                 int first_tile_row, int tile_rows, float *v, size_t ldv, float *rows) {
    input_tiles(image, channels, height, width, reflect, first_tile_row, tile_rows, v, ldv, rows, 0);
}

void wb_winograd_f2x3_input(const float *image, int channels, int height, int width, int reflect, int first_tile_row,
                            int tile_rows, float *v, size_t ldv) {
    float *rows = scratch(8 * ((size_t)(width + 1) / 2 + 1));
#if defined(__x86_64__)
    if (wb_avx512_available()) {
        input_tiles_avx512(image, channels, height, width, reflect, first_tile_row, tile_rows, v, ldv, rows);
        free(rows);
        return;
    }
#endif
    input_tiles_portable(image, channels, height, width, reflect, first_tile_row, tile_rows, v, ldv, rows);
    free(rows);
}

static void output_tiles_portable(const float *m, size_t ldm, int out_channels, int height, int width, int first_tile_row,
                            int tile_rows, const float *bias, float *out, float *rows) {
    int columns = (width + 1) / 2;
    size_t stride = (size_t)out_channels * ldm;
    float *y00 = rows, *y01 = rows + columns, *y10 = rows + 2 * (size_t)columns, *y11 = rows + 3 * (size_t)columns;
    for (int o = 0; o < out_channels; o++) {
        float b = bias ? bias[o] : 0.0f;
        for (int ty = first_tile_row; ty < first_tile_row + tile_rows; ty++) {
            const float *p = m + (size_t)o * ldm + (size_t)(ty - first_tile_row) * columns;
            for (int t = 0; t < columns; t++) {
                float s[2][4];  // Aᵀ·M
                for (int j = 0; j < 4; j++) {
                    float m0 = p[(size_t)j * stride + t], m1 = p[(size_t)(4 + j) * stride + t],
                          m2 = p[(size_t)(8 + j) * stride + t], m3 = p[(size_t)(12 + j) * stride + t];
                    s[0][j] = (m0 + m1) + m2;
                    s[1][j] = (m1 - m2) - m3;
                }
                y00[t] = ((s[0][0] + s[0][1]) + s[0][2]) + b;  // (Aᵀ·M)·A, plus the bias
                y01[t] = ((s[0][1] - s[0][2]) - s[0][3]) + b;
                y10[t] = ((s[1][0] + s[1][1]) + s[1][2]) + b;
                y11[t] = ((s[1][1] - s[1][2]) - s[1][3]) + b;
            }
            float *line = out + ((size_t)o * height + 2 * (size_t)ty) * width;
            int pairs = width / 2;
            for (int t = 0; t < pairs; t++) { line[2 * t] = y00[t]; line[2 * t + 1] = y01[t]; }
            if (width & 1) line[width - 1] = y00[columns - 1];
            if (2 * ty + 1 >= height) continue;
            line += width;
            for (int t = 0; t < pairs; t++) { line[2 * t] = y10[t]; line[2 * t + 1] = y11[t]; }
            if (width & 1) line[width - 1] = y10[columns - 1];
        }
    }
}

#if defined(__x86_64__)
// output_tiles sixteen tiles at a time, the two outputs of each tile row interleaved by permutes.
WB_AVX512 static void output_tiles_avx512(const float *m, size_t ldm, int out_channels, int height, int width,
                                          int first_tile_row, int tile_rows, const float *bias, float *out) {
    int columns = (width + 1) / 2;
    size_t stride = (size_t)out_channels * ldm;
    const __m512i first_half = _mm512_setr_epi32(0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
    const __m512i second_half = _mm512_setr_epi32(8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31);
    for (int o = 0; o < out_channels; o++) {
        __m512 b = _mm512_set1_ps(bias ? bias[o] : 0.0f);
        for (int ty = first_tile_row; ty < first_tile_row + tile_rows; ty++) {
            const float *p = m + (size_t)o * ldm + (size_t)(ty - first_tile_row) * columns;
            float *line = out + ((size_t)o * height + 2 * (size_t)ty) * width;
            int both_rows = 2 * ty + 1 < height;
            for (int t = 0; t < columns; t += 16) {
                __mmask16 k = lanes(columns - t);
                __m512 s0[4], s1[4];
                for (int j = 0; j < 4; j++) {
                    __m512 m0 = _mm512_maskz_loadu_ps(k, p + (size_t)j * stride + t);
                    __m512 m1 = _mm512_maskz_loadu_ps(k, p + (size_t)(4 + j) * stride + t);
                    __m512 m2 = _mm512_maskz_loadu_ps(k, p + (size_t)(8 + j) * stride + t);
                    __m512 m3 = _mm512_maskz_loadu_ps(k, p + (size_t)(12 + j) * stride + t);
                    s0[j] = _mm512_add_ps(_mm512_add_ps(m0, m1), m2);
                    s1[j] = _mm512_sub_ps(_mm512_sub_ps(m1, m2), m3);
                }
                __m512 y00 = _mm512_add_ps(_mm512_add_ps(_mm512_add_ps(s0[0], s0[1]), s0[2]), b);
                __m512 y01 = _mm512_add_ps(_mm512_sub_ps(_mm512_sub_ps(s0[1], s0[2]), s0[3]), b);
                int remaining = width - 2 * t;
                __mmask16 low = lanes(remaining), high = lanes(remaining - 16);
                _mm512_mask_storeu_ps(line + 2 * t, low, _mm512_permutex2var_ps(y00, first_half, y01));
                _mm512_mask_storeu_ps(line + 2 * t + 16, high, _mm512_permutex2var_ps(y00, second_half, y01));
                if (!both_rows) continue;
                __m512 y10 = _mm512_add_ps(_mm512_add_ps(_mm512_add_ps(s1[0], s1[1]), s1[2]), b);
                __m512 y11 = _mm512_add_ps(_mm512_sub_ps(_mm512_sub_ps(s1[1], s1[2]), s1[3]), b);
                _mm512_mask_storeu_ps(line + width + 2 * t, low, _mm512_permutex2var_ps(y10, first_half, y11));
                _mm512_mask_storeu_ps(line + width + 2 * t + 16, high, _mm512_permutex2var_ps(y10, second_half, y11));
            }
        }
    }
}
#endif

void wb_winograd_f2x3_output(const float *m, size_t ldm, int out_channels, int height, int width, int first_tile_row,
                             int tile_rows, const float *bias, float *out) {
#if defined(__x86_64__)
    if (wb_avx512_available()) {
        output_tiles_avx512(m, ldm, out_channels, height, width, first_tile_row, tile_rows, bias, out);
        return;
    }
#endif
    float *rows = scratch(4 * ((size_t)(width + 1) / 2));
    output_tiles_portable(m, ldm, out_channels, height, width, first_tile_row, tile_rows, bias, out, rows);
    free(rows);
}
