#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include "cpu.h"

/* -1 until detected; relaxed atomics: every thread computes the same value. */
static _Atomic int detected = -1;
static _Atomic int forced_generic = 0;

static int detect(void) {
    const char *env = getenv("POCKET_TTS_FORCE_GENERIC");
    if (env && *env && strcmp(env, "0") != 0) return 0;
#ifdef PT_HAVE_X86
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") &&
           __builtin_cpu_supports("f16c");
#else
    return 0;
#endif
}

int pt_cpu_has_avx2(void) {
    int d = atomic_load_explicit(&detected, memory_order_relaxed);
    if (d < 0) {
        d = detect();
        atomic_store_explicit(&detected, d, memory_order_relaxed);
    }
    return d && !atomic_load_explicit(&forced_generic, memory_order_relaxed);
}

void pt_cpu_force_generic(int force) {
    atomic_store_explicit(&forced_generic, force != 0, memory_order_relaxed);
}
