# Declarations of csrc/mimi.h (Mimi decoder / encoder).
from libc.stdint cimport int64_t
from flow_lm cimport PtTransformerShape, PtLayerWeights
from gemm cimport PtMatrix
from conv cimport PtConv1d
from seanet cimport PtSEANetEncoder, PtSEANetDecoder, PtSEANetState

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
    void pt_mimi_gelu_tanh(float *x, size_t n)

cdef extern from "mimi.h" nogil:
    ctypedef struct PtMimiDecoder:
        int ldim, outer, stride, up_kernel, frame_size
        PtMatrix quant
        const float *up_w
        PtTransformerShape tshape
        int num_layers
        const PtLayerWeights *layers
        PtSEANetDecoder seanet
    ctypedef struct PtMimiDecoderState:
        PtWindowKV *caches
        int64_t frames
    ctypedef struct PtMimiEncoder:
        int dim, inner, stride, frame_size
        PtSEANetEncoder seanet
        PtTransformerShape tshape
        int num_layers
        const PtLayerWeights *layers
        PtConv1d down
    size_t pt_mimi_decoder_state_size(const PtMimiDecoder *m)
    size_t pt_mimi_decoder_scratch_size(const PtMimiDecoder *m)
    void pt_mimi_decoder_state_bind(const PtMimiDecoder *m, PtMimiDecoderState *st,
                                    float *state_mem, PtWindowKV *caches, float *scratch)
    void pt_mimi_decoder_reset(const PtMimiDecoder *m, PtMimiDecoderState *st)
    int pt_mimi_decode(const PtMimiDecoder *m, PtMimiDecoderState *st, const float *latents,
                       int n, float *audio)
    size_t pt_mimi_encoder_state_size(const PtMimiEncoder *m, int chunk_frames)
    size_t pt_mimi_encoder_scratch_size(const PtMimiEncoder *m, int chunk_frames)
    int pt_mimi_encode(const PtMimiEncoder *m, const float *audio, int n_frames,
                       int chunk_frames, float *latents, float *state_mem, PtWindowKV *caches,
                       float *scratch, int threads)
