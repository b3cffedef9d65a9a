#include <math.h>
#include <string.h>
#include "flow_head.h"
#include "elementwise.h"
#include "gemm.h"

/* y[M, W.out] = x[M, W.in] . W^T + b */
static void lin(float *y, const float *x, const PtMatrix *w, const float *b, int M) {
    pt_gemm(y, w->out, x, w->in, w, M, b, 0);
}

size_t pt_flow_head_scratch_size(const PtFlowHead *f, int M) {
    /* per row: y, sy, xh, h, h2, mod(3W), v(ldim), cur(ldim); once: temb(256), tmp(W),
     * te(W), te_sum(W) */
    size_t W = (size_t)f->width, L = (size_t)f->ldim;
    return (size_t)M * (8 * W + 2 * L) + 256 + 3 * W + 64;
}

/* out[W] = the time embedding of t (one vector: every row of a call shares the times). */
static void time_embed(const PtTimeEmbedWeights *te, float t, int W, float *out, float *emb,
                       float *tmp) {
    for (int k = 0; k < 128; k++) {
        float a = t * te->freqs[k];
        emb[k] = cosf(a);
        emb[k + 128] = sinf(a);
    }
    lin(tmp, emb, &te->w0, te->b0, 1);
    pt_silu(tmp, tmp, (size_t)W);
    lin(out, tmp, &te->w2, te->b2, 1);
    pt_rms_norm_unbiased(out, out, te->alpha, 1, W, 1e-5f);
}

typedef struct {
    float *y, *sy, *xh, *h, *h2, *mod; /* [M, W] each, mod [M, 3W] */
    float *emb, *tmp, *te, *te_sum;    /* [256], [W], [W], [W] */
} HeadScratch;

static HeadScratch head_scratch(const PtFlowHead *f, int M, float *scratch) {
    size_t MW = (size_t)M * f->width;
    HeadScratch s;
    s.y = scratch;
    s.sy = s.y + MW;
    s.xh = s.sy + MW;
    s.h = s.xh + MW;
    s.h2 = s.h + MW;
    s.mod = s.h2 + MW;
    s.emb = s.mod + 3 * MW;
    s.tmp = s.emb + 256;
    s.te = s.tmp + f->width;
    s.te_sum = s.te + f->width;
    return s;
}

/* out[M, ldim] = v(c[M], ts, x[M]); each row computed as it would be alone. */
static void velocity(const PtFlowHead *f, const float *c, const float *ts, const float *x,
                     float *out, int M, const HeadScratch *s) {
    int W = f->width;
    size_t MW = (size_t)M * W;
    lin(s->xh, x, &f->in_w, f->in_b, M);
    lin(s->y, c, &f->cond_w, f->cond_b, M);
    if (f->num_time_conds) {
        /* Reference: y + (sum_j emb_j(t_j)) / n_t. */
        for (int j = 0; j < f->num_time_conds; j++) {
            time_embed(&f->time[j], ts[j], W, s->te, s->emb, s->tmp);
            if (j == 0) memcpy(s->te_sum, s->te, W * sizeof(float));
            else for (int i = 0; i < W; i++) s->te_sum[i] += s->te[i];
        }
        float n = (float)f->num_time_conds;
        for (int r = 0; r < M; r++)
            for (int i = 0; i < W; i++) s->y[(size_t)r * W + i] += s->te_sum[i] / n;
    }
    pt_silu(s->sy, s->y, MW);
    for (int b = 0; b < f->depth; b++) {
        const PtResBlockWeights *rb = &f->blocks[b];
        lin(s->mod, s->sy, &rb->ada_w, rb->ada_b, M);
        pt_layer_norm(s->h, s->xh, rb->ln_w, rb->ln_b, M, W, 1e-6f);
        for (int r = 0; r < M; r++) {
            const float *shift = s->mod + (size_t)r * 3 * W, *scale = shift + W;
            float *h = s->h + (size_t)r * W;
            for (int i = 0; i < W; i++) h[i] = h[i] * (1.0f + scale[i]) + shift[i];
        }
        lin(s->h2, s->h, &rb->w0, rb->b0, M);
        pt_silu(s->h2, s->h2, MW);
        lin(s->h, s->h2, &rb->w2, rb->b2, M);
        for (int r = 0; r < M; r++) {
            const float *gate = s->mod + (size_t)r * 3 * W + 2 * W;
            float *xh = s->xh + (size_t)r * W;
            const float *h = s->h + (size_t)r * W;
            for (int i = 0; i < W; i++) xh[i] = xh[i] + gate[i] * h[i];
        }
    }
    /* final_ada_w's output is [M, 2W]: mod is [M, 3W]-sized, the rows are 2W apart here. */
    lin(s->mod, s->sy, &f->final_ada_w, f->final_ada_b, M);
    pt_layer_norm(s->h, s->xh, NULL, NULL, M, W, 1e-6f);
    for (int r = 0; r < M; r++) {
        const float *shift = s->mod + (size_t)r * 2 * W, *scale = shift + W;
        float *h = s->h + (size_t)r * W;
        for (int i = 0; i < W; i++) h[i] = h[i] * (1.0f + scale[i]) + shift[i];
    }
    lin(out, s->h, &f->final_w, f->final_b, M);
}

void pt_flow_head_sample(const PtFlowHead *f, const float *c, const float *noise, int M,
                         int steps, float *latent, float *scratch) {
    int L = f->ldim;
    size_t ML = (size_t)M * L;
    HeadScratch s = head_scratch(f, M, scratch);
    float *v = s.te_sum + f->width + 16, *cur = v + ML;
    float ts[2] = {0.0f, 0.0f};
    switch (f->type) {
    case PT_FLOW_DRIFTING:
        velocity(f, c, ts, noise, latent, M, &s);
        break;
    case PT_FLOW_POINTWISE:
        velocity(f, c, ts, noise, v, M, &s);
        for (size_t i = 0; i < ML; i++) latent[i] = noise[i] + v[i];
        break;
    case PT_FLOW_MATCHING:
    case PT_FLOW_LSD:
    default: {
        memcpy(cur, noise, ML * sizeof(float));
        float n = (float)steps;
        for (int i = 0; i < steps; i++) {
            if (f->type == PT_FLOW_LSD) {
                ts[0] = (float)((double)i / steps);
                ts[1] = (float)((double)(i + 1) / steps);
            } else {
                ts[0] = (float)((double)i / steps);
            }
            velocity(f, c, ts, cur, v, M, &s);
            for (size_t k = 0; k < ML; k++) cur[k] = cur[k] + v[k] / n;
        }
        memcpy(latent, cur, ML * sizeof(float));
    }
    }
}
