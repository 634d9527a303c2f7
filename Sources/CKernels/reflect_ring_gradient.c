// The input gradient of a reflect-padded convolution, split as the direct bf16 path computes it:
// the gradient that reaches the padded input's interior is the zero-padded "same" convolution of
// the output gradient (a fast, whole-tile shape); what reaches the ring of padding (p = (K−1)/2
// rows and columns around it) is a few percent of the products, computed here and folded onto the
// input pixels the padding mirrors. Before this split the convolution ran over the whole
// (H+2p)×(W+2p) padded gradient and a second pass folded it: widths such as 34 take three
// converted copies of the input on AMX tiles, and the fold read and wrote the gradient again.
//
// Products are of bf16-rounded values (exact in float32), summed in float32 in a fixed order: taps,
// then output channels; so vector and scalar code give the same bits.
#include "ckernels.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#if defined(__x86_64__) && defined(__linux__)
#define WB_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define WB_CLONES
#endif

// x rounded to the nearest bfloat16, ties to even, denormals to signed zero (as vcvtneps2bf16 rounds).
static inline float round_to_bf16(float x) {
    uint32_t bits;
    memcpy(&bits, &x, sizeof bits);
    if ((bits & 0x7F800000u) == 0x7F800000u) return x;
    if ((bits & 0x7F800000u) == 0) bits &= 0x80000000u;
    bits += 0x7FFFu + ((bits >> 16) & 1u);
    bits &= 0xFFFF0000u;
    memcpy(&x, &bits, sizeof x);
    return x;
}

// The source index of padded index i for reflect padding `pad` of a side of `size`.
static inline int reflected(int i, int size, int pad) {
    int s = i - pad;
    return s < 0 ? -s : s >= size ? 2 * size - 2 - s : s;
}

void wb_reflect_ring_weights(const float *weights, int out_channels, int in_channels, int kernel, float *ring_weights) {
    const int taps = kernel * kernel;
    for (int t = 0; t < taps; t++)
        for (int o = 0; o < out_channels; o++)
            for (int c = 0; c < in_channels; c++)
                ring_weights[((size_t)t * out_channels + o) * in_channels + c] =
                    round_to_bf16(weights[((size_t)o * in_channels + c) * taps + t]);
}

// acc[c] = Σ_(ki,kj) Σ_o W[o, c, ki, kj]·dy[o, P − ki, Q − kj] over the taps that reach padded pixel (P, Q).
WB_CLONES static void ring_pixel(const float *dy, int out_channels, int height, int width, const float *ring_weights,
                       int in_channels, int kernel, int P, int Q, float *column, float *acc) {
    const size_t pixels = (size_t)height * width;
    memset(acc, 0, sizeof(float) * (size_t)in_channels);
    for (int ki = 0; ki < kernel; ki++) {
        const int y = P - ki;
        if (y < 0 || y >= height) continue;
        for (int kj = 0; kj < kernel; kj++) {
            const int x = Q - kj;
            if (x < 0 || x >= width) continue;
            for (int o = 0; o < out_channels; o++) column[o] = round_to_bf16(dy[(size_t)o * pixels + (size_t)y * width + x]);
            const float *w = ring_weights + (size_t)(ki * kernel + kj) * out_channels * in_channels;
            for (int o = 0; o < out_channels; o++) {
                const float d = column[o];
                const float *row = w + (size_t)o * in_channels;
                for (int c = 0; c < in_channels; c++) acc[c] += row[c] * d;
            }
        }
    }
}

void wb_reflect_ring_gradient(const float *dy, int out_channels, int height, int width, const float *ring_weights,
                              int in_channels, int kernel, float *dx) {
    const int pad = (kernel - 1) / 2, padded_height = height + 2 * pad, padded_width = width + 2 * pad;
    const size_t pixels = (size_t)height * width;
    float *column = malloc(sizeof(float) * (size_t)out_channels), *acc = malloc(sizeof(float) * (size_t)in_channels);
    if (!column || !acc) {
        fprintf(stderr, "error: out of memory for a reflect padding gradient\n");
        abort();
    }
    for (int P = 0; P < padded_height; P++) {
        const int ring_row = P < pad || P >= height + pad;
        // Whole rows of the ring, then the left and right columns of the rows between.
        for (int Q = 0; Q < padded_width; Q = (ring_row || Q >= width + pad || Q + 1 < pad) ? Q + 1 : width + pad) {
            ring_pixel(dy, out_channels, height, width, ring_weights, in_channels, kernel, P, Q, column, acc);
            float *target = dx + (size_t)reflected(P, height, pad) * width + reflected(Q, width, pad);
            for (int c = 0; c < in_channels; c++) target[(size_t)c * pixels] += acc[c];
        }
    }
    free(column);
    free(acc);
}
