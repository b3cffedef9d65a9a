/* Every weight matrix below is a gemm.h PtMatrix (16-column panels, in the model's storage
 * dtype: the head is read once per frame, like the transformer); biases are plain float32.
 *
 * The flow-LM sampler head (SimpleMLPAdaLN) and its decoders (lsd, flow_matching, drifting,
 * pointwise): latent = decode(v(c, ., x), noise), for M rows at once (one pass over the
 * weights for M streams; each row's result is the same as alone). */
#ifndef PT_FLOW_HEAD_H
#define PT_FLOW_HEAD_H
#include <stddef.h>
#include "gemm.h"

#define PT_FLOW_MAX_DEPTH 32

enum { PT_FLOW_LSD = 0, PT_FLOW_MATCHING = 1, PT_FLOW_DRIFTING = 2, PT_FLOW_POINTWISE = 3 };

typedef struct {
    PtMatrix w0; const float *b0;   /* Linear 256 -> W */
    PtMatrix w2; const float *b2;   /* Linear W -> W */
    const float *alpha;     /* [W] RMSNorm (unbiased variance) */
    const float *freqs;     /* [128] */
} PtTimeEmbedWeights;

typedef struct {
    const float *ln_w, *ln_b;     /* [W] LayerNorm eps 1e-6 */
    PtMatrix w0, w2;              /* MLP W -> W -> W */
    const float *b0, *b2;
    PtMatrix ada_w;               /* Linear W -> 3W on silu(y) */
    const float *ada_b;
} PtResBlockWeights;

typedef struct {
    int type, ldim, width, depth, cond_dim, num_time_conds;
    PtTimeEmbedWeights time[2];
    PtMatrix cond_w; const float *cond_b;   /* [W, cond], [W] */
    PtMatrix in_w; const float *in_b;       /* [W, ldim], [W] */
    PtResBlockWeights blocks[PT_FLOW_MAX_DEPTH];
    PtMatrix final_ada_w; const float *final_ada_b; /* [2W, W], [2W] */
    PtMatrix final_w; const float *final_b;         /* [ldim, W], [ldim] */
} PtFlowHead;

/* Scratch floats for a call of M rows. */
size_t pt_flow_head_scratch_size(const PtFlowHead *f, int M);

/* latent[M, ldim] = decode(v(c, ...), noise[M, ldim]) with `steps` steps; c is [M, cond_dim]. */
void pt_flow_head_sample(const PtFlowHead *f, const float *c, const float *noise, int M,
                         int steps, float *latent, float *scratch);

#endif
