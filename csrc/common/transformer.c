#include <stddef.h>
#include "transformer.h"
#include "elementwise.h"

size_t pt_transformer_scratch_size(const PtTransformerShape *s, int T, int max_keys) {
    size_t attn = (size_t)s->num_heads * s->head_dim;
    size_t qkv = attn + 2 * (size_t)s->num_kv_heads * s->head_dim;
    size_t wide = qkv > (size_t)s->ffn_dim ? qkv : (size_t)s->ffn_dim;
    /* h [T,d] + wide [T, max(qkv, ffn)] + attn_out [T, attn] + attention scores */
    return (size_t)T * s->d_model + (size_t)T * wide + (size_t)T * attn +
           pt_attention_scratch_size(max_keys, s->num_heads) + 64;
}

/* y[T, out] = x[T, in] . W^T, the first gemv_rows rows in the one-row order (gemm.h). */
static void layer_linear(float *y, const float *x, const PtMatrix *m, int T, int gemv_rows) {
    if (gemv_rows > 0) {
        int was = pt_gemm_set_gemv_order(1);
        pt_gemm(y, m->out, x, m->in, m, gemv_rows, NULL, 0);
        pt_gemm_set_gemv_order(was);
    }
    if (T > gemv_rows)
        pt_gemm(y + (size_t)gemv_rows * m->out, m->out, x + (size_t)gemv_rows * m->in, m->in, m,
                T - gemv_rows, NULL, 0);
}

int pt_transformer_layer(const PtTransformerShape *s, const PtLayerWeights *w,
                         PtKVCache *const *caches, const int *seg_rows, int n_seg,
                         int gemv_rows, float *x, int T, float *scratch) {
    int d = s->d_model, H = s->num_heads, Hkv = s->num_kv_heads, D = s->head_dim;
    int attn = H * D, kvd = Hkv * D, qkv_dim = attn + 2 * kvd, ff = s->ffn_dim;
    size_t wide = (size_t)(qkv_dim > ff ? qkv_dim : ff);
    float *h = scratch;
    float *big = h + (size_t)T * d;
    float *att = big + (size_t)T * wide;
    float *scores = att + (size_t)T * attn;

    for (int i = 0; i < n_seg; i++)
        if (caches[i]->offset + seg_rows[i] > caches[i]->capacity) return -1;
    pt_layer_norm(h, x, w->norm1_w, w->norm1_b, T, d, 1e-5f);
    layer_linear(big, h, &w->in_proj, T, gemv_rows);
    for (int i = 0, r0 = 0; i < n_seg; r0 += seg_rows[i], i++) {
        PtKVCache *cache = caches[i];
        float *seg = big + (size_t)r0 * qkv_dim;
        /* q, k live strided inside big[T, qkv_dim]; rotate each head row in place. */
        for (int t = 0; t < seg_rows[i]; t++) {
            float *row = seg + (size_t)t * qkv_dim;
            pt_rope(row, 1, H, D, cache->offset + t, s->max_period);
            pt_rope(row + attn, 1, Hkv, D, cache->offset + t, s->max_period);
        }
        if (pt_attention(att + (size_t)r0 * attn, seg, seg + attn, seg + attn + kvd, cache,
                         seg_rows[i], H, Hkv, D, qkv_dim, qkv_dim, scores) != 0)
            return -1;
    }
    layer_linear(h, att, &w->out_proj, T, gemv_rows);
    size_t n = (size_t)T * d;
    for (size_t i = 0; i < n; i++) x[i] += h[i];
    pt_layer_norm(h, x, w->norm2_w, w->norm2_b, T, d, 1e-5f);
    layer_linear(big, h, &w->linear1, T, gemv_rows);
    pt_gelu_tanh(big, (size_t)T * ff);
    layer_linear(h, big, &w->linear2, T, gemv_rows);
    for (size_t i = 0; i < n; i++) x[i] += h[i];
    return 0;
}
