# Declarations of transformer.h (the pre-norm layer shared by the flow LM and Mimi).
from attention cimport PtKVCache
from gemm cimport PtMatrix

cdef extern from "transformer.h" nogil:
    ctypedef struct PtTransformerShape:
        int d_model, num_heads, num_kv_heads, head_dim, ffn_dim
        int context
        float max_period
    ctypedef struct PtLayerWeights:
        const float *norm1_w
        const float *norm1_b
        PtMatrix in_proj
        PtMatrix out_proj
        const float *norm2_w
        const float *norm2_b
        PtMatrix linear1
        PtMatrix linear2
        const float *scale1
        const float *scale2
    size_t pt_transformer_scratch_size(const PtTransformerShape *s, int T, int max_keys)
    int pt_transformer_layer(const PtTransformerShape *s, const PtLayerWeights *w,
                             PtKVCache *const *caches, const int *seg_rows, int n_seg,
                             int gemv_rows, float *x, int T, float *scratch)
