// Activations that need exp(), sixteen lanes at a time. A scalar expf call per element made SiLU
// and its backward an eighth of a DDPM training step.
//
// exp is Cephes' single-precision method: x = n·ln2 + r with |r| ≤ ln2/2, a degree-6 polynomial
// for e^r, and 2^n applied by vscalefps; its error is within 2 ulp over the range used here (tested
// against float64 in TensorTests). CPUs without AVX-512 run the same arithmetic eight lanes at a
// time with AVX2 (2^n applied as two exact powers of two, which rounds once, as vscalefps does, so
// both paths give the same bits); without AVX2 the loops fall back to libm's expf.
#include "ckernels.h"

#include <math.h>

// Products and sums rounded one by one (the explicit FMAs of exp16 excepted), like the ops they replace.
#pragma clang fp contract(off)

#define avx512 wb_avx512_available

#if defined(__x86_64__)
#include <immintrin.h>

#define WB_AVX512 __attribute__((target("avx512f,avx512vl,avx512bw,avx512dq,fma")))

WB_AVX512 static inline __m512 exp16(__m512 x) {
    // Past ±104, n would leave vscalefps's useful range; there exp is already 0 or +inf in float,
    // which the clamped value still gives. The constant comes first so that a NaN input (returned
    // by min/max when it is their second operand) stays NaN.
    x = _mm512_min_ps(_mm512_set1_ps(104.0f), _mm512_max_ps(_mm512_set1_ps(-104.0f), x));
    __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504088896341f)),
                                    _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693359375f), x);
    r = _mm512_fnmadd_ps(n, _mm512_set1_ps(-2.12194440e-4f), r);
    __m512 p = _mm512_set1_ps(1.9875691500e-4f);
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.3981999507e-3f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(8.3334519073e-3f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(4.1665795894e-2f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.6666665459e-1f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(5.0000001201e-1f));
    __m512 y = _mm512_fmadd_ps(_mm512_mul_ps(p, r), r, _mm512_add_ps(r, _mm512_set1_ps(1.0f)));
    return _mm512_scalef_ps(y, n);
}

static inline __mmask16 tail_mask(size_t remaining) {
    return remaining >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << remaining) - 1);
}

// y = numerator / (1 + exp(-x)) with numerator 1 (sigmoid) or x (SiLU).
WB_AVX512 static void logistic16(const float *x, float *y, size_t n, int times_x) {
    const __m512 one = _mm512_set1_ps(1.0f);
    for (size_t i = 0; i < n; i += 16) {
        __mmask16 m = tail_mask(n - i);
        __m512 v = _mm512_maskz_loadu_ps(m, x + i);
        __m512 e = exp16(_mm512_sub_ps(_mm512_setzero_ps(), v));
        _mm512_mask_storeu_ps(y + i, m, _mm512_div_ps(times_x ? v : one, _mm512_add_ps(one, e)));
    }
}

// g · SiLU'(v) = g · s · (1 + v · (1 − s)), s = sigmoid(v).
WB_AVX512 static inline __m512 silu_gradient16(__m512 v, __m512 gv) {
    const __m512 one = _mm512_set1_ps(1.0f);
    __m512 s = _mm512_div_ps(one, _mm512_add_ps(one, exp16(_mm512_sub_ps(_mm512_setzero_ps(), v))));
    __m512 slope = _mm512_fmadd_ps(v, _mm512_sub_ps(one, s), one);
    return _mm512_mul_ps(gv, _mm512_mul_ps(s, slope));
}

WB_AVX512 static void silu_backward16(const float *x, const float *g, float *dx, size_t n) {
    for (size_t i = 0; i < n; i += 16) {
        __mmask16 m = tail_mask(n - i);
        __m512 v = _mm512_maskz_loadu_ps(m, x + i), gv = _mm512_maskz_loadu_ps(m, g + i);
        _mm512_mask_storeu_ps(dx + i, m, silu_gradient16(v, gv));
    }
}

// u = (x·a + b) + shift, z = mask ? u·mask_scale : 0 for elements i…i+15 (lanes m): each step rounded
// as the separate ops round it (no fused multiply-adds), so the fused block equals the op-by-op one
// and the backward pass recomputes z bit for bit.
WB_AVX512 static inline __m512 affine_dropout16(const float *x, const uint8_t *mask, size_t i, __mmask16 m, float a, float b,
                                                float shift, float mask_scale) {
    __m512 u = _mm512_add_ps(_mm512_add_ps(_mm512_mul_ps(_mm512_maskz_loadu_ps(m, x + i), _mm512_set1_ps(a)),
                                           _mm512_set1_ps(b)), _mm512_set1_ps(shift));
    if (!mask) return u;
    __mmask16 kept = _mm512_test_epi32_mask(_mm512_cvtepu8_epi32(_mm_maskz_loadu_epi8(m, mask + i)), _mm512_set1_epi32(0xFF));
    return _mm512_maskz_mul_ps(kept, u, _mm512_set1_ps(mask_scale));
}

WB_AVX512 static void affine_dropout_silu16(const float *x, float *y, size_t n, float a, float b, float shift,
                                            const uint8_t *mask, float mask_scale) {
    const __m512 one = _mm512_set1_ps(1.0f);
    for (size_t i = 0; i < n; i += 16) {
        __mmask16 m = tail_mask(n - i);
        __m512 u = affine_dropout16(x, mask, i, m, a, b, shift, mask_scale);
        __m512 e = exp16(_mm512_sub_ps(_mm512_setzero_ps(), u));
        _mm512_mask_storeu_ps(y + i, m, _mm512_div_ps(u, _mm512_add_ps(one, e)));
    }
}

WB_AVX512 static void affine_dropout_silu_backward16(const float *x, const float *g, float *dz, size_t n, float a, float b,
                                                     float shift, const uint8_t *mask, float mask_scale) {
    for (size_t i = 0; i < n; i += 16) {
        __mmask16 m = tail_mask(n - i);
        __m512 u = affine_dropout16(x, mask, i, m, a, b, shift, mask_scale);
        _mm512_mask_storeu_ps(dz + i, m, silu_gradient16(u, _mm512_maskz_loadu_ps(m, g + i)));
    }
}

#define WB_AVX2 __attribute__((target("avx2,fma")))

WB_AVX2 static inline __m256 exp8(__m256 x) {
    x = _mm256_min_ps(_mm256_set1_ps(104.0f), _mm256_max_ps(_mm256_set1_ps(-104.0f), x));
    __m256 n = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.44269504088896341f)),
                               _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693359375f), x);
    r = _mm256_fnmadd_ps(n, _mm256_set1_ps(-2.12194440e-4f), r);
    __m256 p = _mm256_set1_ps(1.9875691500e-4f);
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.3981999507e-3f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(8.3334519073e-3f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(4.1665795894e-2f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.6666665459e-1f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(5.0000001201e-1f));
    __m256 y = _mm256_fmadd_ps(_mm256_mul_ps(p, r), r, _mm256_add_ps(r, _mm256_set1_ps(1.0f)));
    // |n| ≤ 150: 2^n = 2^(n/2 rounded down) · 2^(the rest), both normal; the first product is exact.
    __m256i whole = _mm256_cvtps_epi32(n);
    __m256i half = _mm256_srai_epi32(whole, 1), rest = _mm256_sub_epi32(whole, half);
    const __m256i bias = _mm256_set1_epi32(127);
    __m256 first = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(half, bias), 23));
    __m256 second = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(rest, bias), 23));
    return _mm256_mul_ps(_mm256_mul_ps(y, first), second);
}

// Lanes [0, remaining) of eight.
WB_AVX2 static inline __m256i lanes8(size_t remaining) {
    int count = remaining >= 8 ? 8 : (int)remaining;
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(count), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

WB_AVX2 static void logistic8(const float *x, float *y, size_t n, int times_x) {
    const __m256 one = _mm256_set1_ps(1.0f);
    for (size_t i = 0; i < n; i += 8) {
        __m256i m = lanes8(n - i);
        __m256 v = _mm256_maskload_ps(x + i, m);
        __m256 e = exp8(_mm256_sub_ps(_mm256_setzero_ps(), v));
        _mm256_maskstore_ps(y + i, m, _mm256_div_ps(times_x ? v : one, _mm256_add_ps(one, e)));
    }
}

// g · SiLU'(v), as silu_gradient16.
WB_AVX2 static inline __m256 silu_gradient8(__m256 v, __m256 gv) {
    const __m256 one = _mm256_set1_ps(1.0f);
    __m256 s = _mm256_div_ps(one, _mm256_add_ps(one, exp8(_mm256_sub_ps(_mm256_setzero_ps(), v))));
    __m256 slope = _mm256_fmadd_ps(v, _mm256_sub_ps(one, s), one);
    return _mm256_mul_ps(gv, _mm256_mul_ps(s, slope));
}

WB_AVX2 static void silu_backward8(const float *x, const float *g, float *dx, size_t n) {
    for (size_t i = 0; i < n; i += 8) {
        __m256i m = lanes8(n - i);
        _mm256_maskstore_ps(dx + i, m, silu_gradient8(_mm256_maskload_ps(x + i, m), _mm256_maskload_ps(g + i, m)));
    }
}

// affine_dropout16 eight lanes at a time.
WB_AVX2 static inline __m256 affine_dropout8(const float *x, const uint8_t *mask, size_t i, size_t n, __m256i m, float a,
                                             float b, float shift, float mask_scale) {
    __m256 u = _mm256_add_ps(_mm256_add_ps(_mm256_mul_ps(_mm256_maskload_ps(x + i, m), _mm256_set1_ps(a)), _mm256_set1_ps(b)),
                             _mm256_set1_ps(shift));
    if (!mask) return u;
    uint8_t bytes[8] = {0};
    for (size_t l = 0; l < 8 && i + l < n; l++) bytes[l] = mask[i + l];
    __m256i kept = _mm256_cmpgt_epi32(_mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)bytes)), _mm256_setzero_si256());
    return _mm256_and_ps(_mm256_castsi256_ps(kept), _mm256_mul_ps(u, _mm256_set1_ps(mask_scale)));
}

WB_AVX2 static void affine_dropout_silu8(const float *x, float *y, size_t n, float a, float b, float shift,
                                         const uint8_t *mask, float mask_scale) {
    const __m256 one = _mm256_set1_ps(1.0f);
    for (size_t i = 0; i < n; i += 8) {
        __m256i m = lanes8(n - i);
        __m256 u = affine_dropout8(x, mask, i, n, m, a, b, shift, mask_scale);
        __m256 e = exp8(_mm256_sub_ps(_mm256_setzero_ps(), u));
        _mm256_maskstore_ps(y + i, m, _mm256_div_ps(u, _mm256_add_ps(one, e)));
    }
}

WB_AVX2 static void affine_dropout_silu_backward8(const float *x, const float *g, float *dz, size_t n, float a, float b,
                                                  float shift, const uint8_t *mask, float mask_scale) {
    for (size_t i = 0; i < n; i += 8) {
        __m256i m = lanes8(n - i);
        __m256 u = affine_dropout8(x, mask, i, n, m, a, b, shift, mask_scale);
        _mm256_maskstore_ps(dz + i, m, silu_gradient8(u, _mm256_maskload_ps(g + i, m)));
    }
}
#endif

// The scalar form of affine_dropout16.
static inline float affine_dropout(const float *x, const uint8_t *mask, size_t i, float a, float b, float shift,
                                   float mask_scale) {
    float product = x[i] * a;
    float u = (product + b) + shift;
    if (mask) u = mask[i] ? u * mask_scale : 0.0f;
    return u;
}

static inline float silu_gradient(float v, float g) {
    float s = 1.0f / (1.0f + expf(-v));
    return g * (s * (1.0f + v * (1.0f - s)));
}

void wb_affine_dropout_silu(const float *x, float *y, size_t n, float a, float b, float shift, const uint8_t *mask,
                            float mask_scale) {
#if defined(__x86_64__)
    if (avx512()) return affine_dropout_silu16(x, y, n, a, b, shift, mask, mask_scale);
    if (wb_avx2_available()) return affine_dropout_silu8(x, y, n, a, b, shift, mask, mask_scale);
#endif
    for (size_t i = 0; i < n; i++) {
        float u = affine_dropout(x, mask, i, a, b, shift, mask_scale);
        y[i] = u / (1.0f + expf(-u));
    }
}

void wb_affine_dropout_silu_backward(const float *x, const float *g, float *dz, size_t n, float a, float b, float shift,
                                     const uint8_t *mask, float mask_scale) {
#if defined(__x86_64__)
    if (avx512()) return affine_dropout_silu_backward16(x, g, dz, n, a, b, shift, mask, mask_scale);
    if (wb_avx2_available()) return affine_dropout_silu_backward8(x, g, dz, n, a, b, shift, mask, mask_scale);
#endif
    for (size_t i = 0; i < n; i++) dz[i] = silu_gradient(affine_dropout(x, mask, i, a, b, shift, mask_scale), g[i]);
}

void wb_sigmoid(const float *x, float *y, size_t n) {
#if defined(__x86_64__)
    if (avx512()) return logistic16(x, y, n, 0);
    if (wb_avx2_available()) return logistic8(x, y, n, 0);
#endif
    for (size_t i = 0; i < n; i++) y[i] = 1.0f / (1.0f + expf(-x[i]));
}

void wb_silu(const float *x, float *y, size_t n) {
#if defined(__x86_64__)
    if (avx512()) return logistic16(x, y, n, 1);
    if (wb_avx2_available()) return logistic8(x, y, n, 1);
#endif
    for (size_t i = 0; i < n; i++) y[i] = x[i] / (1.0f + expf(-x[i]));
}

void wb_silu_backward(const float *x, const float *g, float *dx, size_t n) {
#if defined(__x86_64__)
    if (avx512()) return silu_backward16(x, g, dx, n);
    if (wb_avx2_available()) return silu_backward8(x, g, dx, n);
#endif
    for (size_t i = 0; i < n; i++) dx[i] = silu_gradient(x[i], g[i]);
}
