#include <math.h>
#include <string.h>
#include "flow_head.h"
#include "elementwise.h"
#include "gemm.h"

/* y[W.out] = x[W.in] . W^T + b */
static void lin(float *y, const float *x, const PtMatrix *w, const float *b) {
    pt_gemm(y, w->out, x, w->in, w, 1, b, 0);
}

size_t pt_flow_head_scratch_size(const PtFlowHead *f) {
    /* y, sy, x, h, h2, mod(3W), temb(256), tmp(W), v(ldim), cur(ldim) */
    return (size_t)f->width * 10 + 256 + 2 * (size_t)f->ldim + 64;
}

static void time_embed(const PtTimeEmbedWeights *te, float t, int W, float *out, float *emb,
                       float *tmp) {
    for (int k = 0; k < 128; k++) {
        float a = t * te->freqs[k];
        emb[k] = cosf(a);
        emb[k + 128] = sinf(a);
    }
    lin(tmp, emb, &te->w0, te->b0);
    pt_silu(tmp, tmp, (size_t)W);
    lin(out, tmp, &te->w2, te->b2);
    pt_rms_norm_unbiased(out, out, te->alpha, 1, W, 1e-5f);
}

/* v(c, ts, x) -> out[ldim] */
static void velocity(const PtFlowHead *f, const float *c, const float *ts, const float *x,
                     float *out, float *scratch) {
    int W = f->width;
    float *y = scratch, *sy = y + W, *xh = sy + W, *h = xh + W, *h2 = h + W;
    float *mod = h2 + W, *emb = mod + 3 * W, *tmp = emb + 256, *te_sum = tmp + W;
    lin(xh, x, &f->in_w, f->in_b);
    lin(y, c, &f->cond_w, f->cond_b);
    if (f->num_time_conds) {
        /* Reference: y + (sum_j emb_j(t_j)) / n_t. */
        for (int j = 0; j < f->num_time_conds; j++) {
            time_embed(&f->time[j], ts[j], W, h, emb, tmp);
            if (j == 0) memcpy(te_sum, h, W * sizeof(float));
            else for (int i = 0; i < W; i++) te_sum[i] += h[i];
        }
        float n = (float)f->num_time_conds;
        for (int i = 0; i < W; i++) y[i] = y[i] + te_sum[i] / n;
    }
    pt_silu(sy, y, (size_t)W);
    for (int b = 0; b < f->depth; b++) {
        const PtResBlockWeights *rb = &f->blocks[b];
        lin(mod, sy, &rb->ada_w, rb->ada_b);
        const float *shift = mod, *scale = mod + W, *gate = mod + 2 * W;
        pt_layer_norm(h, xh, rb->ln_w, rb->ln_b, 1, W, 1e-6f);
        for (int i = 0; i < W; i++) h[i] = h[i] * (1.0f + scale[i]) + shift[i];
        lin(h2, h, &rb->w0, rb->b0);
        pt_silu(h2, h2, (size_t)W);
        lin(h, h2, &rb->w2, rb->b2);
        for (int i = 0; i < W; i++) xh[i] = xh[i] + gate[i] * h[i];
    }
    lin(mod, sy, &f->final_ada_w, f->final_ada_b);
    pt_layer_norm(h, xh, NULL, NULL, 1, W, 1e-6f);
    for (int i = 0; i < W; i++) h[i] = h[i] * (1.0f + mod[W + i]) + mod[i];
    lin(out, h, &f->final_w, f->final_b);
}

void pt_flow_head_sample(const PtFlowHead *f, const float *c, const float *noise, int steps,
                         float *latent, float *scratch) {
    int L = f->ldim;
    float *v = scratch + (size_t)f->width * 10 + 256 + 32;
    float ts[2] = {0.0f, 0.0f};
    switch (f->type) {
    case PT_FLOW_DRIFTING:
        velocity(f, c, ts, noise, latent, scratch);
        break;
    case PT_FLOW_POINTWISE:
        velocity(f, c, ts, noise, v, scratch);
        for (int i = 0; i < L; i++) latent[i] = noise[i] + v[i];
        break;
    case PT_FLOW_MATCHING:
    case PT_FLOW_LSD:
    default: {
        float *cur = v + L;
        memcpy(cur, noise, L * sizeof(float));
        float n = (float)steps;
        for (int i = 0; i < steps; i++) {
            if (f->type == PT_FLOW_LSD) {
                ts[0] = (float)((double)i / steps);
                ts[1] = (float)((double)(i + 1) / steps);
            } else {
                ts[0] = (float)((double)i / steps);
            }
            velocity(f, c, ts, cur, v, scratch);
            for (int k = 0; k < L; k++) cur[k] = cur[k] + v[k] / n;
        }
        memcpy(latent, cur, L * sizeof(float));
    }
    }
}
