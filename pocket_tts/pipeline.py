"""The generation of one text chunk: tokens -> flow LM -> latents -> Mimi decoder -> audio.

Three pieces, kept apart so that a multi-stream engine can reuse the first two:

* :class:`ChunkState`, the per-stream state: everything one text chunk needs, allocated once
  before its first frame (flow-LM KV caches starting from the voice, the text embeddings,
  latents, decoder input, Mimi decoder state, audio buffer, EOS bookkeeping), plus its
  :class:`Sampling` settings.
* :class:`Stages`, the per-frame work, shared by every stream of a model:
  :meth:`Stages.flow_lm_frame` (one noise draw, one flow-LM step, the EOS rule) and
  :meth:`Stages.decode_frames` (denormalise and decode a run of latents into the audio buffer).
* :class:`ChunkPipeline`, the scheduler of one stream on two threads.

Threads and helping (the full account, with the C side, is ``docs/threading.md``)
---------------------------------------------------------------------------------
The flow-LM loop (:meth:`ChunkPipeline._flow_lm_loop`) runs on a worker thread named
``pocket-tts-flow-lm``; the decoder loop (:meth:`ChunkPipeline.audio`) runs on the thread that
iterates the audio. Latents go from the first to the second through a queue. Both threads
spend their time in C kernels that release the GIL, so each keeps one core busy. With two cores
(``share``), neither core idles while the other works:

* the flow LM runs every step with ``threads=SHARED``: each large product is posted, in chunks,
  to the native module's shared-product slot, where a thread waiting in ``help_until`` takes
  chunks too. The decoder thread, whenever it finds no latent queued, waits in
  ``_native.help_until(lm_progress, received + 1)``: it computes chunks of the flow LM's
  products until the flow LM publishes the next frame (``progress_store`` after queueing it) or
  ends (``LM_FINISHED``);
* the first frame is decoded with ``threads=SHARED`` while the flow LM, its frame 0 done, waits
  in ``_native.help_until(first_audio.progress, 1)`` computing chunks of the decoder's products;
  the decoder stores 1 there once the first audio is out (time to first audio). Frame 0 also
  carries the text prefill, with the decoder thread helping.

A helped product is bit-identical to the poster computing it alone, and every frame's noise is
drawn on the flow-LM thread in frame order, so the audio does not depend on the threads, the
cores or how frames are grouped into decoder calls. With one core, the first frame and the
first decode split their large products over two threads instead, and nobody helps.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np

from . import _native
from .audio.resample import torch_linspace
from .flow_lm import FlowLM, FlowLMState, cores_available
from .mimi import Mimi, MimiDecoderState
from .voice import VoiceState

__all__ = ["LM_FINISHED", "ChunkPipeline", "ChunkState", "ChunkStats", "Sampling", "Stages"]

logger = logging.getLogger("pocket_tts")

#: ``lm_progress`` value meaning "the flow LM has returned": ``help_until`` stops waiting.
LM_FINISHED = 1 << 30


@dataclass(frozen=True)
class Sampling:
    """How a stream samples its frames (the reference's ``TTSModel`` attributes)."""

    temp: float
    noise_clamp: float | None
    eos_threshold: float
    decode_steps: int
    #: EOS is ignored before this frame (the reference's ``_MIN_FRAMES_BEFORE_EOS``).
    min_frames_before_eos: int

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
    noise: np.ndarray
    cond: np.ndarray
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
            flow = voice.to_flow_state(lm, capacity, max_prefill)
        else:
            flow = lm.new_state(capacity, max_prefill=max_prefill)
        text_embeddings = lm.embed_tokens(flow, tokens)
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
            decoder=self.mimi.new_decoder_state(),
            audio=np.empty(max_gen_len * self.mimi.frame_size, np.float32),
            stats=ChunkStats(max_gen_len, np.full(max_gen_len, np.nan, np.float32)),
            latent_in=np.full(lm.ldim, np.nan, np.float32),
            noise=np.empty(lm.ldim, np.float32),
            cond=np.empty(lm.cond_dim, np.float32),
        )

    def flow_lm_frame(self, chunk: ChunkState, threads: int) -> bool:
        """Sample the chunk's next latent into ``chunk.latents[chunk.stats.frames]``.

        Returns False, without emitting it, when the frame is past the end: EOS was seen (from
        frame ``min_frames_before_eos`` on) ``frames_after_eos`` frames ago, as in the
        reference. ``threads`` is the products' thread mode (1, 2 or ``_native.SHARED``).
        """
        stats, sampling = chunk.stats, chunk.sampling
        step = stats.frames
        chunk.noise_source.normal(chunk.noise, sampling.noise_std, sampling.noise_clamp)
        # The text prefill rides along with frame 0: one pass over the weights for both.
        eos = self.flow_lm.step(
            chunk.flow,
            chunk.latent_in,
            chunk.noise,
            chunk.latents[step],
            chunk.cond,
            sampling.decode_steps,
            prefix=chunk.text_embeddings if step == 0 else None,
            threads=threads,
        )
        stats.eos_logits[step] = eos
        if (
            eos > sampling.eos_threshold
            and stats.eos_step is None
            and step >= sampling.min_frames_before_eos
        ):
            stats.eos_step = step
        if stats.eos_step is not None and step >= stats.eos_step + chunk.frames_after_eos:
            return False
        stats.frames = step + 1
        chunk.latent_in = chunk.latents[step]
        return True

    def decode_frames(self, chunk: ChunkState, n: int, threads: int) -> np.ndarray:
        """Decode the chunk's next ``n`` latents; returns their audio (a view into
        ``chunk.audio``), faded in at the start of the chunk. ``threads``: 1, 2 or
        ``_native.SHARED``."""
        a, b = chunk.frames_decoded, chunk.frames_decoded + n
        mimi_in = chunk.mimi_in[a:b]
        # latents * std + mean with two roundings, as the reference (and without allocating).
        np.multiply(chunk.latents[a:b], self.emb_std, out=mimi_in)
        np.add(mimi_in, self.emb_mean, out=mimi_in)
        frame_size = self.mimi.frame_size
        out = chunk.audio[a * frame_size : b * frame_size]
        self.mimi.decode(chunk.decoder, mimi_in, out, threads=threads)
        if a == 0:
            m = min(len(self.fade_in), len(out))
            out[:m] *= self.fade_in[:m]
        chunk.frames_decoded = b
        return out


@dataclass(eq=False)
class _FirstAudio:
    """'The first frame is decoded', for the flow-LM thread to wait on: helping with the
    decoder's products (``_native.help_until(progress, 1)``) or sleeping on ``event``."""

    progress: np.ndarray = field(default_factory=lambda: np.zeros(1, np.int32))
    event: threading.Event = field(default_factory=threading.Event)

    def set(self) -> None:
        """Release the flow-LM thread, whichever way it waits."""
        _native.progress_store(self.progress, 1)
        self.event.set()


class ChunkPipeline:
    """One text chunk on two threads: the flow-LM loop on a worker thread, the decoder loop on
    the thread iterating :meth:`audio`; the module docstring describes how they help each
    other. Single use: :meth:`audio` may be iterated once."""

    def __init__(
        self,
        stages: Stages,
        chunk: ChunkState,
        stop: threading.Event,
        max_decoder_frames_per_call: int = 0,
    ) -> None:
        """``stop`` ends the chunk early (from any thread); ``max_decoder_frames_per_call``
        caps the frames per decoder call (0: every queued frame in one call)."""
        self.stages = stages
        self.chunk = chunk
        self.stop = stop
        self.max_decoder_frames_per_call = max_decoder_frames_per_call
        #: Two cores: each thread helps with the other's products while it waits.
        self.share = cores_available() >= 2
        # Handshake. `latents` carries frame indices, then None (the flow LM has returned) or
        # an exception it raised; `lm_progress` counts the frames queued, for help_until.
        self.latents: queue.Queue[int | BaseException | None] = queue.Queue()
        self.lm_progress = np.zeros(1, np.int32)
        self.lm_returned = False  # the consumer has taken the final None
        self.first_audio = _FirstAudio()
        # Set when the consumer leaves (done, closed or failed): the flow LM stops.
        self.abandoned = threading.Event()

    def audio(self) -> Iterator[np.ndarray]:
        """The decoder loop: yield audio (views into ``chunk.audio``) as latents arrive."""
        worker = threading.Thread(target=self._run_flow_lm, name="pocket-tts-flow-lm", daemon=True)
        worker.start()
        try:
            while True:
                n = self._wait_for_latents()
                if n == 0:
                    return
                first = self.chunk.frames_decoded == 0
                if first:  # the flow LM waits for this frame: use both cores
                    threads = _native.SHARED if self.share else 2
                else:
                    threads = 1
                out = self.stages.decode_frames(self.chunk, n, threads)
                if first:
                    self.first_audio.set()
                yield out
        finally:
            self.abandoned.set()
            self.first_audio.set()  # never leave the flow LM waiting
            worker.join()

    def _wait_for_latents(self) -> int:
        """Latents queued since the last call (at most ``max_decoder_frames_per_call``), waiting
        for at least one, helping the flow LM meanwhile; 0 once it has finished."""
        if self.lm_returned:
            return 0
        if self.share and self.latents.empty():
            _native.help_until(self.lm_progress, self.chunk.frames_decoded + 1)
        item = self.latents.get()
        n = 0
        while True:
            if item is None:
                self.lm_returned = True
                return n
            if isinstance(item, BaseException):
                raise item
            n += 1
            cap = self.max_decoder_frames_per_call
            if cap > 0 and n >= cap:
                return n
            try:
                item = self.latents.get_nowait()
            except queue.Empty:
                return n

    def _run_flow_lm(self) -> None:
        """Worker thread: the flow-LM loop, its errors forwarded to the consumer, and the end
        always signalled (so the decoder never waits for a frame that will not come)."""
        try:
            self._flow_lm_loop()
        except BaseException as exc:  # forwarded to the consumer
            self.latents.put(exc)
        finally:
            self.latents.put(None)
            _native.progress_store(self.lm_progress, LM_FINISHED)

    def _flow_lm_loop(self) -> None:
        """Generate the chunk's frames until EOS (plus its tail), the budget, or a stop."""
        chunk = self.chunk
        for step in range(chunk.max_gen_len):
            if self._cancelled():
                return
            if self.share:
                threads = _native.SHARED
            else:  # frame 0 (with the text prefill) on both threads: the decoder idles
                threads = 2 if step == 0 else 1
            if not self.stages.flow_lm_frame(chunk, threads):
                return
            self.latents.put(step)
            if self.share:
                _native.progress_store(self.lm_progress, step + 1)
            if step == 0 and not self._wait_for_first_audio():
                return
        logger.warning(
            "Maximum generation length reached without EOS, this very often indicates an error."
        )

    def _wait_for_first_audio(self) -> bool:
        """After frame 0, wait until it is decoded (time to first audio), helping with the
        decoder's products on two cores; False if the chunk was cancelled meanwhile."""
        if self.share:
            _native.help_until(self.first_audio.progress, 1)
        while not self.first_audio.event.wait(0.05):
            if self._cancelled():
                return False
        return True

    def _cancelled(self) -> bool:
        return self.stop.is_set() or self.abandoned.is_set()
