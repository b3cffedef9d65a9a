#include <string.h>
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
    float *seanet, *d, *ts, *col;
} EncScratch;

static size_t encoder_scratch_layout(const PtMimiEncoder *m, int cf, float *mem,
                                     EncScratch *out) {
    size_t off = 0;
    int T = cf * m->stride; /* transformer tokens per chunk */
    EncScratch s;
    s.seanet = take(mem, &off, pt_seanet_encoder_scratch_size(&m->seanet, cf * m->frame_size));
    s.d = take(mem, &off, (size_t)(pt_conv1d_history(&m->down) + T) * m->dim);
    s.ts = take(mem, &off, pt_mimi_transformer_scratch_size(&m->tshape, T));
    s.col = take(mem, &off, pt_conv1d_col_size(&m->down, T));
    if (out) *out = s;
    return off;
}

size_t pt_mimi_encoder_scratch_size(const PtMimiEncoder *m, int chunk_frames) {
    return encoder_scratch_layout(m, chunk_frames, NULL, NULL);
}

int pt_mimi_encode(const PtMimiEncoder *m, const float *audio, int n_frames, int chunk_frames,
                   float *latents, float *state_mem, PtWindowKV *caches, float *scratch,
                   int threads) {
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
    const int P = pt_conv1d_history(&m->down);
    for (int f0 = 0; f0 < n_frames; f0 += chunk_frames) {
        int cf = n_frames - f0 < chunk_frames ? n_frames - f0 : chunk_frames;
        int T = cf * m->stride;
        float *x = s.d + (size_t)P * m->dim;
        pt_seanet_encoder_forward(&m->seanet, &ss, audio + (size_t)f0 * m->frame_size,
                                  cf * m->frame_size, x, s.seanet);
        for (int l = 0; l < m->num_layers; l++) {
            if (pt_mimi_transformer_layer(&m->tshape, &m->layers[l], &caches[l], x, T, s.ts,
                                          threads) != 0)
                return -1;
        }
        pt_conv1d_forward(&m->down, &ds, s.d, T, latents + (size_t)f0 * m->inner, s.col, 0);
    }
    return 0;
}
