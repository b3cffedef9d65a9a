/* AVX2/FMA vector exp / expm1 (ELU, GELU) and softmax (header-only, static inline).
 * Accurate to a few ulp (no crude approximations); callers compile them inside functions
 * carrying __attribute__((target("avx2,fma"))) and keep a libm fallback. */
#ifndef PT_VMATH_H
#define PT_VMATH_H
#include "cpu.h"
#ifdef PT_HAVE_X86
#include <immintrin.h>
#include <math.h>

/* Shared core of the exp functions below, for xc already clamped: x = n ln2 + r with
 * |r| <= ln2/2; returns expm1(r) by its Taylor series to r^8 (truncation < 3e-10) and sets
 * *scale = 2^n. */
__attribute__((target("avx2,fma"))) static inline __m256 pt_expm1_reduced8(__m256 xc,
                                                                           __m256 *scale) {
    __m256 n = _mm256_round_ps(_mm256_mul_ps(xc, _mm256_set1_ps(1.44269504088896341f)),
                               _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m256 r = _mm256_fmadd_ps(n, _mm256_set1_ps(-0.693145751953125f), xc);
    r = _mm256_fmadd_ps(n, _mm256_set1_ps(-1.428606820309417232e-6f), r);
    __m256 p = _mm256_set1_ps(1.0f / 40320.0f);
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 5040.0f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 720.0f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 120.0f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 24.0f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 6.0f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(0.5f));
    __m256i bits =
        _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
    *scale = _mm256_castsi256_ps(bits);
    return _mm256_fmadd_ps(_mm256_mul_ps(p, r), r, r);
}

/* expm1 on 8 lanes for x <= 0: expm1(x) = 2^n expm1(r) + (2^n - 1). Below -20 the result is
 * -1 in float anyway. NaN propagates. */
__attribute__((target("avx2,fma"))) static inline __m256 pt_expm1_neg8(__m256 x) {
    const __m256 zero = _mm256_setzero_ps();
    /* max/min return their second operand when one is NaN: keep x second so NaN survives. */
    __m256 xc = _mm256_min_ps(zero, _mm256_max_ps(_mm256_set1_ps(-20.0f), x));
    __m256 scale;
    __m256 p = pt_expm1_reduced8(xc, &scale);
    return _mm256_fmadd_ps(scale, p, _mm256_sub_ps(scale, _mm256_set1_ps(1.0f)));
}

/* exp on 8 lanes for x <= 0 (softmax weights): 2^n (1 + expm1(r)). Below -87 (e^x < 2e-38,
 * under FLT_MIN) the result is 0. */
__attribute__((target("avx2,fma"))) static inline __m256 pt_exp_neg8(__m256 x) {
    const __m256 lo = _mm256_set1_ps(-87.0f);
    __m256 scale;
    __m256 er = _mm256_add_ps(pt_expm1_reduced8(_mm256_max_ps(lo, x), &scale),
                              _mm256_set1_ps(1.0f)); /* e^r in [0.7, 1.42] */
    __m256 y = _mm256_mul_ps(er, scale);
    return _mm256_and_ps(y, _mm256_cmp_ps(x, lo, _CMP_GE_OQ));
}

/* The exponentials of a softmax over sc[0, n), in place, returning 1 / their sum: lanes
 * [n, nb) (nb = n rounded up to 8) are set to -inf first (weight 0), the maximum and the sum run
 * in 8-lane blocks from sc[0], then the lanes are summed pairwise. One order for every caller,
 * so a row's weights depend only on its scores. */
__attribute__((target("avx2,fma"))) static inline float pt_softmax_exp8(float *sc, int n) {
    const int nb = (n + 7) & ~7;
    for (int k = n; k < nb; k++) sc[k] = -INFINITY;
    __m256 mx = _mm256_set1_ps(-INFINITY);
    for (int k = 0; k < nb; k += 8) mx = _mm256_max_ps(mx, _mm256_loadu_ps(sc + k));
    float m8[8];
    _mm256_storeu_ps(m8, mx);
    float m = m8[0];
    for (int i = 1; i < 8; i++) m = m8[i] > m ? m8[i] : m;
    __m256 vm = _mm256_set1_ps(m), sum = _mm256_setzero_ps();
    for (int k = 0; k < nb; k += 8) {
        __m256 e = pt_exp_neg8(_mm256_sub_ps(_mm256_loadu_ps(sc + k), vm));
        _mm256_storeu_ps(sc + k, e);
        sum = _mm256_add_ps(sum, e);
    }
    float s8[8];
    _mm256_storeu_ps(s8, sum);
    return 1.0f / (((s8[0] + s8[1]) + (s8[2] + s8[3])) + ((s8[4] + s8[5]) + (s8[6] + s8[7])));
}
#endif
#endif
