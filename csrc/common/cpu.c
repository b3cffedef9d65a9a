#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include "cpu.h"

/* -1 until detected; relaxed atomics: every thread computes the same value. */
static _Atomic int detected = -1;
static _Atomic int cap = PT_ISA_AVX512;

static int env_set(const char *name) {
    const char *env = getenv(name);
    return env && *env && strcmp(env, "0") != 0;
}

static int detect(void) {
    if (env_set("POCKET_TTS_FORCE_GENERIC")) return PT_ISA_GENERIC;
#ifdef PT_HAVE_X86
    /* libgcc's checks include the OS's XSAVE support for the ymm / zmm registers. */
    __builtin_cpu_init();
    if (!(__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") &&
          __builtin_cpu_supports("f16c")))
        return PT_ISA_GENERIC;
    if (__builtin_cpu_supports("avx512f") && !env_set("POCKET_TTS_NO_AVX512"))
        return PT_ISA_AVX512;
    return PT_ISA_AVX2;
#else
    return PT_ISA_GENERIC;
#endif
}

int pt_cpu_isa(void) {
    int d = atomic_load_explicit(&detected, memory_order_relaxed);
    if (d < 0) {
        d = detect();
        atomic_store_explicit(&detected, d, memory_order_relaxed);
    }
    int c = atomic_load_explicit(&cap, memory_order_relaxed);
    return d < c ? d : c;
}

int pt_cpu_has_avx2(void) { return pt_cpu_isa() >= PT_ISA_AVX2; }

int pt_cpu_has_avx512(void) { return pt_cpu_isa() >= PT_ISA_AVX512; }

void pt_cpu_cap_isa(int level) {
    atomic_store_explicit(&cap, level, memory_order_relaxed);
}

void pt_cpu_force_generic(int force) {
    pt_cpu_cap_isa(force ? PT_ISA_GENERIC : PT_ISA_AVX512);
}
