/* The flow LM, llama2.c style: weights as a plain struct, one forward you can read top to
 * bottom, all buffers owned by the caller and allocated once.
 *
 * Sequence layout: [bos_before_voice?, voice..., text..., latent_0, latent_1, ...], one causal
 * transformer over continuous positions; prefill runs a block of conditioning embeddings,
 * step runs one latent per stream, for any number of streams, and samples the next ones. */
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

/* One stream's part of a batched step (pt_flow_lm_step). */
typedef struct {
    PtKVCache *caches;        /* [num_layers], this stream's */
    const float *prefix;      /* [T, d] conditioning rows prefilled just before the latent */
    int T;                    /* 0: none (prefix may be NULL) */
    const float *latent_in;   /* [ldim]; NaN -> bos_emb */
    const float *noise;       /* [ldim] */
    float *latent_out;        /* [ldim] */
    float *cond;              /* [cond_dim]: out_norm (-> z_proj), the head's conditioning */
    float *eos_logit;         /* [1] */
} PtFlowLMRow;

/* Scratch floats for runs of up to T positions (all streams' rows together, n of them
 * stepped) against caches of up to max_keys entries. */
size_t pt_flow_lm_scratch_size(const PtFlowLM *m, int T, int n, int max_keys);

/* out[T, d] = text embeddings of tokens[T] (lookup, then low-rank projection if any).
 * Returns -1 on an out-of-range token id. */
int pt_flow_lm_embed_tokens(const PtFlowLM *m, const long long *tokens, int T, int n_bins,
                            float *out, float *scratch);

/* Runs the transformer over x[T, d] (consumed as scratch), appending to caches[num_layers].
 * Returns 0 or -1 on cache overflow. */
int pt_flow_lm_prefill(const PtFlowLM *m, PtKVCache *caches, float *x, int T, float *scratch);

/* One autoregressive step of n streams in one pass over the weights: for each stream,
 * latent_in (NaN -> bos_emb) -> transformer -> out_norm (-> z_proj) = cond; eos_logit;
 * latent_out = head(cond, noise), the head's products over all n rows at once. A stream's
 * prefix rows ride along just before its latent (a text chunk's prefill and its first frame:
 * the first latent's input does not depend on the prefill's output). Each stream's results
 * are bit-identical to stepping it alone. All streams sample with `steps` head steps.
 * Scratch: pt_flow_lm_scratch_size(m, n + sum T, n, largest capacity). Returns 0, or -1 if a
 * stream's cache would overflow (checked before anything is written). */
int pt_flow_lm_step(const PtFlowLM *m, const PtFlowLMRow *rows, int n, int steps,
                    float *scratch);

#endif
