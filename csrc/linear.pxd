cdef extern from "linear.h" nogil:
    ctypedef void (*pt_sgemm_fn)(char *, char *, int *, int *, int *, float *, float *, int *,
                                 float *, int *, float *, float *, int *)
    ctypedef void (*pt_sgemv_fn)(char *, int *, int *, float *, float *, int *, float *, int *,
                                 float *, float *, int *)
    void pt_blas_set(pt_sgemm_fn sgemm, pt_sgemv_fn sgemv)
    void pt_linear(float *y, const float *x, const float *w, const float *bias, int T, int n_in,
                   int n_out, int accumulate)
    void pt_matmul(float *y, const float *a, const float *b, int M, int K, int N, int accumulate)
