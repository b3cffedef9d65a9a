/* Run-time CPU feature detection: kernels compile for the baseline ISA plus target("avx2,fma,
 * f16c") and target("avx512f,...") variants (x86 only), and pick one here once. */
#ifndef PT_CPU_H
#define PT_CPU_H

#if defined(__x86_64__) || defined(__i386__)
#define PT_HAVE_X86 1
#endif

/* Instruction-set levels, each including the one below. */
enum { PT_ISA_GENERIC = 0, PT_ISA_AVX2 = 1, PT_ISA_AVX512 = 2 };

/* The level the kernels use: the highest the CPU and OS support (AVX2 means AVX2 + FMA + F16C,
 * AVX512 means AVX-512F on top), detected on the first call, capped by the environment read
 * then (POCKET_TTS_FORCE_GENERIC set and not "0": the portable path for the whole process;
 * POCKET_TTS_NO_AVX512 likewise: at most AVX2) and by pt_cpu_cap_isa. */
int pt_cpu_isa(void);
/* 1 when the kernels use AVX2 (or above). */
int pt_cpu_has_avx2(void);
/* 1 when the kernels use AVX-512. Its kernels give the AVX2 kernels' results bit for bit
 * (the same operations per output in the same order, on wider vectors): only speed differs. */
int pt_cpu_has_avx512(void);
/* Tests: use at most `level` from now on (PT_ISA_AVX512 restores detection). */
void pt_cpu_cap_isa(int level);
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
