#include "ckernels.h"

#include <stdlib.h>
#include <string.h>

#if defined(__x86_64__)
#include <cpuid.h>
#include <sys/syscall.h>
#include <unistd.h>
#endif

// Each answer is computed on the first call and cached (-1 until then); it never changes, so a
// race only computes it twice. WORKBENCH_AVX512=0 / WORKBENCH_AMX=0 / WORKBENCH_AVX2=0 in the environment turn those
// kernels off (the tests run the baseline paths that way on machines that have them).
static int cached(int *slot, int (*probe)(void)) {
    int state = __atomic_load_n(slot, __ATOMIC_RELAXED);
    if (state < 0) {
        state = probe();
        __atomic_store_n(slot, state, __ATOMIC_RELAXED);
    }
    return state;
}

static int turned_off(const char *variable) {
    const char *setting = getenv(variable);
    return setting && strcmp(setting, "0") == 0;
}

static int probe_avx512(void) {
#if defined(__x86_64__)
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vl") &&
           __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512dq") &&
           __builtin_cpu_supports("fma") && !turned_off("WORKBENCH_AVX512");
#else
    return 0;
#endif
}

static int probe_avx512_bf16(void) {
#if defined(__x86_64__)
    return wb_avx512_available() && __builtin_cpu_supports("avx512bf16");
#else
    return 0;
#endif
}

// AMX-TILE and AMX-BF16 (CPUID leaf 7: EDX bits 24 and 22), and Linux's permission to use the
// tile data state (arch_prctl ARCH_REQ_XCOMP_PERM for XFEATURE_XTILEDATA, Linux 5.16 onwards),
// which is granted per process and fails where the kernel or hypervisor does not enable it.
static int probe_amx(void) {
#if defined(__x86_64__) && defined(SYS_arch_prctl)
    unsigned int eax, ebx, ecx, edx;
    if (!wb_avx512_bf16_available() || turned_off("WORKBENCH_AMX")) return 0;
    if (!__get_cpuid_count(7, 0, &eax, &ebx, &ecx, &edx)) return 0;
    if (!(edx & (1u << 24)) || !(edx & (1u << 22))) return 0;
    enum { ARCH_REQ_XCOMP_PERM = 0x1023, XFEATURE_XTILEDATA = 18 };
    return syscall(SYS_arch_prctl, ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA) == 0;
#else
    return 0;
#endif
}

static int probe_avx2(void) {
#if defined(__x86_64__)
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && !turned_off("WORKBENCH_AVX2");
#else
    return 0;
#endif
}

static int avx512_state = -1, bf16_state = -1, amx_state = -1, avx2_state = -1;

int wb_avx512_available(void) { return cached(&avx512_state, probe_avx512); }
int wb_avx512_bf16_available(void) { return cached(&bf16_state, probe_avx512_bf16); }
int wb_amx_available(void) { return cached(&amx_state, probe_amx); }
int wb_avx2_available(void) { return cached(&avx2_state, probe_avx2); }
