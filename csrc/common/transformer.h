/* Pre-norm streaming transformer layer. The shape and weight structs serve the flow LM
 * (pt_transformer_layer, over attention.h's KV cache) and Mimi (pt_mimi_transformer_layer of
 * mimi_transformer.h, over a context window, with layer scale):
 *   x = x + LS1(Attn(LN1(x)));  x = x + LS2(W2 gelu_tanh(W1 LN2(x)))
 * LayerNorm eps 1e-5, bias-free linears; LS = per-channel layer scale, Mimi only. */
#ifndef PT_TRANSFORMER_H
#define PT_TRANSFORMER_H
#include <stddef.h>
#include "attention.h"
#include "gemm.h"

typedef struct {
    int d_model, num_heads, num_kv_heads, head_dim, ffn_dim;
    int context;       /* Mimi: attention window; 0 for the flow LM (full causal) */
    float max_period;
} PtTransformerShape;

typedef struct {
    const float *norm1_w, *norm1_b;   /* [d] */
    PtMatrix in_proj;                 /* [H*D + 2*H_kv*D, d], packed (gemm.h) */
    PtMatrix out_proj;                /* [d, H*D] */
    const float *norm2_w, *norm2_b;   /* [d] */
    PtMatrix linear1;                 /* [ffn, d] */
    PtMatrix linear2;                 /* [d, ffn] */
    const float *scale1, *scale2;     /* [d] layer scale (Mimi), or NULL */
} PtLayerWeights;

/* Scratch floats needed to run T tokens at once against a cache of `max_keys` slots. */
size_t pt_transformer_scratch_size(const PtTransformerShape *s, int T, int max_keys);

/* Runs one flow-LM layer in place on x[T, d] (no layer scale: scale1 / scale2 are ignored).
 * The rows are n_seg streams' runs, one after another: segment i is seg_rows[i] rows (sum = T)
 * at the positions that follow caches[i] and appended to it. Every product covers all T rows
 * (one pass over the weights for every stream); RoPE and attention run per segment. The first
 * gemv_rows rows are computed in gemm.h's one-row order (streams that alone would run one-row
 * products), the rest in its multi-row order, so a row's result does not depend on the other
 * segments. Scratch: pt_transformer_scratch_size(s, T,
 * largest capacity). Returns 0 or -1 (a cache would overflow; nothing is written then). */
int pt_transformer_layer(const PtTransformerShape *s, const PtLayerWeights *w,
                         PtKVCache *const *caches, const int *seg_rows, int n_seg,
                         int gemv_rows, float *x, int T, float *scratch);

#endif
