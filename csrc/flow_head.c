#include <math.h>
#include <string.h>
#include "flow_head.h"
#include "elementwise.h"
#include "linear.h"

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
    pt_linear(tmp, emb, te->w0, te->b0, 1, 256, W, 0);
    pt_silu(tmp, tmp, (size_t)W);
    pt_linear(out, tmp, te->w2, te->b2, 1, W, W, 0);
    pt_rms_norm_unbiased(out, out, te->alpha, 1, W, 1e-5f);
}

/* v(c, ts, x) -> out[ldim] */
static void velocity(const PtFlowHead *f, const float *c, const float *ts, const float *x,
                     float *out, float *scratch) {
    int W = f->width;
    float *y = scratch, *sy = y + W, *xh = sy + W, *h = xh + W, *h2 = h + W;
    float *mod = h2 + W, *emb = mod + 3 * W, *tmp = emb + 256, *te_sum = tmp + W;
    pt_linear(xh, x, f->in_w, f->in_b, 1, f->ldim, W, 0);
    pt_linear(y, c, f->cond_w, f->cond_b, 1, f->cond_dim, W, 0);
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
        pt_linear(mod, sy, rb->ada_w, rb->ada_b, 1, W, 3 * W, 0);
        const float *shift = mod, *scale = mod + W, *gate = mod + 2 * W;
        pt_layer_norm(h, xh, rb->ln_w, rb->ln_b, 1, W, 1e-6f);
        for (int i = 0; i < W; i++) h[i] = h[i] * (1.0f + scale[i]) + shift[i];
        pt_linear(h2, h, rb->w0, rb->b0, 1, W, W, 0);
        pt_silu(h2, h2, (size_t)W);
        pt_linear(h, h2, rb->w2, rb->b2, 1, W, W, 0);
        for (int i = 0; i < W; i++) xh[i] = xh[i] + gate[i] * h[i];
    }
    pt_linear(mod, sy, f->final_ada_w, f->final_ada_b, 1, W, 2 * W, 0);
    pt_layer_norm(h, xh, NULL, NULL, 1, W, 1e-6f);
    for (int i = 0; i < W; i++) h[i] = h[i] * (1.0f + mod[W + i]) + mod[i];
    pt_linear(out, h, f->final_w, f->final_b, 1, W, f->ldim, 0);
}

void pt_flow_head_sample(const PtFlowHead *f, const float *c, const float *noise, int steps,
                         float *latent, float *scratch) {
    int L = f->ldim;
    float *v = scratch + (size_t)f->width * 10 + 256 + 32;
    float ts[2];
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
