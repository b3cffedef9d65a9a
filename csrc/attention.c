#include <math.h>
#include <string.h>
#include "attention.h"
#include "cpu.h"

/* RoPE frequency exp(i * step) as torch computes it in float32. Its vectorised exp is
 * correctly rounded except on a few arguments; for the head sizes 16..256 with max_period
 * 10000 those misses are listed here (checked against the reference in tests/test_flow_lm.py),
 * because at positions in the thousands one ulp of frequency is ~1e-4 rad of angle. */
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

static inline __attribute__((always_inline)) float dot(const float *a, const float *b, int n) {
    float s = 0.0f;
#pragma omp simd reduction(+ : s)
    for (int i = 0; i < n; i++) s += a[i] * b[i];
    return s;
}

/* The body is compiled twice: for the baseline ISA and, through the target attribute, with
 * AVX2/FMA vectorisation of its dot products and accumulations (chosen at run time). */
static inline __attribute__((always_inline)) int attention_impl(
    float *out, const float *q, const float *k, const float *v, PtKVCache *cache, int T, int H,
    int H_kv, int D, int q_stride, int kv_stride, float *scores) {
    int group = H / H_kv;
    float scale = 1.0f / sqrtf((float)D);
    size_t row = (size_t)H_kv * D;
    if (cache->context == 0 && cache->offset + T > cache->capacity) return -1;
    for (int t = 0; t < T; t++) {
        int64_t pos = cache->offset;
        int slot = cache->context ? (int)(pos % cache->capacity) : (int)pos;
        memcpy(cache->k + slot * row, k + (size_t)t * kv_stride, row * sizeof(float));
        memcpy(cache->v + slot * row, v + (size_t)t * kv_stride, row * sizeof(float));
        cache->offset = pos + 1;
        int64_t first = 0;
        if (cache->context && pos - cache->context + 1 > 0) first = pos - cache->context + 1;
        int n = (int)(pos - first + 1);
        for (int h = 0; h < H; h++) {
            const float *qh = q + (size_t)t * q_stride + (size_t)h * D;
            int hk = h / group;
            float mx = -INFINITY;
            for (int j = 0; j < n; j++) {
                int64_t p = first + j;
                int s = cache->context ? (int)(p % cache->capacity) : (int)p;
                float sc = dot(qh, cache->k + s * row + (size_t)hk * D, D) * scale;
                scores[j] = sc;
                if (sc > mx) mx = sc;
            }
            float sum = 0.0f;
            for (int j = 0; j < n; j++) {
                scores[j] = expf(scores[j] - mx);
                sum += scores[j];
            }
            float inv = 1.0f / sum;
            float *oh = out + (size_t)t * H * D + (size_t)h * D;
            for (int d = 0; d < D; d++) oh[d] = 0.0f;
            for (int j = 0; j < n; j++) {
                int64_t p = first + j;
                int s = cache->context ? (int)(p % cache->capacity) : (int)p;
                const float *vh = cache->v + s * row + (size_t)hk * D;
                float w = scores[j] * inv;
#pragma omp simd
                for (int d = 0; d < D; d++) oh[d] += w * vh[d];
            }
        }
    }
    return 0;
}

__attribute__((target("avx2,fma"))) static int attention_avx2(
    float *out, const float *q, const float *k, const float *v, PtKVCache *cache, int T, int H,
    int H_kv, int D, int q_stride, int kv_stride, float *scores) {
    return attention_impl(out, q, k, v, cache, T, H, H_kv, D, q_stride, kv_stride, scores);
}

static int attention_generic(float *out, const float *q, const float *k, const float *v,
                             PtKVCache *cache, int T, int H, int H_kv, int D, int q_stride,
                             int kv_stride, float *scores) {
    return attention_impl(out, q, k, v, cache, T, H, H_kv, D, q_stride, kv_stride, scores);
}

int pt_attention(float *out, const float *q, const float *k, const float *v, PtKVCache *cache,
                 int T, int H, int H_kv, int D, int q_stride, int kv_stride, float *scores) {
    if (pt_cpu_has_avx2())
        return attention_avx2(out, q, k, v, cache, T, H, H_kv, D, q_stride, kv_stride, scores);
    return attention_generic(out, q, k, v, cache, T, H, H_kv, D, q_stride, kv_stride, scores);
}
