# Declarations of flow_lm.h (the flow LM: prefill, one autoregressive step).
from attention cimport PtKVCache
from flow_head cimport PtFlowHead
from gemm cimport PtMatrix
from transformer cimport PtLayerWeights, PtTransformerShape

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
    ctypedef struct PtFlowLMRow:
        PtKVCache *caches
        const float *prefix
        int T
        const float *latent_in
        const float *noise
        float *latent_out
        float *cond
        float *eos_logit
    size_t pt_flow_lm_scratch_size(const PtFlowLM *m, int T, int n, int max_keys)
    int pt_flow_lm_embed_tokens(const PtFlowLM *m, const long long *tokens, int T, int n_bins,
                                float *out, float *scratch)
    int pt_flow_lm_prefill(const PtFlowLM *m, PtKVCache *caches, float *x, int T,
                           float *scratch)
    int pt_flow_lm_step(const PtFlowLM *m, const PtFlowLMRow *rows, int n, int steps,
                        float *scratch)
