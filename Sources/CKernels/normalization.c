// The passes of batch and group normalisation (with the seed block's dropout and LeakyReLU folded
// in). Sums accumulate in float64 over sixteen independent lanes combined in a fixed order, so they
// vectorise and stay deterministic; one dependent float64 chain per channel was latency-bound and
// made normalisation a fifth of a U-Net training step.
//
// Every function has an AVX-512, an AVX2 and a baseline clone (target_clones); all sum in the same
// order and give the same bits.
#include "ckernels.h"

// A multiply then an add, rounded separately as PyTorch rounds them: no fused multiply-adds. The
// U-Net fixtures' deepest BatchNorm normalises 8 values, and its backward pass amplifies that one
// rounding difference in y = x·a + b far past float32 noise.
#pragma clang fp contract(off)

#if defined(__x86_64__) && defined(__linux__)
#define WB_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define WB_CLONES
#endif

enum { LANES = 16 };

static double combine(const double lanes[LANES]) {
    double pairs[LANES / 2];
    for (int l = 0; l < LANES / 2; l++) pairs[l] = lanes[l] + lanes[l + LANES / 2];
    double quads[4] = {pairs[0] + pairs[4], pairs[1] + pairs[5], pairs[2] + pairs[6], pairs[3] + pairs[7]};
    return (quads[0] + quads[2]) + (quads[1] + quads[3]);
}

WB_CLONES double wb_sum(const float *x, size_t n) {
    double lanes[LANES] = {0};
    size_t i = 0;
    for (; i + LANES <= n; i += LANES)
        for (int l = 0; l < LANES; l++) lanes[l] += (double)x[i + l];
    for (int l = 0; i + l < n; l++) lanes[l] += (double)x[i + l];
    return combine(lanes);
}

WB_CLONES double wb_sum_squared_deviations(const float *x, size_t n, double mean) {
    double lanes[LANES] = {0};
    size_t i = 0;
    for (; i + LANES <= n; i += LANES)
        for (int l = 0; l < LANES; l++) {
            double d = (double)x[i + l] - mean;
            lanes[l] += d * d;
        }
    for (int l = 0; i + l < n; l++) {
        double d = (double)x[i + l] - mean;
        lanes[l] += d * d;
    }
    return combine(lanes);
}

WB_CLONES void wb_affine_dropout_leaky(const float *x, float *y, size_t n, float a, float b, const uint8_t *mask,
                                      float mask_scale, float slope) {
    if (mask) {
        for (size_t i = 0; i < n; i++) {
            float d = mask[i] ? (x[i] * a + b) * mask_scale : 0.0f;
            y[i] = d > 0 ? d : d * slope;
        }
    } else {
        for (size_t i = 0; i < n; i++) {
            float d = x[i] * a + b;
            y[i] = d > 0 ? d : d * slope;
        }
    }
}

// d = g·gain, times leaky'(y) when y is given, times mask·mask_scale when mask is given. The flags
// are compile-time constants at each call below, so every combination gets its own vector loop.
__attribute__((always_inline)) static inline float upstream(const float *g, size_t i, float gain, const float *y,
                                                            float slope, const uint8_t *mask, float mask_scale,
                                                            const int has_y, const int has_mask) {
    float d = g[i] * gain;
    if (has_y) d = d * (y[i] > 0 ? 1.0f : slope);
    if (has_mask) d = mask[i] ? d * mask_scale : 0.0f;
    return d;
}

__attribute__((always_inline)) static inline void gradient_sums(const float *g, const float *x, size_t n, float mean,
                                                                float inv_std, float gain, const float *y, float slope,
                                                                const uint8_t *mask, float mask_scale, double sums[2],
                                                                const int has_y, const int has_mask) {
    double lanes_d[LANES] = {0}, lanes_dx[LANES] = {0};
    size_t i = 0;
    for (; i + LANES <= n; i += LANES)
        for (int l = 0; l < LANES; l++) {
            double d = (double)upstream(g, i + l, gain, y, slope, mask, mask_scale, has_y, has_mask);
            lanes_d[l] += d;
            lanes_dx[l] += d * (double)((x[i + l] - mean) * inv_std);
        }
    for (int l = 0; i + l < n; l++) {
        double d = (double)upstream(g, i + l, gain, y, slope, mask, mask_scale, has_y, has_mask);
        lanes_d[l] += d;
        lanes_dx[l] += d * (double)((x[i + l] - mean) * inv_std);
    }
    sums[0] += combine(lanes_d);
    sums[1] += combine(lanes_dx);
}

WB_CLONES void wb_normalization_gradient_sums(const float *g, const float *x, size_t n, float mean, float inv_std,
                                             float gain, const float *y, float slope, const uint8_t *mask,
                                             float mask_scale, double sums[2]) {
    if (y && mask) gradient_sums(g, x, n, mean, inv_std, gain, y, slope, mask, mask_scale, sums, 1, 1);
    else if (y) gradient_sums(g, x, n, mean, inv_std, gain, y, slope, mask, mask_scale, sums, 1, 0);
    else if (mask) gradient_sums(g, x, n, mean, inv_std, gain, y, slope, mask, mask_scale, sums, 0, 1);
    else gradient_sums(g, x, n, mean, inv_std, gain, y, slope, mask, mask_scale, sums, 0, 0);
}

__attribute__((always_inline)) static inline void input_gradient(const float *g, const float *x, size_t n, float mean,
                                                                 float inv_std, float gain, const float *y, float slope,
                                                                 const uint8_t *mask, float mask_scale, float a,
                                                                 float mean_d, float mean_dx, int batch_statistics,
                                                                 float *gx, const int has_y, const int has_mask) {
    if (batch_statistics) {
        for (size_t i = 0; i < n; i++) {
            float xhat = (x[i] - mean) * inv_std;
            gx[i] = a * (upstream(g, i, gain, y, slope, mask, mask_scale, has_y, has_mask) - mean_d - xhat * mean_dx);
        }
    } else {
        for (size_t i = 0; i < n; i++) gx[i] = a * upstream(g, i, gain, y, slope, mask, mask_scale, has_y, has_mask);
    }
}

WB_CLONES void wb_normalization_input_gradient(const float *g, const float *x, size_t n, float mean, float inv_std,
                                              float gain, const float *y, float slope, const uint8_t *mask,
                                              float mask_scale, float a, float mean_d, float mean_dx, int batch_statistics,
                                              float *gx) {
    if (y && mask)
        input_gradient(g, x, n, mean, inv_std, gain, y, slope, mask, mask_scale, a, mean_d, mean_dx, batch_statistics, gx, 1, 1);
    else if (y)
        input_gradient(g, x, n, mean, inv_std, gain, y, slope, mask, mask_scale, a, mean_d, mean_dx, batch_statistics, gx, 1, 0);
    else if (mask)
        input_gradient(g, x, n, mean, inv_std, gain, y, slope, mask, mask_scale, a, mean_d, mean_dx, batch_statistics, gx, 0, 1);
    else
        input_gradient(g, x, n, mean, inv_std, gain, y, slope, mask, mask_scale, a, mean_d, mean_dx, batch_statistics, gx, 0, 0);
}
