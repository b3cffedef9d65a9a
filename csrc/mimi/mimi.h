/* The Mimi codec (reference models/mimi.py) on time-major [T, C] buffers.
 *
 * Decoder, per 80 ms latent frame (english_2026-10 sizes):
 *   z[ldim] -> quantizer output_proj (1x1 conv, no bias) -> q[1, outer]
 *   -> depthwise ConvTranspose (K = 2S, S = 16, no bias) -> x[16, dim]
 *   -> decoder transformer (layer scale, RoPE at positions counted from the stream start,
 *      context-window attention over linear KV windows, mimi_transformer.h) -> x[16, dim]
 *   -> SEANet decoder -> audio[16 * hop = frame_size].
 * A call with n frames runs exactly that per-frame computation n times (same GEMM shapes, same
 * buffers), so decoding frame by frame and in batches gives bit-identical audio.
 *
 * Encoder, over a whole prompt padded to a multiple of frame_size, processed in chunks of
 * `chunk_frames` frames with streaming states (mathematically the reference's stateless pass):
 *   audio -> SEANet encoder -> encoder transformer (causal, context window, positions from 0)
 *   -> downsample Conv1d (K = 2S, S = 16, replicate left padding, no bias) -> latents[N, inner].
 */
#ifndef PT_MIMI_H
#define PT_MIMI_H
#include <stddef.h>
#include <stdint.h>
#include "gemm.h"
#include "seanet.h"
#include "mimi_transformer.h"

typedef struct {
    int ldim;            /* quantizer.dimension (32) */
    int outer;           /* quantizer.output_dimension = upsample channels */
    int stride;          /* upsample stride (16): decoder-transformer steps per frame */
    int up_kernel;       /* upsample kernel (32) */
    int frame_size;      /* samples per frame = stride * SEANet hop (1920) */
    PtMatrix quant;        /* [outer, ldim], float32 panels */
    const float *up_w;     /* packed depthwise [taps * stride, outer] (conv.h) */
    PtTransformerShape tshape;  /* context > 0 */
    int num_layers;
    const PtLayerWeights *layers;
    PtSEANetDecoder seanet;
} PtMimiDecoder;

/* Per-stream decoder state. Every pointer is into caller memory bound once by
 * pt_mimi_decoder_state_bind; nothing is allocated while decoding. */
typedef struct {
    float *up_hist;      /* [taps - 1, outer] */
    PtWindowKV *caches;  /* [num_layers] KV windows (mimi_transformer.h) */
    PtSEANetState seanet;
    float *zbuf;         /* [ldim] */
    float *qp;           /* [taps - 1 + 1, outer] */
    float *x;            /* [stride, outer] transformer tokens */
    float *audio;        /* [frame_size * channels] */
    float *tscratch;     /* transformer scratch */
    float *sscratch;     /* SEANet scratch */
    int64_t frames;      /* frames decoded since the last reset */
} PtMimiDecoderState;

typedef struct {
    int dim;             /* SEANet dimension = transformer width */
    int inner;           /* latent width (inner_dim; 32, or 512 for english_2026-01) */
    int stride;          /* downsample stride (16) */
    int frame_size;      /* samples per latent frame */
    PtSEANetEncoder seanet;
    PtTransformerShape tshape;
    int num_layers;
    const PtLayerWeights *layers;
    PtConv1d down;       /* replicate, no bias */
} PtMimiEncoder;

/* Decoder state memory (floats, KV caches included) and per-frame scratch (floats). */
size_t pt_mimi_decoder_state_size(const PtMimiDecoder *m);
size_t pt_mimi_decoder_scratch_size(const PtMimiDecoder *m);
/* Point `st` into state_mem / scratch (sizes above; scratch may be NULL, then
 * pt_mimi_decoder_use_scratch before decoding) and `caches` (num_layers structs), reset. */
void pt_mimi_decoder_state_bind(const PtMimiDecoder *m, PtMimiDecoderState *st,
                                float *state_mem, PtWindowKV *caches, float *scratch);
/* Point the state's per-frame work buffers into `scratch` (pt_mimi_decoder_scratch_size
 * floats). Nothing in them outlives a frame, so states decoded one after another can share one
 * scratch (one per decoding thread) instead of each owning one. */
void pt_mimi_decoder_use_scratch(const PtMimiDecoder *m, PtMimiDecoderState *st, float *scratch);
/* Back to the start of a stream (zero conv histories, KV offsets 0) without reallocating. */
void pt_mimi_decoder_reset(const PtMimiDecoder *m, PtMimiDecoderState *st);
/* latents[n, ldim] (already de-normalised) -> audio[n * frame_size]. Returns 0, or -1 on a
 * KV-cache error (cannot happen: the windows are sized for one frame). */
int pt_mimi_decode(const PtMimiDecoder *m, PtMimiDecoderState *st, const float *latents, int n,
                   float *audio);

/* Encoder memory for chunks of `chunk_frames` frames: state floats (KV windows included) and
 * scratch floats. */
size_t pt_mimi_encoder_state_size(const PtMimiEncoder *m, int chunk_frames);
size_t pt_mimi_encoder_scratch_size(const PtMimiEncoder *m, int chunk_frames);
/* audio[n_frames * frame_size] -> latents[n_frames, inner]; caches: num_layers structs.
 * threads 2: the SEANet runs on a second thread one chunk ahead of the transformer and the
 * downsample (each stage on one core, products unsplit); threads 1: one after the other, the
 * GEMMs following pt_gemm_set_threads. Bit-identical either way. `cancel` (NULL: none) is
 * read before each chunk: nonzero stops the encoding there (another thread sets it). Returns 0,
 * -1 (KV-cache error) or -2 (cancelled). */
int pt_mimi_encode(const PtMimiEncoder *m, const float *audio, int n_frames, int chunk_frames,
                   float *latents, float *state_mem, PtWindowKV *caches, float *scratch,
                   int threads, const volatile int *cancel);

#endif
