/* cpu_isa.c: which x86-64 vector extensions the CPU kernels may use, decided once for every
 * kernel family (elementwise, reductions, random numbers, convolution, optimizers), so that one
 * environment variable caps them all for tests of the narrower paths. */
#include <stdlib.h>
#include <string.h>

#include "tensor/cpu-impl.h"

aqa_cpu_isa aqa__cpu_isa(void) {
    static int cached = -1; /* racing first calls store the same value */
    int level = __atomic_load_n(&cached, __ATOMIC_RELAXED);
    if (level >= 0) return (aqa_cpu_isa)level;
    level = AQA_ISA_BASELINE;
#if defined(__x86_64__) && defined(__GNUC__)
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) {
        level = AQA_ISA_AVX2;
        if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq") &&
            __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl"))
            level = AQA_ISA_AVX512;
    }
#endif
    /* AQA_CPU_ISA=baseline|avx2 caps the level; AQA_CPU_BASELINE=1 is the older spelling of
     * AQA_CPU_ISA=baseline. */
    const char *cap = getenv("AQA_CPU_ISA"), *base = getenv("AQA_CPU_BASELINE");
    if ((cap && (strcmp(cap, "baseline") == 0 || strcmp(cap, "sse") == 0)) || (base && *base && *base != '0'))
        level = AQA_ISA_BASELINE;
    if (cap && strcmp(cap, "avx2") == 0 && level > AQA_ISA_AVX2) level = AQA_ISA_AVX2;
    __atomic_store_n(&cached, level, __ATOMIC_RELAXED);
    return (aqa_cpu_isa)level;
}

const char *aqa__cpu_isa_name(aqa_cpu_isa isa) {
    return isa == AQA_ISA_AVX512 ? "avx512" : isa == AQA_ISA_AVX2 ? "avx2" : "baseline";
}
