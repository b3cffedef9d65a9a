/* Run-time CPU feature detection: kernels compile for the baseline ISA plus
 * target("avx2,fma,f16c") variants (x86 only), and pick one here once. */
#ifndef PT_CPU_H
#define PT_CPU_H

#if defined(__x86_64__) || defined(__i386__)
#define PT_HAVE_X86 1
#endif

/* 1 when AVX2, FMA and F16C are usable and selected. Detected on the first call; the
 * environment variable POCKET_TTS_FORCE_GENERIC (set, not "0") read then keeps every kernel
 * on its portable path for the whole process (runs the test suite on the fallback). */
int pt_cpu_has_avx2(void);
/* Force the portable code path (tests exercise both); 0 restores detection. */
void pt_cpu_force_generic(int force);

/* One spin-wait iteration: a pause hint to the core (x86 pause, aarch64 yield), else nothing. */
static inline void pt_cpu_relax(void) {
#if defined(PT_HAVE_X86)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ volatile("yield");
#endif
}

#endif
