# Declarations of mimi.h (Mimi decoder / encoder).
from libc.stdint cimport int64_t
from transformer cimport PtTransformerShape, PtLayerWeights
from mimi_transformer cimport PtWindowKV
from gemm cimport PtMatrix
from conv cimport PtConv1d
from seanet cimport PtSEANetEncoder, PtSEANetDecoder, PtSEANetState

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
    void pt_mimi_decoder_use_scratch(const PtMimiDecoder *m, PtMimiDecoderState *st,
                                     float *scratch)
    void pt_mimi_decoder_reset(const PtMimiDecoder *m, PtMimiDecoderState *st)
    int pt_mimi_decode(const PtMimiDecoder *m, PtMimiDecoderState *st, const float *latents,
                       int n, float *audio)
    size_t pt_mimi_encoder_state_size(const PtMimiEncoder *m, int chunk_frames)
    size_t pt_mimi_encoder_scratch_size(const PtMimiEncoder *m, int chunk_frames)
    int pt_mimi_encode(const PtMimiEncoder *m, const float *audio, int n_frames,
                       int chunk_frames, float *latents, float *state_mem, PtWindowKV *caches,
                       float *scratch, int threads, const volatile int *cancel)
