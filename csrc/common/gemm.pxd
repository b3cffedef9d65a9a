cdef extern from "gemm.h" nogil:
    enum:
        PT_PANEL
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
    size_t pt_packed_size(int out, int n_in)
    void pt_pack_nt(float *dst, const float *w, int out, int n_in)
    void pt_gemm(float *y, int ldy, const float *x, int ldx, const PtMatrix *w, int M,
                 const float *bias, int accumulate)
    void pt_gemm_set_threads(int n)
    int PT_GEMM_SHARED
    void pt_gemm_help_until(const int *progress, int target)
    void pt_progress_store(int *progress, int value)
    void pt_gemm_packed(float *y, int ldy, const float *x, int ldx, const float *packed, int M,
                        int out, int n_in, const float *bias, int accumulate)
