/* Every weight matrix below is packed in gemm.h panels (16 output columns), biases are plain.
 *
 * The flow-LM sampler head (SimpleMLPAdaLN) and its decoders (lsd, flow_matching, drifting,
 * pointwise): latent = decode(v(c, ., x), noise). One vector per call (batch 1). */
#ifndef PT_FLOW_HEAD_H
#define PT_FLOW_HEAD_H
#include <stddef.h>

#define PT_FLOW_MAX_DEPTH 32

enum { PT_FLOW_LSD = 0, PT_FLOW_MATCHING = 1, PT_FLOW_DRIFTING = 2, PT_FLOW_POINTWISE = 3 };

typedef struct {
    const float *w0, *b0;   /* Linear 256 -> W */
    const float *w2, *b2;   /* Linear W -> W */
    const float *alpha;     /* [W] RMSNorm (unbiased variance) */
    const float *freqs;     /* [128] */
} PtTimeEmbedWeights;

typedef struct {
    const float *ln_w, *ln_b;     /* [W] LayerNorm eps 1e-6 */
    const float *w0, *b0, *w2, *b2; /* MLP W -> W -> W */
    const float *ada_w, *ada_b;   /* Linear W -> 3W on silu(y) */
} PtResBlockWeights;

typedef struct {
    int type, ldim, width, depth, cond_dim, num_time_conds;
    PtTimeEmbedWeights time[2];
    const float *cond_w, *cond_b;     /* [W, cond], [W] */
    const float *in_w, *in_b;         /* [W, ldim], [W] */
    PtResBlockWeights blocks[PT_FLOW_MAX_DEPTH];
    const float *final_ada_w, *final_ada_b; /* [2W, W], [2W] */
    const float *final_w, *final_b;         /* [ldim, W], [ldim] */
} PtFlowHead;

/* Scratch floats for one call. */
size_t pt_flow_head_scratch_size(const PtFlowHead *f);

/* latent[ldim] = decode(v(c, ...), noise[ldim]) with `steps` steps; c is [cond_dim]. */
void pt_flow_head_sample(const PtFlowHead *f, const float *c, const float *noise, int steps,
                         float *latent, float *scratch);

#endif
