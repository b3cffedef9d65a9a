"""The generation of one text chunk: tokens -> flow LM -> latents -> Mimi decoder -> audio.

Two pieces, the engine's material (:mod:`pocket_tts.engine` schedules them on its threads):

* :class:`ChunkState`, the per-stream state: everything one text chunk needs, allocated once
  before its first frame (flow-LM KV caches starting from the voice, the text embeddings,
  latents, decoder input, Mimi decoder state, audio buffer, EOS bookkeeping), plus its
  :class:`Sampling` settings and its noise generator.
* :class:`Stages`, the per-frame work, shared by every stream of a model (read-only):
  :meth:`Stages.flow_lm_frames` (one noise draw per stream, one batched flow-LM step over all
  of them, the EOS rule) and :meth:`Stages.decode_frames` (denormalise and decode a run of one
  stream's latents into its audio buffer).

Every frame's noise is drawn from the stream's own generator in frame order, and a batched
step gives each row the bits it gets alone, so a stream's audio does not depend on the
threads, the cores, the other streams or how frames are grouped into decoder calls.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from . import _native
from .audio.resample import torch_linspace
from .flow_lm import BatchScratch, FlowLM, FlowLMState
from .mimi import Mimi, MimiDecoderState
from .voice import VoiceState

__all__ = ["ChunkState", "ChunkStats", "Sampling", "Stages", "StepWork"]


@dataclass(frozen=True)
class Sampling:
    """How a stream samples its frames (the reference's ``TTSModel`` attributes)."""

    temp: float
    noise_clamp: float | None
    eos_threshold: float
    decode_steps: int
    #: EOS is ignored before this frame (the reference's ``_MIN_FRAMES_BEFORE_EOS``).
    min_frames_before_eos: int

    def __post_init__(self) -> None:
        """Refuse values no stream can sample with (set as model attributes, they are read
        when a generation starts)."""
        Sampling.check(self.temp, self.noise_clamp, self.eos_threshold, self.decode_steps)

    @staticmethod
    def check(
        temp: float | None,
        noise_clamp: float | None,
        eos_threshold: float | None,
        decode_steps: int,
    ) -> None:
        """Raise ValueError naming the first bad value (None: not given, not checked)."""

        def number(x: object) -> bool:
            return isinstance(x, (int, float, np.integer, np.floating)) and not isinstance(x, bool)

        if temp is not None and not (number(temp) and math.isfinite(temp) and temp >= 0):
            raise ValueError(f"temp must be a finite number >= 0, got {temp!r}")
        if noise_clamp is not None and not (
            number(noise_clamp) and math.isfinite(noise_clamp) and noise_clamp > 0
        ):
            raise ValueError(
                f"noise_clamp must be a finite number > 0 or None, got {noise_clamp!r}"
            )
        if eos_threshold is not None and not (
            number(eos_threshold) and not math.isnan(eos_threshold)
        ):
            raise ValueError(f"eos_threshold must be a number (not NaN), got {eos_threshold!r}")
        if (
            isinstance(decode_steps, bool)
            or not isinstance(decode_steps, (int, np.integer))
            or decode_steps < 1
        ):
            raise ValueError(f"sampler_decode_steps must be an int >= 1, got {decode_steps!r}")

    @property
    def noise_std(self) -> float:
        """Standard deviation of the flow head's noise, ``sqrt(temp)`` rounded to float32."""
        return float(np.float32(self.temp**0.5))


@dataclass
class ChunkStats:
    """Diagnostics of one chunk's flow-LM loop, updated as it runs."""

    max_gen_len: int
    #: Raw EOS logit of every flow-LM step (NaN for steps not run).
    eos_logits: np.ndarray
    eos_step: int | None = None
    #: Frames emitted (latents handed to the decoder).
    frames: int = 0

    def as_dict(self) -> dict:
        """The fields as a dict (``TTSModel.last_chunk_stats``)."""
        return {
            "max_gen_len": self.max_gen_len,
            "eos_step": self.eos_step,
            "frames": self.frames,
            "eos_logits": self.eos_logits,
        }


@dataclass(eq=False)
class ChunkState:
    """Everything one text chunk's generation owns, allocated once (:meth:`Stages.new_chunk`).

    The flow LM writes ``latents[i]`` for ``i < stats.frames``; the decoder turns
    ``latents[:frames_decoded]`` into ``audio[: frames_decoded * frame_size]``.
    """

    sampling: Sampling
    frames_after_eos: int
    #: The stream's noise generator (the model's shared one, or the stream's own).
    noise_source: _native.NoiseSource
    #: Flow-LM KV caches (voice prefix, then the text, then one position per frame).
    flow: FlowLMState
    #: Text-token embeddings ``[T, d_model]``, prefilled together with frame 0.
    text_embeddings: np.ndarray
    #: Normalised latents ``[max_gen_len, ldim]``, as the flow LM samples them.
    latents: np.ndarray
    #: Denormalised latents ``[max_gen_len, ldim]``, the decoder's input.
    mimi_in: np.ndarray
    decoder: MimiDecoderState
    #: Audio ``[max_gen_len * frame_size]``; what is yielded are views into it.
    audio: np.ndarray
    stats: ChunkStats
    #: The flow LM's input latent: NaN (BOS) for frame 0, then the previous frame's latent.
    latent_in: np.ndarray
    frames_decoded: int = 0

    @property
    def max_gen_len(self) -> int:
        """Frames this chunk may generate at most."""
        return self.stats.max_gen_len


class Stages:
    """The per-frame work of one model, applied to a :class:`ChunkState`: read-only, so any
    number of streams may use it at once. Each chunk draws its noise from the generator it was
    created with (``ChunkState.noise_source``)."""

    def __init__(self, flow_lm: FlowLM, mimi: Mimi) -> None:
        """Bind the two models."""
        self.flow_lm = flow_lm
        self.mimi = mimi
        self.emb_std = np.ascontiguousarray(flow_lm.emb_std, dtype=np.float32)
        self.emb_mean = np.ascontiguousarray(flow_lm.emb_mean, dtype=np.float32)
        #: The reference fades each chunk's first 5 ms in (a fresh decoder starts on a step).
        self.fade_in = torch_linspace(0, 1, mimi.sample_rate // 200)

    def skip_noise(self, source: _native.NoiseSource, n: int, sampling: Sampling) -> None:
        """Draw and drop ``n`` noise vectors from ``source``: the reference draws them where
        this engine does not need them (a prefill runs the flow head once and discards its
        sample)."""
        buf = np.empty(self.flow_lm.ldim, np.float32)
        for _ in range(n):
            source.normal(buf, sampling.noise_std, sampling.noise_clamp)

    def new_chunk(
        self,
        voice: VoiceState | None,
        tokens: np.ndarray,
        max_gen_len: int,
        frames_after_eos: int,
        sampling: Sampling,
        noise_source: _native.NoiseSource,
    ) -> ChunkState:
        """Allocate the state of one text chunk (``tokens``, int64) continuing ``voice``, its
        noise drawn from ``noise_source``."""
        lm = self.flow_lm
        prefix = 0 if voice is None else voice.offset
        capacity = prefix + len(tokens) + max_gen_len
        # Scratch for the text prefill only (sized for 512 rows it would be ~20 MB).
        max_prefill = max(len(tokens), 1)
        if voice is not None:
            flow = voice.to_flow_state(lm, capacity, max_prefill, share=True)
        else:
            flow = lm.new_state(capacity, max_prefill=max_prefill)
        text_embeddings = lm.embed_tokens(flow, tokens)
        flow.release_scratch()  # the engine's batched steps bring their own
        # The reference's text prefill draws one noise vector.
        self.skip_noise(noise_source, 1, sampling)
        return ChunkState(
            sampling=sampling,
            frames_after_eos=frames_after_eos,
            noise_source=noise_source,
            flow=flow,
            text_embeddings=text_embeddings,
            latents=np.empty((max_gen_len, lm.ldim), np.float32),
            mimi_in=np.empty((max_gen_len, lm.ldim), np.float32),
            decoder=self.mimi.new_decoder_state(own_scratch=False),  # a worker's scratch
            audio=np.empty(max_gen_len * self.mimi.frame_size, np.float32),
            stats=ChunkStats(max_gen_len, np.full(max_gen_len, np.nan, np.float32)),
            latent_in=np.full(lm.ldim, np.nan, np.float32),
        )

    def flow_lm_frames(
        self, chunks: list[ChunkState], threads: int, work: StepWork
    ) -> list[bool | Exception]:
        """Sample the next latent of every chunk (all with the same ``decode_steps``) into
        ``chunk.latents[chunk.stats.frames]``, in one pass over the weights; a chunk at frame 0
        has its text prefilled in the same pass.

        Per chunk, returns True (the frame is emitted), False (the frame is past the end: EOS
        was seen, from frame ``min_frames_before_eos`` on, ``frames_after_eos`` frames ago, as
        in the reference) or the exception its step raised. A batch that fails is retried row
        by row with the noise already drawn, so one bad stream cannot fail the others.
        ``threads`` is the products' thread mode (1, 2 or ``_native.SHARED``).
        """
        n = len(chunks)
        latents_in, noise, latents_out, conds, eos = work.rows(self.flow_lm, n)
        for i, chunk in enumerate(chunks):
            s = chunk.sampling
            chunk.noise_source.normal(noise[i], s.noise_std, s.noise_clamp)
            latents_in[i] = chunk.latent_in
        prefixes = [c.text_embeddings if c.stats.frames == 0 else None for c in chunks]
        steps = chunks[0].sampling.decode_steps
        results: list[bool | Exception] = []
        try:
            self._step(chunks, slice(0, n), prefixes, threads, work, steps)
            failed: list[Exception | None] = [None] * n
        except Exception as exc:  # noqa: BLE001 - attributed row by row below
            if n == 1:
                failed = [exc]
            else:
                failed = [
                    self._step_alone(chunks, i, prefixes, threads, work, steps) for i in range(n)
                ]
        for i, chunk in enumerate(chunks):
            err = failed[i]
            if err is None:
                try:
                    results.append(self._end_frame(chunk, latents_out[i], float(eos[i])))
                except FloatingPointError as exc:  # this stream's NaN, not the others'
                    results.append(exc)
            else:
                results.append(err)
        return results

    def _step(
        self,
        chunks: list[ChunkState],
        rows: slice,
        prefixes: list[np.ndarray | None],
        threads: int,
        work: StepWork,
        steps: int,
    ) -> None:
        latents_in, noise, latents_out, conds, eos = work.rows(self.flow_lm, len(chunks))
        pre = prefixes[rows]
        self.flow_lm.step_batch(
            [c.flow for c in chunks[rows]],
            latents_in[rows],
            noise[rows],
            latents_out[rows],
            conds[rows],
            eos[rows],
            steps,
            pre if any(p is not None for p in pre) else None,
            threads,
            work.scratch,
        )

    def _step_alone(
        self,
        chunks: list[ChunkState],
        i: int,
        prefixes: list[np.ndarray | None],
        threads: int,
        work: StepWork,
        steps: int,
    ) -> Exception | None:
        try:
            self._step(chunks, slice(i, i + 1), prefixes, threads, work, steps)
        except Exception as exc:  # noqa: BLE001 - this stream's own failure
            return exc
        return None

    def _end_frame(self, chunk: ChunkState, latent: np.ndarray, eos: float) -> bool:
        """Store a stepped frame's latent and apply the EOS rule; False past the end."""
        stats, sampling = chunk.stats, chunk.sampling
        step = stats.frames
        stats.eos_logits[step] = eos
        if (
            eos > sampling.eos_threshold
            and stats.eos_step is None
            and step >= sampling.min_frames_before_eos
        ):
            stats.eos_step = step
        if stats.eos_step is not None and step >= stats.eos_step + chunk.frames_after_eos:
            return False
        if not np.isfinite(latent).all():
            raise FloatingPointError(_non_finite_origin(chunk, step))
        chunk.latents[step] = latent
        stats.frames = step + 1
        chunk.latent_in = chunk.latents[step]
        return True

    def decode_frames(
        self, chunk: ChunkState, n: int, threads: int, scratch: np.ndarray
    ) -> np.ndarray:
        """Decode the chunk's next ``n`` latents; returns their audio (a view into
        ``chunk.audio``), faded in at the start of the chunk. ``threads``: 1, 2 or
        ``_native.SHARED``; ``scratch``: the calling thread's
        :meth:`~pocket_tts.mimi.Mimi.decoder_scratch`."""
        a, b = chunk.frames_decoded, chunk.frames_decoded + n
        mimi_in = chunk.mimi_in[a:b]
        # latents * std + mean with two roundings, as the reference (and without allocating).
        np.multiply(chunk.latents[a:b], self.emb_std, out=mimi_in)
        np.add(mimi_in, self.emb_mean, out=mimi_in)
        frame_size = self.mimi.frame_size
        out = chunk.audio[a * frame_size : b * frame_size]
        self.mimi.decode(chunk.decoder, mimi_in, out, threads=threads, scratch=scratch)
        if a == 0:
            m = min(len(self.fade_in), len(out))
            out[:m] *= self.fade_in[:m]
        chunk.frames_decoded = b
        return out


def _non_finite_origin(chunk: ChunkState, step: int) -> str:
    """Where a NaN / inf latent came from, as far as the stream's own inputs tell."""
    flow = chunk.flow
    if flow.shared_kv is not None and not np.isfinite(flow.shared_kv).all():
        return (
            f"the flow LM produced NaN / inf at frame {step} because the voice state holds "
            "NaN / inf (a damaged voice file or array): rebuild the voice from its audio"
        )
    if not np.isfinite(chunk.text_embeddings).all():
        return (
            f"the flow LM produced NaN / inf at frame {step}: the text embeddings hold NaN / inf, "
            "so the checkpoint's embedding table is damaged"
        )
    used = flow.own_kv[:, :, : max(0, flow.offset - flow.shared_positions)]
    where = "its KV cache already held NaN / inf" if not np.isfinite(used).all() else "its state"
    return (
        f"the flow LM produced NaN / inf at frame {step} ({where}; the voice and the text "
        "embeddings are finite, sampling temperature "
        f"{chunk.sampling.temp}): the flow-LM weights are damaged: check the checkpoint, and "
        "clear the packed-weights cache (pocket-tts clear-cache)"
    )


class StepWork:
    """The work area of one thread's flow-LM steps: the row arrays of a batch and the kernel's
    scratch, grown to the largest batch seen and then reused (allocated once per engine)."""

    def __init__(self) -> None:
        """Start empty; the first :meth:`rows` allocates."""
        self.scratch = BatchScratch()
        self._n = 0
        self._rows: tuple[np.ndarray, ...] = ()
        self._views: dict[int, tuple[np.ndarray, ...]] = {}

    def reserve(self, lm: FlowLM, n: int, rows: int, max_keys: int) -> None:
        """Grow now to ``n`` streams with ``rows`` rows in all against caches of up to
        ``max_keys`` positions, so that later steps of up to that size allocate nothing."""
        self.rows(lm, n)
        self.scratch.get(lm, rows, n, max_keys)

    def rows(self, lm: FlowLM, n: int) -> tuple[np.ndarray, ...]:
        """``latents_in``, ``noise``, ``latents_out`` ``[n, ldim]``, ``conds`` ``[n, cond_dim]``
        and ``eos`` ``[n]`` (views of buffers sized for the largest batch so far)."""
        if n > self._n:
            cap = max(n, 2 * self._n)
            self._rows = (
                np.zeros((cap, lm.ldim), np.float32),
                np.zeros((cap, lm.ldim), np.float32),
                np.zeros((cap, lm.ldim), np.float32),
                np.zeros((cap, lm.cond_dim), np.float32),
                np.zeros(cap, np.float32),
            )
            self._n = cap
            self._views = {}
        views = self._views.get(n)
        if views is None:  # the views of each batch size, made once
            views = self._views[n] = tuple(a[:n] for a in self._rows)
        return views
