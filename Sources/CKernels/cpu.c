#include "ckernels.h"

#include <stdlib.h>
#include <string.h>

// -1 until the first call; the answer never changes, so a race only computes it twice.
// WORKBENCH_AVX512=0 in the environment turns the AVX-512 kernels off (the tests run the baseline
// paths that way on machines that have AVX-512).
static int avx512_state = -1;

int wb_avx512_available(void) {
    int state = __atomic_load_n(&avx512_state, __ATOMIC_RELAXED);
    if (state < 0) {
#if defined(__x86_64__)
        __builtin_cpu_init();
        state = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vl") &&
                __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512dq") &&
                __builtin_cpu_supports("fma");
        const char *setting = getenv("WORKBENCH_AVX512");
        if (setting && strcmp(setting, "0") == 0) state = 0;
#else
        state = 0;
#endif
        __atomic_store_n(&avx512_state, state, __ATOMIC_RELAXED);
    }
    return state;
}

static int bf16_state = -1;

int wb_avx512_bf16_available(void) {
    int state = __atomic_load_n(&bf16_state, __ATOMIC_RELAXED);
    if (state < 0) {
#if defined(__x86_64__)
        state = wb_avx512_available() && __builtin_cpu_supports("avx512bf16");
#else
        state = 0;
#endif
        __atomic_store_n(&bf16_state, state, __ATOMIC_RELAXED);
    }
    return state;
}

static int avx2_state = -1;

// WORKBENCH_AVX2=0 turns the AVX2 kernels off too (the tests' scalar pass).
int wb_avx2_available(void) {
    int state = __atomic_load_n(&avx2_state, __ATOMIC_RELAXED);
    if (state < 0) {
#if defined(__x86_64__)
        __builtin_cpu_init();
        state = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
        const char *setting = getenv("WORKBENCH_AVX2");
        if (setting && strcmp(setting, "0") == 0) state = 0;
#else
        state = 0;
#endif
        __atomic_store_n(&avx2_state, state, __ATOMIC_RELAXED);
    }
    return state;
}
