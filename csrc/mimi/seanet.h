/* SEANet encoder / decoder (reference modules/seanet.py) on time-major [T, C] buffers, built
 * from the streaming convolutions of conv.h and the ELU of elementwise.h.
 *
 * Residual block: x + conv2(ELU(conv1(ELU(x)))), conv1 = k (dilated) dim -> dim/compress,
 * conv2 = 1x1 back to dim; identity skip.
 * Encoder: first conv; per stage [res blocks, ELU, strided conv C -> 2C (K = 2r, S = r)];
 *          ELU, last conv -> dimension.
 * Decoder: first conv; per stage [ELU, conv-transpose C -> C/2 (K = 2r, S = r), res blocks];
 *          ELU, last conv -> channels.
 * All state lives in a PtSEANetState bound to caller memory; all work buffers in one caller
 * scratch block sized by the *_scratch_size functions, so a forward call never allocates. */
#ifndef PT_SEANET_H
#define PT_SEANET_H
#include <stddef.h>
#include "conv.h"

#define PT_SEANET_MAX_STAGES 8
#define PT_SEANET_MAX_RES 4

typedef struct {
    PtConv1d conv1;  /* ELU -> conv (dim -> hidden, kernel k, dilation d) */
    PtConv1d conv2;  /* ELU -> conv (hidden -> dim, kernel 1) */
} PtResBlock;

typedef struct {
    int n_stages, n_res;
    PtConv1d first;
    PtResBlock res[PT_SEANET_MAX_STAGES][PT_SEANET_MAX_RES];
    PtConv1d down[PT_SEANET_MAX_STAGES];
    PtConv1d last;
} PtSEANetEncoder;

typedef struct {
    int n_stages, n_res;
    PtConv1d first;
    PtConvTr1d up[PT_SEANET_MAX_STAGES];
    PtResBlock res[PT_SEANET_MAX_STAGES][PT_SEANET_MAX_RES];
    PtConv1d last;
} PtSEANetDecoder;

/* Streaming state of one encoder or decoder (pointers into caller memory). */
typedef struct {
    PtConv1dState first, last;
    PtConv1dState res1[PT_SEANET_MAX_STAGES][PT_SEANET_MAX_RES];
    PtConv1dState res2[PT_SEANET_MAX_STAGES][PT_SEANET_MAX_RES];
    PtConv1dState down[PT_SEANET_MAX_STAGES];   /* encoder */
    float *up[PT_SEANET_MAX_STAGES];            /* decoder: conv-transpose input history */
} PtSEANetState;

/* Residual block in place on x[T, dim].
 *   xp:  >= (history(conv1) + T) * dim floats;  h: >= (history(conv2) + T) * hidden floats;
 *   col: >= max im2col size of conv1/conv2 for T rows. */
void pt_seanet_resblock(const PtResBlock *r, PtConv1dState *s1, PtConv1dState *s2, float *x,
                        int T, float *xp, float *h, float *col);

/* Floats of state memory, binding (pointers into mem, then reset) and reset. */
size_t pt_seanet_encoder_state_size(const PtSEANetEncoder *e);
void pt_seanet_encoder_state_bind(const PtSEANetEncoder *e, PtSEANetState *s, float *mem);
void pt_seanet_encoder_reset(const PtSEANetEncoder *e, PtSEANetState *s);
size_t pt_seanet_decoder_state_size(const PtSEANetDecoder *d);
void pt_seanet_decoder_state_bind(const PtSEANetDecoder *d, PtSEANetState *s, float *mem);
void pt_seanet_decoder_reset(const PtSEANetDecoder *d, PtSEANetState *s);

/* Scratch floats for one forward call over T input rows. */
size_t pt_seanet_encoder_scratch_size(const PtSEANetEncoder *e, int T);
size_t pt_seanet_decoder_scratch_size(const PtSEANetDecoder *d, int T);

/* Encoder: x[T, channels] (T a multiple of the hop) -> y[T / hop, dimension]. */
void pt_seanet_encoder_forward(const PtSEANetEncoder *e, PtSEANetState *s, const float *x,
                               int T, float *y, float *scratch);
/* Decoder: x[T, dimension] -> y[T * hop, channels]. */
void pt_seanet_decoder_forward(const PtSEANetDecoder *d, PtSEANetState *s, const float *x,
                               int T, float *y, float *scratch);

#endif
