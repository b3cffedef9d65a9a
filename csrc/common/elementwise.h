/* Row-wise norms and activations. All operate in place or output-first on row-major
 * [T, C] float32 buffers. */
#ifndef PT_ELEMENTWISE_H
#define PT_ELEMENTWISE_H
#include <stddef.h>

/* y[T,C] = (x - mean) / sqrt(var_biased + eps) * w + b; w/b may be NULL (no affine). */
void pt_layer_norm(float *y, const float *x, const float *w, const float *b, int T, int C,
                   float eps);
/* The flow head's "RMSNorm": y = x * alpha / sqrt(eps + var_unbiased(x)); x is not centred. */
void pt_rms_norm_unbiased(float *y, const float *x, const float *alpha, int T, int C, float eps);
/* In place: x = 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))). */
void pt_gelu_tanh(float *x, size_t n);
/* In place: x = x * sigmoid(x). Output-first variant writes y. */
void pt_silu(float *y, const float *x, size_t n);
/* y[n] = ELU(x) (alpha = 1): x > 0 ? x : expm1(x); y may equal x. The AVX2/FMA variant
 * (within ~2 ulp of expm1) is chosen at run time, else libm expm1f. An element's result
 * depends only on its value (tails run through the same vector code). */
void pt_elu(float *y, const float *x, size_t n);

#endif
