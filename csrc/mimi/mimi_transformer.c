#include <math.h>
#include <pthread.h>
#include <string.h>
#include "cpu.h"
#include "elementwise.h"
#include "mimi_transformer.h"
#include "vmath.h"

static int kv_capacity(const PtTransformerShape *s, int max_T) {
    /* Room for the window, one call and slack, so compaction runs every few calls only. */
    int cap = s->context + 2 * max_T + 128;
    return (cap + 7) & ~7;
}

/* Room for a tile's union of windows (<= context + QB - 1 slots) rounded up to 16-key blocks,
 * and for a softmax's 8-lane tail past it. */
int pt_window_scores_ld(int context) { return (context + PT_WINDOW_QUERY_TILE + 8 + 15) & ~15; }

size_t pt_window_scores_floats(int context) {
    return (size_t)PT_WINDOW_QUERY_TILE * pt_window_scores_ld(context);
}

size_t pt_window_kv_floats(const PtTransformerShape *s, int max_T) {
    size_t row = (size_t)s->num_kv_heads * s->head_dim, cap = (size_t)kv_capacity(s, max_T);
    /* kt rows carry 16 extra columns: 16-key score blocks may read up to 15 slots past the end
     * (never used: those lanes are masked out of every softmax). */
    return row * (cap + 16) + row * cap + 16;
}

void pt_window_kv_bind(PtWindowKV *kv, const PtTransformerShape *s, int max_T, float *mem) {
    size_t row = (size_t)s->num_kv_heads * s->head_dim;
    kv->capacity = kv_capacity(s, max_T);
    kv->ld = kv->capacity + 16;
    kv->context = s->context;
    kv->kt = mem;
    kv->v = mem + row * (size_t)kv->ld;
    pt_window_kv_reset(kv);
}

void pt_window_kv_reset(PtWindowKV *kv) {
    kv->offset = 0;
    kv->base = 0;
}

size_t pt_mimi_transformer_scratch_size(const PtTransformerShape *s, int T) {
    size_t attn = (size_t)s->num_heads * s->head_dim;
    size_t qkv = attn + 2 * (size_t)s->num_kv_heads * s->head_dim;
    size_t wide = qkv > (size_t)s->ffn_dim ? qkv : (size_t)s->ffn_dim;
    /* h [T,d] + wide [T, max(qkv, ffn)] + attn_out [T, attn] + scores for two threads */
    return (size_t)T * s->d_model + (size_t)T * wide + (size_t)T * attn +
           2 * pt_window_scores_floats(s->context) + 64;
}

/* ---------------------------------------------------------------------------------------------
 * Window attention
 * ------------------------------------------------------------------------------------------- */

typedef struct {
    int H, H_kv, D;
    const PtWindowKV *kv;
    const float *q;      /* [T, q_stride], head h at h * D */
    int q_stride;
    float *out;          /* [T, H * D] */
    int t0, t1;          /* queries [t0, t1) */
    int64_t pos0;        /* position of query 0 */
    float *scores;       /* pt_window_scores_floats(context) floats */
} AttnJob;

/* Query t attends to positions [max(0, p - context + 1), p], p = pos0 + t: n keys from slot s0. */
static inline void window(const AttnJob *j, int t, int *s0, int *n) {
    int64_t p = j->pos0 + t, first = p - j->kv->context + 1;
    if (first < 0) first = 0;
    *s0 = (int)(first - j->kv->base);
    *n = (int)(p - first + 1);
}

static void attn_generic(const AttnJob *j) {
    const int H = j->H, D = j->D, group = H / j->H_kv, ld = j->kv->ld;
    const size_t row = (size_t)j->H_kv * D;
    const float scale = 1.0f / sqrtf((float)D);
    float *sc = j->scores;
    for (int t = j->t0; t < j->t1; t++) {
        int s0, n;
        window(j, t, &s0, &n);
        for (int h = 0; h < H; h++) {
            const float *qh = j->q + (size_t)t * j->q_stride + (size_t)h * D;
            const float *kt = j->kv->kt + (size_t)(h / group) * D * ld + s0;
            float mx = -INFINITY, sum = 0.0f;
            for (int k = 0; k < n; k++) {
                float a = 0.0f;
                for (int d = 0; d < D; d++) a += qh[d] * kt[(size_t)d * ld + k];
                sc[k] = a * scale;
                if (sc[k] > mx) mx = sc[k];
            }
            for (int k = 0; k < n; k++) {
                sc[k] = expf(sc[k] - mx);
                sum += sc[k];
            }
            float inv = 1.0f / sum;
            float *oh = j->out + (size_t)t * H * D + (size_t)h * D;
            const float *v = j->kv->v + (size_t)s0 * row + (size_t)(h / group) * D;
            for (int d = 0; d < D; d++) oh[d] = 0.0f;
            for (int k = 0; k < n; k++) {
                float w = sc[k] * inv;
                for (int d = 0; d < D; d++) oh[d] += w * v[(size_t)k * row + d];
            }
        }
    }
}

#ifdef PT_HAVE_X86
#define TARGET __attribute__((target("avx2,fma")))
/* A tile of up to PT_WINDOW_QUERY_TILE consecutive queries reads each head's keys and values
 * (about 68 KB each at context 250: past L1, and all heads together past L2) once for the whole
 * tile, in blocks that stay in L1 while every group of QB queries (the register tile) uses
 * them. Consecutive queries' windows overlap in all but a few slots. */
#define QB 4

/* Scores of nq <= QB queries on 16 union slots of one head: sc[i * ldsc] = scale *
 * sum_d q_i[d] kt[d], each lane summed over d in order from 0, so a score does not depend on
 * the tile it is computed in. */
TARGET static inline void score_block(float *sc, size_t ldsc, const float *const *qh, int nq,
                                      const float *kt, size_t ld, int D, __m256 vscale) {
    __m256 a[QB][2];
#pragma GCC unroll 4
    for (int i = 0; i < QB; i++) a[i][0] = a[i][1] = _mm256_setzero_ps();
    for (int d = 0; d < D; d++) {
        const float *kr = kt + (size_t)d * ld;
        __m256 k0 = _mm256_loadu_ps(kr), k1 = _mm256_loadu_ps(kr + 8);
#pragma GCC unroll 4
        for (int i = 0; i < QB; i++) {
            if (i < nq) {
                __m256 qb = _mm256_broadcast_ss(qh[i] + d);
                a[i][0] = _mm256_fmadd_ps(qb, k0, a[i][0]);
                a[i][1] = _mm256_fmadd_ps(qb, k1, a[i][1]);
            }
        }
    }
#pragma GCC unroll 4
    for (int i = 0; i < QB; i++) {
        if (i < nq) {
            _mm256_storeu_ps(sc + i * ldsc, _mm256_mul_ps(a[i][0], vscale));
            _mm256_storeu_ps(sc + i * ldsc + 8, _mm256_mul_ps(a[i][1], vscale));
        }
    }
}

/* Softmax of one query's n scores in place (row + off = its window), then its weights
 * w_k = e_k / sum over the tile's union row, zero outside [off, off + n). Sums run in 8-lane
 * blocks from the window's own start, as for a query alone. */
TARGET static inline void window_softmax(float *row, int off, int n, int un) {
    float *sc = row + off;
    const float inv = pt_softmax_exp8(sc, n);
    for (int k = 0; k < off; k++) row[k] = 0.0f;
    for (int k = 0; k < n; k++) sc[k] *= inv;
    for (int k = off + n; k < un; k++) row[k] = 0.0f;
}

/* out_i[d0 .. d0 + 8 NV) = sum over union slots k (in order) of w_i[k] v[k]. Slots outside a
 * query's window carry weight 0, and fma(0, v, a) == a, so each output equals the sum over its
 * own window alone. */
TARGET static inline void value_block(float *const *oh, int nq, const float *w, size_t ldw,
                                      const float *v, size_t row, int un, int d0, const int NV) {
    __m256 a[QB][2];
#pragma GCC unroll 4
    for (int i = 0; i < QB; i++) a[i][0] = a[i][1] = _mm256_setzero_ps();
    for (int k = 0; k < un; k++) {
        const float *vr = v + (size_t)k * row + d0;
        __m256 v0 = _mm256_loadu_ps(vr), v1 = NV > 1 ? _mm256_loadu_ps(vr + 8) : v0;
#pragma GCC unroll 4
        for (int i = 0; i < QB; i++) {
            if (i < nq) {
                __m256 wb = _mm256_broadcast_ss(w + i * ldw + k);
                a[i][0] = _mm256_fmadd_ps(wb, v0, a[i][0]);
                if (NV > 1) a[i][1] = _mm256_fmadd_ps(wb, v1, a[i][1]);
            }
        }
    }
#pragma GCC unroll 4
    for (int i = 0; i < QB; i++) {
        if (i < nq) {
            _mm256_storeu_ps(oh[i] + d0, a[i][0]);
            if (NV > 1) _mm256_storeu_ps(oh[i] + d0 + 8, a[i][1]);
        }
    }
}

/* Tiles of consecutive queries: for each head, scores over the union of their windows, a
 * per-query softmax, then P.V over the union. Every output is bit-identical to attending that
 * query alone (see score_block / value_block), so tiling, chunking and thread splits change
 * nothing. D % 8 == 0. */
TARGET static void attn_avx2(const AttnJob *j) {
    const int H = j->H, D = j->D, group = H / j->H_kv, ld = j->kv->ld;
    const size_t row = (size_t)j->H_kv * D, ldsc = (size_t)pt_window_scores_ld(j->kv->context);
    const __m256 vscale = _mm256_set1_ps(1.0f / sqrtf((float)D));
    enum { QT = PT_WINDOW_QUERY_TILE };
    for (int t0 = j->t0; t0 < j->t1; t0 += QT) {
        const int nt = j->t1 - t0 < QT ? j->t1 - t0 : QT;
        int s0[QT], n[QT];
        for (int i = 0; i < nt; i++) window(j, t0 + i, &s0[i], &n[i]);
        /* Windows only move forward: the union is [s0[0], s0[last] + n[last]). */
        const int u0 = s0[0], un = s0[nt - 1] + n[nt - 1] - u0, nb = (un + 15) & ~15;
        for (int h = 0; h < H; h++) {
            const float *qh[QT];
            float *oh[QT];
            for (int i = 0; i < nt; i++) {
                qh[i] = j->q + (size_t)(t0 + i) * j->q_stride + (size_t)h * D;
                oh[i] = j->out + (size_t)(t0 + i) * H * D + (size_t)h * D;
            }
            const float *kt = j->kv->kt + (size_t)(h / group) * D * ld + u0;
            for (int k = 0; k < nb; k += 16) /* a 16-key block (D lines) serves all queries */
                for (int g = 0; g < nt; g += QB)
                    score_block(j->scores + g * ldsc + k, ldsc, qh + g,
                                nt - g < QB ? nt - g : QB, kt + k, (size_t)ld, D, vscale);
            for (int i = 0; i < nt; i++)
                window_softmax(j->scores + i * ldsc, s0[i] - u0, n[i], un);
            const float *v = j->kv->v + (size_t)u0 * row + (size_t)(h / group) * D;
            for (int d0 = 0; d0 < D; d0 += 16) /* one column block of V serves all queries */
                for (int g = 0; g < nt; g += QB)
                    value_block(oh + g, nt - g < QB ? nt - g : QB, j->scores + g * ldsc, ldsc,
                                v, row, un, d0, D - d0 >= 16 ? 2 : 1);
        }
    }
}
#endif

static void run_attn(const AttnJob *j) {
#ifdef PT_HAVE_X86
    if (pt_cpu_has_avx2() && j->D % 8 == 0) {
        attn_avx2(j);
        return;
    }
#endif
    attn_generic(j);
}

static void *attn_thread(void *arg) {
    run_attn((const AttnJob *)arg);
    return NULL;
}

typedef struct {
    float *x;
    size_t n;
} GeluJob;

static void *gelu_thread(void *arg) {
    const GeluJob *g = (const GeluJob *)arg;
    pt_gelu_tanh(g->x, g->n);
    return NULL;
}

/* Slide the window to the front once the next T tokens would not fit. */
static int make_room(PtWindowKV *kv, int T, size_t row) {
    if (kv->offset + T - kv->base <= kv->capacity) return 0;
    int64_t keep = kv->offset - kv->base;
    if (keep > kv->context - 1) keep = kv->context - 1;
    if (keep + T > kv->capacity) return -1;
    int64_t shift = kv->offset - keep - kv->base;
    for (size_t r = 0; r < row; r++)
        memmove(kv->kt + r * kv->ld, kv->kt + r * kv->ld + shift, (size_t)keep * sizeof(float));
    memmove(kv->v, kv->v + (size_t)shift * row, (size_t)keep * row * sizeof(float));
    kv->base += shift;
    return 0;
}

int pt_window_attention(PtWindowKV *kv, const float *q, const float *k, const float *v, int T,
                        int H, int H_kv, int D, int q_stride, int kv_stride, float *out,
                        float *scores, int threads) {
    const size_t kvd = (size_t)H_kv * D;
    if (make_room(kv, T, kvd) != 0) return -1;
    for (int t = 0; t < T; t++) {
        /* Every new key (transposed) and value is in place before any query attends. */
        int slot = (int)(kv->offset + t - kv->base);
        const float *kr = k + (size_t)t * kv_stride;
        for (size_t r = 0; r < kvd; r++) kv->kt[r * kv->ld + slot] = kr[r];
        memcpy(kv->v + (size_t)slot * kvd, v + (size_t)t * kv_stride, kvd * sizeof(float));
    }
    AttnJob job = {H, H_kv, D, kv, q, q_stride, out, 0, T, kv->offset, scores};
    pthread_t th;
    if (threads > 1 && T >= 2) {
        AttnJob other = job;
        job.t1 = other.t0 = T / 2;
        other.scores = scores + pt_window_scores_floats(kv->context);
        if (pthread_create(&th, NULL, attn_thread, &other) == 0) {
            run_attn(&job);
            pthread_join(th, NULL);
        } else {
            job.t1 = T;
            run_attn(&job);
        }
    } else {
        run_attn(&job);
    }
    kv->offset += T;
    return 0;
}

/* ---------------------------------------------------------------------------------------------
 * Layer
 * ------------------------------------------------------------------------------------------- */

static void add_scaled(float *x, const float *h, const float *scale, int T, int d) {
    for (int t = 0; t < T; t++) {
        float *xr = x + (size_t)t * d;
        const float *hr = h + (size_t)t * d;
        if (scale) {
            for (int c = 0; c < d; c++) xr[c] += scale[c] * hr[c];
        } else {
            for (int c = 0; c < d; c++) xr[c] += hr[c];
        }
    }
}

int pt_mimi_transformer_layer(const PtTransformerShape *s, const PtLayerWeights *w,
                              PtWindowKV *kv, float *x, int T, float *scratch, int threads) {
    const int d = s->d_model, H = s->num_heads, Hkv = s->num_kv_heads, D = s->head_dim;
    const int attn = H * D, kvd = Hkv * D, qkv_dim = attn + 2 * kvd, ff = s->ffn_dim;
    const size_t wide = (size_t)(qkv_dim > ff ? qkv_dim : ff);
    float *h = scratch;
    float *big = h + (size_t)T * d;
    float *att = big + (size_t)T * wide;
    float *scores = att + (size_t)T * attn;

    pt_layer_norm(h, x, w->norm1_w, w->norm1_b, T, d, 1e-5f);
    pt_gemm(big, qkv_dim, h, d, &w->in_proj, T, NULL, 0);
    for (int t = 0; t < T; t++) {
        float *row = big + (size_t)t * qkv_dim;
        pt_rope(row, 1, H, D, kv->offset + t, s->max_period);
        pt_rope(row + attn, 1, Hkv, D, kv->offset + t, s->max_period);
    }
    if (pt_window_attention(kv, big, big + attn, big + attn + kvd, T, H, Hkv, D, qkv_dim,
                            qkv_dim, att, scores, threads) != 0)
        return -1;
    pt_gemm(h, d, att, attn, &w->out_proj, T, NULL, 0);
    add_scaled(x, h, w->scale1, T, d);
    pt_layer_norm(h, x, w->norm2_w, w->norm2_b, T, d, 1e-5f);
    pt_gemm(big, ff, h, d, &w->linear1, T, NULL, 0);
    size_t n = (size_t)T * ff, half = (n / 2) & ~(size_t)7;
    GeluJob g = {big + half, n - half};
    pthread_t th;
    if (threads > 1 && half > 0 && pthread_create(&th, NULL, gelu_thread, &g) == 0) {
        pt_gelu_tanh(big, half);
        pthread_join(th, NULL);
    } else {
        pt_gelu_tanh(big, n);
    }
    pt_gemm(h, d, big, ff, &w->linear2, T, NULL, 0);
    add_scaled(x, h, w->scale2, T, d);
    return 0;
}
