/* Causal multi-head attention over a preallocated KV cache, with RoPE (the flow LM; Mimi's
 * context-window attention is mimi_transformer.h's).
 *
 * The cache holds post-RoPE keys and values as [capacity, H_kv, D] each (the reference's
 * voice-state layout): position p at slot p, the cache sized for the whole sequence up front. */
#ifndef PT_ATTENTION_H
#define PT_ATTENTION_H
#include <stddef.h>
#include <stdint.h>

typedef struct {
    float *k;         /* [capacity, H_kv, D] */
    float *v;         /* [capacity, H_kv, D] */
    int capacity;     /* slots */
    int64_t offset;   /* positions written so far = position of the next token */
} PtKVCache;

/* Frequency i of a D-wide head, bit-identical to the reference's float32 computation. */
float pt_rope_freq(int i, int D, float max_period);

/* In place RoPE (interleaved pairs) on x[T, H, D] at positions pos0 + t; angles in float32
 * exactly as the reference: theta = float(freq_i) * float(pos). */
void pt_rope(float *x, int T, int H, int D, int64_t pos0, float max_period);

/* Scratch floats pt_attention needs for a cache of `capacity` slots and H query heads. */
size_t pt_attention_scratch_size(int capacity, int H);

/* out[T, H*D] = attention of q[T, H, D] (already rotated) against the cache after appending
 * k[T, H_kv, D] and v[T, H_kv, D] at positions offset..offset+T-1. Advances cache->offset.
 * scores: scratch of pt_attention_scratch_size(capacity, H) floats. Returns 0, or -1 on overflow.
 * The rows may run on two threads (heads split) when pt_gemm_threads() is 2 and
 * the call is large (a prefill); each (row, head) is computed the same way whatever T, the
 * thread count or the rows sharing the call, so the output is bit-identical in every case. */
int pt_attention(float *out, const float *q, const float *k, const float *v, PtKVCache *cache,
                 int T, int H, int H_kv, int D, int q_stride, int kv_stride, float *scores);

#endif
