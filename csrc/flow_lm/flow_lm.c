#include <math.h>
#include <string.h>
#include "flow_lm.h"
#include "elementwise.h"
#include "gemm.h"
#include "pack.h"

size_t pt_flow_lm_scratch_size(const PtFlowLM *m, int T, int max_keys) {
    size_t d = (size_t)m->shape.d_model;
    size_t tr = pt_transformer_scratch_size(&m->shape, T, max_keys);
    size_t head = pt_flow_head_scratch_size(&m->head);
    size_t emb = (size_t)T * (size_t)m->embed_dim;
    size_t a = tr > head ? tr : head;
    a = a > emb ? a : emb;
    /* + x[T, d] and h[d] of a step, its input latent and alignment slack */
    return a + (size_t)T * d + 2 * d + (size_t)m->ldim + 64;
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
    for (int l = 0; l < m->num_layers; l++)
        if (pt_transformer_layer(&m->shape, &m->layers[l], &caches[l], x, T, scratch) != 0)
            return -1;
    return 0;
}

int pt_flow_lm_step(const PtFlowLM *m, PtKVCache *caches, const float *prefix, int T,
                    const float *latent_in, const float *noise, int steps, float *latent_out,
                    float *cond, float *eos_logit, float *scratch) {
    int d = m->shape.d_model, L = m->ldim;
    float *x = scratch, *h = x + (size_t)(T + 1) * d, *in = h + d, *work = in + L + 32;
    if (T > 0) memcpy(x, prefix, (size_t)T * d * sizeof(float));
    float *row = x + (size_t)T * d;
    for (int i = 0; i < L; i++) in[i] = isnan(latent_in[i]) ? m->bos_emb[i] : latent_in[i];
    pt_gemm(row, d, in, L, &m->input_linear, 1, NULL, 0);
    if (pt_flow_lm_prefill(m, caches, x, T + 1, work) != 0) return -1;
    pt_layer_norm(h, row, m->out_norm_w, m->out_norm_b, 1, d, 1e-5f);
    if (m->z_proj.data) pt_gemm(cond, m->cond_dim, h, d, &m->z_proj, 1, NULL, 0);
    else memcpy(cond, h, d * sizeof(float));
    double acc = 0.0;
    for (int i = 0; i < m->cond_dim; i++) acc += (double)m->eos_w[i] * cond[i];
    *eos_logit = m->eos_b + (float)acc;
    pt_flow_head_sample(&m->head, cond, noise, steps, latent_out, work);
    return 0;
}
