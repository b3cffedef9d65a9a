#include <math.h>
#include <pthread.h>
#include <string.h>
#include "attention.h"
#include "cpu.h"
#include "gemm.h"
#include "vmath.h"

/* RoPE frequency exp(i * step) as torch computes it in float32 on AVX2 machines. Its exp
 * (MKL's) is correctly rounded there except on a few arguments; for the head sizes 16..256
 * with max_period 10000 those misses are listed here (checked against the reference in
 * tests/test_flow_lm.py), because at positions in the thousands one ulp of frequency is
 * ~1e-4 rad of angle. On AVX-512, MKL misses others: one ulp off in 11 of them. */
float pt_rope_freq(int i, int D, float max_period) {
    float step = (float)(-log((double)max_period) * 2.0 / D);
    float f = (float)exp((double)((float)i * step));
    if (max_period == 10000.0f) {
        union { float f; uint32_t u; } b = {f};
        if (b.u == 0x3ed7e89au || b.u == 0x39ff4facu) b.u += 1;
        else if (b.u == 0x3b7b14aau) b.u -= 1;
        f = b.f;
    }
    return f;
}

void pt_rope(float *x, int T, int H, int D, int64_t pos0, float max_period) {
    int half = D / 2;
    for (int i = 0; i < half; i++) {
        float freq = pt_rope_freq(i, D, max_period);
        for (int t = 0; t < T; t++) {
            float pos = (float)(pos0 + t);
            float theta = freq * pos;
            float c = (float)cos((double)theta), s = (float)sin((double)theta);
            for (int h = 0; h < H; h++) {
                float *p = x + ((size_t)t * H + h) * D + 2 * i;
                float re = p[0], im = p[1];
                p[0] = re * c - im * s;
                p[1] = re * s + im * c;
            }
        }
    }
}

/* ---------------------------------------------------------------------------------------------
 * Attention of query rows over the cache
 *
 * A row at position p attends the n = p + 1 keys of positions [0, p], at slots 0 .. p. Each
 * (row, head) output is computed by one fixed sequence of operations that depends only on the
 * row's own query and keys, whatever T, the rows sharing a sweep, or the thread:
 * frame-by-frame == batch, bit for bit.
 * ------------------------------------------------------------------------------------------- */

/* One thread's share: query rows [t0, t1) x heads [h0, h1). Row t is at position pos0 + t. */
typedef struct {
    float *out;              /* [T, H * D] */
    const float *q;          /* [T, q_stride], head h at h * D */
    const PtKVCache *cache;  /* keys and values of every attended position already written */
    int H, H_kv, D, q_stride;
    int t0, t1, h0, h1;
    int64_t pos0;
    float *scores;           /* this share's part of the scratch (see share_floats) */
} AttnJob;

/* Floats per score row: the longest row (capacity keys) rounded up to whole 8-key blocks. */
static inline size_t scores_ld(int capacity) { return (size_t)((capacity + 7) & ~7); }

/* Portable path, one (row, head) at a time over the keys of slots [0, n); the head's part of a
 * slot starts `off` floats in. sc: >= n floats. */
static void head_generic(float *oh, const float *qh, const PtKVCache *c, size_t off, size_t row,
                         int n, int D, float *sc) {
    const float scale = 1.0f / sqrtf((float)D);
    float mx = -INFINITY, sum = 0.0f;
    for (int j = 0; j < n; j++) {
        const float *kr = pt_kv_key(c, j, row) + off;
        float a = 0.0f;
        for (int d = 0; d < D; d++) a += qh[d] * kr[d];
        sc[j] = a * scale;
        if (sc[j] > mx) mx = sc[j];
    }
    for (int j = 0; j < n; j++) {
        sc[j] = expf(sc[j] - mx);
        sum += sc[j];
    }
    float inv = 1.0f / sum;
    for (int d = 0; d < D; d++) oh[d] = 0.0f;
    for (int j = 0; j < n; j++) {
        const float *vr = pt_kv_value(c, j, row) + off;
        float w = sc[j] * inv;
        for (int d = 0; d < D; d++) oh[d] += w * vr[d];
    }
}

static void run_generic(const AttnJob *j) {
    const PtKVCache *c = j->cache;
    const int D = j->D, group = j->H / j->H_kv;
    const size_t row = (size_t)j->H_kv * D;
    for (int t = j->t0; t < j->t1; t++) {
        const int n = (int)(j->pos0 + t + 1);
        for (int h = j->h0; h < j->h1; h++)
            head_generic(j->out + (size_t)t * j->H * D + (size_t)h * D,
                         j->q + (size_t)t * j->q_stride + (size_t)h * D,
                         c, (size_t)(h / group) * D, row, n, D, j->scores);
    }
}

#ifdef PT_HAVE_X86
#define TARGET __attribute__((target("avx2,fma")))
/* Query rows sharing one sweep over the keys (each key block is read once for all of them). */
#define SWEEP_ROWS 8

/* Lane i = the sum of the 8 lanes of a[i], as ((x0 + x1) + (x2 + x3)) + ((x4 + x5) + (x6 + x7))
 * for every i: a key's score does not depend on its lane. */
TARGET static inline __m256 hsum8x8(const __m256 *a) {
    __m256 h0 = _mm256_hadd_ps(_mm256_hadd_ps(a[0], a[1]), _mm256_hadd_ps(a[2], a[3]));
    __m256 h1 = _mm256_hadd_ps(_mm256_hadd_ps(a[4], a[5]), _mm256_hadd_ps(a[6], a[7]));
    return _mm256_add_ps(_mm256_permute2f128_ps(h0, h1, 0x20),
                         _mm256_permute2f128_ps(h0, h1, 0x31));
}

/* sc[0, nb) (nb = n rounded up to 8, lanes >= n ignored) <- softmax weights. */
TARGET static void softmax8(float *sc, int n) {
    const int nb = (n + 7) & ~7;
    const __m256 inv = _mm256_set1_ps(pt_softmax_exp8(sc, n));
    for (int j = 0; j < nb; j += 8)
        _mm256_storeu_ps(sc + j, _mm256_mul_ps(_mm256_loadu_ps(sc + j), inv));
}

/* Rows t0 .. t0 + nr - 1 (nr <= SWEEP_ROWS) x the job's heads; D % 8 == 0.
 * The cache is [slot, H_kv, D]: a head's keys are a whole row apart, and walking them head by
 * head touches one 256-byte piece per 4 KB, which defeats the prefetchers and crowds a few cache
 * sets (docs/performance.md). So both passes walk the keys in memory order: blocks of 8 slots,
 * every head within a block. Scores: one accumulator per key over D, reduced by hsum8x8, lanes
 * past a row's last key repeating that key; softmax and P.V as in mimi_transformer.c's
 * attn_avx2, P.V accumulating each output over the keys in order (a float round trip through
 * out between blocks, exact). */
TARGET static void sweep_avx2(const AttnJob *j, int t0, int nr) {
    const PtKVCache *c = j->cache;
    const int D = j->D, group = j->H / j->H_kv, nh = j->h1 - j->h0;
    const size_t row = (size_t)j->H_kv * D, ld = scores_ld(c->capacity);
    const __m256 vscale = _mm256_set1_ps(1.0f / sqrtf((float)D));
    int n[SWEEP_ROWS]; /* keys of each row: slots [0, n) */
    for (int r = 0; r < nr; r++) n[r] = (int)(j->pos0 + t0 + r + 1);
    const int nmax = (int)(j->pos0 + t0 + nr); /* n of the last row */
#define SC(r, h) (j->scores + ((size_t)(r) * nh + (size_t)((h) - j->h0)) * ld)
#define QH(r, h) (j->q + (size_t)(t0 + (r)) * j->q_stride + (size_t)(h) * D)
#define OH(r, h) (j->out + (size_t)(t0 + (r)) * j->H * D + (size_t)(h) * D)
    for (int b = 0; b < nmax; b += 8) {
        const float *kp[8];
        for (int i = 0; i < 8; i++) /* past the last key: repeat it */
            kp[i] = pt_kv_key(c, b + i < nmax ? b + i : nmax - 1, row);
        for (int h = j->h0; h < j->h1; h++) {
            const size_t off = (size_t)(h / group) * D;
            for (int r = 0; r < nr; r++) {
                if (n[r] <= b) continue;
                const float *qh = QH(r, h);
                __m256 a[8];
#pragma GCC unroll 8
                for (int i = 0; i < 8; i++) a[i] = _mm256_setzero_ps();
                for (int d = 0; d < D; d += 8) {
                    __m256 qd = _mm256_loadu_ps(qh + d);
#pragma GCC unroll 8
                    for (int i = 0; i < 8; i++)
                        a[i] = _mm256_fmadd_ps(qd, _mm256_loadu_ps(kp[i] + off + d), a[i]);
                }
                _mm256_storeu_ps(SC(r, h) + b, _mm256_mul_ps(hsum8x8(a), vscale));
            }
        }
    }
    for (int r = 0; r < nr; r++)
        for (int h = j->h0; h < j->h1; h++) softmax8(SC(r, h), n[r]);
    for (int b = 0; b < nmax; b += 8) {
        const float *vp[8];
        const int nk = nmax - b < 8 ? nmax - b : 8;
        for (int i = 0; i < nk; i++) vp[i] = pt_kv_value(c, b + i, row);
        for (int h = j->h0; h < j->h1; h++) {
            const size_t off = (size_t)(h / group) * D;
            for (int r = 0; r < nr; r++) {
                if (n[r] <= b) continue;
                const float *w = SC(r, h) + b;
                const int m = n[r] - b < nk ? n[r] - b : nk;
                float *oh = OH(r, h);
                int d0 = 0;
                for (; d0 + 64 <= D; d0 += 64) {
                    __m256 a[8];
#pragma GCC unroll 8
                    for (int i = 0; i < 8; i++)
                        a[i] = b ? _mm256_loadu_ps(oh + d0 + 8 * i) : _mm256_setzero_ps();
                    for (int k = 0; k < m; k++) {
                        const __m256 wk = _mm256_set1_ps(w[k]);
                        const float *vr = vp[k] + off + d0;
#pragma GCC unroll 8
                        for (int i = 0; i < 8; i++)
                            a[i] = _mm256_fmadd_ps(wk, _mm256_loadu_ps(vr + 8 * i), a[i]);
                    }
#pragma GCC unroll 8
                    for (int i = 0; i < 8; i++) _mm256_storeu_ps(oh + d0 + 8 * i, a[i]);
                }
                for (; d0 < D; d0 += 8) { /* heads that are not a multiple of 64 wide */
                    __m256 a = b ? _mm256_loadu_ps(oh + d0) : _mm256_setzero_ps();
                    for (int k = 0; k < m; k++)
                        a = _mm256_fmadd_ps(_mm256_set1_ps(w[k]),
                                            _mm256_loadu_ps(vp[k] + off + d0), a);
                    _mm256_storeu_ps(oh + d0, a);
                }
            }
        }
    }
#undef SC
#undef QH
#undef OH
}

TARGET static void run_avx2(const AttnJob *j) {
    for (int t = j->t0; t < j->t1; t += SWEEP_ROWS)
        sweep_avx2(j, t, j->t1 - t < SWEEP_ROWS ? j->t1 - t : SWEEP_ROWS);
}
#else
#define SWEEP_ROWS 1
#endif

static void run_job(const AttnJob *j) {
#ifdef PT_HAVE_X86
    if (pt_cpu_has_avx2() && j->D % 8 == 0) {
        run_avx2(j);
        return;
    }
#endif
    run_generic(j);
}

static void *job_thread(void *arg) {
    run_job((const AttnJob *)arg);
    return NULL;
}

/* Scratch floats of a share of nh heads: scores [SWEEP_ROWS, nh, ld], then a cache line of
 * padding so two shares never write the same line. */
static size_t share_floats(int capacity, int nh) {
    return (size_t)SWEEP_ROWS * nh * scores_ld(capacity) + 16;
}

size_t pt_attention_scratch_size(int capacity, int H) { return share_floats(capacity, H) + 16; }

/* A second thread pays off from ~2^20 multiply-adds per pass (several times the cost of
 * starting a thread, docs/performance.md), e.g. a 13-row prefill over 140 keys. */
static int worth_two_threads(int T, int H, int64_t keys, int D) {
    return T >= 4 && H >= 2 && (double)T * H * (double)keys * D >= (double)(1 << 20);
}

static void store_kv(PtKVCache *c, int slot, const float *k, const float *v, size_t row) {
    memcpy(c->k + (size_t)(slot - c->prefix) * row, k, row * sizeof(float));
    memcpy(c->v + (size_t)(slot - c->prefix) * row, v, row * sizeof(float));
}

int pt_attention(float *out, const float *q, const float *k, const float *v, PtKVCache *cache,
                 int T, int H, int H_kv, int D, int q_stride, int kv_stride, float *scores) {
    const size_t row = (size_t)H_kv * D;
    if (cache->offset + T > cache->capacity || cache->offset < cache->prefix) return -1;
    AttnJob job = {out, q, cache, H, H_kv, D, q_stride, 0, T, 0, H, cache->offset, scores};
    /* Every row's key and value in place, then the rows attend (causally). */
    for (int t = 0; t < T; t++)
        store_kv(cache, (int)(cache->offset + t), k + (size_t)t * kv_stride,
                 v + (size_t)t * kv_stride, row);
    if (pt_gemm_threads() > 1 && worth_two_threads(T, H, cache->offset + T, D)) {
        /* Heads split in two: balanced (every head sees the same keys); each thread scores its
         * own heads in its own part of the scratch. */
        AttnJob other = job;
        job.h1 = other.h0 = H / 2;
        other.scores = scores + share_floats(cache->capacity, job.h1);
        pthread_t th;
        if (pthread_create(&th, NULL, job_thread, &other) == 0) {
            run_job(&job);
            pthread_join(th, NULL);
        } else {
            job.h1 = H;
            run_job(&job);
        }
    } else {
        run_job(&job);
    }
    cache->offset += T;
    return 0;
}
