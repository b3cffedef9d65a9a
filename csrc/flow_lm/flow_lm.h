/* The flow LM, llama2.c style: weights as a plain struct, one forward you can read top to
 * bottom, all buffers owned by the caller and allocated once.
 *
 * Sequence layout: [bos_before_voice?, voice..., text..., latent_0, latent_1, ...], one causal
 * transformer over continuous positions; prefill runs a block of conditioning embeddings,
 * step runs one latent and samples the next one. */
#ifndef PT_FLOW_LM_H
#define PT_FLOW_LM_H
#include <stddef.h>
#include "attention.h"
#include "flow_head.h"
#include "transformer.h"

typedef struct {
    PtTransformerShape shape;
    int num_layers;
    const PtLayerWeights *layers;    /* [num_layers] */
    int ldim;
    PtMatrix input_linear;           /* [d, ldim], float32 panels */
    const float *bos_emb;            /* [ldim], replaces a NaN input latent */
    const float *out_norm_w, *out_norm_b;
    PtMatrix z_proj;                 /* [z_dim, d], float32 panels; data NULL if absent */
    int cond_dim;                    /* z_dim or d */
    const float *eos_w;              /* [cond_dim] */
    float eos_b;
    const void *embed;               /* [n_bins + 1, rank or d], float32 or float16 bits */
    int embed_f16;                   /* 1: embed holds float16 bits */
    int embed_dim;                   /* rank or d */
    PtMatrix embed_proj;             /* [d, rank], float32 panels; data NULL if absent */
    PtFlowHead head;
} PtFlowLM;

/* Scratch floats for runs of up to T positions against caches of up to max_keys entries. */
size_t pt_flow_lm_scratch_size(const PtFlowLM *m, int T, int max_keys);

/* out[T, d] = text embeddings of tokens[T] (lookup, then low-rank projection if any).
 * Returns -1 on an out-of-range token id. */
int pt_flow_lm_embed_tokens(const PtFlowLM *m, const long long *tokens, int T, int n_bins,
                            float *out, float *scratch);

/* Runs the transformer over x[T, d] (consumed as scratch), appending to caches[num_layers].
 * Returns 0 or -1 on cache overflow. */
int pt_flow_lm_prefill(const PtFlowLM *m, PtKVCache *caches, float *x, int T, float *scratch);

/* One autoregressive step: latent_in[ldim] (NaN -> bos_emb) -> transformer -> out_norm
 * (-> z_proj) = cond[cond_dim]; eos_logit; latent_out = head(cond, noise). Returns 0 / -1.
 * With T > 0, prefix[T, d] conditioning rows are prefilled in the same transformer pass, just
 * before the latent: the weights are streamed once instead of twice (a text chunk's prefill
 * and its first frame; the first latent's input does not depend on the prefill's output).
 * Scratch: pt_flow_lm_scratch_size(m, T + 1, ...). */
int pt_flow_lm_step(const PtFlowLM *m, PtKVCache *caches, const float *prefix, int T,
                    const float *latent_in, const float *noise, int steps, float *latent_out,
                    float *cond, float *eos_logit, float *scratch);

#endif
