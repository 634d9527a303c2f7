// The float32 weight gradient of a 3×3, stride-1 convolution with "same" padding 1 (zeros or
// reflect), as dot products over the pixels instead of a GEMM over im2col columns.
//
// Why: the GEMM path writes the columns (9·C rows × pixels), then packs both of its operands by
// transposing them (each has the pixels, the inner dimension, contiguous); with 32 or 64 output
// channels the transposes cost nearly as much as the products (45 % of a 32 × 576 × 896 product).
// Here nothing is transposed: with the input padded to planes of (H + 2) rows of width W + 2 and the
// output gradient laid out at the same pitch (zeros in its two extra columns and rows),
//   dW[o, c, ki, kj] = Σ_q g[o, q] · xpad[c, q + ki·(W + 2) + kj],   q = y·(W + 2) + x,
// a dot product of two contiguous runs for every tap. The images of a group lie one after another
// in both layouts, so q runs over the whole group at once (the zeros of g stop each image's sum
// from reading into the next). 16 pixels form a vector; a register tile holds three output
// channels × the nine taps of one input channel (27 accumulators), and the pixels stream through
// it in chunks that the core's L2 cache holds for every tile.
//
// Order of the sums, fixed by the shapes alone: lane l of an accumulator sums q ≡ l (mod 16) in
// ascending order, and the 16 lanes are added by one fixed reduction; the split of the input
// channels over threads never changes it. The results differ from the GEMM path's in the last bits
// (another grouping of the same float32 products).
#include "ckernels.h"

#include <stdlib.h>
#include <string.h>

#include "padding.h"

enum { LANES = 16, TAPS = 9, ROWS = 3, CHUNK = 1024, SUMS_BUDGET = 512 * 1024 };

static size_t round_up(size_t count) { return (count + LANES - 1) / LANES * LANES; }

// Floats of one image in both layouts: a padded plane, (H + 2)·(W + 2).
static size_t image_stride(int height, int width) { return (size_t)(height + 2) * (size_t)(width + 2); }

// Floats of one output channel's gradient for `images` images: q runs to the last image's last
// output row, rounded up to whole vectors.
size_t wb_conv_weight_gradient_row_count(int images, int height, int width) {
    return round_up((size_t)(images - 1) * image_stride(height, width) + (size_t)height * (size_t)(width + 2));
}

// Floats of one input channel's padded planes for `images` images, with room for the furthest tap
// of the last vector.
size_t wb_conv_weight_gradient_plane_count(int images, int height, int width) {
    return round_up(wb_conv_weight_gradient_row_count(images, height, width) + 2 * (size_t)(width + 2) + 2);
}

// Input channels whose tiles' sums (kept between chunks) fit in about 512 KB, so that they
// stay in the core's L2 cache: the channels are summed a block at a time.
static int block_channels(int out_channels) {
    size_t tile = sizeof(float) * ROWS * TAPS * LANES * (size_t)((out_channels + ROWS - 1) / ROWS);
    size_t channels = SUMS_BUDGET / tile;
    return channels < 1 ? 1 : (int)channels;
}

size_t wb_conv_weight_gradient_sums_count(int in_channels, int out_channels) {
    int channels = in_channels < block_channels(out_channels) ? in_channels : block_channels(out_channels);
    return (size_t)channels * (size_t)((out_channels + ROWS - 1) / ROWS) * ROWS * TAPS * LANES;
}

void wb_conv_weight_gradient_pad_input(const float *image, int channels, int height, int width, int reflect, int index,
                                       int images, float *planes) {
    const size_t pitch = (size_t)width + 2, stride = image_stride(height, width);
    const size_t count = wb_conv_weight_gradient_plane_count(images, height, width);
    for (int c = 0; c < channels; c++) {
        const float *plane = image + (size_t)c * height * width;
        float *padded = planes + (size_t)c * count + (size_t)index * stride;
        for (int r = 0; r < height + 2; r++)
            padded_line(plane, padded_source(r, height, 1, reflect), width, 1, reflect, padded + (size_t)r * pitch);
        if (index == images - 1) memset(padded + stride, 0, sizeof(float) * (count - (size_t)images * stride));
    }
}

void wb_conv_weight_gradient_pad_output(const float *gradient, int channels, int height, int width, int index, int images,
                                        float *rows) {
    const size_t pitch = (size_t)width + 2, stride = image_stride(height, width);
    const size_t count = wb_conv_weight_gradient_row_count(images, height, width);
    for (int o = 0; o < channels; o++) {
        float *row = rows + (size_t)o * count + (size_t)index * stride;
        for (int y = 0; y < height; y++) {
            memcpy(row + (size_t)y * pitch, gradient + ((size_t)o * height + y) * width, sizeof(float) * (size_t)width);
            row[(size_t)y * pitch + width] = row[(size_t)y * pitch + width + 1] = 0;
        }
        // Two rows of zeros before the next image, or zeros to the end.
        size_t zeros = index == images - 1 ? count - (size_t)index * stride - (size_t)height * pitch : 2 * pitch;
        memset(row + (size_t)height * pitch, 0, sizeof(float) * zeros);
    }
}

#if defined(__x86_64__)
#include <immintrin.h>

#ifndef WB_AVX512
#define WB_AVX512 __attribute__((target("avx512f,avx512vl,avx512bw,avx512dq,fma,avx2,bmi2")))
#endif

// Pixels [first, last) of one tile: `rows` output channels' gradient rows × one padded input plane.
// Its accumulators start from zero (`fresh`) or from `sums`, and end in `sums` or, summed over their
// lanes, in the weight gradient (`gradient`: element (o, c, tap) at gradient[o·stride + tap]).
WB_AVX512 static inline __attribute__((always_inline)) void
tile_chunk(int rows, const float *g0, const float *g1, const float *g2, const float *plane, size_t pitch, size_t first,
           size_t last, int fresh, float *sums, float *gradient, size_t stride) {
    __m512 acc[ROWS][TAPS];
    for (int r = 0; r < rows; r++)
        for (int t = 0; t < TAPS; t++)
            acc[r][t] = fresh ? _mm512_setzero_ps() : _mm512_loadu_ps(sums + (size_t)(r * TAPS + t) * LANES);
    const size_t offsets[TAPS] = {0, 1, 2, pitch, pitch + 1, pitch + 2, 2 * pitch, 2 * pitch + 1, 2 * pitch + 2};
    for (size_t q = first; q < last; q += LANES) {
        __m512 g[ROWS];
        g[0] = _mm512_loadu_ps(g0 + q);
        if (rows > 1) g[1] = _mm512_loadu_ps(g1 + q);
        if (rows > 2) g[2] = _mm512_loadu_ps(g2 + q);
        for (int t = 0; t < TAPS; t++) {
            __m512 x = _mm512_loadu_ps(plane + q + offsets[t]);
            for (int r = 0; r < rows; r++) acc[r][t] = _mm512_fmadd_ps(g[r], x, acc[r][t]);
        }
    }
    for (int r = 0; r < rows; r++)
        for (int t = 0; t < TAPS; t++) {
            if (gradient) gradient[(size_t)r * stride + t] = _mm512_reduce_add_ps(acc[r][t]);
            else _mm512_storeu_ps(sums + (size_t)(r * TAPS + t) * LANES, acc[r][t]);
        }
}

WB_AVX512 void wb_conv_weight_gradient(const float *planes, const float *gradient_rows, int images, int in_channels,
                                       int out_channels, int height, int width, int first_channel, int channels,
                                       float *sums, float *gradient) {
    const size_t pitch = (size_t)width + 2, row_count = wb_conv_weight_gradient_row_count(images, height, width);
    const size_t plane_count = wb_conv_weight_gradient_plane_count(images, height, width);
    const int blocks = (out_channels + ROWS - 1) / ROWS;
    const size_t tile_sums = ROWS * TAPS * LANES, stride = (size_t)in_channels * TAPS;
    // Equal chunks of whole vectors: a short last chunk would reload every tile's sums for little work.
    const size_t chunks = (row_count + CHUNK - 1) / CHUNK, length = round_up((row_count + chunks - 1) / chunks);
    const int end = first_channel + channels, step = block_channels(out_channels);
    for (int c0 = first_channel; c0 < end; c0 += step) {
        int c1 = c0 + step < end ? c0 + step : end;
        for (size_t first = 0; first < row_count; first += length) {
            size_t last = first + length < row_count ? first + length : row_count;
            int fresh = first == 0, done = last == row_count;
            // Output channels outermost: a tile's gradient rows stay in the L1 cache over the block's channels.
            for (int block = 0; block < blocks; block++) {
                int o = block * ROWS, rows = out_channels - o < ROWS ? out_channels - o : ROWS;
                const float *g0 = gradient_rows + (size_t)o * row_count;
                const float *g1 = rows > 1 ? g0 + row_count : g0, *g2 = rows > 2 ? g0 + 2 * row_count : g0;
                for (int c = c0; c < c1; c++) {
                    const float *plane = planes + (size_t)c * plane_count;
                    float *s = sums + ((size_t)(c - c0) * blocks + block) * tile_sums;
                    float *out = done ? gradient + ((size_t)o * in_channels + c) * TAPS : NULL;
                    // Constant row counts, so that each variant keeps its accumulators in registers.
                    if (rows == 3) tile_chunk(3, g0, g1, g2, plane, pitch, first, last, fresh, s, out, stride);
                    else if (rows == 2) tile_chunk(2, g0, g1, g2, plane, pitch, first, last, fresh, s, out, stride);
                    else tile_chunk(1, g0, g1, g2, plane, pitch, first, last, fresh, s, out, stride);
                }
            }
        }
    }
}

#else

void wb_conv_weight_gradient(const float *planes, const float *gradient_rows, int images, int in_channels,
                             int out_channels, int height, int width, int first_channel, int channels, float *sums,
                             float *gradient) { abort(); }

#endif
