// Adam's element-wise update (NN's Adam optimiser), one loop the compiler vectorises: a Swift loop
// over four parameter arrays that may alias ran scalar (3 % of a bf16 training step). Square roots
// and divisions are correctly rounded in every lane and nothing is contracted into FMAs, so the
// AVX-512 build and the portable one give the bits of the scalar formula.
#include "ckernels.h"

#pragma clang fp contract(off)

#define WB_INLINE static inline __attribute__((always_inline))

WB_INLINE void update(float *restrict p, const float *restrict g, float *restrict m, float *restrict v, size_t n,
                      float beta1_complement, float beta2, float beta2_complement, float bias2_sqrt, float epsilon,
                      float step_size, float decay, float shrink) {
    for (size_t i = 0; i < n; i++) {
        float gi = decay != 0 ? g[i] + decay * p[i] : g[i];
        float pi = p[i] * shrink;  // exact when shrink is 1
        float mi = m[i] + beta1_complement * (gi - m[i]);
        float vi = v[i] * beta2 + (beta2_complement * gi) * gi;
        m[i] = mi;
        v[i] = vi;
        p[i] = pi + (-step_size) * (mi / (__builtin_elementwise_sqrt(vi) / bias2_sqrt + epsilon));
    }
}

#if defined(__x86_64__)
__attribute__((target("avx512f,avx512vl,avx512bw,avx512dq"))) static void update_avx512(
    float *p, const float *g, float *m, float *v, size_t n, float b1c, float b2, float b2c, float bias2_sqrt, float epsilon,
    float step_size, float decay, float shrink) {
    update(p, g, m, v, n, b1c, b2, b2c, bias2_sqrt, epsilon, step_size, decay, shrink);
}
#endif

void wb_adam_update(float *p, const float *g, float *m, float *v, size_t n, float beta1_complement, float beta2,
                    float beta2_complement, float bias2_sqrt, float epsilon, float step_size, float decay, float shrink) {
#if defined(__x86_64__)
    if (wb_avx512_available()) {
        update_avx512(p, g, m, v, n, beta1_complement, beta2, beta2_complement, bias2_sqrt, epsilon, step_size, decay, shrink);
        return;
    }
#endif
    update(p, g, m, v, n, beta1_complement, beta2, beta2_complement, bias2_sqrt, epsilon, step_size, decay, shrink);
}
