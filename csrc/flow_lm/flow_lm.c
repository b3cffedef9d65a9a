#include <math.h>
#include <stdint.h>
#include <string.h>
#include "flow_lm.h"
#include "elementwise.h"
#include "gemm.h"
#include "pack.h"

size_t pt_flow_lm_scratch_size(const PtFlowLM *m, int T, int n, int max_keys) {
    size_t d = (size_t)m->shape.d_model;
    size_t tr = pt_transformer_scratch_size(&m->shape, T, max_keys);
    size_t head = pt_flow_head_scratch_size(&m->head, n);
    size_t emb = (size_t)T * (size_t)m->embed_dim;
    size_t a = tr > head ? tr : head;
    a = a > emb ? a : emb;
    /* + x[T, d]; h[n, d], cond[n, cond], input latents, noise, outputs [n, ldim] of a step;
     * the per-layer cache pointers and segment sizes; alignment slack */
    size_t per_row = 2 * d + 4 * (size_t)m->ldim + (size_t)m->cond_dim + 5;
    return a + (size_t)T * d + (size_t)n * per_row + 96;
}

int pt_flow_lm_embed_tokens(const PtFlowLM *m, const long long *tokens, int T, int n_bins,
                            float *out, float *scratch) {
    int r = m->embed_dim;
    float *rows = m->embed_proj.data ? scratch : out;
    for (int t = 0; t < T; t++) {
        if (tokens[t] < 0 || tokens[t] > n_bins) return -1;
        if (m->embed_f16) {
            const uint16_t *h = (const uint16_t *)m->embed + (size_t)tokens[t] * r;
            for (int i = 0; i < r; i++) rows[(size_t)t * r + i] = pt_f16_to_f32(h[i]);
        } else {
            memcpy(rows + (size_t)t * r, (const float *)m->embed + (size_t)tokens[t] * r,
                   r * sizeof(float));
        }
    }
    if (m->embed_proj.data) pt_gemm(out, m->shape.d_model, rows, r, &m->embed_proj, T, NULL, 0);
    return 0;
}

int pt_flow_lm_prefill(const PtFlowLM *m, PtKVCache *caches, float *x, int T, float *scratch) {
    for (int l = 0; l < m->num_layers; l++) {
        PtKVCache *cache = &caches[l];
        if (pt_transformer_layer(&m->shape, &m->layers[l], &cache, &T, 1, 0, x, T, scratch) != 0)
            return -1;
    }
    return 0;
}

/* p rounded up to a 64-byte boundary (scratch has slack for it). */
static float *align64(float *p) {
    return p + (16 - ((uintptr_t)p / sizeof(float)) % 16) % 16;
}

int pt_flow_lm_step(const PtFlowLM *m, const PtFlowLMRow *rows, int n, int steps,
                    float *scratch) {
    int d = m->shape.d_model, L = m->ldim, C = m->cond_dim, NL = m->num_layers;
    int T = 0;
    for (int i = 0; i < n; i++) {
        T += rows[i].T + 1;
        for (int l = 0; l < NL; l++)
            if (rows[i].caches[l].offset + rows[i].T + 1 > rows[i].caches[l].capacity) return -1;
    }
    /* Scratch layout: x[T, d], h[n, d], in / noise / out [n, L], cond[n, C], the segment
     * table, then the transformer's and the head's work area. */
    float *x = scratch, *h = x + (size_t)T * d, *in = h + (size_t)n * d;
    float *noise = in + (size_t)n * L, *out = noise + (size_t)n * L;
    float *cond = out + (size_t)n * L;
    float *table = align64(cond + (size_t)n * C);
    PtKVCache **caches = (PtKVCache **)(void *)table;
    int *seg_rows = (int *)(void *)(caches + n);
    float *work = align64((float *)(void *)(seg_rows + 2 * n));
    /* Row order of x: first the streams without a prefix (each alone would run one-row
     * products: they take the one-row order), then those with one (alone, a multi-row call:
     * the multi-row order). ord[j] is the stream of segment j. */
    int *ord = seg_rows + n;
    int n_plain = 0, gemv_rows = 0;
    for (int i = 0; i < n; i++)
        if (rows[i].T == 0) ord[n_plain++] = i;
    gemv_rows = n_plain;
    for (int i = 0, j = n_plain; i < n; i++)
        if (rows[i].T > 0) ord[j++] = i;
    for (int j = 0, r = 0; j < n; j++) {
        int i = ord[j];
        const PtFlowLMRow *s = &rows[i];
        if (s->T > 0) memcpy(x + (size_t)r * d, s->prefix, (size_t)s->T * d * sizeof(float));
        r += s->T;
        for (int k = 0; k < L; k++) {
            float v = s->latent_in[k];
            in[(size_t)i * L + k] = isnan(v) ? m->bos_emb[k] : v;
        }
        memcpy(noise + (size_t)i * L, s->noise, L * sizeof(float));
        /* The stream's input latent row, after its prefix rows (one row per call, as alone). */
        pt_gemm(x + (size_t)r * d, d, in + (size_t)i * L, L, &m->input_linear, 1, NULL, 0);
        r += 1;
        seg_rows[j] = s->T + 1;
        caches[j] = NULL;
    }
    for (int l = 0; l < NL; l++) {
        for (int j = 0; j < n; j++) caches[j] = &rows[ord[j]].caches[l];
        if (pt_transformer_layer(&m->shape, &m->layers[l], caches, seg_rows, n, gemv_rows, x, T,
                                 work) != 0)
            return -1;
    }
    /* Each stream's last row: out_norm (-> z_proj) = cond; the products over the n rows
     * at once, in the one-row order (alone, a stream runs them on its one row). */
    for (int j = 0, r = 0; j < n; j++) {
        r += seg_rows[j];
        pt_layer_norm(h + (size_t)ord[j] * d, x + (size_t)(r - 1) * d, m->out_norm_w,
                      m->out_norm_b, 1, d, 1e-5f);
    }
    int was = pt_gemm_set_gemv_order(1);
    if (m->z_proj.data) pt_gemm(cond, C, h, d, &m->z_proj, n, NULL, 0);
    else memcpy(cond, h, (size_t)n * d * sizeof(float));
    for (int i = 0; i < n; i++) {
        const float *c = cond + (size_t)i * C;
        double acc = 0.0;
        for (int k = 0; k < C; k++) acc += (double)m->eos_w[k] * c[k];
        *rows[i].eos_logit = m->eos_b + (float)acc;
        memcpy(rows[i].cond, c, C * sizeof(float));
    }
    pt_flow_head_sample(&m->head, cond, noise, n, steps, out, work);
    pt_gemm_set_gemv_order(was);
    for (int i = 0; i < n; i++) memcpy(rows[i].latent_out, out + (size_t)i * L, L * sizeof(float));
    return 0;
}
