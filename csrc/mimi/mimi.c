#include <pthread.h>
#include <string.h>
#include "gemm.h"
#include "mimi.h"
#include "mimi_transformer.h"

static size_t round16(size_t n) { return (n + 15) & ~(size_t)15; }

static float *take(float *mem, size_t *off, size_t n) {
    float *p = mem ? mem + *off : NULL;
    *off += round16(n);
    return p;
}

static void bind_caches(const PtTransformerShape *s, int max_T, int num_layers,
                        PtWindowKV *caches, float *mem, size_t *off) {
    for (int l = 0; l < num_layers; l++) {
        float *p = take(mem, off, pt_window_kv_floats(s, max_T));
        if (caches) pt_window_kv_bind(&caches[l], s, max_T, p);
    }
}

/* ---------------------------------------------------------------------------------------------
 * Decoder
 * ------------------------------------------------------------------------------------------- */

static int up_taps(const PtMimiDecoder *m) { return (m->up_kernel + m->stride - 1) / m->stride; }

static size_t decoder_state_layout(const PtMimiDecoder *m, PtMimiDecoderState *st, float *mem,
                                   PtWindowKV *caches) {
    size_t off = 0;
    float *up = take(mem, &off, (size_t)(up_taps(m) - 1) * m->outer);
    bind_caches(&m->tshape, m->stride, m->num_layers, caches, mem, &off);
    size_t sn = pt_seanet_decoder_state_size(&m->seanet);
    float *sm = take(mem, &off, sn);
    if (st) {
        st->up_hist = up;
        st->caches = caches;
        pt_seanet_decoder_state_bind(&m->seanet, &st->seanet, sm);
    }
    return off;
}

static size_t decoder_scratch_layout(const PtMimiDecoder *m, PtMimiDecoderState *st,
                                     float *mem) {
    size_t off = 0;
    float *z = take(mem, &off, (size_t)m->ldim);
    float *qp = take(mem, &off, (size_t)up_taps(m) * m->outer);
    float *x = take(mem, &off, (size_t)m->stride * m->tshape.d_model);
    float *audio = take(mem, &off, (size_t)m->frame_size * m->seanet.last.c_out);
    float *ts = take(mem, &off, pt_mimi_transformer_scratch_size(&m->tshape, m->stride));
    float *ss = take(mem, &off, pt_seanet_decoder_scratch_size(&m->seanet, m->stride));
    if (st) {
        st->zbuf = z;
        st->qp = qp;
        st->x = x;
        st->audio = audio;
        st->tscratch = ts;
        st->sscratch = ss;
    }
    return off;
}

size_t pt_mimi_decoder_state_size(const PtMimiDecoder *m) {
    return decoder_state_layout(m, NULL, NULL, NULL);
}

size_t pt_mimi_decoder_scratch_size(const PtMimiDecoder *m) {
    return decoder_scratch_layout(m, NULL, NULL);
}

void pt_mimi_decoder_reset(const PtMimiDecoder *m, PtMimiDecoderState *st) {
    size_t n = (size_t)(up_taps(m) - 1) * m->outer;
    if (n) memset(st->up_hist, 0, n * sizeof(float));
    for (int l = 0; l < m->num_layers; l++) pt_window_kv_reset(&st->caches[l]);
    pt_seanet_decoder_reset(&m->seanet, &st->seanet);
    st->frames = 0;
}

void pt_mimi_decoder_use_scratch(const PtMimiDecoder *m, PtMimiDecoderState *st, float *scratch) {
    decoder_scratch_layout(m, st, scratch);
}

void pt_mimi_decoder_state_bind(const PtMimiDecoder *m, PtMimiDecoderState *st,
                                float *state_mem, PtWindowKV *caches, float *scratch) {
    memset(st, 0, sizeof(*st));
    memset(state_mem, 0, pt_mimi_decoder_state_size(m) * sizeof(float));
    decoder_state_layout(m, st, state_mem, caches);
    decoder_scratch_layout(m, st, scratch);
    pt_mimi_decoder_reset(m, st);
}

int pt_mimi_decode(const PtMimiDecoder *m, PtMimiDecoderState *st, const float *latents, int n,
                   float *audio) {
    const int H = up_taps(m) - 1, S = m->stride;
    const size_t fs = (size_t)m->frame_size * m->seanet.last.c_out;
    float *q = st->qp + (size_t)H * m->outer;
    for (int f = 0; f < n; f++) {
        /* Every operand lives in the state's own buffers, so each frame runs identically
         * whatever the call's batch size or the caller's array alignment. */
        memcpy(st->zbuf, latents + (size_t)f * m->ldim, (size_t)m->ldim * sizeof(float));
        pt_gemm(q, m->outer, st->zbuf, m->ldim, &m->quant, 1, NULL, 0);
        pt_convtr1d_depthwise(m->up_w, NULL, m->outer, m->up_kernel, S, st->up_hist, st->qp, 1,
                              st->x);
        for (int l = 0; l < m->num_layers; l++) {
            if (pt_mimi_transformer_layer(&m->tshape, &m->layers[l], &st->caches[l], st->x, S,
                                          st->tscratch, 1) != 0)
                return -1;
        }
        pt_seanet_decoder_forward(&m->seanet, &st->seanet, st->x, S, st->audio, st->sscratch);
        memcpy(audio + (size_t)f * fs, st->audio, fs * sizeof(float));
        st->frames++;
    }
    return 0;
}

/* ---------------------------------------------------------------------------------------------
 * Encoder
 * ------------------------------------------------------------------------------------------- */

size_t pt_mimi_encoder_state_size(const PtMimiEncoder *m, int chunk_frames) {
    size_t off = 0;
    take(NULL, &off, pt_seanet_encoder_state_size(&m->seanet));
    take(NULL, &off, (size_t)pt_conv1d_history(&m->down) * m->down.c_in);
    bind_caches(&m->tshape, chunk_frames * m->stride, m->num_layers, NULL, NULL, &off);
    return off;
}

typedef struct {
    float *seanet, *d[2], *ts, *col;
} EncScratch;

static size_t encoder_scratch_layout(const PtMimiEncoder *m, int cf, float *mem,
                                     EncScratch *out) {
    size_t off = 0;
    int T = cf * m->stride; /* transformer tokens per chunk */
    EncScratch s;
    s.seanet = take(mem, &off, pt_seanet_encoder_scratch_size(&m->seanet, cf * m->frame_size));
    /* Two chunk slots (history rows of the downsample conv + T tokens): with two threads the
     * SEANet fills one while the transformer works on the other. */
    for (int i = 0; i < 2; i++)
        s.d[i] = take(mem, &off, (size_t)(pt_conv1d_history(&m->down) + T) * m->dim);
    s.ts = take(mem, &off, pt_mimi_transformer_scratch_size(&m->tshape, T));
    s.col = take(mem, &off, pt_conv1d_col_size(&m->down, T));
    if (out) *out = s;
    return off;
}

size_t pt_mimi_encoder_scratch_size(const PtMimiEncoder *m, int chunk_frames) {
    return encoder_scratch_layout(m, chunk_frames, NULL, NULL);
}

/* The encoder as two stages over chunks: SEANet (audio -> tokens in a slot), then transformer
 * + downsample (slot -> latents). With two threads the stages run side by side, the SEANet
 * one chunk ahead (two slots), and the transformer's thread, whenever it waits for tokens,
 * computes chunks of the SEANet's products (the shared slot of gemm.h; the SEANet is the
 * larger stage). Every chunk goes through exactly the same calls as with one thread and a
 * helped product is bit-identical, so the latents are too. */
typedef struct {
    const PtMimiEncoder *m;
    const float *audio;
    int n_frames, chunk_frames;
    PtSEANetState *ss;
    EncScratch *s;
    int produced;                   /* chunks with tokens ready (pt_progress_store) */
    const volatile int *cancel;     /* nonzero: stop at the next chunk (NULL: never) */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int consumed, failed;           /* slots released / abort (under mu) */
} EncPipe;

static int cancelled(const EncPipe *p) { return p->cancel && *p->cancel; }

static int n_chunks(const EncPipe *p) {
    return (p->n_frames + p->chunk_frames - 1) / p->chunk_frames;
}

static float *slot_tokens(const EncPipe *p, int c) {
    return p->s->d[c % 2] + (size_t)pt_conv1d_history(&p->m->down) * p->m->dim;
}

/* Frames in chunk c (the last one may be short). */
static int chunk_len(const EncPipe *p, int c) {
    int left = p->n_frames - c * p->chunk_frames;
    return left < p->chunk_frames ? left : p->chunk_frames;
}

static void encode_seanet(const EncPipe *p, int c) {
    const float *x = p->audio + (size_t)c * p->chunk_frames * p->m->frame_size;
    pt_seanet_encoder_forward(&p->m->seanet, p->ss, x, chunk_len(p, c) * p->m->frame_size,
                              slot_tokens(p, c), p->s->seanet);
}

static int encode_tail(const EncPipe *p, int c, PtWindowKV *caches, PtConv1dState *ds,
                       float *latents, int threads) {
    const PtMimiEncoder *m = p->m;
    int f0 = c * p->chunk_frames, T = chunk_len(p, c) * m->stride;
    float *x = slot_tokens(p, c);
    for (int l = 0; l < m->num_layers; l++)
        if (pt_mimi_transformer_layer(&m->tshape, &m->layers[l], &caches[l], x, T, p->s->ts,
                                      threads) != 0)
            return -1;
    pt_conv1d_forward(&m->down, ds, p->s->d[c % 2], T, latents + (size_t)f0 * m->inner,
                      p->s->col, 0);
    return 0;
}

static void *seanet_stage(void *arg) {
    EncPipe *p = (EncPipe *)arg;
    pt_gemm_set_threads(PT_GEMM_SHARED);
    for (int c = 0; c < n_chunks(p); c++) {
        pthread_mutex_lock(&p->mu);
        while (c - p->consumed >= 2 && !p->failed) pthread_cond_wait(&p->cv, &p->mu);
        int stop = p->failed || cancelled(p);
        pthread_mutex_unlock(&p->mu);
        if (stop) break;
        encode_seanet(p, c);
        pt_progress_store(&p->produced, c + 1);
    }
    pt_progress_store(&p->produced, 1 << 30); /* done: the helper stops waiting */
    return NULL;
}

/* The stages on two threads: 0 or -1 (KV-cache error), or 1 when the second thread could not
 * be started (nothing was computed). */
static int encode_two_stages(EncPipe *p, PtWindowKV *caches, PtConv1dState *ds,
                             float *latents) {
    if (pthread_mutex_init(&p->mu, NULL) != 0) return 1;
    if (pthread_cond_init(&p->cv, NULL) != 0) {
        pthread_mutex_destroy(&p->mu);
        return 1;
    }
    int rc = 1;
    pthread_t th;
    if (pthread_create(&th, NULL, seanet_stage, p) == 0) {
        /* Each stage owns one core, so the products run unsplit. */
        const int gemm_threads = pt_gemm_threads();
        pt_gemm_set_threads(1);
        rc = 0;
        for (int c = 0; c < n_chunks(p) && rc == 0; c++) {
            pt_gemm_help_until(&p->produced, c + 1);
            rc = cancelled(p) ? -2 : encode_tail(p, c, caches, ds, latents, 1);
            pthread_mutex_lock(&p->mu);
            p->consumed = c + 1;
            p->failed = rc != 0;
            pthread_cond_broadcast(&p->cv);
            pthread_mutex_unlock(&p->mu);
        }
        pthread_join(th, NULL);
        pt_gemm_set_threads(gemm_threads);
    }
    pthread_cond_destroy(&p->cv);
    pthread_mutex_destroy(&p->mu);
    return rc;
}

int pt_mimi_encode(const PtMimiEncoder *m, const float *audio, int n_frames, int chunk_frames,
                   float *latents, float *state_mem, PtWindowKV *caches, float *scratch,
                   int threads, const volatile int *cancel) {
    size_t off = 0;
    PtSEANetState ss;
    PtConv1dState ds;
    memset(state_mem, 0, pt_mimi_encoder_state_size(m, chunk_frames) * sizeof(float));
    float *sm = take(state_mem, &off, pt_seanet_encoder_state_size(&m->seanet));
    ds.hist = take(state_mem, &off, (size_t)pt_conv1d_history(&m->down) * m->down.c_in);
    bind_caches(&m->tshape, chunk_frames * m->stride, m->num_layers, caches, state_mem, &off);
    pt_seanet_encoder_state_bind(&m->seanet, &ss, sm);
    pt_conv1d_reset(&m->down, &ds);
    EncScratch s;
    encoder_scratch_layout(m, chunk_frames, scratch, &s);
    EncPipe p = {.m = m, .audio = audio, .n_frames = n_frames, .chunk_frames = chunk_frames,
                 .ss = &ss, .s = &s, .cancel = cancel};
    int rc = threads > 1 && n_chunks(&p) > 1 ? encode_two_stages(&p, caches, &ds, latents) : 1;
    if (rc != 1) return rc;
    rc = 0;
    for (int c = 0; c < n_chunks(&p) && rc == 0; c++) {
        if (cancelled(&p)) return -2;
        encode_seanet(&p, c);
        rc = encode_tail(&p, c, caches, &ds, latents, threads);
    }
    return rc;
}
