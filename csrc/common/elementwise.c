#include <math.h>
#include <stddef.h>
#include <string.h>
#include "elementwise.h"
#include "cpu.h"
#include "vmath.h"

void pt_layer_norm(float *y, const float *x, const float *w, const float *b, int T, int C,
                   float eps) {
    for (int t = 0; t < T; t++) {
        const float *xr = x + (size_t)t * C;
        float *yr = y + (size_t)t * C;
        /* Two-pass in double: the reference's float32 reductions are reproduced to ~1 ulp. */
        double mean = 0.0, var = 0.0;
        for (int c = 0; c < C; c++) mean += xr[c];
        mean /= C;
        for (int c = 0; c < C; c++) {
            double d = xr[c] - mean;
            var += d * d;
        }
        var /= C;
        float inv = (float)(1.0 / sqrt(var + eps));
        float m = (float)mean;
        if (w) {
            for (int c = 0; c < C; c++) yr[c] = (xr[c] - m) * inv * w[c] + (b ? b[c] : 0.0f);
        } else {
            for (int c = 0; c < C; c++) yr[c] = (xr[c] - m) * inv;
        }
    }
}

void pt_rms_norm_unbiased(float *y, const float *x, const float *alpha, int T, int C, float eps) {
    for (int t = 0; t < T; t++) {
        const float *xr = x + (size_t)t * C;
        float *yr = y + (size_t)t * C;
        double mean = 0.0, var = 0.0;
        for (int c = 0; c < C; c++) mean += xr[c];
        mean /= C;
        for (int c = 0; c < C; c++) {
            double d = xr[c] - mean;
            var += d * d;
        }
        var /= (C - 1);
        float inv = (float)(1.0 / sqrt(var + eps));
        for (int c = 0; c < C; c++) yr[c] = xr[c] * (alpha[c] * inv);
    }
}

static void gelu_tanh_scalar(float *x, size_t n) {
    const float k0 = 0.7978845608028654f, k1 = 0.044715f;
    for (size_t i = 0; i < n; i++) {
        float v = x[i];
        x[i] = 0.5f * v * (1.0f + tanhf(k0 * (v + k1 * v * v * v)));
    }
}

#ifdef PT_HAVE_X86
/* Same formula, 8 lanes, a = |u|: tanh(a) = -expm1(-2a) / (2 + expm1(-2a)) below 0.5 and
 * 1 - 2q / (1 + q), q = exp(-2a), above (each form free of cancellation where it is used;
 * ~1-2 ulp like tanhf), sign restored, then 0.5 v (1 + tanh u) with the reference's rounding
 * of 1 + tanh (for very negative v it loses the same bits the reference loses). */
__attribute__((target("avx2,fma"))) static void gelu_tanh_avx2(float *x, size_t n) {
    const __m256 k0 = _mm256_set1_ps(0.7978845608028654f), k1 = _mm256_set1_ps(0.044715f);
    const __m256 sign = _mm256_set1_ps(-0.0f), one = _mm256_set1_ps(1.0f);
    const __m256 two = _mm256_set1_ps(2.0f), half = _mm256_set1_ps(0.5f);
    float tail[8] = {0};
    for (size_t i = 0; i < n; i += 8) {
        /* The last partial block goes through the same lanes (via a copy): an element's result
         * never depends on where it sits in the array. */
        float *p = x + i;
        size_t len = n - i < 8 ? n - i : 8;
        if (len < 8) {
            memcpy(tail, p, len * sizeof(float));
            p = tail;
        }
        __m256 v = _mm256_loadu_ps(p);
        __m256 cube = _mm256_mul_ps(_mm256_mul_ps(_mm256_mul_ps(k1, v), v), v);
        __m256 u = _mm256_mul_ps(k0, _mm256_add_ps(v, cube));
        __m256 a = _mm256_andnot_ps(sign, u);
        __m256 m2a = _mm256_mul_ps(_mm256_set1_ps(-2.0f), a);
        __m256 e = pt_expm1_neg8(m2a);
        __m256 t_small = _mm256_div_ps(_mm256_xor_ps(e, sign), _mm256_add_ps(two, e));
        __m256 q = pt_exp_neg8(m2a);
        __m256 t_large =
            _mm256_sub_ps(one, _mm256_div_ps(_mm256_add_ps(q, q), _mm256_add_ps(one, q)));
        __m256 t = _mm256_blendv_ps(t_large, t_small, _mm256_cmp_ps(a, half, _CMP_LT_OQ));
        t = _mm256_or_ps(t, _mm256_and_ps(u, sign));
        __m256 y = _mm256_mul_ps(_mm256_mul_ps(half, v), _mm256_add_ps(one, t));
        _mm256_storeu_ps(p, y);
        if (len < 8) memcpy(x + i, tail, len * sizeof(float));
    }
}
#endif

void pt_gelu_tanh(float *x, size_t n) {
#ifdef PT_HAVE_X86
    if (pt_cpu_has_avx2()) {
        gelu_tanh_avx2(x, n);
        return;
    }
#endif
    gelu_tanh_scalar(x, n);
}

void pt_silu(float *y, const float *x, size_t n) {
    for (size_t i = 0; i < n; i++) {
        float v = x[i];
        y[i] = v / (1.0f + expf(-v));
    }
}

static void elu_generic(float *y, const float *x, size_t n) {
    for (size_t i = 0; i < n; i++) {
        float v = x[i];
        y[i] = v > 0.0f ? v : expm1f(v);
    }
}

#ifdef PT_HAVE_X86
/* ELU on 8 lanes: x above 0, expm1(x) (vmath.h) at or below. */
__attribute__((target("avx2,fma"))) static inline __m256 elu8(__m256 x) {
    __m256 pos = _mm256_cmp_ps(x, _mm256_setzero_ps(), _CMP_GT_OQ);
    return _mm256_blendv_ps(pt_expm1_neg8(x), x, pos);
}

__attribute__((target("avx2,fma"))) static void elu_avx2(float *y, const float *x, size_t n) {
    size_t i = 0;
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(y + i, elu8(_mm256_loadu_ps(x + i)));
    if (i < n) {
        float buf[8] = {0};
        memcpy(buf, x + i, (n - i) * sizeof(float));
        _mm256_storeu_ps(buf, elu8(_mm256_loadu_ps(buf)));
        memcpy(y + i, buf, (n - i) * sizeof(float));
    }
}
#endif

void pt_elu(float *y, const float *x, size_t n) {
#ifdef PT_HAVE_X86
    if (pt_cpu_has_avx2()) {
        elu_avx2(y, x, n);
        return;
    }
#endif
    elu_generic(y, x, n);
}
