cdef extern from "elementwise.h" nogil:
    void pt_layer_norm(float *y, const float *x, const float *w, const float *b, int T, int C,
                       float eps)
    void pt_rms_norm_unbiased(float *y, const float *x, const float *alpha, int T, int C,
                              float eps)
    void pt_gelu_tanh(float *x, size_t n)
    void pt_silu(float *y, const float *x, size_t n)
    void pt_elu(float *y, const float *x, size_t n)
