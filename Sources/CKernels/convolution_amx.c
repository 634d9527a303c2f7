// Direct convolution on AMX tiles (bf16 products, float32 sums) for stride-1 square kernels of odd
// size K, without im2col columns or GEMM packing: the forward pass with zero padding up to K−1 or
// reflect padding (K−1)/2, and the weight gradient with "same" padding (K−1)/2.
//
// Why: the GEMM path packs each input element into bf16 pairs once per kernel tap (9 times for 3×3)
// and reloads C for every slice of the inner dimension; on the seed U-Net's 32-channel layers that
// packing costs more than the tiles' products. Here the input is converted once per kernel column
// into planes that the tiles read directly, and each 32×32 block of outputs stays in four tiles for
// the whole sum over taps and channels (forward) or pixels (weight gradient).
//
// Forward: out[o, y, x] = bias[o] + Σ_t Σ_c W[o, c, t]·xpad[c, y + ki, x + kj], t = ki·K + kj.
// TDPBF16PS sums over pairs of k, here pairs of input channels: a B tile holds 16 channel pairs
// (rows) × 16 output pixels (columns). The "band" holds the channel pairs' planes of the padded
// rows a band of output rows reads (see plane_layout): where output rows split into whole tiles,
// the padded rows once, read at offset kj; otherwise one copy per kernel column kj, each plane
// `width` wide and shifted by kj, element [kj][pair][r][x] = (xpad[2·pair][r][x + kj],
// xpad[2·pair + 1][r][x + kj]), so that output pixel p = y·width + x of tap (ki, kj) reads plane
// element ki·width + p and a tile of 16 consecutive pixels may span rows (8×8 images).
//
// Weight gradient: dW[o, c, t] = Σ_p dout[o, p]·xpad[c, y + ki, x + kj], a product whose inner
// dimension is the pixels: A tiles are 16 input channels × 32 pixels of bf16 planes laid out the
// same way (element [kj][c][r][x] = xpad[c][r][x + kj]), B tiles 16 pixel pairs × 16 output channels of the
// output gradient transposed into pairs, and the sums are kept as [t][c][o].
//
// Every element is summed in an order fixed by the shapes (taps, then channel blocks; or images,
// then pixels), never by the split over threads, so results are reproducible; they differ from the
// GEMM path's in the last bits (other groupings of the same float32 sums).
#include "ckernels.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#if defined(__x86_64__)
#include "gemm_tiles.h"
#include "padding.h"

#ifndef WB_AMX
#define WB_AMX __attribute__((target("amx-tile,amx-bf16,avx512f,avx512vl,avx512bw,avx512dq,avx512bf16,fma,avx2,bmi2")))
#endif

enum { TILE = 16, TILE_UNITS = TILE * TILE, GRADIENT_CHUNK = 512 };

static size_t blocks_of(int count, int size) { return (size_t)((count + size - 1) / size); }

// A padded line's buffer, with room for a last masked vector.
static float *line_buffer(int width, int pad) {
    size_t bytes = ((size_t)(width + 2 * pad + TILE) * sizeof(float) + 63) / 64 * 64;
    float *line = aligned_alloc(64, bytes);
    if (!line) {
        fprintf(stderr, "error: out of memory for a %zu-byte convolution line\n", bytes);
        abort();
    }
    return line;
}

// Where planes hold tap (ki, kj)'s input for output pixel p. When the rows split into whole tiles
// (`run` pixels: 16 for the forward pass's B tiles, 32 for the weight gradient's A tiles), one copy
// of the padded rows (width + k − 1 wide), read at offset kj; otherwise one copy per kernel column,
// `width` wide, so that consecutive pixels stay consecutive across row ends (images narrower than a tile).
typedef struct {
    int single, width;
    size_t row, plane, copy;
} plane_layout;

static plane_layout layout_of(int width, int kernel, int run, int lines, size_t planes) {
    plane_layout l;
    l.single = width % run == 0;
    l.width = width;
    l.row = (size_t)(l.single ? width + kernel - 1 : width);
    l.plane = (size_t)lines * l.row;
    l.copy = planes * l.plane;
    return l;
}

static size_t layout_count(const plane_layout *l, int kernel) { return (l->single ? 1 : (size_t)kernel) * l->copy; }

// Tap (ki, kj)'s element for output pixel p lies at pixel_offset(p) + tap_shift(ki, kj) (the division
// once per pixel block, not per tap).
static inline size_t pixel_offset(const plane_layout *l, int p) {
    return l->single ? (size_t)(p / l->width) * l->row + (size_t)(p % l->width) : (size_t)p;
}

static inline size_t tap_shift(const plane_layout *l, int ki, int kj) {
    return l->single ? (size_t)ki * l->row + (size_t)kj : (size_t)kj * l->copy + (size_t)ki * l->width;
}

size_t wb_conv_amx_weights_count(int out_channels, int in_channels, int kernel) {
    return blocks_of(out_channels, TILE) * (size_t)kernel * (size_t)kernel * blocks_of(in_channels, 2 * TILE) * TILE_UNITS;
}

WB_AMX void wb_conv_amx_weights(const float *weights, int out_channels, int in_channels, int kernel, int flipped,
                                uint32_t *packed) {
    // Flipped: the weights are W̃[o][c][t] = W[c][o][taps − 1 − t] of W = `weights` [in_channels][out_channels].
    const size_t o_stride = flipped ? (size_t)kernel * kernel : (size_t)in_channels * kernel * kernel;
    const size_t c_stride = flipped ? (size_t)out_channels * kernel * kernel : (size_t)kernel * kernel;
    const int taps = kernel * kernel, channel_blocks = (int)blocks_of(in_channels, 2 * TILE);
    const int out_blocks = (int)blocks_of(out_channels, TILE);
    for (int ob = 0; ob < out_blocks; ob++) {
        for (int t = 0; t < taps; t++) {
            for (int cb = 0; cb < channel_blocks; cb++) {
                uint32_t *block = packed + ((size_t)(ob * taps + t) * channel_blocks + cb) * TILE_UNITS;
                for (int r = 0; r < TILE; r++) {
                    // Row r: 16 pairs of input channels (the even one in the low half), zeros past the shapes.
                    float even[TILE], odd[TILE];
                    int o = ob * TILE + r, tap = flipped ? taps - 1 - t : t;
                    for (int q = 0; q < TILE; q++) {
                        int c = cb * 2 * TILE + 2 * q;
                        const float *w = weights + (size_t)o * o_stride + (size_t)c * c_stride + tap;
                        even[q] = o < out_channels && c < in_channels ? w[0] : 0;
                        odd[q] = o < out_channels && c + 1 < in_channels ? w[c_stride] : 0;
                    }
                    _mm512_storeu_si512(block + r * TILE, bf16_pairs(even, odd, 0xFFFF));
                }
            }
        }
    }
}

size_t wb_conv_amx_band_count(int in_channels, int width, int kernel, int padding, int rows) {
    plane_layout l = layout_of(width + 2 * padding - kernel + 1, kernel, TILE, rows + kernel - 1, blocks_of(in_channels, 2 * TILE) * TILE);
    return layout_count(&l, kernel) + TILE;
}

// The band of output rows [first_row, first_row + rows): see the file's comment and plane_layout.
WB_AMX static void build_band(const float *image, int channels, int height, int width, int kernel, int pad, int reflect,
                              int first_row, int rows, uint32_t *band, const plane_layout *l) {
    const int lines = rows + kernel - 1, pairs = (int)blocks_of(channels, 2 * TILE) * TILE;
    const int copies = l->single ? 1 : kernel, length = l->single ? width + 2 * pad : l->width;
    // Heap lines rather than variable-length arrays: those break the stack's 64-byte alignment that
    // vector values spilled there need (seen in the emulated build).
    float *even = line_buffer(width, pad), *odd = line_buffer(width, pad);
    for (int pair = 0; pair < pairs; pair++) {
        int c = 2 * pair;
        for (int r = 0; r < lines; r++) {
            int sy = padded_source(first_row + r, height, pad, reflect);
            if (c >= channels || sy < 0) {
                for (int kj = 0; kj < copies; kj++) memset(band + kj * l->copy + pair * l->plane + (size_t)r * l->row, 0, sizeof(uint32_t) * l->row);
                continue;
            }
            padded_line(image + (size_t)c * height * width, sy, width, pad, reflect, even);
            if (c + 1 < channels) padded_line(image + (size_t)(c + 1) * height * width, sy, width, pad, reflect, odd);
            for (int kj = 0; kj < copies; kj++) {
                uint32_t *target = band + kj * l->copy + pair * l->plane + (size_t)r * l->row;
                for (int x = 0; x < length; x += TILE) {
                    __mmask16 mask = (__mmask16)(length - x >= TILE ? 0xFFFF : (1u << (length - x)) - 1);
                    __m512i both = bf16_pairs(even + kj + x, c + 1 < channels ? odd + kj + x : NULL, mask);
                    _mm512_mask_storeu_epi32(target + x, mask, both);
                }
            }
        }
    }
    memset(band + layout_count(l, kernel), 0, sizeof(uint32_t) * TILE);
    free(even);
    free(odd);
}

// Stores tiles 0–3 (a 32×32 block of rows × columns) into `c` (row stride ldc floats): `rows` and
// `cols` of them, whole tiles directly, partial blocks through a buffer.
WB_AMX static void store_tiles(float *c, size_t ldc, int rows, int cols) {
    if ((rows == TILE || rows == 2 * TILE) && (cols == TILE || cols == 2 * TILE)) {
        _tile_stored(0, c, ldc * sizeof(float));
        if (cols > TILE) _tile_stored(1, c + TILE, ldc * sizeof(float));
        if (rows > TILE) _tile_stored(2, c + TILE * ldc, ldc * sizeof(float));
        if (rows > TILE && cols > TILE) _tile_stored(3, c + TILE * ldc + TILE, ldc * sizeof(float));
        return;
    }
    float block[2 * TILE][2 * TILE] __attribute__((aligned(64)));
    _tile_stored(0, &block[0][0], sizeof block[0]);
    _tile_stored(1, &block[0][TILE], sizeof block[0]);
    _tile_stored(2, &block[TILE][0], sizeof block[0]);
    _tile_stored(3, &block[TILE][TILE], sizeof block[0]);
    for (int r = 0; r < rows; r++) memcpy(c + r * ldc, block[r], sizeof(float) * (size_t)cols);
}

WB_AMX void wb_conv_amx_forward(const float *image, int in_channels, int height, int width, int kernel, int padding,
                                int reflect, const uint32_t *weights, const float *bias, int out_channels, int first_row,
                                int rows, uint32_t *band, float *out) {
    wb_amx_configure_tiles();
    const int taps = kernel * kernel, channel_blocks = (int)blocks_of(in_channels, 2 * TILE);
    const int out_height = height + 2 * padding - kernel + 1, out_width = width + 2 * padding - kernel + 1;
    const plane_layout l = layout_of(out_width, kernel, TILE, rows + kernel - 1, (size_t)channel_blocks * TILE);
    build_band(image, in_channels, height, width, kernel, padding, reflect, first_row, rows, band, &l);
    const int out_blocks = (int)blocks_of(out_channels, TILE), pixels = rows * out_width;
    const size_t b_stride = l.plane * sizeof(uint32_t), block_stride = (size_t)TILE * l.plane;
    const size_t image_pixels = (size_t)out_height * out_width;
    float initial[2 * TILE][TILE] __attribute__((aligned(64)));
    for (int ob = 0; ob < out_blocks; ob += 2) {
        const int two_rows = ob + 1 < out_blocks;
        const int valid_rows = out_channels - ob * TILE < 2 * TILE ? out_channels - ob * TILE : 2 * TILE;
        for (int r = 0; r < 2 * TILE; r++) {
            float value = bias && r < valid_rows ? bias[ob * TILE + r] : 0;
            for (int x = 0; x < TILE; x++) initial[r][x] = value;
        }
        const uint32_t *a0 = weights + (size_t)ob * taps * channel_blocks * TILE_UNITS;
        const uint32_t *a1 = a0 + (size_t)taps * channel_blocks * TILE_UNITS;
        for (int p0 = 0; p0 < pixels; p0 += 2 * TILE) {
            const int cols = pixels - p0 < 2 * TILE ? pixels - p0 : 2 * TILE, two_cols = cols > TILE;
            _tile_loadd(0, &initial[0][0], sizeof initial[0]);
            _tile_loadd(1, &initial[0][0], sizeof initial[0]);
            _tile_loadd(2, &initial[TILE][0], sizeof initial[0]);
            _tile_loadd(3, &initial[TILE][0], sizeof initial[0]);
            const uint32_t *b0 = band + pixel_offset(&l, p0), *b1 = band + pixel_offset(&l, p0 + TILE);
            for (int t = 0; t < taps; t++) {
                const size_t shift = tap_shift(&l, t / kernel, t % kernel);
                const uint32_t *b = b0 + shift, *bt1 = b1 + shift;
                const uint32_t *at0 = a0 + (size_t)t * channel_blocks * TILE_UNITS;
                const uint32_t *at1 = a1 + (size_t)t * channel_blocks * TILE_UNITS;
                if (two_rows && two_cols) {
                    for (int cb = 0; cb < channel_blocks; cb++) {
                        _tile_loadd(4, at0 + cb * TILE_UNITS, TILE * sizeof(uint32_t));
                        _tile_loadd(6, b + cb * block_stride, b_stride);
                        _tile_loadd(7, bt1 + cb * block_stride, b_stride);
                        _tile_loadd(5, at1 + cb * TILE_UNITS, TILE * sizeof(uint32_t));
                        _tile_dpbf16ps(0, 4, 6);
                        _tile_dpbf16ps(1, 4, 7);
                        _tile_dpbf16ps(2, 5, 6);
                        _tile_dpbf16ps(3, 5, 7);
                    }
                } else {
                    for (int cb = 0; cb < channel_blocks; cb++) {
                        _tile_loadd(4, at0 + cb * TILE_UNITS, TILE * sizeof(uint32_t));
                        _tile_loadd(6, b + cb * block_stride, b_stride);
                        _tile_dpbf16ps(0, 4, 6);
                        if (two_cols) {
                            _tile_loadd(7, bt1 + cb * block_stride, b_stride);
                            _tile_dpbf16ps(1, 4, 7);
                        }
                        if (two_rows) {
                            _tile_loadd(5, at1 + cb * TILE_UNITS, TILE * sizeof(uint32_t));
                            _tile_dpbf16ps(2, 5, 6);
                        }
                    }
                }
            }
            store_tiles(out + (size_t)ob * TILE * image_pixels + (size_t)first_row * out_width + p0, image_pixels,
                        valid_rows, cols);
        }
    }
}

static plane_layout gradient_layout(int in_channels, int height, int width, int kernel) {
    return layout_of(width, kernel, 2 * TILE, height + kernel - 1, blocks_of(in_channels, TILE) * TILE);
}

size_t wb_conv_amx_gradient_planes_count(int in_channels, int height, int width, int kernel) {
    // bf16 values, counted in 4-byte units; 2·TILE values of slack past the last plane.
    plane_layout l = gradient_layout(in_channels, height, width, kernel);
    return (layout_count(&l, kernel) + 2 * TILE + 1) / 2;
}

WB_AMX void wb_conv_amx_gradient_planes(const float *image, int in_channels, int height, int width, int kernel,
                                        int reflect, int first_channel, int channels, uint16_t *planes) {
    const int pad = (kernel - 1) / 2, lines = height + kernel - 1;
    const int padded_channels = (int)blocks_of(in_channels, TILE) * TILE;
    const plane_layout l = gradient_layout(in_channels, height, width, kernel);
    const int copies = l.single ? 1 : kernel, length = l.single ? width + 2 * pad : width;
    float *line = line_buffer(width, pad);
    for (int c = first_channel; c < first_channel + channels && c < padded_channels; c++) {
        for (int r = 0; r < lines; r++) {
            int sy = padded_source(r, height, pad, reflect);
            if (c >= in_channels || sy < 0) {
                for (int kj = 0; kj < copies; kj++) memset(planes + kj * l.copy + c * l.plane + (size_t)r * l.row, 0, sizeof(uint16_t) * l.row);
                continue;
            }
            padded_line(image + (size_t)c * height * width, sy, width, pad, reflect, line);
            for (int kj = 0; kj < copies; kj++) {
                uint16_t *target = planes + kj * l.copy + c * l.plane + (size_t)r * l.row;
                for (int x = 0; x < length; x += TILE) {
                    __mmask16 mask = (__mmask16)(length - x >= TILE ? 0xFFFF : (1u << (length - x)) - 1);
                    __m256bh values = _mm512_cvtneps_pbh(_mm512_maskz_loadu_ps(mask, line + kj + x));
                    _mm256_mask_storeu_epi16(target + x, mask, (__m256i)values);
                }
            }
        }
    }
    if (first_channel + channels >= padded_channels) memset(planes + layout_count(&l, kernel), 0, sizeof(uint16_t) * 2 * TILE);
    free(line);
}

size_t wb_conv_amx_gradient_pairs_count(int out_channels, int height, int width) {
    return blocks_of(height * width, 2 * TILE) * TILE * blocks_of(out_channels, TILE) * TILE;
}

WB_AMX void wb_conv_amx_gradient_pairs(const float *gradient, int out_channels, int height, int width, uint32_t *pairs) {
    const int pixels = height * width, padded_out = (int)blocks_of(out_channels, TILE) * TILE;
    const int pair_rows = (int)blocks_of(pixels, 2 * TILE) * TILE;
    for (int q0 = 0; q0 < pair_rows; q0 += TILE) {
        // 16 pixel pairs of 16 channels at a time: rows of pairs per channel, then transposed.
        for (int o0 = 0; o0 < padded_out; o0 += TILE) {
            uint32_t by_channel[TILE][TILE] __attribute__((aligned(64)));
            for (int o = 0; o < TILE; o++) {
                int p = 2 * q0, rest = pixels - p;
                if (o0 + o >= out_channels || rest <= 0) {
                    _mm512_store_si512(by_channel[o], _mm512_setzero_si512());
                    continue;
                }
                const float *row = gradient + (size_t)(o0 + o) * pixels + p;
                __mmask16 low = (__mmask16)(rest >= TILE ? 0xFFFF : (1u << rest) - 1);
                __mmask16 high = (__mmask16)(rest >= 2 * TILE ? 0xFFFF : rest > TILE ? (1u << (rest - TILE)) - 1 : 0);
                // 32 consecutive values as bf16 in order are 16 pairs (even pixel in the low half).
                __m512bh values = _mm512_cvtne2ps_pbh(_mm512_maskz_loadu_ps(high, row + TILE), _mm512_maskz_loadu_ps(low, row));
                _mm512_store_si512(by_channel[o], (__m512i)values);
            }
            for (int q = 0; q < TILE; q++) {
                uint32_t *target = pairs + (size_t)(q0 + q) * padded_out + o0;
                for (int o = 0; o < TILE; o++) target[o] = by_channel[o][q];
            }
        }
    }
}

size_t wb_conv_amx_gradient_units(int in_channels, int out_channels, int kernel) {
    return (size_t)kernel * kernel * blocks_of(in_channels, 2 * TILE) * blocks_of(out_channels, 2 * TILE);
}

WB_AMX void wb_conv_amx_weight_gradient(const uint16_t *planes, size_t planes_stride, const uint32_t *pairs,
                                        size_t pairs_stride, int images, int in_channels, int out_channels, int height,
                                        int width, int kernel, int first_unit, int units, int accumulate, float *sums) {
    wb_amx_configure_tiles();
    const int taps = kernel * kernel, pixels = height * width;
    const int padded_channels = (int)blocks_of(in_channels, TILE) * TILE, padded_out = (int)blocks_of(out_channels, TILE) * TILE;
    const int channel_pairs = (int)blocks_of(in_channels, 2 * TILE), out_pairs = (int)blocks_of(out_channels, 2 * TILE);
    const int padded_pixels = (int)blocks_of(pixels, 2 * TILE) * 2 * TILE;
    const plane_layout l = gradient_layout(in_channels, height, width, kernel);
    const size_t plane = l.plane, a_stride = plane * sizeof(uint16_t), b_stride = (size_t)padded_out * sizeof(uint32_t);
    const size_t ldc = (size_t)padded_out * sizeof(float);
    for (int n = 0; n < images; n++) {
        const uint16_t *image_planes = planes + (size_t)n * planes_stride;
        const uint32_t *image_pairs = pairs + (size_t)n * pairs_stride;
        for (int p0 = 0; p0 < padded_pixels; p0 += GRADIENT_CHUNK) {
            const int end = padded_pixels - p0 < GRADIENT_CHUNK ? padded_pixels : p0 + GRADIENT_CHUNK;
            const int fresh = !accumulate && n == 0 && p0 == 0;
            for (int u = first_unit; u < first_unit + units; u++) {
                const int t = u / (channel_pairs * out_pairs), cb = u / out_pairs % channel_pairs, ob = u % out_pairs;
                const int two_rows = cb * 2 * TILE + TILE < padded_channels, two_cols = ob * 2 * TILE + TILE < padded_out;
                float *c = sums + ((size_t)t * padded_channels + (size_t)cb * 2 * TILE) * padded_out + (size_t)ob * 2 * TILE;
                if (fresh) {
                    _tile_zero(0);
                    _tile_zero(1);
                    _tile_zero(2);
                    _tile_zero(3);
                } else {
                    _tile_loadd(0, c, ldc);
                    if (two_cols) _tile_loadd(1, c + TILE, ldc);
                    if (two_rows) _tile_loadd(2, c + TILE * (size_t)padded_out, ldc);
                    if (two_rows && two_cols) _tile_loadd(3, c + TILE * (size_t)padded_out + TILE, ldc);
                }
                const uint16_t *a = image_planes + (size_t)cb * 2 * TILE * plane + tap_shift(&l, t / kernel, t % kernel);
                const uint32_t *b = image_pairs + (size_t)ob * 2 * TILE;
                if (two_rows && two_cols) {
                    // Whole blocks: the same products in the same order, without the branches.
                    for (int p = p0; p < end; p += 2 * TILE) {
                        const uint16_t *ap = a + pixel_offset(&l, p);
                        const uint32_t *bp = b + (size_t)(p / 2) * padded_out;
                        _tile_loadd(4, ap, a_stride);
                        _tile_loadd(6, bp, b_stride);
                        _tile_loadd(7, bp + TILE, b_stride);
                        _tile_loadd(5, ap + TILE * plane, a_stride);
                        _tile_dpbf16ps(0, 4, 6);
                        _tile_dpbf16ps(1, 4, 7);
                        _tile_dpbf16ps(2, 5, 6);
                        _tile_dpbf16ps(3, 5, 7);
                    }
                } else {
                    for (int p = p0; p < end; p += 2 * TILE) {
                        const uint16_t *ap = a + pixel_offset(&l, p);
                        _tile_loadd(4, ap, a_stride);
                        _tile_loadd(6, b + (size_t)(p / 2) * padded_out, b_stride);
                        _tile_dpbf16ps(0, 4, 6);
                        if (two_cols) {
                            _tile_loadd(7, b + (size_t)(p / 2) * padded_out + TILE, b_stride);
                            _tile_dpbf16ps(1, 4, 7);
                        }
                        if (two_rows) {
                            _tile_loadd(5, ap + TILE * plane, a_stride);
                            _tile_dpbf16ps(2, 5, 6);
                            if (two_cols) _tile_dpbf16ps(3, 5, 7);
                        }
                    }
                }
                _tile_stored(0, c, ldc);
                if (two_cols) _tile_stored(1, c + TILE, ldc);
                if (two_rows) _tile_stored(2, c + TILE * (size_t)padded_out, ldc);
                if (two_rows && two_cols) _tile_stored(3, c + TILE * (size_t)padded_out + TILE, ldc);
            }
        }
    }
}

void wb_conv_amx_weight_gradient_store(const float *sums, int in_channels, int out_channels, int kernel, float *gradient) {
    const int taps = kernel * kernel;
    const size_t padded_in = blocks_of(in_channels, TILE) * TILE, padded_out = blocks_of(out_channels, TILE) * TILE;
    // Blocks of 16 outputs × 16 inputs × the taps: reads of 16 outputs at a time, writes of 16 rows
    // of 16·taps values, both within the cache.
    for (int o0 = 0; o0 < out_channels; o0 += TILE) {
        int outputs = out_channels - o0 < TILE ? out_channels - o0 : TILE;
        for (int c0 = 0; c0 < in_channels; c0 += TILE) {
            int inputs = in_channels - c0 < TILE ? in_channels - c0 : TILE;
            for (int t = 0; t < taps; t++) {
                for (int c = c0; c < c0 + inputs; c++) {
                    const float *row = sums + ((size_t)t * padded_in + c) * padded_out + o0;
                    for (int o = 0; o < outputs; o++) gradient[((size_t)(o0 + o) * in_channels + c) * taps + t] = row[o];
                }
            }
        }
    }
}

#else

void wb_conv_amx_weight_gradient_store(const float *sums, int in_channels, int out_channels, int kernel, float *gradient) { abort(); }

size_t wb_conv_amx_weights_count(int out_channels, int in_channels, int kernel) { return 0; }
void wb_conv_amx_weights(const float *weights, int out_channels, int in_channels, int kernel, int flipped, uint32_t *packed) {
    abort();
}
size_t wb_conv_amx_band_count(int in_channels, int width, int kernel, int padding, int rows) { return 0; }
void wb_conv_amx_forward(const float *image, int in_channels, int height, int width, int kernel, int padding, int reflect,
                         const uint32_t *weights, const float *bias, int out_channels, int first_row, int rows,
                         uint32_t *band, float *out) { abort(); }
size_t wb_conv_amx_gradient_planes_count(int in_channels, int height, int width, int kernel) { return 0; }
void wb_conv_amx_gradient_planes(const float *image, int in_channels, int height, int width, int kernel, int reflect,
                                 int first_channel, int channels, uint16_t *planes) { abort(); }
size_t wb_conv_amx_gradient_pairs_count(int out_channels, int height, int width) { return 0; }
void wb_conv_amx_gradient_pairs(const float *gradient, int out_channels, int height, int width, uint32_t *pairs) { abort(); }
size_t wb_conv_amx_gradient_units(int in_channels, int out_channels, int kernel) { return 0; }
void wb_conv_amx_weight_gradient(const uint16_t *planes, size_t planes_stride, const uint32_t *pairs, size_t pairs_stride,
                                 int images, int in_channels, int out_channels, int height, int width, int kernel,
                                 int first_unit, int units, int accumulate, float *sums) { abort(); }

#endif
