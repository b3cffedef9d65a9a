# Declarations of mimi_transformer.h (context-window attention and layer).
from libc.stdint cimport int64_t
from transformer cimport PtTransformerShape

cdef extern from "mimi_transformer.h" nogil:
    ctypedef struct PtWindowKV:
        int capacity, context
        int64_t offset, base
    size_t pt_window_kv_floats(const PtTransformerShape *s, int max_T)
    size_t pt_window_scores_floats(int context)
    void pt_window_kv_bind(PtWindowKV *kv, const PtTransformerShape *s, int max_T, float *mem)
    int pt_window_attention(PtWindowKV *kv, const float *q, const float *k, const float *v,
                            int T, int H, int H_kv, int D, int q_stride, int kv_stride,
                            float *out, float *scores, int threads)
