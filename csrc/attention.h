/* Causal multi-head attention over a preallocated KV cache, with RoPE.
 *
 * The cache holds post-RoPE keys and values as [capacity, H_kv, D] each (the reference's
 * voice-state layout). A linear cache (context == 0) stores position p at slot p and must be
 * sized for the whole sequence up front; a windowed cache (context > 0) is a ring buffer of
 * `context` slots: position p lives at slot p % context, and each query's key is written just
 * before it attends, so the window [p - context + 1, p] is always resident. */
#ifndef PT_ATTENTION_H
#define PT_ATTENTION_H
#include <stdint.h>

typedef struct {
    float *k;         /* [capacity, H_kv, D] */
    float *v;         /* [capacity, H_kv, D] */
    int capacity;     /* slots */
    int context;      /* 0: unlimited (linear cache); else ring of `context` slots */
    int64_t offset;   /* positions written so far = position of the next token */
} PtKVCache;

/* Frequency i of a D-wide head, bit-identical to the reference's float32 computation. */
float pt_rope_freq(int i, int D, float max_period);

/* In place RoPE (interleaved pairs) on x[T, H, D] at positions pos0 + t; angles in float32
 * exactly as the reference: theta = float(freq_i) * float(pos). */
void pt_rope(float *x, int T, int H, int D, int64_t pos0, float max_period);

/* out[T, H*D] = attention of q[T, H, D] (already rotated) against the cache after appending
 * k[T, H_kv, D] and v[T, H_kv, D] at positions offset..offset+T-1. Advances cache->offset.
 * scores: scratch of >= min(capacity, offset + T) floats. Returns 0, or -1 on overflow. */
int pt_attention(float *out, const float *q, const float *k, const float *v, PtKVCache *cache,
                 int T, int H, int H_kv, int D, int q_stride, int kv_stride, float *scores);

#endif
