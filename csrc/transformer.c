#include <stddef.h>
#include "transformer.h"
#include "elementwise.h"
#include "linear.h"

size_t pt_transformer_scratch_size(const PtTransformerShape *s, int T, int max_keys) {
    size_t attn = (size_t)s->num_heads * s->head_dim;
    size_t qkv = attn + 2 * (size_t)s->num_kv_heads * s->head_dim;
    size_t wide = qkv > (size_t)s->ffn_dim ? qkv : (size_t)s->ffn_dim;
    /* h [T,d] + wide [T, max(qkv, ffn)] + attn_out [T, attn] + scores [max_keys] */
    return (size_t)T * s->d_model + (size_t)T * wide + (size_t)T * attn + (size_t)max_keys + 64;
}

int pt_transformer_layer(const PtTransformerShape *s, const PtLayerWeights *w, PtKVCache *cache,
                         float *x, int T, float *scratch) {
    int d = s->d_model, H = s->num_heads, Hkv = s->num_kv_heads, D = s->head_dim;
    int attn = H * D, kvd = Hkv * D, qkv_dim = attn + 2 * kvd, ff = s->ffn_dim;
    size_t wide = (size_t)(qkv_dim > ff ? qkv_dim : ff);
    float *h = scratch;
    float *big = h + (size_t)T * d;
    float *att = big + (size_t)T * wide;
    float *scores = att + (size_t)T * attn;

    pt_layer_norm(h, x, w->norm1_w, w->norm1_b, T, d, 1e-5f);
    pt_linear(big, h, w->in_proj, NULL, T, d, qkv_dim, 0);
    /* q, k live strided inside big[T, qkv_dim]; rotate each head row in place. */
    for (int t = 0; t < T; t++) {
        float *row = big + (size_t)t * qkv_dim;
        pt_rope(row, 1, H, D, cache->offset + t, s->max_period);
        pt_rope(row + attn, 1, Hkv, D, cache->offset + t, s->max_period);
    }
    if (pt_attention(att, big, big + attn, big + attn + kvd, cache, T, H, Hkv, D, qkv_dim,
                     qkv_dim, scores) != 0)
        return -1;
    pt_linear(h, att, w->out_proj, NULL, T, attn, d, 0);
    size_t n = (size_t)T * d;
    if (w->scale1) {
        for (size_t i = 0; i < n; i++) x[i] += w->scale1[i % d] * h[i];
    } else {
        for (size_t i = 0; i < n; i++) x[i] += h[i];
    }
    pt_layer_norm(h, x, w->norm2_w, w->norm2_b, T, d, 1e-5f);
    pt_linear(big, h, w->linear1, NULL, T, d, ff, 0);
    pt_gelu_tanh(big, (size_t)T * ff);
    pt_linear(h, big, w->linear2, NULL, T, ff, d, 0);
    if (w->scale2) {
        for (size_t i = 0; i < n; i++) x[i] += w->scale2[i % d] * h[i];
    } else {
        for (size_t i = 0; i < n; i++) x[i] += h[i];
    }
    return 0;
}
