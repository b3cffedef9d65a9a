/* Run-time CPU feature detection: kernels compile for the baseline ISA plus
 * target("avx2,fma,f16c") variants, and pick one here once. */
#ifndef PT_CPU_H
#define PT_CPU_H

/* 1 when AVX2, FMA and F16C are usable (and not disabled by pt_cpu_force_generic). */
int pt_cpu_has_avx2(void);
/* Force the portable code path (tests exercise both); 0 restores detection. */
void pt_cpu_force_generic(int force);

#endif
