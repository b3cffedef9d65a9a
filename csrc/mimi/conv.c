#include <string.h>
#include "conv.h"
#include "gemm.h"

int pt_conv1d_history(const PtConv1d *c) {
    return (c->kernel - 1) * c->dilation + 1 - c->stride;
}

size_t pt_conv1d_col_size(const PtConv1d *c, int T) {
    if (c->dilation == 1) return 0;
    return (size_t)(T / c->stride) * (size_t)c->kernel * (size_t)c->c_in;
}

void pt_conv1d_reset(const PtConv1d *c, PtConv1dState *s) {
    int P = pt_conv1d_history(c);
    if (P > 0 && s->hist) memset(s->hist, 0, (size_t)P * c->c_in * sizeof(float));
    s->first = 1;
}

/* xp [P + T, C_in] -> y [T/S, C_out]; see conv.h. */
void pt_conv1d_forward(const PtConv1d *c, PtConv1dState *s, float *xp, int T, float *y,
                       float *col, int accumulate) {
    const int P = pt_conv1d_history(c), C = c->c_in, S = c->stride, K = c->kernel;
    const int dil = c->dilation, To = T / S;
    const size_t row = (size_t)C * sizeof(float);
    if (P > 0) {
        if (c->replicate && s->first) {
            for (int p = 0; p < P; p++) memcpy(xp + (size_t)p * C, xp + (size_t)P * C, row);
        } else {
            memcpy(xp, s->hist, (size_t)P * row);
        }
    }
    s->first = 0;
    const float *a = xp;
    int lda = K * C;
    if (dil == 1) {
        /* Window t is the K*C contiguous floats of xp from row t*S: the GEMM reads xp in place
         * with row stride S*C (overlapping rows when K > S), no im2col copy. */
        lda = S * C;
    } else {
        /* im2col: row t = taps k of window t, each a C-wide input row. */
        const size_t width = (size_t)K * C;
        for (int t = 0; t < To; t++) {
            float *dst = col + (size_t)t * width;
            const float *src = xp + (size_t)t * S * C;
            for (int k = 0; k < K; k++)
                memcpy(dst + (size_t)k * C, src + (size_t)k * dil * C, row);
        }
        a = col;
    }
    pt_gemm(y, c->c_out, a, lda, &c->w, To, c->b, accumulate);
    if (P > 0) memcpy(s->hist, xp + (size_t)T * C, (size_t)P * row);
}

int pt_convtr1d_history(const PtConvTr1d *c) { return c->taps - 1; }

/* xp [taps-1 + T, C_in] -> y [T*S, C_out]; see conv.h. */
void pt_convtr1d_forward(const PtConvTr1d *c, float *hist, float *xp, int T, float *y) {
    const int H = c->taps - 1, C = c->c_in, S = c->stride, N = S * c->c_out;
    if (H > 0) memcpy(xp, hist, (size_t)H * C * sizeof(float));
    /* Row t of the stacked input [x[t-H], ..., x[t]] is the taps*C contiguous floats of xp
     * from row t: one GEMM over all taps reads xp in place (overlapping rows). */
    pt_gemm(y, N, xp, C, &c->w, T, c->bn, 0);
    if (H > 0) memcpy(hist, xp + (size_t)T * C, (size_t)H * C * sizeof(float));
}

void pt_convtr1d_depthwise(const float *w, const float *b, int C, int kernel, int stride,
                           float *hist, float *xp, int T, float *y) {
    const int taps = (kernel + stride - 1) / stride, H = taps - 1;
    if (H > 0) memcpy(xp, hist, (size_t)H * C * sizeof(float));
    for (int t = 0; t < T; t++) {
        for (int j = 0; j < stride; j++) {
            float *yr = y + ((size_t)t * stride + j) * C;
            if (b) {
                memcpy(yr, b, (size_t)C * sizeof(float));
            } else {
                memset(yr, 0, (size_t)C * sizeof(float));
            }
            for (int g = 0; g < taps; g++) {
                const float *xr = xp + (size_t)(H + t - g) * C;
                const float *wr = w + ((size_t)g * stride + j) * C;
#pragma omp simd
                for (int ch = 0; ch < C; ch++) yr[ch] += xr[ch] * wr[ch];
            }
        }
    }
    if (H > 0) memcpy(hist, xp + (size_t)T * C, (size_t)H * C * sizeof(float));
}
