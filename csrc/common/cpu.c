#include "cpu.h"

static int detected = -1;
static int forced_generic = 0;

int pt_cpu_has_avx2(void) {
    if (detected < 0) {
#if defined(__x86_64__) || defined(__i386__)
        __builtin_cpu_init();
        detected = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") &&
                   __builtin_cpu_supports("f16c");
#else
        detected = 0;
#endif
    }
    return detected && !forced_generic;
}

void pt_cpu_force_generic(int force) { forced_generic = force; }
