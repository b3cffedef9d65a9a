/* Dense layers through the BLAS that scipy ships (function pointers handed over by Cython
 * from scipy.linalg.cython_blas, so nothing links against a BLAS directly). */
#ifndef PT_LINEAR_H
#define PT_LINEAR_H

typedef void (*pt_sgemm_fn)(char *, char *, int *, int *, int *, float *, float *, int *,
                            float *, int *, float *, float *, int *);
typedef void (*pt_sgemv_fn)(char *, int *, int *, float *, float *, int *, float *, int *,
                            float *, float *, int *);

/* Install the BLAS entry points (called once at module import). */
void pt_blas_set(pt_sgemm_fn sgemm, pt_sgemv_fn sgemv);

/* y[T, out] = x[T, in] . w[out, in]^T (+ bias[out] if non-NULL); beta=1 accumulates into y.
 * Row-major, contiguous. T == 1 goes through sgemv (memory-bound GEMV). */
void pt_linear(float *y, const float *x, const float *w, const float *bias, int T, int in,
               int out, int accumulate);

/* y[M, N] = a[M, K] . b[K, N] (row-major), beta=accumulate. */
void pt_matmul(float *y, const float *a, const float *b, int M, int K, int N, int accumulate);

#endif
