from libc.stdint cimport int8_t

cdef extern from "matvec.h" nogil:
    enum:
        PT_F32
        PT_F16
        PT_BF16
        PT_I8
    ctypedef struct PtMatrix:
        const void *data
        const float *scale
        int dtype
        int out "out"
        int n_in "in"
    void pt_matmat(float *y, const float *x, const PtMatrix *w, int T, int accumulate,
                   float *scratch)
    size_t pt_matmat_scratch_size(const PtMatrix *w)
    void pt_quantize_rows_i8(int8_t *q, float *scale, const float *w, int out, int n_in)
