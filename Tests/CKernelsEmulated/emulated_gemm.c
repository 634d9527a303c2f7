// Compiles Sources/CKernels/gemm_driver.c, gemm_avx512.c, gemm_bf16.c and gemm_amx.c with every AVX-512
// and AMX intrinsic they use replaced by a scalar emulation written from the instruction set reference
// (Intel SDM: VCVTNEPS2BF16 rounds to nearest even and flushes denormals to zero; VDPBF16PS adds the
// odd pair's product, then the even one's, each rounded to float32, denormals flushed). AVX2
// intrinsics run natively. The public symbols are renamed emu_… so that they sit beside the real
// ones in one test binary.
//
// TDPBF16PS is emulated as "a block's 32 products summed exactly, rounded once, added to the tile
// element": the hardware's sums agree with no simple model bit for bit (they are within float32's
// summation bound), so the emulated AMX kernel tests the AMX code's tile configuration, panel
// layouts and edge handling on every CPU, and its results against the bound, not against the hardware.
#if defined(__x86_64__)
#include <immintrin.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define WB_AVX512
#define WB_BF16
#define WB_AMX

typedef union { __m512 v; float f[16]; uint32_t u[16]; } emu_zmm;
typedef union { __m256 v; float f[8]; uint32_t u[8]; uint16_t h[16]; } emu_ymm;

static inline __m512 emu_from(const float *f) { emu_zmm z; memcpy(z.f, f, 64); return z.v; }
static inline emu_zmm emu_lanes(__m512 v) { emu_zmm z; z.v = v; return z; }

static inline __m512 emu_setzero_ps(void) { float f[16] = {0}; return emu_from(f); }
static inline __m512i emu_setzero_si512(void) { return (__m512i)emu_setzero_ps(); }
static inline __m512 emu_set1_ps(float x) { float f[16]; for (int i = 0; i < 16; i++) f[i] = x; return emu_from(f); }
static inline __m512i emu_set1_epi32(int x) { emu_zmm z; for (int i = 0; i < 16; i++) z.u[i] = (uint32_t)x; return (__m512i)z.v; }
static inline __m512 emu_load_ps(const void *p) { return emu_from((const float *)p); }
static inline __m512i emu_load_si512(const void *p) { return (__m512i)emu_from((const float *)p); }
static inline void emu_store_ps(void *p, __m512 v) { emu_zmm z = emu_lanes(v); memcpy(p, z.f, 64); }
static inline void emu_store_si512(void *p, __m512i v) { emu_store_ps(p, (__m512)v); }
static inline __m512 emu_maskz_loadu_ps(__mmask16 m, const void *p) {
    emu_zmm z;
    for (int i = 0; i < 16; i++) z.f[i] = (m >> i) & 1 ? ((const float *)p)[i] : 0;
    return z.v;
}
static inline void emu_mask_storeu_ps(void *p, __mmask16 m, __m512 v) {
    emu_zmm z = emu_lanes(v);
    for (int i = 0; i < 16; i++) if ((m >> i) & 1) ((float *)p)[i] = z.f[i];
}
static inline __m512 emu_fmadd_ps(__m512 a, __m512 b, __m512 c) {
    emu_zmm x = emu_lanes(a), y = emu_lanes(b), z = emu_lanes(c);
    for (int i = 0; i < 16; i++) z.f[i] = fmaf(x.f[i], y.f[i], z.f[i]);
    return z.v;
}
static inline __m512 emu_mul_ps(__m512 a, __m512 b) {
    emu_zmm x = emu_lanes(a), y = emu_lanes(b);
    for (int i = 0; i < 16; i++) x.f[i] *= y.f[i];
    return x.v;
}
static inline __m512i emu_or_si512(__m512i a, __m512i b) {
    emu_zmm x = emu_lanes((__m512)a), y = emu_lanes((__m512)b);
    for (int i = 0; i < 16; i++) x.u[i] |= y.u[i];
    return (__m512i)x.v;
}
static inline __m512i emu_slli_epi32(__m512i a, unsigned int count) {
    emu_zmm x = emu_lanes((__m512)a);
    for (int i = 0; i < 16; i++) x.u[i] = count > 31 ? 0 : x.u[i] << count;
    return (__m512i)x.v;
}
static inline __m512 emu_castsi512_ps(__m512i a) { return (__m512)a; }
static inline __m256 emu256_maskz_loadu_ps(__mmask8 m, const void *p) {
    emu_ymm y;
    for (int i = 0; i < 8; i++) y.f[i] = (m >> i) & 1 ? ((const float *)p)[i] : 0;
    return y.v;
}

// VCVTNEPS2BF16 on one value.
static inline uint16_t emu_bf16(float x) {
    uint32_t u;
    memcpy(&u, &x, 4);
    if ((u & 0x7F800000u) == 0) return (uint16_t)((u >> 16) & 0x8000u);          // zero or denormal: signed zero
    if ((u & 0x7F800000u) == 0x7F800000u) {
        if (u & 0x007FFFFFu) return (uint16_t)((u >> 16) | 0x40u);                 // NaN: quiet
        return (uint16_t)(u >> 16);                                               // infinity
    }
    return (uint16_t)((u + 0x7FFFu + ((u >> 16) & 1u)) >> 16);
}
static inline float emu_bf16_value(uint16_t h) {
    uint32_t u = (uint32_t)h << 16;
    if ((u & 0x7F800000u) == 0) u &= 0x80000000u;                                 // DAZ
    float x;
    memcpy(&x, &u, 4);
    return x;
}
static inline __m256bh emu_cvtneps_pbh(__m512 a) {
    emu_zmm x = emu_lanes(a);
    emu_ymm y;
    for (int i = 0; i < 16; i++) y.h[i] = emu_bf16(x.f[i]);
    return (__m256bh)y.v;
}
static inline __m128bh emu256_cvtneps_pbh(__m256 a) {
    emu_ymm x;
    x.v = a;
    uint16_t h[8];
    for (int i = 0; i < 8; i++) h[i] = emu_bf16(x.f[i]);
    __m128i r;
    memcpy(&r, h, 16);
    return (__m128bh)r;
}
static inline __m512i emu_cvtepu16_epi32(__m256i a) {
    emu_ymm x;
    x.v = (__m256)a;
    emu_zmm z;
    for (int i = 0; i < 16; i++) z.u[i] = x.h[i];
    return (__m512i)z.v;
}
static inline __m512 emu_dpbf16_ps(__m512 src, __m512bh a, __m512bh b) {
    emu_zmm c = emu_lanes(src), x = emu_lanes((__m512)a), y = emu_lanes((__m512)b);
    for (int i = 0; i < 16; i++) {
        float sum = c.f[i];
        sum = fmaf(emu_bf16_value((uint16_t)(x.u[i] >> 16)), emu_bf16_value((uint16_t)(y.u[i] >> 16)), sum);
        sum = fmaf(emu_bf16_value((uint16_t)x.u[i]), emu_bf16_value((uint16_t)y.u[i]), sum);
        uint32_t u;
        memcpy(&u, &sum, 4);
        if ((u & 0x7F800000u) == 0) { u &= 0x80000000u; memcpy(&sum, &u, 4); }  // FTZ
        c.f[i] = sum;
    }
    return c.v;
}

static inline __m512bh emu_cvtne2ps_pbh(__m512 high, __m512 low) {
    emu_zmm x = emu_lanes(low), y = emu_lanes(high), z;
    for (int i = 0; i < 8; i++) {
        z.u[i] = emu_bf16(x.f[2 * i]) | (uint32_t)emu_bf16(x.f[2 * i + 1]) << 16;
        z.u[i + 8] = emu_bf16(y.f[2 * i]) | (uint32_t)emu_bf16(y.f[2 * i + 1]) << 16;
    }
    return (__m512bh)z.v;
}
static inline void emu_storeu_si512(void *p, __m512i v) { emu_store_ps(p, (__m512)v); }
static inline __m512i emu_loadu_si512(const void *p) { return (__m512i)emu_from((const float *)p); }
static inline void emu_mask_storeu_epi32(void *p, __mmask16 m, __m512i v) { emu_mask_storeu_ps(p, m, (__m512)v); }
static inline void emu256_mask_storeu_epi16(void *p, __mmask16 m, __m256i v) {
    emu_ymm y;
    y.v = (__m256)v;
    for (int i = 0; i < 16; i++) if ((m >> i) & 1) ((uint16_t *)p)[i] = y.h[i];
}
static inline __m512i emu_permutexvar_epi16(__m512i index, __m512i a) {
    uint16_t i[32], x[32], y[32];
    memcpy(i, &index, 64);
    memcpy(x, &a, 64);
    for (int w = 0; w < 32; w++) y[w] = x[i[w] & 31];
    __m512i r;
    memcpy(&r, y, 64);
    return r;
}

// AMX: eight tiles of up to 16 rows × 64 bytes, shaped by the last LDTILECFG (palette 1).
static __thread struct { uint8_t rows[8]; uint16_t bytes[8]; int loaded; } emu_config;
static __thread uint8_t emu_tile[8][16][64];
static inline void emu_tile_loadconfig(const void *config) {
    const uint8_t *bytes = config;
    if (bytes[0] != 1) abort();
    for (int t = 0; t < 8; t++) {
        emu_config.bytes[t] = (uint16_t)(bytes[16 + 2 * t] | bytes[17 + 2 * t] << 8);
        emu_config.rows[t] = bytes[48 + t];
        if (emu_config.rows[t] > 16 || emu_config.bytes[t] > 64) abort();
    }
    emu_config.loaded = 1;
}
static inline void emu_tile_check(int t) { if (!emu_config.loaded || t < 0 || t > 7) abort(); }
static inline void emu_tile_zero(int t) { emu_tile_check(t); memset(emu_tile[t], 0, sizeof emu_tile[t]); }
static inline void emu_tile_loadd(int t, const void *base, size_t stride) {
    emu_tile_check(t);
    memset(emu_tile[t], 0, sizeof emu_tile[t]);
    for (int r = 0; r < emu_config.rows[t]; r++) memcpy(emu_tile[t][r], (const uint8_t *)base + r * stride, emu_config.bytes[t]);
}
static inline void emu_tile_stored(int t, void *base, size_t stride) {
    emu_tile_check(t);
    for (int r = 0; r < emu_config.rows[t]; r++) memcpy((uint8_t *)base + r * stride, emu_tile[t][r], emu_config.bytes[t]);
}
static inline void emu_tile_dpbf16ps(int d, int a, int b) {
    emu_tile_check(d), emu_tile_check(a), emu_tile_check(b);
    int pairs = emu_config.bytes[a] / 4;
    if (emu_config.rows[d] != emu_config.rows[a] || emu_config.bytes[d] != emu_config.bytes[b] || emu_config.rows[b] != pairs) abort();
    for (int m = 0; m < emu_config.rows[d]; m++) {
        for (int n = 0; n < emu_config.bytes[d] / 4; n++) {
            double sum = 0;
            for (int q = 0; q < pairs; q++) {
                uint32_t x, y;
                memcpy(&x, &emu_tile[a][m][4 * q], 4);
                memcpy(&y, &emu_tile[b][q][4 * n], 4);
                sum += (double)emu_bf16_value((uint16_t)x) * emu_bf16_value((uint16_t)y);
                sum += (double)emu_bf16_value((uint16_t)(x >> 16)) * emu_bf16_value((uint16_t)(y >> 16));
            }
            float c;
            memcpy(&c, &emu_tile[d][m][4 * n], 4);
            c = c + (float)sum;
            uint32_t u;
            memcpy(&u, &c, 4);
            if ((u & 0x7F800000u) == 0) { u &= 0x80000000u; memcpy(&c, &u, 4); }  // FTZ
            memcpy(&emu_tile[d][m][4 * n], &c, 4);
        }
    }
}

#undef _mm512_setzero_ps
#define _mm512_setzero_ps emu_setzero_ps
#undef _mm512_setzero_si512
#define _mm512_setzero_si512 emu_setzero_si512
#undef _mm512_set1_ps
#define _mm512_set1_ps emu_set1_ps
#undef _mm512_set1_epi32
#define _mm512_set1_epi32 emu_set1_epi32
#undef _mm512_load_ps
#define _mm512_load_ps emu_load_ps
#undef _mm512_load_si512
#define _mm512_load_si512 emu_load_si512
#undef _mm512_store_ps
#define _mm512_store_ps emu_store_ps
#undef _mm512_stream_ps
#define _mm512_stream_ps emu_store_ps
#undef _mm512_store_si512
#define _mm512_store_si512 emu_store_si512
#undef _mm512_maskz_loadu_ps
#define _mm512_maskz_loadu_ps emu_maskz_loadu_ps
#undef _mm512_mask_storeu_ps
#define _mm512_mask_storeu_ps emu_mask_storeu_ps
#undef _mm512_fmadd_ps
#define _mm512_fmadd_ps emu_fmadd_ps
#undef _mm512_mul_ps
#define _mm512_mul_ps emu_mul_ps
#undef _mm512_or_si512
#define _mm512_or_si512 emu_or_si512
#undef _mm512_slli_epi32
#define _mm512_slli_epi32 emu_slli_epi32
#undef _mm512_castsi512_ps
#define _mm512_castsi512_ps emu_castsi512_ps
#undef _mm512_cvtneps_pbh
#define _mm512_cvtneps_pbh emu_cvtneps_pbh
#undef _mm512_cvtepu16_epi32
#define _mm512_cvtepu16_epi32 emu_cvtepu16_epi32
#undef _mm512_dpbf16_ps
#define _mm512_dpbf16_ps emu_dpbf16_ps
#undef _mm256_maskz_loadu_ps
#define _mm256_maskz_loadu_ps emu256_maskz_loadu_ps
#undef _mm256_cvtneps_pbh
#define _mm256_cvtneps_pbh emu256_cvtneps_pbh
#undef _mm512_cvtne2ps_pbh
#define _mm512_cvtne2ps_pbh emu_cvtne2ps_pbh
#undef _mm512_storeu_si512
#define _mm512_storeu_si512 emu_storeu_si512
#undef _mm512_loadu_si512
#define _mm512_loadu_si512 emu_loadu_si512
#undef _mm512_permutexvar_epi16
#define _mm512_permutexvar_epi16 emu_permutexvar_epi16
#undef _mm512_mask_storeu_epi32
#define _mm512_mask_storeu_epi32 emu_mask_storeu_epi32
#undef _mm256_mask_storeu_epi16
#define _mm256_mask_storeu_epi16 emu256_mask_storeu_epi16
#undef _tile_loadconfig
#define _tile_loadconfig emu_tile_loadconfig
#undef _tile_zero
#define _tile_zero emu_tile_zero
#undef _tile_loadd
#define _tile_loadd emu_tile_loadd
#undef _tile_stored
#define _tile_stored emu_tile_stored
#undef _tile_dpbf16ps
#define _tile_dpbf16ps emu_tile_dpbf16ps

#define wb_gemm emu_wb_gemm
#define wb_gemm_packed_a_count emu_wb_gemm_packed_a_count
#define wb_gemm_pack_a emu_wb_gemm_pack_a
#define wb_gemm_packed emu_wb_gemm_packed
#define wb_gemm_packed_columns emu_wb_gemm_packed_columns
#define wb_gemm_run emu_wb_gemm_run
#define wb_gemm_float32_slice emu_wb_gemm_float32_slice
#define wb_gemm_variant_packed_count emu_wb_gemm_variant_packed_count
#define wb_gemm_variant_pack_a emu_wb_gemm_variant_pack_a
#define wb_gemm_bf16 emu_wb_gemm_bf16
#define wb_gemm_bf16_packed_a_count emu_wb_gemm_bf16_packed_a_count
#define wb_gemm_bf16_pack_a emu_wb_gemm_bf16_pack_a
#define wb_gemm_bf16_packed emu_wb_gemm_bf16_packed
#define wb_round_to_bf16 emu_wb_round_to_bf16
#define wb_bf16_pack_b emu_wb_bf16_pack_b
#define wb_bf16_pack_b_columns emu_wb_bf16_pack_b_columns
#define wb_gemm_run_columns emu_wb_gemm_run_columns
#define wb_gemm_bf16_packed_columns emu_wb_gemm_bf16_packed_columns
#define wb_gemm_amx_packed_columns emu_wb_gemm_amx_packed_columns
#define wb_convolution_panel_taps_count emu_wb_convolution_panel_taps_count
#define wb_convolution_panel_taps emu_wb_convolution_panel_taps
#define wb_gemm_amx emu_wb_gemm_amx
#define wb_gemm_amx_packed_a_count emu_wb_gemm_amx_packed_a_count
#define wb_gemm_amx_pack_a emu_wb_gemm_amx_pack_a
#define wb_gemm_amx_packed emu_wb_gemm_amx_packed
#define wb_amx_configure_tiles emu_wb_amx_configure_tiles
#define wb_conv_amx_weights_count emu_wb_conv_amx_weights_count
#define wb_conv_amx_weights emu_wb_conv_amx_weights
#define wb_conv_amx_band_count emu_wb_conv_amx_band_count
#define wb_conv_amx_forward emu_wb_conv_amx_forward
#define wb_conv_amx_gradient_planes_count emu_wb_conv_amx_gradient_planes_count
#define wb_conv_amx_gradient_planes emu_wb_conv_amx_gradient_planes
#define wb_conv_amx_gradient_pairs_count emu_wb_conv_amx_gradient_pairs_count
#define wb_conv_amx_gradient_pairs emu_wb_conv_amx_gradient_pairs
#define wb_conv_amx_gradient_units emu_wb_conv_amx_gradient_units
#define wb_conv_amx_weight_gradient emu_wb_conv_amx_weight_gradient
#define wb_conv_amx_weight_gradient_store emu_wb_conv_amx_weight_gradient_store
#define wb_float32_avx512_variant emu_wb_float32_avx512_variant
#define wb_float32_avx2_variant emu_wb_float32_avx2_variant

#include "../../Sources/CKernels/gemm_driver.c"
#include "../../Sources/CKernels/gemm_avx512.c"
#include "../../Sources/CKernels/gemm_bf16.c"
#include "../../Sources/CKernels/gemm_amx.c"
#include "../../Sources/CKernels/convolution_amx.c"
#endif
