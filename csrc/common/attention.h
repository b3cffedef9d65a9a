/* Causal multi-head attention over a preallocated KV cache, with RoPE (the flow LM; Mimi's
 * context-window attention is mimi_transformer.h's).
 *
 * The cache holds post-RoPE keys and values as [capacity, H_kv, D] each (the reference's
 * voice-state layout): position p at slot p, the cache sized for the whole sequence up front;
 * its first `prefix` slots may live in a separate read-only block (a shared voice prompt). */
#ifndef PT_ATTENTION_H
#define PT_ATTENTION_H
#include <stddef.h>
#include <stdint.h>

typedef struct {
    float *k;         /* [capacity - prefix, H_kv, D]: slots prefix .. capacity - 1 */
    float *v;         /* [capacity - prefix, H_kv, D] */
    int capacity;     /* slots */
    int64_t offset;   /* positions written so far = position of the next token (>= prefix) */
    /* Slots 0 .. prefix - 1, read-only and shareable between streams (a voice prompt's KV:
     * many streams of one voice keep one copy). prefix 0: the cache is k and v alone. */
    const float *prefix_k;  /* [prefix, H_kv, D] */
    const float *prefix_v;  /* [prefix, H_kv, D] */
    int prefix;
} PtKVCache;

/* Key / value row of `slot` (row = H_kv * D floats per slot). */
static inline const float *pt_kv_key(const PtKVCache *c, int slot, size_t row) {
    return slot < c->prefix ? c->prefix_k + (size_t)slot * row
                            : c->k + (size_t)(slot - c->prefix) * row;
}
static inline const float *pt_kv_value(const PtKVCache *c, int slot, size_t row) {
    return slot < c->prefix ? c->prefix_v + (size_t)slot * row
                            : c->v + (size_t)(slot - c->prefix) * row;
}

/* Frequency i of a D-wide head, bit-identical to the reference's float32 computation. */
float pt_rope_freq(int i, int D, float max_period);

/* In place RoPE (interleaved pairs) on x[T, H, D] at positions pos0 + t; angles in float32
 * exactly as the reference: theta = float(freq_i) * float(pos). */
void pt_rope(float *x, int T, int H, int D, int64_t pos0, float max_period);

/* Scratch floats pt_attention needs for a cache of `capacity` slots and H query heads. */
size_t pt_attention_scratch_size(int capacity, int H);

/* out[T, H*D] = attention of q[T, H, D] (already rotated) against the cache after appending
 * k[T, H_kv, D] and v[T, H_kv, D] at positions offset..offset+T-1. Advances cache->offset.
 * scores: scratch of pt_attention_scratch_size(capacity, H) floats. Returns 0, or -1 on overflow
 * (or a write into the read-only prefix).
 * The rows may run on two threads (heads split) when pt_gemm_threads() is 2 and
 * the call is large (a prefill); each (row, head) is computed the same way whatever T, the
 * thread count or the rows sharing the call, so the output is bit-identical in every case. */
int pt_attention(float *out, const float *q, const float *k, const float *v, PtKVCache *cache,
                 int T, int H, int H_kv, int D, int q_stride, int kv_stride, float *scores);

#endif
