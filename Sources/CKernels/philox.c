// Dropout keep masks from Philox-4x32-10, sixteen counters at a time (the scalar generator is
// Sources/Tensor/Random/Philox.swift). Integer arithmetic only, so the vector and scalar paths give
// the same bytes; drawing masks one block at a time was a twentieth of a U-Net training step.
#include "ckernels.h"

#include <string.h>

enum { PHILOX_M0 = 0xD2511F53u, PHILOX_M1 = 0xCD9E8D57u, PHILOX_W0 = 0x9E3779B9u, PHILOX_W1 = 0xBB67AE85u };

static void philox_block(uint64_t index, uint64_t stream, uint64_t seed, uint32_t out[4]) {
    uint32_t c0 = (uint32_t)index, c1 = (uint32_t)(index >> 32), c2 = (uint32_t)stream, c3 = (uint32_t)(stream >> 32);
    uint32_t k0 = (uint32_t)seed, k1 = (uint32_t)(seed >> 32);
    for (int round = 0; round < 10; round++) {
        if (round > 0) {
            k0 += PHILOX_W0;
            k1 += PHILOX_W1;
        }
        uint64_t p0 = (uint64_t)PHILOX_M0 * c0, p1 = (uint64_t)PHILOX_M1 * c2;
        uint32_t n0 = (uint32_t)(p1 >> 32) ^ c1 ^ k0, n2 = (uint32_t)(p0 >> 32) ^ c3 ^ k1;
        c0 = n0;
        c1 = (uint32_t)p1;
        c2 = n2;
        c3 = (uint32_t)p0;
    }
    out[0] = c0, out[1] = c1, out[2] = c2, out[3] = c3;
}

// Block b gives elements 8b…8b+7: the low then high 16 bits of its four words, kept when below threshold.
static void scalar_masks(uint64_t seed, uint64_t stream, uint64_t first_block, size_t blocks, size_t count,
                         uint32_t threshold, uint8_t *out) {
    for (size_t b = 0; b < blocks; b++) {
        uint32_t words[4];
        philox_block(first_block + b, stream, seed, words);
        for (size_t lane = 0; lane < 8 && b * 8 + lane < count; lane++) {
            uint32_t bits = (words[lane >> 1] >> (16 * (lane & 1))) & 0xFFFF;
            out[b * 8 + lane] = bits < threshold;
        }
    }
}

#if defined(__x86_64__)
#include <immintrin.h>

#define WB_AVX512 __attribute__((target("avx512f,avx512vl,avx512bw,avx512dq")))

// (hi, lo) of 32×32-bit products, lane by lane: vpmuludq multiplies the even lanes, so the odd
// lanes go through a second multiply of the inputs shifted down.
WB_AVX512 static inline void mulhilo16(__m512i multiplier, __m512i c, __m512i *hi, __m512i *lo) {
    __m512i even = _mm512_mul_epu32(multiplier, c);
    __m512i odd = _mm512_mul_epu32(multiplier, _mm512_srli_epi64(c, 32));
    *lo = _mm512_mask_blend_epi32(0xAAAA, even, _mm512_slli_epi64(odd, 32));
    *hi = _mm512_mask_blend_epi32(0xAAAA, _mm512_srli_epi64(even, 32), odd);
}

// Sixteen blocks (128 mask bytes) starting at block `first`.
WB_AVX512 static void masks16(uint64_t seed, uint64_t stream, uint64_t first, uint32_t limit, uint8_t *out) {
    const __m512i threshold = _mm512_set1_epi16((short)limit);
    uint32_t low[16], high[16];
    for (int j = 0; j < 16; j++) {
        low[j] = (uint32_t)(first + j);
        high[j] = (uint32_t)((first + j) >> 32);
    }
    __m512i c0 = _mm512_loadu_si512(low), c1 = _mm512_loadu_si512(high);
    __m512i c2 = _mm512_set1_epi32((int)(uint32_t)stream), c3 = _mm512_set1_epi32((int)(uint32_t)(stream >> 32));
    uint32_t k0 = (uint32_t)seed, k1 = (uint32_t)(seed >> 32);
    const __m512i m0 = _mm512_set1_epi64(PHILOX_M0), m1 = _mm512_set1_epi64(PHILOX_M1);
    for (int round = 0; round < 10; round++) {
        if (round > 0) {
            k0 += PHILOX_W0;
            k1 += PHILOX_W1;
        }
        __m512i hi0, lo0, hi1, lo1;
        mulhilo16(m0, c0, &hi0, &lo0);
        mulhilo16(m1, c2, &hi1, &lo1);
        c0 = _mm512_xor_si512(_mm512_xor_si512(hi1, c1), _mm512_set1_epi32((int)k0));
        c1 = lo1;
        c2 = _mm512_xor_si512(_mm512_xor_si512(hi0, c3), _mm512_set1_epi32((int)k1));
        c3 = lo0;
    }
    // Word k of block j holds elements 2k (low half) and 2k+1 (high half): compare 16-bit halves,
    // turn the masks into 0/1 bytes, then interleave so that block j's eight bytes are adjacent.
    const __m256i one = _mm256_set1_epi8(1);
    __m256i b0 = _mm256_maskz_mov_epi8(_mm512_cmplt_epu16_mask(c0, threshold), one);
    __m256i b1 = _mm256_maskz_mov_epi8(_mm512_cmplt_epu16_mask(c1, threshold), one);
    __m256i b2 = _mm256_maskz_mov_epi8(_mm512_cmplt_epu16_mask(c2, threshold), one);
    __m256i b3 = _mm256_maskz_mov_epi8(_mm512_cmplt_epu16_mask(c3, threshold), one);
    __m512i z01 = _mm512_inserti64x4(_mm512_castsi256_si512(b0), b1, 1);
    __m512i z23 = _mm512_inserti64x4(_mm512_castsi256_si512(b2), b3, 1);
    uint16_t first_half[32], second_half[32];
    for (int w = 0; w < 32; w++) {
        first_half[w] = (uint16_t)((w & 3) * 16 + (w >> 2));
        second_half[w] = (uint16_t)((w & 3) * 16 + 8 + (w >> 2));
    }
    _mm512_storeu_si512(out, _mm512_permutex2var_epi16(z01, _mm512_loadu_si512(first_half), z23));
    _mm512_storeu_si512(out + 64, _mm512_permutex2var_epi16(z01, _mm512_loadu_si512(second_half), z23));
}

#define WB_AVX2 __attribute__((target("avx2")))

// The same rounds eight blocks at a time in AVX2 registers; the mask bytes are read off the words.
WB_AVX2 static void masks8(uint64_t seed, uint64_t stream, uint64_t first, uint32_t limit, uint8_t *out) {
    uint32_t low[8], high[8];
    for (int j = 0; j < 8; j++) {
        low[j] = (uint32_t)(first + j);
        high[j] = (uint32_t)((first + j) >> 32);
    }
    __m256i c0 = _mm256_loadu_si256((const __m256i *)low), c1 = _mm256_loadu_si256((const __m256i *)high);
    __m256i c2 = _mm256_set1_epi32((int)(uint32_t)stream), c3 = _mm256_set1_epi32((int)(uint32_t)(stream >> 32));
    uint32_t k0 = (uint32_t)seed, k1 = (uint32_t)(seed >> 32);
    const __m256i m0 = _mm256_set1_epi64x(PHILOX_M0), m1 = _mm256_set1_epi64x(PHILOX_M1);
    for (int round = 0; round < 10; round++) {
        if (round > 0) {
            k0 += PHILOX_W0;
            k1 += PHILOX_W1;
        }
        __m256i even0 = _mm256_mul_epu32(m0, c0), odd0 = _mm256_mul_epu32(m0, _mm256_srli_epi64(c0, 32));
        __m256i even1 = _mm256_mul_epu32(m1, c2), odd1 = _mm256_mul_epu32(m1, _mm256_srli_epi64(c2, 32));
        __m256i lo0 = _mm256_blend_epi32(even0, _mm256_slli_epi64(odd0, 32), 0xAA);
        __m256i hi0 = _mm256_blend_epi32(_mm256_srli_epi64(even0, 32), odd0, 0xAA);
        __m256i lo1 = _mm256_blend_epi32(even1, _mm256_slli_epi64(odd1, 32), 0xAA);
        __m256i hi1 = _mm256_blend_epi32(_mm256_srli_epi64(even1, 32), odd1, 0xAA);
        c0 = _mm256_xor_si256(_mm256_xor_si256(hi1, c1), _mm256_set1_epi32((int)k0));
        c1 = lo1;
        c2 = _mm256_xor_si256(_mm256_xor_si256(hi0, c3), _mm256_set1_epi32((int)k1));
        c3 = lo0;
    }
    uint32_t words[4][8];
    _mm256_storeu_si256((__m256i *)words[0], c0);
    _mm256_storeu_si256((__m256i *)words[1], c1);
    _mm256_storeu_si256((__m256i *)words[2], c2);
    _mm256_storeu_si256((__m256i *)words[3], c3);
    for (int j = 0; j < 8; j++)
        for (int lane = 0; lane < 8; lane++)
            out[j * 8 + lane] = ((words[lane >> 1][j] >> (16 * (lane & 1))) & 0xFFFF) < limit;
}
#endif

void wb_philox_keep_mask(uint64_t seed, uint64_t stream, uint64_t first_block, size_t blocks, size_t count,
                         uint32_t threshold, uint8_t *out) {
    if (count > blocks * 8) count = blocks * 8;
    if (threshold >= 65536 || threshold == 0) {
        memset(out, threshold != 0, count);
        return;
    }
    size_t b = 0;
#if defined(__x86_64__)
    if (wb_avx512_available()) {
        for (; (b + 16) * 8 <= count; b += 16) masks16(seed, stream, first_block + b, threshold, out + b * 8);
    } else if (wb_avx2_available()) {
        for (; (b + 8) * 8 <= count; b += 8) masks8(seed, stream, first_block + b, threshold, out + b * 8);
    }
#endif
    scalar_masks(seed, stream, first_block + b, blocks - b, count - b * 8, threshold, out + b * 8);
}
