/* Mimi's streaming transformer layer: the math of transformer.h's layer, with layer scale,
 * over a context window instead of the flow LM's full causal KV cache.
 *
 * - Context-window attention reads a linear KV window (PtWindowKV) instead of a ring: keys are
 *   stored transposed, one key per column, so scores are vectorised with keys across lanes;
 *   tiles of consecutive queries read each head's keys and values once (their windows
 *   overlap); all T new keys are written before any query attends, and the window is
 *   compacted to the front when the buffer fills up.
 * - The softmax exp is vectorised (AVX2/FMA, a few ulp of libm); the GELU is elementwise.h's.
 * - With threads == 2 the attention queries and the GELU are split over two threads (the
 *   encoder; the GEMMs follow pt_gemm_set_threads).
 * Each query's output depends only on its own window, so results never depend on how tokens
 * are grouped into calls or split over threads. Portable fallback: the same order, libm. */
#ifndef PT_MIMI_TRANSFORMER_H
#define PT_MIMI_TRANSFORMER_H
#include <stddef.h>
#include <stdint.h>
#include "transformer.h"

typedef struct {
    float *kt;         /* [H_kv * D rows, ld]: key of slot j in column j (post-RoPE) */
    float *v;          /* [capacity, H_kv * D] */
    int capacity;      /* slots */
    int ld;            /* row stride of kt (capacity + padding for 8-wide reads) */
    int context;       /* window length */
    int64_t offset;    /* positions seen = position of the next token */
    int64_t base;      /* position held by slot 0 */
} PtWindowKV;

/* Queries attended together (one pass over their shared keys and values). */
#define PT_WINDOW_QUERY_TILE 16
/* Score row stride and the score scratch floats of one attention thread. */
int pt_window_scores_ld(int context);
size_t pt_window_scores_floats(int context);

/* Floats of one layer's window cache for calls of up to max_T tokens. */
size_t pt_window_kv_floats(const PtTransformerShape *s, int max_T);
/* Point kv into mem (pt_window_kv_floats floats) and reset it. */
void pt_window_kv_bind(PtWindowKV *kv, const PtTransformerShape *s, int max_T, float *mem);
/* Back to position 0 (no memory is cleared: nothing before `base` is ever read). */
void pt_window_kv_reset(PtWindowKV *kv);

/* out[T, H*D] = attention of q[T, H, D] (rotated) over the window of each query after
 * appending k, v [T, H_kv, D] (rows q_stride / kv_stride apart) at positions offset..offset+T-1:
 * query p sees positions [max(0, p - context + 1), p]. Advances kv->offset.
 * scores: 2 * pt_window_scores_floats(context) floats. threads 2 splits the queries over two
 * threads.
 * Returns 0, or -1 when T exceeds what the cache was sized for. */
int pt_window_attention(PtWindowKV *kv, const float *q, const float *k, const float *v, int T,
                        int H, int H_kv, int D, int q_stride, int kv_stride, float *out,
                        float *scores, int threads);

/* Scratch floats for pt_mimi_transformer_layer over up to T tokens. */
size_t pt_mimi_transformer_scratch_size(const PtTransformerShape *s, int T);

/* One layer in place on x[T, d] (T <= the cache's max_T), appending to kv. threads: 1 or 2.
 * Returns 0, or -1 when T exceeds what the cache was sized for. */
int pt_mimi_transformer_layer(const PtTransformerShape *s, const PtLayerWeights *w,
                              PtWindowKV *kv, float *x, int T, float *scratch, int threads);

#endif
