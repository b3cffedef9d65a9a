#include <math.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <string.h>
#include "cpu.h"
#include "gemm.h"
#include "pack.h"
#ifdef PT_HAVE_X86
#include <immintrin.h>
#endif

size_t pt_packed_size(int out, int in) {
    return (size_t)((out + PT_PANEL - 1) / PT_PANEL) * (size_t)in * PT_PANEL;
}

void pt_pack_nt(float *dst, const float *w, int out, int in) {
    pt_pack_weights(dst, NULL, w, out, in, PT_F32);
}

static inline float weight_at(const PtMatrix *w, size_t idx) {
    switch (w->dtype) {
    case PT_F16: return pt_f16_to_f32(((const uint16_t *)w->data)[idx]);
    case PT_BF16: {
        union { uint32_t u; float f; } v = {(uint32_t)((const uint16_t *)w->data)[idx] << 16};
        return v.f;
    }
    case PT_I8: return (float)((const int8_t *)w->data)[idx];
    default: return ((const float *)w->data)[idx];
    }
}

static inline void store_row(float *yr, const float *s, const PtMatrix *w, int p, int cols,
                             const float *bias, int acc) {
    for (int j = 0; j < cols; j++) {
        float v = s[j];
        if (w->scale) v *= w->scale[p * PT_PANEL + j];
        if (bias) v += bias[p * PT_PANEL + j];
        yr[j] = acc ? yr[j] + v : v;
    }
}

/* Portable path: the same k order per output. */
static void gemm_generic(float *y, int ldy, const float *x, int ldx, const PtMatrix *w, int M,
                         const float *bias, int acc, int p_begin, int p_end) {
    int k = w->in;
    for (int p = p_begin; p < p_end; p++) {
        size_t base = (size_t)p * k * PT_PANEL;
        int cols = w->out - p * PT_PANEL < PT_PANEL ? w->out - p * PT_PANEL : PT_PANEL;
        for (int r = 0; r < M; r++) {
            float s[PT_PANEL] = {0};
            const float *xr = x + (size_t)r * ldx;
            for (int i = 0; i < k; i++)
                for (int j = 0; j < PT_PANEL; j++)
                    s[j] += xr[i] * weight_at(w, base + (size_t)i * PT_PANEL + j);
            store_row(y + (size_t)r * ldy + p * PT_PANEL, s, w, p, cols, bias, acc);
        }
    }
}

/* A product, or the part of one (output panels [p_begin, p_end)) that one thread computes. */
typedef struct {
    float *y;
    const float *x, *bias;
    const PtMatrix *w;
    int ldy, ldx, M, acc, p_begin, p_end;
    int gemv_order; /* every row in the one-row (GEMV) order: pt_gemm_set_gemv_order */
} GemmJob;

#ifdef PT_HAVE_X86
#define TARGET __attribute__((target("avx2,fma,f16c")))
/* Rows of activations per block (a multiple of the 6-row tile): a 127-row voice prefill is one
 * block, so it streams the weights once. */
#define PT_ROW_BLOCK 132

/* The 16 weights of panel row i, widened to two fp32 vectors. */
TARGET static inline __attribute__((always_inline)) void load16(const void *pp, size_t i,
                                                                const int dtype, __m256 *w0,
                                                                __m256 *w1) {
    if (dtype == PT_F16) {
        const __m128i *q = (const __m128i *)((const uint16_t *)pp + i * PT_PANEL);
        *w0 = _mm256_cvtph_ps(_mm_loadu_si128(q));
        *w1 = _mm256_cvtph_ps(_mm_loadu_si128(q + 1));
    } else if (dtype == PT_BF16) {
        const __m128i *q = (const __m128i *)((const uint16_t *)pp + i * PT_PANEL);
        *w0 = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(_mm_loadu_si128(q)), 16));
        *w1 = _mm256_castsi256_ps(
            _mm256_slli_epi32(_mm256_cvtepu16_epi32(_mm_loadu_si128(q + 1)), 16));
    } else if (dtype == PT_I8) {
        /* Two 8-byte loads that the sign extensions take as memory operands (no shuffle to
         * reach the upper half). */
        const int8_t *q = (const int8_t *)pp + i * PT_PANEL;
        *w0 = _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i *)q)));
        *w1 = _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i *)(q + 8))));
    } else {
        const float *f = (const float *)pp + i * PT_PANEL;
        *w0 = _mm256_loadu_ps(f);
        *w1 = _mm256_loadu_ps(f + 8);
    }
}

/* R rows (1..3) x 16 columns over one k-block in the one-row (GEMV) order: two accumulator
 * pairs per row over even / odd k hide the FMA latency, which otherwise caps compact dtypes
 * below DRAM speed for a single row. The pairs' partial sums live in sums[r][32] (even k, then
 * odd k) between blocks (an exact float round trip; blocks start at even k), and a row's
 * result is their sum at the end, so rows give the same bits whatever R, M or the blocking:
 * a flow-LM step of n streams (pt_gemm_set_gemv_order) matches each stream stepped alone. */
TARGET static inline __attribute__((always_inline)) void tile_gemv(float *sums, const float *x,
                                                                   int ldx, const void *pp,
                                                                   int k, const int R,
                                                                   const int dtype, int first) {
    __m256 b[3][2], c[3][2], w0, w1;
#pragma GCC unroll 3
    for (int r = 0; r < R; r++) {
        const float *sr = sums + r * 2 * PT_PANEL;
        b[r][0] = first ? _mm256_setzero_ps() : _mm256_loadu_ps(sr);
        b[r][1] = first ? _mm256_setzero_ps() : _mm256_loadu_ps(sr + 8);
        c[r][0] = first ? _mm256_setzero_ps() : _mm256_loadu_ps(sr + 16);
        c[r][1] = first ? _mm256_setzero_ps() : _mm256_loadu_ps(sr + 24);
    }
    int i = 0;
    /* Compact weights are prefetched non-temporally 2 KiB ahead (one line per two panel
     * rows at most): read once per frame, they then stop evicting the decoder thread's
     * working set from L3 (docs/performance.md). float32 gains nothing from it and is left
     * to the hardware prefetcher. A prefetch past the last panel cannot fault. */
    const char *pb = (const char *)pp;
    const size_t rb = dtype == PT_I8 ? PT_PANEL : 2 * PT_PANEL;
    for (; i + 2 <= k; i += 2) {
        if (dtype != PT_F32) _mm_prefetch(pb + (size_t)i * rb + 2048, _MM_HINT_NTA);
        load16(pp, i, dtype, &w0, &w1);
#pragma GCC unroll 3
        for (int r = 0; r < R; r++) {
            __m256 xb = _mm256_broadcast_ss(x + (size_t)r * ldx + i);
            b[r][0] = _mm256_fmadd_ps(xb, w0, b[r][0]);
            b[r][1] = _mm256_fmadd_ps(xb, w1, b[r][1]);
        }
        load16(pp, i + 1, dtype, &w0, &w1);
#pragma GCC unroll 3
        for (int r = 0; r < R; r++) {
            __m256 xb = _mm256_broadcast_ss(x + (size_t)r * ldx + i + 1);
            c[r][0] = _mm256_fmadd_ps(xb, w0, c[r][0]);
            c[r][1] = _mm256_fmadd_ps(xb, w1, c[r][1]);
        }
    }
    if (i < k) { /* an odd k: the last block's last row */
        load16(pp, i, dtype, &w0, &w1);
#pragma GCC unroll 3
        for (int r = 0; r < R; r++) {
            __m256 xb = _mm256_broadcast_ss(x + (size_t)r * ldx + i);
            b[r][0] = _mm256_fmadd_ps(xb, w0, b[r][0]);
            b[r][1] = _mm256_fmadd_ps(xb, w1, b[r][1]);
        }
    }
#pragma GCC unroll 3
    for (int r = 0; r < R; r++) {
        float *sr = sums + r * 2 * PT_PANEL;
        _mm256_storeu_ps(sr, b[r][0]);
        _mm256_storeu_ps(sr + 8, b[r][1]);
        _mm256_storeu_ps(sr + 16, c[r][0]);
        _mm256_storeu_ps(sr + 24, c[r][1]);
    }
}

/* out[16] = a row's even-k plus odd-k partial sums (tile_gemv). */
TARGET static inline void finish_gemv(float *out, const float *sr) {
    _mm256_storeu_ps(out, _mm256_add_ps(_mm256_loadu_ps(sr), _mm256_loadu_ps(sr + 16)));
    _mm256_storeu_ps(out + 8, _mm256_add_ps(_mm256_loadu_ps(sr + 8), _mm256_loadu_ps(sr + 24)));
}

/* tile_gemv for R = 1..3, R known at run time. */
TARGET static inline __attribute__((always_inline)) void tile_gemv_rows(
    float *sums, const float *x, int ldx, const void *pp, int k, int R, const int dtype,
    int first) {
    switch (R) {
    case 1: tile_gemv(sums, x, ldx, pp, k, 1, dtype, first); break;
    case 2: tile_gemv(sums, x, ldx, pp, k, 2, dtype, first); break;
    default: tile_gemv(sums, x, ldx, pp, k, 3, dtype, first); break;
    }
}

/* The GEMV order over M rows (one-row calls, or pt_gemm_set_gemv_order): per output panel,
 * k-blocks that stay in L1 while every tile of up to TMAX rows of the row block consumes them
 * (TILE_FN: tile_gemv_rows, TMAX 3; or AVX-512's tile_gemv512_rows, TMAX 6). */
#define PT_DEFINE_GEMV(NAME, TGT, TILE_FN, TMAX, DTYPE, ESIZE)                                 \
    TGT static void NAME(float *y, int ldy, const float *x, int ldx, const PtMatrix *w, int M, \
                         const float *bias, int acc, int p_begin, int p_end) {                 \
        int k = w->in;                                                                         \
        /* One tile: nothing to share a block with, one pass over k. */                        \
        int kc = M <= (TMAX) ? k : (PT_KC_BYTES / (PT_PANEL * (ESIZE))) & ~1;                  \
        float sums[PT_ROW_BLOCK * 2 * PT_PANEL], buf[PT_PANEL];                                \
        for (int rb = 0; rb < M; rb += PT_ROW_BLOCK) {                                         \
            int rb_end = M - rb < PT_ROW_BLOCK ? M : rb + PT_ROW_BLOCK;                        \
            for (int p = p_begin; p < p_end; p++) {                                            \
                const char *pp = (const char *)w->data + (size_t)p * k * PT_PANEL * (ESIZE);   \
                int cols = w->out - p * PT_PANEL < PT_PANEL ? w->out - p * PT_PANEL : PT_PANEL;\
                for (int kb = 0; kb < k; kb += kc) {                                           \
                    int kn = k - kb < kc ? k - kb : kc;                                        \
                    const char *pk = pp + (size_t)kb * PT_PANEL * (ESIZE);                     \
                    for (int r0 = rb; r0 < rb_end; r0 += (TMAX)) {                             \
                        int R = rb_end - r0 < (TMAX) ? rb_end - r0 : (TMAX);                   \
                        TILE_FN(sums + (size_t)(r0 - rb) * 2 * PT_PANEL,                       \
                                x + (size_t)r0 * ldx + kb, ldx, pk, kn, R, DTYPE, kb == 0);    \
                    }                                                                          \
                }                                                                              \
                for (int r = rb; r < rb_end; r++) {                                            \
                    finish_gemv(buf, sums + (size_t)(r - rb) * 2 * PT_PANEL);                  \
                    store_row(y + (size_t)r * ldy + p * PT_PANEL, buf, w, p, cols, bias, acc); \
                }                                                                              \
            }                                                                                  \
        }                                                                                      \
    }

/* R rows (1..6) x 16 columns over k: 2R accumulators, R broadcasts +
 * one panel row per k. Multi-row tiles run over one k-block: they start from zero (first) or
 * from the partial sums in out (a float round trip, exact, so the k order is unchanged), and
 * prefetch pf + i * pfs (their share of the next block).
 * One accumulation order for every R, so a row's result never depends on its neighbours
 * (a one-row call takes tile_gemv instead: calls of one row always do, calls of more rows
 * never do unless they ask for the GEMV order). */
TARGET static inline __attribute__((always_inline)) void tile(float *out, const float *x,
                                                              int ldx, const void *pp, int k,
                                                              const int R, const int dtype,
                                                              const char *pf, int pfs,
                                                              int first) {
    __m256 a[6][2], w0, w1;
#pragma GCC unroll 6
    for (int r = 0; r < R; r++) {
        a[r][0] = first ? _mm256_setzero_ps() : _mm256_loadu_ps(out + r * PT_PANEL);
        a[r][1] = first ? _mm256_setzero_ps() : _mm256_loadu_ps(out + r * PT_PANEL + 8);
    }
    for (int i = 0; i < k; i++) {
        _mm_prefetch(pf + (size_t)i * pfs, _MM_HINT_T0);
        load16(pp, i, dtype, &w0, &w1);
#pragma GCC unroll 6
        for (int r = 0; r < R; r++) {
            __m256 xb = _mm256_broadcast_ss(x + (size_t)r * ldx + i);
            a[r][0] = _mm256_fmadd_ps(xb, w0, a[r][0]);
            a[r][1] = _mm256_fmadd_ps(xb, w1, a[r][1]);
        }
    }
#pragma GCC unroll 6
    for (int r = 0; r < R; r++) {
        _mm256_storeu_ps(out + r * PT_PANEL, a[r][0]);
        _mm256_storeu_ps(out + r * PT_PANEL + 8, a[r][1]);
    }
}

/* tile() for R = 1..6 rows, with R known at run time and dtype at compile time. */
TARGET static inline __attribute__((always_inline)) void tile_rows(float *s, const float *xr,
                                                                   int ldx, const void *pp,
                                                                   int kn, int R,
                                                                   const int dtype,
                                                                   const char *pf, int pfs,
                                                                   int first) {
    switch (R) {
    case 1: tile(s, xr, ldx, pp, kn, 1, dtype, pf, pfs, first); break;
    case 2: tile(s, xr, ldx, pp, kn, 2, dtype, pf, pfs, first); break;
    case 3: tile(s, xr, ldx, pp, kn, 3, dtype, pf, pfs, first); break;
    case 4: tile(s, xr, ldx, pp, kn, 4, dtype, pf, pfs, first); break;
    case 5: tile(s, xr, ldx, pp, kn, 5, dtype, pf, pfs, first); break;
    default: tile(s, xr, ldx, pp, kn, 6, dtype, pf, pfs, first); break;
    }
}

/* Stores of a multi-row tile: the bias add and accumulate as 8-wide vector adds (the same IEEE
 * adds as store_row, so results are unchanged; small-k products were store-bound). */
TARGET static inline __attribute__((always_inline)) void store_tile(
    float *y, int ldy, const float *buf, int R, const PtMatrix *w, int p, int cols,
    const float *bias, int acc) {
    if (cols < PT_PANEL || w->scale) {
        for (int r = 0; r < R; r++)
            store_row(y + (size_t)r * ldy, buf + r * PT_PANEL, w, p, cols, bias, acc);
        return;
    }
    for (int r = 0; r < R; r++) {
        float *yr = y + (size_t)r * ldy;
        for (int h = 0; h < PT_PANEL; h += 8) {
            __m256 v = _mm256_loadu_ps(buf + r * PT_PANEL + h);
            if (bias) v = _mm256_add_ps(v, _mm256_loadu_ps(bias + p * PT_PANEL + h));
            if (acc) v = _mm256_add_ps(_mm256_loadu_ps(yr + h), v);
            _mm256_storeu_ps(yr + h, v);
        }
    }
}

/* Bytes of panel per k-block of a multi-row product: the block stays in L1 while every row
 * tile of the row block consumes it. */
#define PT_KC_BYTES 16384
/* k per block of widened int8 weights (16 KiB of fp32). */
#define PT_KC_WIDE 256

/* Rows of row tile t in a row block (see tbase / textra below). */
#define TILE_ROWS(t) (tbase + ((t) < textra))

/* A multi-row product: row blocks, output panels, k-blocks, tiles of up to TMAX rows (TILE_FN:
 * tile_rows, TMAX 6, WIDEN_I8 1; or AVX-512's tile512_rows, TMAX 12, WIDEN_I8 0, where
 * widening int8 per tile is one instruction a panel row, as cheap as fp16's). */
#define PT_DEFINE_GEMM(NAME, TGT, TILE_FN, TMAX, WIDEN_I8, DTYPE, ESIZE)                       \
    TGT static void NAME(float *y, int ldy, const float *x, int ldx, const PtMatrix *w, int M, \
                         const float *bias, int acc, int p_begin, int p_end) {                 \
        int k = w->in, kc0 = PT_KC_BYTES / (PT_PANEL * (ESIZE));                               \
        float sums[PT_ROW_BLOCK * PT_PANEL], buf[(TMAX) * PT_PANEL];                           \
        float wb[PT_KC_WIDE * PT_PANEL] __attribute__((aligned(32)));                          \
        /* Row blocks keep their activations cache-resident across all panels. */              \
        for (int rb = 0; rb < M; rb += PT_ROW_BLOCK) {                                         \
        int rb_end = M - rb < PT_ROW_BLOCK ? M : rb + PT_ROW_BLOCK;                            \
        int ntile = (rb_end - rb + (TMAX) - 1) / (TMAX);                                       \
        int npf = ntile < 4 ? (ntile < 2 ? 1 : 2) : 4;                                         \
        /* Rows spread evenly over the tiles (13 = 5+4+4, not 6+6+1): a thin tile is bound by  \
         * FMA latency, not throughput, and cost nearly as much as a full one. */              \
        int tbase = (rb_end - rb) / ntile, textra = (rb_end - rb) % ntile;                     \
        /* int8 weights shared by 3+ row tiles are widened to fp32 once per k-block: widening  \
         * per tile costs about as much as the FMAs (not so for fp16's F16C widening). */      \
        int conv = (WIDEN_I8) && DTYPE == PT_I8 && ntile > 2, kc = conv ? PT_KC_WIDE : kc0;    \
        int one = k <= kc;                                                                     \
        for (int p = p_begin; p < p_end; p++) {                                                \
            const char *pp = (const char *)w->data + (size_t)p * k * PT_PANEL * (ESIZE);       \
            int cols = w->out - p * PT_PANEL < PT_PANEL ? w->out - p * PT_PANEL : PT_PANEL;    \
            for (int kb = 0; kb < k; kb += kc) {                                               \
                int kn = k - kb < kc ? k - kb : kc;                                            \
                const char *pk = pp + (size_t)kb * PT_PANEL * (ESIZE);                         \
                if (conv) /* widened once per block, not once per row tile (exact) */          \
                    for (int i = 0; i < kn; i++) {                                             \
                        __m256 w0, w1;                                                         \
                        load16(pk, i, DTYPE, &w0, &w1);                                        \
                        _mm256_store_ps(wb + i * PT_PANEL, w0);                                \
                        _mm256_store_ps(wb + i * PT_PANEL + 8, w1);                            \
                    }                                                                          \
                size_t bbytes = (size_t)kn * PT_PANEL * (ESIZE);                               \
                /* The first npf tiles prefetch the next block (panels are contiguous, so past \
                 * the last block this is the next panel) while computing on this one: DRAM    \
                 * streaming overlaps the FMAs instead of stalling the first tile. */          \
                const char *nxt = p + 1 < p_end || kb + kn < k ? pk + bbytes : pk;             \
                for (int t = 0, r0 = rb; t < ntile; r0 += TILE_ROWS(t), t++) {                 \
                    int R = TILE_ROWS(t);                                                      \
                    const float *xr = x + (size_t)r0 * ldx + kb;                               \
                    const char *pf = t < npf ? nxt + (size_t)t * bbytes / npf : pk;            \
                    int pfs = t < npf ? PT_PANEL * (ESIZE) / npf : 0;                          \
                    /* One k-block: the tile's sums are stored at once, while still in L1. */  \
                    float *s = one ? buf : sums + (r0 - rb) * PT_PANEL;                        \
                    if (conv)                                                                  \
                        TILE_FN(s, xr, ldx, wb, kn, R, PT_F32, pf, pfs, kb == 0);              \
                    else                                                                       \
                        TILE_FN(s, xr, ldx, pk, kn, R, DTYPE, pf, pfs, kb == 0);               \
                    if (one)                                                                   \
                        store_tile(y + (size_t)r0 * ldy + p * PT_PANEL, ldy, buf, R, w, p, cols,\
                                   bias, acc);                                                 \
                }                                                                              \
            }                                                                                  \
            for (int t = 0, r0 = rb; t < ntile && !one; r0 += TILE_ROWS(t), t++)               \
                store_tile(y + (size_t)r0 * ldy + p * PT_PANEL, ldy, sums + (r0 - rb) * PT_PANEL,\
                           TILE_ROWS(t), w, p, cols, bias, acc);                               \
        }                                                                                      \
        }                                                                                      \
    }

PT_DEFINE_GEMV(gemv_avx2_f32, TARGET, tile_gemv_rows, 3, PT_F32, 4)
PT_DEFINE_GEMV(gemv_avx2_f16, TARGET, tile_gemv_rows, 3, PT_F16, 2)
PT_DEFINE_GEMV(gemv_avx2_bf16, TARGET, tile_gemv_rows, 3, PT_BF16, 2)
PT_DEFINE_GEMV(gemv_avx2_i8, TARGET, tile_gemv_rows, 3, PT_I8, 1)
PT_DEFINE_GEMM(gemm_avx2_f32, TARGET, tile_rows, 6, 1, PT_F32, 4)
PT_DEFINE_GEMM(gemm_avx2_f16, TARGET, tile_rows, 6, 1, PT_F16, 2)
PT_DEFINE_GEMM(gemm_avx2_bf16, TARGET, tile_rows, 6, 1, PT_BF16, 2)
PT_DEFINE_GEMM(gemm_avx2_i8, TARGET, tile_rows, 6, 1, PT_I8, 1)

/* ---------------------------------------------------------------------------------------------
 * AVX-512: a 16-column panel row is one zmm register, so a tile of R rows holds R accumulators
 * (up to 12, twice the AVX2 tile's rows) and widens each panel row with one instruction. Every
 * output is the same chain of FMAs over k as in the AVX2 kernels above (the multi-row order, or
 * the GEMV order's even / odd sums added at the end), so the results are theirs bit for bit;
 * only the tiling, which never changes a row's arithmetic, differs.
 * ------------------------------------------------------------------------------------------- */
#define TARGET512 __attribute__((target("avx512f,avx2,fma,f16c")))

/* The 16 weights of panel row i, widened to fp32. */
TARGET512 static inline __attribute__((always_inline)) __m512 load16_512(const void *pp,
                                                                         size_t i,
                                                                         const int dtype) {
    if (dtype == PT_F16)
        return _mm512_cvtph_ps(
            _mm256_loadu_si256((const __m256i *)((const uint16_t *)pp + i * PT_PANEL)));
    if (dtype == PT_BF16)
        return _mm512_castsi512_ps(_mm512_slli_epi32(
            _mm512_cvtepu16_epi32(
                _mm256_loadu_si256((const __m256i *)((const uint16_t *)pp + i * PT_PANEL))),
            16));
    if (dtype == PT_I8)
        return _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(
            _mm_loadu_si128((const __m128i *)((const int8_t *)pp + i * PT_PANEL))));
    return _mm512_loadu_ps((const float *)pp + i * PT_PANEL);
}

/* tile_gemv for R = 1..6 rows: per row one even-k and one odd-k accumulator, the AVX2 pair
 * of each in one register; sums[r][32] keeps the same layout (even k, then odd k). */
TARGET512 static inline __attribute__((always_inline)) void tile_gemv512(
    float *sums, const float *x, int ldx, const void *pp, int k, const int R, const int dtype,
    int first) {
    __m512 b[6], c[6], w;
#pragma GCC unroll 6
    for (int r = 0; r < R; r++) {
        const float *sr = sums + r * 2 * PT_PANEL;
        b[r] = first ? _mm512_setzero_ps() : _mm512_loadu_ps(sr);
        c[r] = first ? _mm512_setzero_ps() : _mm512_loadu_ps(sr + PT_PANEL);
    }
    int i = 0;
    const char *pb = (const char *)pp;
    const size_t rb = dtype == PT_I8 ? PT_PANEL : 2 * PT_PANEL;
    for (; i + 2 <= k; i += 2) {
        if (dtype != PT_F32) _mm_prefetch(pb + (size_t)i * rb + 2048, _MM_HINT_NTA);
        w = load16_512(pp, i, dtype);
#pragma GCC unroll 6
        for (int r = 0; r < R; r++)
            b[r] = _mm512_fmadd_ps(_mm512_set1_ps(x[(size_t)r * ldx + i]), w, b[r]);
        w = load16_512(pp, i + 1, dtype);
#pragma GCC unroll 6
        for (int r = 0; r < R; r++)
            c[r] = _mm512_fmadd_ps(_mm512_set1_ps(x[(size_t)r * ldx + i + 1]), w, c[r]);
    }
    if (i < k) {
        w = load16_512(pp, i, dtype);
#pragma GCC unroll 6
        for (int r = 0; r < R; r++)
            b[r] = _mm512_fmadd_ps(_mm512_set1_ps(x[(size_t)r * ldx + i]), w, b[r]);
    }
#pragma GCC unroll 6
    for (int r = 0; r < R; r++) {
        float *sr = sums + r * 2 * PT_PANEL;
        _mm512_storeu_ps(sr, b[r]);
        _mm512_storeu_ps(sr + PT_PANEL, c[r]);
    }
}

/* tile_gemv512 for R = 1..6, R known at run time. */
TARGET512 static inline __attribute__((always_inline)) void tile_gemv512_rows(
    float *sums, const float *x, int ldx, const void *pp, int k, int R, const int dtype,
    int first) {
    switch (R) {
    case 1: tile_gemv512(sums, x, ldx, pp, k, 1, dtype, first); break;
    case 2: tile_gemv512(sums, x, ldx, pp, k, 2, dtype, first); break;
    case 3: tile_gemv512(sums, x, ldx, pp, k, 3, dtype, first); break;
    case 4: tile_gemv512(sums, x, ldx, pp, k, 4, dtype, first); break;
    case 5: tile_gemv512(sums, x, ldx, pp, k, 5, dtype, first); break;
    default: tile_gemv512(sums, x, ldx, pp, k, 6, dtype, first); break;
    }
}

/* tile() on AVX-512: R = 1..12 rows, one accumulator each. */
TARGET512 static inline __attribute__((always_inline)) void tile512(float *out, const float *x,
                                                                    int ldx, const void *pp,
                                                                    int k, const int R,
                                                                    const int dtype,
                                                                    const char *pf, int pfs,
                                                                    int first) {
    __m512 a[12], w;
#pragma GCC unroll 12
    for (int r = 0; r < R; r++)
        a[r] = first ? _mm512_setzero_ps() : _mm512_loadu_ps(out + r * PT_PANEL);
    for (int i = 0; i < k; i++) {
        _mm_prefetch(pf + (size_t)i * pfs, _MM_HINT_T0);
        w = load16_512(pp, i, dtype);
#pragma GCC unroll 12
        for (int r = 0; r < R; r++)
            a[r] = _mm512_fmadd_ps(_mm512_set1_ps(x[(size_t)r * ldx + i]), w, a[r]);
    }
#pragma GCC unroll 12
    for (int r = 0; r < R; r++) _mm512_storeu_ps(out + r * PT_PANEL, a[r]);
}

/* tile512() for R = 1..12 rows, R known at run time. */
TARGET512 static inline __attribute__((always_inline)) void tile512_rows(
    float *s, const float *xr, int ldx, const void *pp, int kn, int R, const int dtype,
    const char *pf, int pfs, int first) {
    switch (R) {
    case 1: tile512(s, xr, ldx, pp, kn, 1, dtype, pf, pfs, first); break;
    case 2: tile512(s, xr, ldx, pp, kn, 2, dtype, pf, pfs, first); break;
    case 3: tile512(s, xr, ldx, pp, kn, 3, dtype, pf, pfs, first); break;
    case 4: tile512(s, xr, ldx, pp, kn, 4, dtype, pf, pfs, first); break;
    case 5: tile512(s, xr, ldx, pp, kn, 5, dtype, pf, pfs, first); break;
    case 6: tile512(s, xr, ldx, pp, kn, 6, dtype, pf, pfs, first); break;
    case 7: tile512(s, xr, ldx, pp, kn, 7, dtype, pf, pfs, first); break;
    case 8: tile512(s, xr, ldx, pp, kn, 8, dtype, pf, pfs, first); break;
    case 9: tile512(s, xr, ldx, pp, kn, 9, dtype, pf, pfs, first); break;
    case 10: tile512(s, xr, ldx, pp, kn, 10, dtype, pf, pfs, first); break;
    case 11: tile512(s, xr, ldx, pp, kn, 11, dtype, pf, pfs, first); break;
    default: tile512(s, xr, ldx, pp, kn, 12, dtype, pf, pfs, first); break;
    }
}

PT_DEFINE_GEMV(gemv_avx512_f32, TARGET512, tile_gemv512_rows, 6, PT_F32, 4)
PT_DEFINE_GEMV(gemv_avx512_f16, TARGET512, tile_gemv512_rows, 6, PT_F16, 2)
PT_DEFINE_GEMV(gemv_avx512_bf16, TARGET512, tile_gemv512_rows, 6, PT_BF16, 2)
PT_DEFINE_GEMV(gemv_avx512_i8, TARGET512, tile_gemv512_rows, 6, PT_I8, 1)
PT_DEFINE_GEMM(gemm_avx512_f32, TARGET512, tile512_rows, 12, 0, PT_F32, 4)
PT_DEFINE_GEMM(gemm_avx512_f16, TARGET512, tile512_rows, 12, 0, PT_F16, 2)
PT_DEFINE_GEMM(gemm_avx512_bf16, TARGET512, tile512_rows, 12, 0, PT_BF16, 2)
PT_DEFINE_GEMM(gemm_avx512_i8, TARGET512, tile512_rows, 12, 0, PT_I8, 1)

/* Longest k of the one-column path (its weights gathered on the stack). */
#define PT_COL1_MAX_K 1024

/* A single output column (the SEANet's last conv, 64 channels -> 1): a 16-column panel would
 * spend 15 of every 16 FMAs on zero padding. Each row is a dot product over k in a fixed order
 * (4 x 8 lanes, then the lanes pairwise, then the tail), so a row does not depend on M. */
TARGET static void gemm_avx2_col1_f32(float *y, int ldy, const float *x, int ldx,
                                      const PtMatrix *w, int M, const float *bias, int acc) {
    const int k = w->in;
    float wc[PT_COL1_MAX_K] __attribute__((aligned(32)));
    for (int i = 0; i < k; i++) wc[i] = ((const float *)w->data)[(size_t)i * PT_PANEL];
    for (int r = 0; r < M; r++) {
        const float *xr = x + (size_t)r * ldx;
        __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
        int i = 0;
        for (; i + 32 <= k; i += 32) {
            a0 = _mm256_fmadd_ps(_mm256_loadu_ps(xr + i), _mm256_load_ps(wc + i), a0);
            a1 = _mm256_fmadd_ps(_mm256_loadu_ps(xr + i + 8), _mm256_load_ps(wc + i + 8), a1);
            a2 = _mm256_fmadd_ps(_mm256_loadu_ps(xr + i + 16), _mm256_load_ps(wc + i + 16), a2);
            a3 = _mm256_fmadd_ps(_mm256_loadu_ps(xr + i + 24), _mm256_load_ps(wc + i + 24), a3);
        }
        for (; i + 8 <= k; i += 8)
            a0 = _mm256_fmadd_ps(_mm256_loadu_ps(xr + i), _mm256_load_ps(wc + i), a0);
        float l[8];
        _mm256_storeu_ps(l, _mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3)));
        float v = ((l[0] + l[1]) + (l[2] + l[3])) + ((l[4] + l[5]) + (l[6] + l[7]));
        for (; i < k; i++) v = fmaf(xr[i], wc[i], v);
        if (bias) v += bias[0];
        y[(size_t)r * ldy] = acc ? y[(size_t)r * ldy] + v : v;
    }
}

static void run_avx2(const GemmJob *j) {
    if (j->w->out == 1 && j->w->dtype == PT_F32 && j->w->in <= PT_COL1_MAX_K) {
        gemm_avx2_col1_f32(j->y, j->ldy, j->x, j->ldx, j->w, j->M, j->bias, j->acc);
        return;
    }
    const int gemv = j->M == 1 || j->gemv_order;
    if (pt_cpu_has_avx512()) {
        typedef void (*Kernel)(float *, int, const float *, int, const PtMatrix *, int,
                               const float *, int, int, int);
        static const Kernel gemv512[4] = {gemv_avx512_f32, gemv_avx512_f16, gemv_avx512_bf16,
                                          gemv_avx512_i8};
        static const Kernel gemm512[4] = {gemm_avx512_f32, gemm_avx512_f16, gemm_avx512_bf16,
                                          gemm_avx512_i8};
        (gemv ? gemv512 : gemm512)[j->w->dtype](j->y, j->ldy, j->x, j->ldx, j->w, j->M,
                                                j->bias, j->acc, j->p_begin, j->p_end);
        return;
    }
    switch (j->w->dtype) {
    case PT_F16:
        (gemv ? gemv_avx2_f16 : gemm_avx2_f16)(j->y, j->ldy, j->x, j->ldx, j->w, j->M, j->bias,
                                                j->acc, j->p_begin, j->p_end);
        break;
    case PT_BF16:
        (gemv ? gemv_avx2_bf16 : gemm_avx2_bf16)(j->y, j->ldy, j->x, j->ldx, j->w, j->M, j->bias,
                                                j->acc, j->p_begin, j->p_end);
        break;
    case PT_I8:
        (gemv ? gemv_avx2_i8 : gemm_avx2_i8)(j->y, j->ldy, j->x, j->ldx, j->w, j->M, j->bias,
                                                j->acc, j->p_begin, j->p_end);
        break;
    default:
        (gemv ? gemv_avx2_f32 : gemm_avx2_f32)(j->y, j->ldy, j->x, j->ldx, j->w, j->M, j->bias,
                                                j->acc, j->p_begin, j->p_end);
        break;
    }
}
#endif /* PT_HAVE_X86 */

static void run_job(const GemmJob *j) {
#ifdef PT_HAVE_X86
    if (pt_cpu_has_avx2()) {
        run_avx2(j);
        return;
    }
#endif
    gemm_generic(j->y, j->ldy, j->x, j->ldx, j->w, j->M, j->bias, j->acc, j->p_begin, j->p_end);
}

static void *job_thread(void *arg) {
    run_job((const GemmJob *)arg);
    return NULL;
}

/* Threads the calling thread's big products may use (prefill, prompt encoding): per thread, so
 * the two pipeline threads never oversubscribe the cores while streaming. */
static __thread int gemm_threads = 1;
/* This thread offers its products to a helper (PT_GEMM_SHARED). */
static __thread int gemm_shared = 0;
/* This thread's products compute every row in the one-row order (pt_gemm_set_gemv_order). */
static __thread int gemm_gemv_order = 0;

int pt_gemm_set_gemv_order(int on) {
    int was = gemm_gemv_order;
    gemm_gemv_order = on != 0;
    return was;
}

void pt_gemm_set_threads(int n) {
    gemm_shared = n == PT_GEMM_SHARED;
    gemm_threads = gemm_shared || n < 1 ? 1 : (n > 2 ? 2 : n);
}

/* ---------------------------------------------------------------------------------------------
 * Shared products: one process-wide slot where a thread (the flow LM) posts each product in
 * chunks of output panels, and an otherwise idle thread (the decoder, waiting for its next
 * latent) claims chunks too. The ticket packs the product's generation (high 32 bits), the next
 * unclaimed chunk (16 bits) and the chunk count (16 bits): a claim is one compare-and-swap on
 * it, so a chunk index can never be taken against a stale job. The poster reuses the slot only
 * after every chunk is done. Each panel is computed exactly as by a single thread.
 * ------------------------------------------------------------------------------------------- */
static struct {
    _Atomic uint64_t ticket;
    _Atomic int done;
    GemmJob job;
    int per_chunk; /* panels per chunk (by_rows: 0) */
    int by_rows;   /* chunks are row ranges, not panel ranges */
} shared_slot;

/* Few output panels but many rows (the SEANet's narrow convolutions, 32-64 outputs over
 * hundreds of time steps): a product splits by rows instead. Rows are independent and every
 * part keeps at least 6 rows (never one row alone, which would take the GEMV path), so a
 * split product is bit-identical to one call. */
static int split_rows(int panels, int M) { return panels < 8 && M >= 24; }

/* Part i of n of a job split by rows. */
static GemmJob row_part(const GemmJob *job, int i, int n) {
    GemmJob j = *job;
    int r0 = (int)((long long)i * job->M / n), r1 = (int)((long long)(i + 1) * job->M / n);
    j.y += (size_t)r0 * job->ldy;
    j.x += (size_t)r0 * job->ldx;
    j.M = r1 - r0;
    return j;
}

/* Claim and run one chunk of the posted product; 0 when none is left. */
static int shared_claim_run(void) {
    uint64_t t = atomic_load_explicit(&shared_slot.ticket, memory_order_acquire);
    for (;;) {
        uint32_t next = (uint32_t)(t >> 16) & 0xffff, n = (uint32_t)t & 0xffff;
        if (next >= n) return 0;
        if (atomic_compare_exchange_weak_explicit(&shared_slot.ticket, &t, t + (1u << 16),
                                                  memory_order_acq_rel,
                                                  memory_order_acquire)) {
            GemmJob j = shared_slot.job;
            if (shared_slot.by_rows) {
                j = row_part(&shared_slot.job, (int)next, (int)n);
            } else {
                j.p_begin += (int)next * shared_slot.per_chunk;
                if (j.p_begin + shared_slot.per_chunk < j.p_end)
                    j.p_end = j.p_begin + shared_slot.per_chunk;
            }
            run_job(&j);
            atomic_fetch_add_explicit(&shared_slot.done, 1, memory_order_release);
            return 1;
        }
    }
}

/* One poster at a time (another stream's flow LM runs its products alone meanwhile). */
static atomic_flag shared_posting = ATOMIC_FLAG_INIT;
/* Threads in pt_gemm_help_until. With none, a shared product runs alone at once: posting it
 * would only add the cost of the chunk claims. */
static _Atomic int shared_helpers;

static void shared_gemm(const GemmJob *job, int panels) {
    /* ~32 chunks: small enough to balance, large enough that a claim costs nothing. */
    int by_rows = split_rows(panels, job->M);
    int per = panels / 32 > 1 ? panels / 32 : 1, n = (panels + per - 1) / per;
    if (by_rows) {
        per = 0;
        n = job->M / 6 < 32 ? job->M / 6 : 32;
    }
    uint64_t gen = (atomic_load_explicit(&shared_slot.ticket, memory_order_relaxed) >> 32) + 1;
    shared_slot.job = *job;
    shared_slot.per_chunk = per;
    shared_slot.by_rows = by_rows;
    atomic_store_explicit(&shared_slot.done, 0, memory_order_relaxed);
    atomic_store_explicit(&shared_slot.ticket, (gen << 32) | (uint64_t)n, memory_order_release);
    while (shared_claim_run()) {
    }
    while (atomic_load_explicit(&shared_slot.done, memory_order_acquire) < n) pt_cpu_relax();
}

void pt_gemm_help_until(const int *progress, int target) {
    const _Atomic int *p = (const _Atomic int *)progress;
    unsigned idle = 0;
    atomic_fetch_add_explicit(&shared_helpers, 1, memory_order_acq_rel);
    while (atomic_load_explicit(p, memory_order_acquire) < target) {
        if (shared_claim_run()) {
            idle = 0;
        } else if (++idle % 4096 == 0) {
            sched_yield(); /* never starve the poster if the cores are oversubscribed */
        } else {
            pt_cpu_relax();
        }
    }
    atomic_fetch_sub_explicit(&shared_helpers, 1, memory_order_release);
}

void pt_progress_store(int *progress, int value) {
    atomic_store_explicit((_Atomic int *)progress, value, memory_order_release);
}

int pt_gemm_threads(void) { return gemm_threads; }

void pt_gemm(float *y, int ldy, const float *x, int ldx, const PtMatrix *w, int M,
             const float *bias, int accumulate) {
    if (M <= 0) return;
    int panels = (w->out + PT_PANEL - 1) / PT_PANEL;
    GemmJob job = {y, x, bias, w, ldy, ldx, M, accumulate, 0, panels, gemm_gemv_order};
    const int by_rows = split_rows(panels, M);
    if (gemm_shared && (panels >= 2 || by_rows) && panels / 32 < 0xffff &&
        atomic_load_explicit(&shared_helpers, memory_order_acquire) > 0 &&
        !atomic_flag_test_and_set_explicit(&shared_posting, memory_order_acquire)) {
        shared_gemm(&job, panels);
        atomic_flag_clear_explicit(&shared_posting, memory_order_release);
        return;
    }
    /* Output panels (or rows) split between two threads: each output is computed exactly as
     * alone. */
    if (gemm_threads > 1 && (panels >= 2 || by_rows) &&
        (double)M * w->out * w->in >= (double)(1 << 21)) {
        GemmJob mine = job, other = job;
        if (by_rows) {
            mine = row_part(&job, 0, 2);
            other = row_part(&job, 1, 2);
        } else {
            mine.p_end = other.p_begin = panels / 2;
        }
        pthread_t t;
        if (pthread_create(&t, NULL, job_thread, &other) == 0) {
            run_job(&mine);
            pthread_join(t, NULL);
            return;
        }
    }
    run_job(&job);
}

void pt_gemm_packed(float *y, int ldy, const float *x, int ldx, const float *packed, int M,
                    int out, int in, const float *bias, int accumulate) {
    PtMatrix m = {packed, NULL, PT_F32, out, in};
    pt_gemm(y, ldy, x, ldx, &m, M, bias, accumulate);
}
