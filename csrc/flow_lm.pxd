from libc.stdint cimport int64_t

cdef extern from "attention.h" nogil:
    ctypedef struct PtKVCache:
        float *k
        float *v
        int capacity
        int context
        int64_t offset

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
                             PtKVCache *cache, float *x, int T, float *scratch)

cdef extern from "flow_head.h" nogil:
    enum:
        PT_FLOW_MAX_DEPTH
        PT_FLOW_LSD
        PT_FLOW_MATCHING
        PT_FLOW_DRIFTING
        PT_FLOW_POINTWISE
    ctypedef struct PtTimeEmbedWeights:
        PtMatrix w0
        const float *b0
        PtMatrix w2
        const float *b2
        const float *alpha
        const float *freqs
    ctypedef struct PtResBlockWeights:
        const float *ln_w
        const float *ln_b
        PtMatrix w0
        PtMatrix w2
        const float *b0
        const float *b2
        PtMatrix ada_w
        const float *ada_b
    ctypedef struct PtFlowHead:
        int type, ldim, width, depth, cond_dim, num_time_conds
        PtTimeEmbedWeights time[2]
        PtMatrix cond_w
        const float *cond_b
        PtMatrix in_w
        const float *in_b
        PtResBlockWeights blocks[32]
        PtMatrix final_ada_w
        const float *final_ada_b
        PtMatrix final_w
        const float *final_b
    size_t pt_flow_head_scratch_size(const PtFlowHead *f)
    void pt_flow_head_sample(const PtFlowHead *f, const float *c, const float *noise, int steps,
                             float *latent, float *scratch)

cdef extern from "flow_lm.h" nogil:
    ctypedef struct PtFlowLM:
        PtTransformerShape shape
        int num_layers
        const PtLayerWeights *layers
        int ldim
        PtMatrix input_linear
        const float *bos_emb
        const float *out_norm_w
        const float *out_norm_b
        PtMatrix z_proj
        int cond_dim
        const float *eos_w
        float eos_b
        const void *embed
        int embed_f16
        int embed_dim
        PtMatrix embed_proj
        PtFlowHead head
    size_t pt_flow_lm_scratch_size(const PtFlowLM *m, int T, int max_keys)
    int pt_flow_lm_embed_tokens(const PtFlowLM *m, const long long *tokens, int T, int n_bins,
                                float *out, float *scratch)
    int pt_flow_lm_prefill(const PtFlowLM *m, PtKVCache *caches, float *x, int T,
                           float *scratch)
    int pt_flow_lm_step(const PtFlowLM *m, PtKVCache *caches, const float *prefix, int T,
                        const float *latent_in, const float *noise, int steps,
                        float *latent_out, float *cond, float *eos_logit, float *scratch)
