# Declarations of attention.h (causal attention over a linear KV cache, RoPE).
from libc.stdint cimport int64_t

cdef extern from "attention.h" nogil:
    ctypedef struct PtKVCache:
        float *k
        float *v
        int capacity
        int64_t offset
        const float *prefix_k
        const float *prefix_v
        int prefix
    float pt_rope_freq(int i, int D, float max_period)
    void pt_rope(float *x, int T, int H, int D, int64_t pos0, float max_period)
    size_t pt_attention_scratch_size(int capacity, int H)
    int pt_attention(float *out, const float *q, const float *k, const float *v,
                     PtKVCache *cache, int T, int H, int H_kv, int D, int q_stride,
                     int kv_stride, float *scores)
