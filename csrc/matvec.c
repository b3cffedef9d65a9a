#include <immintrin.h>
#include <math.h>
#include <string.h>
#include "cpu.h"
#include "linear.h"
#include "matvec.h"

#define PT_ROW_BLOCK 64  /* rows widened to fp32 per sgemm call in the large-T path */
/* Up to this many inputs, streaming rows (L3-resident for the per-layer matrices) beats
 * sgemm, whose packing dominates at small T. */
#define PT_MATVEC_MAX_T 16
#define PT_MATVEC_MAX_T_F32 16

static inline float f16_to_f32(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000) << 16, exp = (h >> 10) & 0x1f, man = h & 0x3ff, bits;
    if (exp == 0) {
        if (man == 0) {
            bits = sign;
        } else { /* subnormal: renormalise */
            exp = 127 - 15 + 1;
            while (!(man & 0x400)) { man <<= 1; exp--; }
            bits = sign | (exp << 23) | ((man & 0x3ff) << 13);
        }
    } else if (exp == 31) {
        bits = sign | 0x7f800000u | (man << 13);
    } else {
        bits = sign | ((exp + 127 - 15) << 23) | (man << 13);
    }
    union { uint32_t u; float f; } v = {bits};
    return v.f;
}

static inline float bf16_to_f32(uint16_t h) {
    union { uint32_t u; float f; } v = {(uint32_t)h << 16};
    return v.f;
}

static inline float weight_at(const PtMatrix *w, size_t idx) {
    switch (w->dtype) {
    case PT_F16: return f16_to_f32(((const uint16_t *)w->data)[idx]);
    case PT_BF16: return bf16_to_f32(((const uint16_t *)w->data)[idx]);
    case PT_I8: return (float)((const int8_t *)w->data)[idx];
    default: return ((const float *)w->data)[idx];
    }
}

/* Portable path: one row at a time, T dot products per row. */
static void matvec_generic(float *y, const float *x, const PtMatrix *w, int T, int acc) {
    int in = w->in, out = w->out;
    for (int o = 0; o < out; o++) {
        float s[4] = {0, 0, 0, 0};
        for (int t0 = 0; t0 < T; t0 += 4) {
            int tt = T - t0 < 4 ? T - t0 : 4;
            for (int t = 0; t < tt; t++) s[t] = 0.0f;
            for (int i = 0; i < in; i++) {
                float wi = weight_at(w, (size_t)o * in + i);
                for (int t = 0; t < tt; t++) s[t] += wi * x[(size_t)(t0 + t) * in + i];
            }
            float sc = w->dtype == PT_I8 ? w->scale[o] : 1.0f;
            for (int t = 0; t < tt; t++) {
                float *dst = &y[(size_t)(t0 + t) * out + o];
                *dst = acc ? *dst + s[t] * sc : s[t] * sc;
            }
        }
    }
}

#define TARGET __attribute__((target("avx2,fma,f16c")))

TARGET static inline float hsum256(__m256 v) {
    __m128 lo = _mm256_castps256_ps128(v), hi = _mm256_extractf128_ps(v, 1);
    lo = _mm_add_ps(lo, hi);
    lo = _mm_add_ps(lo, _mm_movehl_ps(lo, lo));
    lo = _mm_add_ss(lo, _mm_shuffle_ps(lo, lo, 1));
    return _mm_cvtss_f32(lo);
}

TARGET static inline __m256 load8(const PtMatrix *w, size_t idx) {
    switch (w->dtype) {
    case PT_F16:
        return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)((const uint16_t *)w->data + idx)));
    case PT_BF16: {
        __m128i h = _mm_loadu_si128((const __m128i *)((const uint16_t *)w->data + idx));
        return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
    }
    case PT_I8: {
        __m128i b = _mm_loadl_epi64((const __m128i *)((const int8_t *)w->data + idx));
        return _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(b));
    }
    default:
        return _mm256_loadu_ps((const float *)w->data + idx);
    }
}

/* One weight row against a tile of TT inputs (TT a compile-time constant after inlining, so
 * the accumulators live in registers): each row is loaded once per tile and widened in
 * registers. */
TARGET static inline __attribute__((always_inline)) void row_tile(
    float *sums, const PtMatrix *m, size_t base, const float *x0, int in, const int TT) {
    int i = 0, in8 = in & ~7;
    if (TT == 1) {
        __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps();
        for (; i + 16 <= in; i += 16) {
            a0 = _mm256_fmadd_ps(load8(m, base + i), _mm256_loadu_ps(x0 + i), a0);
            a1 = _mm256_fmadd_ps(load8(m, base + i + 8), _mm256_loadu_ps(x0 + i + 8), a1);
        }
        for (; i < in8; i += 8) a0 = _mm256_fmadd_ps(load8(m, base + i), _mm256_loadu_ps(x0 + i), a0);
        sums[0] = hsum256(_mm256_add_ps(a0, a1));
    } else {
        __m256 a[8];
#pragma GCC unroll 8
        for (int t = 0; t < TT; t++) a[t] = _mm256_setzero_ps();
        for (; i < in8; i += 8) {
            __m256 wv = load8(m, base + i);
#pragma GCC unroll 8
            for (int t = 0; t < TT; t++)
                a[t] = _mm256_fmadd_ps(wv, _mm256_loadu_ps(x0 + (size_t)t * in + i), a[t]);
        }
#pragma GCC unroll 8
        for (int t = 0; t < TT; t++) sums[t] = hsum256(a[t]);
    }
    for (int t = 0; t < TT; t++)
        for (int j = i; j < in; j++) sums[t] += weight_at(m, base + j) * x0[(size_t)t * in + j];
}

#define PT_DEFINE_ROWS(NAME, DTYPE)                                                          \
    TARGET static void NAME(float *y, const float *x, const PtMatrix *w, int T, int acc) {     \
        int in = w->in, out = w->out;                                                          \
        PtMatrix m = *w;                                                                       \
        m.dtype = DTYPE;                                                                       \
        for (int t0 = 0; t0 < T; t0 += 8) {                                                    \
            int tt = T - t0 < 8 ? T - t0 : 8;                                                  \
            const float *x0 = x + (size_t)t0 * in;                                             \
            for (int o = 0; o < out; o++) {                                                    \
                size_t base = (size_t)o * in;                                                  \
                float sums[8];                                                                 \
                switch (tt) {                                                                  \
                case 1: row_tile(sums, &m, base, x0, in, 1); break;                            \
                case 2: row_tile(sums, &m, base, x0, in, 2); break;                            \
                case 3: row_tile(sums, &m, base, x0, in, 3); break;                            \
                case 4: row_tile(sums, &m, base, x0, in, 4); break;                            \
                case 5: row_tile(sums, &m, base, x0, in, 5); break;                            \
                case 6: row_tile(sums, &m, base, x0, in, 6); break;                            \
                case 7: row_tile(sums, &m, base, x0, in, 7); break;                            \
                default: row_tile(sums, &m, base, x0, in, 8); break;                           \
                }                                                                              \
                float sc = DTYPE == PT_I8 ? w->scale[o] : 1.0f;                                \
                for (int t = 0; t < tt; t++) {                                                 \
                    float *dst = &y[(size_t)(t0 + t) * out + o];                               \
                    *dst = acc ? *dst + sums[t] * sc : sums[t] * sc;                           \
                }                                                                              \
            }                                                                                  \
        }                                                                                      \
    }

PT_DEFINE_ROWS(matvec_avx2_f32, PT_F32)
PT_DEFINE_ROWS(matvec_avx2_f16, PT_F16)
PT_DEFINE_ROWS(matvec_avx2_bf16, PT_BF16)
PT_DEFINE_ROWS(matvec_avx2_i8, PT_I8)

size_t pt_matmat_scratch_size(const PtMatrix *w) {
    return w->dtype == PT_F32 ? 0 : (size_t)PT_ROW_BLOCK * w->in;
}

TARGET static void widen_avx2(float *dst, const PtMatrix *w, size_t base, size_t n) {
    size_t i = 0;
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(dst + i, load8(w, base + i));
    for (; i < n; i++) dst[i] = weight_at(w, base + i);
}

static void widen_rows(float *dst, const PtMatrix *w, int o0, int rows) {
    size_t n = (size_t)rows * w->in, base = (size_t)o0 * w->in;
    if (pt_cpu_has_avx2()) widen_avx2(dst, w, base, n);
    else for (size_t i = 0; i < n; i++) dst[i] = weight_at(w, base + i);
    if (w->dtype == PT_I8)
        for (int r = 0; r < rows; r++) {
            float sc = w->scale[o0 + r];
            for (int i = 0; i < w->in; i++) dst[(size_t)r * w->in + i] *= sc;
        }
}

void pt_matmat(float *y, const float *x, const PtMatrix *w, int T, int accumulate,
               float *scratch) {
    int max_t = w->dtype == PT_F32 ? PT_MATVEC_MAX_T_F32 : PT_MATVEC_MAX_T;
    if (T <= max_t || (w->dtype != PT_F32 && scratch == NULL)) {
        if (pt_cpu_has_avx2()) {
            switch (w->dtype) {
            case PT_F16: matvec_avx2_f16(y, x, w, T, accumulate); return;
            case PT_BF16: matvec_avx2_bf16(y, x, w, T, accumulate); return;
            case PT_I8: matvec_avx2_i8(y, x, w, T, accumulate); return;
            default: matvec_avx2_f32(y, x, w, T, accumulate); return;
            }
        }
        matvec_generic(y, x, w, T, accumulate);
        return;
    }
    if (w->dtype == PT_F32) {
        pt_linear(y, x, (const float *)w->data, NULL, T, w->in, w->out, accumulate);
        return;
    }
    /* Widen PT_ROW_BLOCK rows at a time and multiply them against all T inputs: y[:, block]. */
    for (int o0 = 0; o0 < w->out; o0 += PT_ROW_BLOCK) {
        int rows = w->out - o0 < PT_ROW_BLOCK ? w->out - o0 : PT_ROW_BLOCK;
        widen_rows(scratch, w, o0, rows);
        pt_linear_ld(y + o0, w->out, x, scratch, T, w->in, rows, accumulate);
    }
}

void pt_quantize_rows_i8(int8_t *q, float *scale, const float *w, int out, int in) {
    for (int o = 0; o < out; o++) {
        const float *row = w + (size_t)o * in;
        float mx = 0.0f;
        for (int i = 0; i < in; i++) mx = fabsf(row[i]) > mx ? fabsf(row[i]) : mx;
        float s = mx > 0 ? mx / 127.0f : 1.0f, inv = 1.0f / s;
        scale[o] = s;
        for (int i = 0; i < in; i++) {
            float v = rintf(row[i] * inv);
            q[(size_t)o * in + i] = (int8_t)(v > 127 ? 127 : (v < -127 ? -127 : v));
        }
    }
}
