# Declarations of csrc/seanet.h (SEANet encoder / decoder, residual block).
from conv cimport PtConv1d, PtConv1dState, PtConvTr1d

cdef extern from "seanet.h" nogil:
    enum:
        PT_SEANET_MAX_STAGES
        PT_SEANET_MAX_RES
    ctypedef struct PtResBlock:
        PtConv1d conv1
        PtConv1d conv2
    ctypedef struct PtSEANetEncoder:
        int n_stages, n_res
        PtConv1d first
        PtResBlock res[8][4]
        PtConv1d down[8]
        PtConv1d last
    ctypedef struct PtSEANetDecoder:
        int n_stages, n_res
        PtConv1d first
        PtConvTr1d up[8]
        PtResBlock res[8][4]
        PtConv1d last
    ctypedef struct PtSEANetState:
        pass
    void pt_seanet_resblock(const PtResBlock *r, PtConv1dState *s1, PtConv1dState *s2,
                            float *x, int T, float *xp, float *h, float *col)
    size_t pt_seanet_encoder_state_size(const PtSEANetEncoder *e)
    void pt_seanet_encoder_state_bind(const PtSEANetEncoder *e, PtSEANetState *s, float *mem)
    void pt_seanet_encoder_reset(const PtSEANetEncoder *e, PtSEANetState *s)
    size_t pt_seanet_decoder_state_size(const PtSEANetDecoder *d)
    void pt_seanet_decoder_state_bind(const PtSEANetDecoder *d, PtSEANetState *s, float *mem)
    void pt_seanet_decoder_reset(const PtSEANetDecoder *d, PtSEANetState *s)
    size_t pt_seanet_encoder_scratch_size(const PtSEANetEncoder *e, int T)
    size_t pt_seanet_decoder_scratch_size(const PtSEANetDecoder *d, int T)
    void pt_seanet_encoder_forward(const PtSEANetEncoder *e, PtSEANetState *s, const float *x,
                                   int T, float *y, float *scratch)
    void pt_seanet_decoder_forward(const PtSEANetDecoder *d, PtSEANetState *s, const float *x,
                                   int T, float *y, float *scratch)
