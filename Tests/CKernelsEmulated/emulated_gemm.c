// Compiles Sources/CKernels/gemm_driver.c, gemm_avx512.c and gemm_bf16.c with every AVX-512 intrinsic they use
// replaced by a scalar emulation written from the instruction set reference (Intel SDM: VCVTNEPS2BF16
// rounds to nearest even and flushes denormals to zero; VDPBF16PS adds the odd pair's product, then
// the even one's, each rounded to float32, denormals flushed). AVX2 intrinsics run natively. The
// public symbols are renamed emu_… so that they sit beside the real ones in one test binary.
#if defined(__x86_64__)
#include <immintrin.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

#define WB_AVX512
#define WB_BF16

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

#define wb_gemm emu_wb_gemm
#define wb_gemm_packed_a_count emu_wb_gemm_packed_a_count
#define wb_gemm_pack_a emu_wb_gemm_pack_a
#define wb_gemm_packed emu_wb_gemm_packed
#define wb_gemm_run emu_wb_gemm_run
#define wb_gemm_variant_packed_count emu_wb_gemm_variant_packed_count
#define wb_gemm_variant_pack_a emu_wb_gemm_variant_pack_a
#define wb_gemm_bf16 emu_wb_gemm_bf16
#define wb_gemm_bf16_packed_a_count emu_wb_gemm_bf16_packed_a_count
#define wb_gemm_bf16_pack_a emu_wb_gemm_bf16_pack_a
#define wb_gemm_bf16_packed emu_wb_gemm_bf16_packed
#define wb_round_to_bf16 emu_wb_round_to_bf16
#define wb_float32_avx512_variant emu_wb_float32_avx512_variant
#define wb_float32_avx2_variant emu_wb_float32_avx2_variant

#include "../../Sources/CKernels/gemm_driver.c"
#include "../../Sources/CKernels/gemm_avx512.c"
#include "../../Sources/CKernels/gemm_bf16.c"
#endif
