#include <math.h>
#include <stddef.h>
#include "elementwise.h"

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

void pt_gelu_tanh(float *x, size_t n) {
    const float k0 = 0.7978845608028654f, k1 = 0.044715f;
    for (size_t i = 0; i < n; i++) {
        float v = x[i];
        x[i] = 0.5f * v * (1.0f + tanhf(k0 * (v + k1 * v * v * v)));
    }
}

void pt_silu(float *y, const float *x, size_t n) {
    for (size_t i = 0; i < n; i++) {
        float v = x[i];
        y[i] = v / (1.0f + expf(-v));
    }
}

void pt_elu(float *y, const float *x, size_t n) {
    for (size_t i = 0; i < n; i++) {
        float v = x[i];
        y[i] = v > 0.0f ? v : expm1f(v);
    }
}
