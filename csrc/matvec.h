/* Weight matrices in the storage the flow LM can use (float32, float16, bfloat16, int8 with
 * per-row scales) and the product y[T, out] = x[T, in] . W[out, in]^T for small T.
 *
 * The per-frame LM step is a matrix-vector product that streams every weight from DRAM once, so
 * its speed is bytes moved: fp16/bf16 halve them, int8 quarters them; widening to fp32 happens
 * in registers (AVX2 + F16C), accumulation is fp32. Larger T (prefill) widens blocks of rows to
 * fp32 into scratch and runs sgemm on them, so each weight is still read once. */
#ifndef PT_MATVEC_H
#define PT_MATVEC_H
#include <stddef.h>
#include <stdint.h>

enum { PT_F32 = 0, PT_F16 = 1, PT_BF16 = 2, PT_I8 = 3 };

typedef struct {
    const void *data;      /* [out, in] row-major, element type given by dtype */
    const float *scale;    /* [out] per-row scales (PT_I8 only), else NULL */
    int dtype;
    int out, in;
} PtMatrix;

/* y[T, out] = x[T, in] . W^T (accumulate: y += instead of y =). scratch: see
 * pt_matmat_scratch_size (only used for large T). */
void pt_matmat(float *y, const float *x, const PtMatrix *w, int T, int accumulate,
               float *scratch);
/* Scratch floats pt_matmat may need for this matrix. */
size_t pt_matmat_scratch_size(const PtMatrix *w);

/* Quantize a float32 matrix row-wise to int8 (symmetric, scale = max|row| / 127). */
void pt_quantize_rows_i8(int8_t *q, float *scale, const float *w, int out, int in);

#endif
