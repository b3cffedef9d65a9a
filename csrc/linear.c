#include "linear.h"
#include <stddef.h>

static pt_sgemm_fn blas_sgemm = NULL;
static pt_sgemv_fn blas_sgemv = NULL;

void pt_blas_set(pt_sgemm_fn sgemm, pt_sgemv_fn sgemv) {
    blas_sgemm = sgemm;
    blas_sgemv = sgemv;
}

void pt_linear(float *y, const float *x, const float *w, const float *bias, int T, int in,
               int out, int accumulate) {
    float one = 1.0f, beta = accumulate ? 1.0f : 0.0f;
    int inc = 1;
    if (T == 1) {
        /* Column-major view of w[out, in] is w^T (in x out): y = (w^T)^T x. */
        blas_sgemv("T", &in, &out, &one, (float *)w, &in, (float *)x, &inc, &beta, y, &inc);
    } else {
        /* Column-major: y^T (out x T) = w (out x in, stored as w^T) ^T . x^T (in x T). */
        blas_sgemm("T", "N", &out, &T, &in, &one, (float *)w, &in, (float *)x, &in, &beta, y,
                   &out);
    }
    if (bias) {
        for (int t = 0; t < T; t++) {
            float *row = y + (size_t)t * out;
            for (int o = 0; o < out; o++) row[o] += bias[o];
        }
    }
}

void pt_matmul(float *y, const float *a, const float *b, int M, int K, int N, int accumulate) {
    float one = 1.0f, beta = accumulate ? 1.0f : 0.0f;
    /* Row-major y = a.b  <=>  column-major y^T = b^T . a^T. */
    blas_sgemm("N", "N", &N, &M, &K, &one, (float *)b, &N, (float *)a, &K, &beta, y, &N);
}
