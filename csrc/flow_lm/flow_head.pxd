# Declarations of flow_head.h (the sampler head and its decoders).
from gemm cimport PtMatrix

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
    size_t pt_flow_head_scratch_size(const PtFlowHead *f, int M)
    void pt_flow_head_sample(const PtFlowHead *f, const float *c, const float *noise, int M,
                             int steps, float *latent, float *scratch)
