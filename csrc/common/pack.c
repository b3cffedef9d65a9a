#include <math.h>
#include <string.h>
#include "gemm.h"
#include "pack.h"

static inline uint32_t bits_of(float x) {
    uint32_t u;
    memcpy(&u, &x, 4);
    return u;
}

uint16_t pt_f32_to_bf16(float x) {
    uint32_t u = bits_of(x);
    if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16) | 0x0040u); /* quiet NaN */
    return (uint16_t)((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);
}

uint16_t pt_f32_to_f16(float x) {
    uint32_t u = bits_of(x), sign = (u >> 16) & 0x8000u, a = u & 0x7fffffffu;
    if (a > 0x7f800000u) { /* NaN: keep the top payload bits, as numpy does */
        uint32_t h = 0x7c00u | ((a & 0x7fffffu) >> 13);
        return (uint16_t)(sign | (h == 0x7c00u ? h + 1u : h));
    }
    if (a >= 0x477ff000u) return (uint16_t)(sign | 0x7c00u); /* rounds past 65504: inf */
    if (a >= 0x38800000u) { /* normal half: drop 13 mantissa bits, round to nearest even */
        uint32_t r = a + 0x0fffu + ((a >> 13) & 1u);
        return (uint16_t)(sign | ((r - 0x38000000u) >> 13));
    }
    if (a < 0x33000000u) return (uint16_t)sign; /* below half the smallest subnormal: 0 */
    /* subnormal half: value = m * 2^-24, m = round(a_value * 2^24) */
    uint32_t e = a >> 23, mant = (a & 0x7fffffu) | 0x800000u;
    int shift = 126 - (int)e; /* mant * 2^(e - 150) * 2^24 = mant >> (126 - e) */
    uint32_t m = mant >> shift, rem = mant & ((1u << shift) - 1u), half = 1u << (shift - 1);
    if (rem > half || (rem == half && (m & 1u))) m++;
    return (uint16_t)(sign | m);
}

void pt_pack_weights(void *dst, float *scale, const float *w, int out, int in, int dtype) {
    int panels = (out + PT_PANEL - 1) / PT_PANEL;
    float sc[PT_PANEL];
    if (dtype == PT_I8) {
        for (int o = 0; o < panels * PT_PANEL; o++) {
            float mx = 0.0f;
            if (o < out)
                for (int i = 0; i < in; i++) mx = fmaxf(mx, fabsf(w[(size_t)o * in + i]));
            scale[o] = o < out ? (mx > 0.0f ? mx / 127.0f : 1.0f) : 0.0f;
        }
    }
    for (int p = 0; p < panels; p++) {
        int cols = out - p * PT_PANEL < PT_PANEL ? out - p * PT_PANEL : PT_PANEL;
        if (dtype == PT_I8)
            for (int j = 0; j < cols; j++) sc[j] = scale[p * PT_PANEL + j];
        /* Rows of the panel are read as 16 sequential streams; the output is written in order. */
        for (int i = 0; i < in; i++) {
            size_t at = ((size_t)p * in + i) * PT_PANEL;
            for (int j = 0; j < PT_PANEL; j++) {
                float v = j < cols ? w[(size_t)(p * PT_PANEL + j) * in + i] : 0.0f;
                switch (dtype) {
                case PT_F16: ((uint16_t *)dst)[at + j] = pt_f32_to_f16(v); break;
                case PT_BF16: ((uint16_t *)dst)[at + j] = pt_f32_to_bf16(v); break;
                case PT_I8: {
                    float q = j < cols ? nearbyintf(v / sc[j]) : 0.0f;
                    q = q > 127.0f ? 127.0f : (q < -127.0f ? -127.0f : q);
                    ((int8_t *)dst)[at + j] = (int8_t)q;
                    break;
                }
                default: ((float *)dst)[at + j] = v;
                }
            }
        }
    }
}

float pt_f16_to_f32(uint16_t h) {
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
