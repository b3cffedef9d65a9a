from gemm cimport PtMatrix

# Declarations of csrc/conv.h (streaming Conv1d / ConvTranspose1d on time-major [T, C] rows).
cdef extern from "conv.h" nogil:
    ctypedef struct PtConv1d:
        int c_in, c_out, kernel, stride, dilation
        int replicate
        const float *b
        PtMatrix w
    ctypedef struct PtConv1dState:
        float *hist
        int first
    ctypedef struct PtConvTr1d:
        int c_in, c_out, kernel, stride
        int taps
        const float *b
        PtMatrix w
        const float *bn
    int pt_conv1d_history(const PtConv1d *c)
    size_t pt_conv1d_col_size(const PtConv1d *c, int T)
    void pt_conv1d_reset(const PtConv1d *c, PtConv1dState *s)
    void pt_conv1d_forward(const PtConv1d *c, PtConv1dState *s, float *xp, int T, float *y,
                           float *col, int accumulate)
    int pt_convtr1d_history(const PtConvTr1d *c)
    void pt_convtr1d_forward(const PtConvTr1d *c, float *hist, float *xp, int T, float *y)
    void pt_convtr1d_depthwise(const float *w, const float *b, int C, int kernel, int stride,
                               float *hist, float *xp, int T, float *y)
