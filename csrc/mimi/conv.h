/* Streaming 1-D convolutions (Mimi / SEANet), as GEMMs on packed panels (gemm.h).
 *
 * Layout: every activation is TIME-MAJOR, [T, C] row-major (row t = all channels at time t), the
 * transpose of the reference's [C, T]. With that layout a causal window of the input is a
 * contiguous block of rows, the transformer's [T, d] tokens need no transpose, and a
 * transposed conv's output block for one input row is one contiguous GEMM row.
 *
 * Streaming convention ("history rows"): a kernel that needs P past input rows reads its input
 * from a buffer `xp` of P + T rows whose LAST T rows hold the new input; the kernel fills the
 * first P rows from the layer's state and, after computing, saves the last P rows of `xp` back
 * to the state. The caller (usually the ELU in front of the conv) writes its output straight to
 * xp + P * C_in, so the concatenation `cat(previous, x)` of the reference costs one small copy.
 *
 * StreamingConv1d (reference modules/conv.py): state `previous` = the last K_eff - S input rows
 * (zeros at start; replicate mode fills it with the first input row on the first call), output
 * T / S rows. Computed as y = im2col(xp) . W^T + b, one GEMM [T/S, K*C_in] x [K*C_in, C_out]
 * (no copy at all when K == S, e.g. 1x1 convs).
 *
 * StreamingConvTranspose1d: the reference keeps `partial` (the not-yet-complete output tail,
 * bias excluded) and drops it at the end. Here the state is instead the last ceil(K/S) - 1 INPUT
 * rows, from which that tail is a linear function: output block t (S rows) =
 * b + sum_g x[t-g] . W_g, g < ceil(K/S). Mathematically identical (bias counted once, tail never
 * emitted), and all blocks are one GEMM [T, taps*C_in] x [taps*C_in, S*C_out] whose row t is
 * the contiguous run of xp rows t-H..t (the taps stacked oldest first), with no col2im scatter. */
#ifndef PT_CONV_H
#define PT_CONV_H
#include <stddef.h>
#include "gemm.h"

/* Conv1d, groups = 1. Weight [c_out, kernel * c_in] with w[o, k*c_in + c] = torch w[o, c, k],
 * packed in gemm.h panels (float32, or float16 for the large convs of compact models). */
typedef struct {
    int c_in, c_out, kernel, stride, dilation;
    int replicate;   /* 1: replicate left padding (ConvDownsample1d); 0: zeros */
    const float *b;  /* [c_out] or NULL */
    PtMatrix w;      /* out = c_out, in = kernel * c_in */
} PtConv1d;

/* Streaming state of one Conv1d. */
typedef struct {
    float *hist;     /* [history, c_in]: the last input rows seen (the reference's `previous`) */
    int first;       /* no call yet (replicate padding still to apply) */
} PtConv1dState;

/* ConvTranspose1d, groups = 1. Weight B [taps * c_in, stride * c_out] (y = x . B), row block i
 * = W_{taps-1-i} (oldest input first), W_g[c, j*c_out + o] = torch w[c, o, g*stride + j] (zero
 * where g*stride + j >= kernel); packed in gemm.h panels as the matrix B^T. */
typedef struct {
    int c_in, c_out, kernel, stride;
    int taps;        /* ceil(kernel / stride) */
    const float *b;  /* [c_out] or NULL */
    PtMatrix w;      /* out = stride * c_out, in = taps * c_in */
    const float *bn; /* b repeated stride times [stride * c_out], or NULL */
} PtConvTr1d;

/* History rows of a Conv1d: (kernel - 1) * dilation + 1 - stride (>= 0). */
int pt_conv1d_history(const PtConv1d *c);
/* Floats of im2col scratch needed for T input rows (0 when the GEMM reads xp directly). */
size_t pt_conv1d_col_size(const PtConv1d *c, int T);
/* Zero the history (causal zero padding) and mark the state as fresh. */
void pt_conv1d_reset(const PtConv1d *c, PtConv1dState *s);
/* Streaming Conv1d over T new rows (T % stride == 0).
 *   xp:  [history + T, c_in]; rows [history, history + T) hold the input, rows [0, history)
 *        are overwritten from the state; the state then takes xp's last `history` rows.
 *   y:   [T / stride, c_out]; y = conv (+ bias), or y += conv (+ bias) when accumulate.
 *   col: scratch of pt_conv1d_col_size(c, T) floats (may be NULL when that is 0). */
void pt_conv1d_forward(const PtConv1d *c, PtConv1dState *s, float *xp, int T, float *y,
                       float *col, int accumulate);

/* Input rows of history of a ConvTranspose1d: taps - 1. */
int pt_convtr1d_history(const PtConvTr1d *c);
/* Streaming ConvTranspose1d over T new input rows.
 *   hist: [taps - 1, c_in] state (zeros at start).
 *   xp:   [taps - 1 + T, c_in]; the input in its last T rows (first rows filled from hist).
 *   y:    [T * stride, c_out] = the reference's output for this call (tail kept for later). */
void pt_convtr1d_forward(const PtConvTr1d *c, float *hist, float *xp, int T, float *y);

/* Depthwise ConvTranspose1d (groups = channels = C, ConvTrUpsample1d), same streaming scheme.
 *   w:    packed [taps * stride, C]: w[k*C + c] = torch w[c, 0, k] (zero past kernel).
 *   b:    [C] or NULL.   hist: [taps - 1, C].   xp: [taps - 1 + T, C].   y: [T * stride, C].
 * Each output sample is b + x[t] w[j] + x[t-1] w[S + j] + ..., summed in that order. */
void pt_convtr1d_depthwise(const float *w, const float *b, int C, int kernel, int stride,
                           float *hist, float *xp, int T, float *y);

#endif
