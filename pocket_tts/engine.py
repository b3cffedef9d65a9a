"""The generation engine: any number of streams on one model, on two worker threads.

Every text chunk being generated is a :class:`Stream` (its :class:`~pocket_tts.pipeline.ChunkState`
plus the hand-off to its consumer). The :class:`Engine` of a model runs all of them with two
threads, started when the first stream joins and ended when the last one leaves:

* ``pocket-tts-engine-lm`` advances every ready stream by one frame with **one** batched flow-LM
  step (:meth:`~pocket_tts.pipeline.Stages.flow_lm_frames`): the weights are read once per frame
  for all streams, and a joining stream's text prefill rides along in the same pass. It steps at
  once for a joiner, else when every stream can take a frame (the fullest batch) or when there
  is nothing to decode.
* ``pocket-tts-engine-decoder`` decodes the streams' frames with Mimi, one frame per job, each
  stream's frames in order; a first frame goes first (time to first audio), then the frame due
  soonest for its stream to play in real time (earliest deadline first).

Neither core idles while there is work. A thread with nothing of its own to do takes the other's
kind of work where it can (the LM thread decodes frames when no stream needs a step) and
otherwise helps the other thread's products: every product runs with ``threads=SHARED`` and is
posted, in chunks, to the native shared-product slot whenever a thread waits in
``_native.help_until`` on the other thread's progress counter. A first frame is always decoded
with both cores. The single-stream case is the N = 1 case of the same loop: the decoder thread
helps the flow LM's steps, and both cores decode the first frame (``docs/threading.md``).

Flow control, per stream: the flow LM runs at most :data:`LOOKAHEAD_FRAMES` frames ahead of the
decoder, and pauses once :data:`BUFFER_FRAMES` frames (2 s) wait for the consumer. A consumer that
stops reading therefore pauses only its own stream, in memory allocated when it started. Capacity:
at most ``max_streams`` calls hold a slot (:meth:`Engine.slot`); up to ``max_waiting`` more wait in
FIFO order, and one more gets :class:`EngineFullError`. :meth:`Engine.load` reports the load.
"""

from __future__ import annotations

import collections
import logging
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np

from . import _native
from .flow_lm import cores_available
from .pipeline import ChunkState, Stages, StepWork

__all__ = ["BUFFER_FRAMES", "LOOKAHEAD_FRAMES", "Engine", "EngineFullError", "EngineLoad", "Stream"]

logger = logging.getLogger("pocket_tts")

#: Frames the flow LM may run ahead of a stream's decoder.
LOOKAHEAD_FRAMES = 6
#: Decoded frames (80 ms each) waiting for a consumer before its stream pauses.
BUFFER_FRAMES = 25
#: The frame period real time asks for.
FRAME_MS = 80.0
#: Weight of the newest sample in the timing averages of :meth:`Engine.load`.
_EMA = 0.1


class EngineFullError(RuntimeError):
    """Every stream slot is taken and the wait queue is full: retry later, or raise the
    engine's ``max_streams`` / ``max_waiting``."""


@dataclass(frozen=True)
class EngineLoad:
    """A snapshot of an engine's load (:meth:`Engine.load`)."""

    #: Calls holding a stream slot, and calls waiting for one.
    active: int
    waiting: int
    max_streams: int
    max_waiting: int
    #: Text chunks being generated (at most ``active``).
    streams: int
    #: Recent flow-LM step time (all rows of one step) and Mimi decode time of one frame.
    step_ms: float
    decode_ms: float
    #: Estimated time to advance every stream by one frame with both threads busy:
    #: ``(step_ms + streams * decode_ms) / threads``.
    period_ms: float
    #: ``period_ms / 80 ms``: above 1, the streams run slower than real time.
    load: float
    #: Bytes of per-stream state held by the streams now running (KV caches, decoder state,
    #: latents and audio buffers).
    state_bytes: int


class Stream:
    """One text chunk in the engine, and the consumer's side of it (:meth:`audio`).

    The fields below the docstring are guarded by the engine's lock: ``generated`` (frames
    the flow LM emitted), ``decoded`` (frames the decoder turned into audio) and ``consumed``
    (frames handed to the consumer)."""

    def __init__(
        self, engine: Engine, chunk: ChunkState, stop: threading.Event, frames_per_yield: int
    ) -> None:
        """A stream of ``chunk`` that ends early when ``stop`` is set; ``frames_per_yield``
        caps the frames of one yielded piece of audio (0: all that are ready)."""
        self.engine = engine
        self.chunk = chunk
        self.stop = stop
        self.frames_per_yield = frames_per_yield
        self.generated = 0
        self.decoded = 0
        self.consumed = 0
        self.lm_done = False  # no more frames will be generated
        self.cancelled = False
        self.error: BaseException | None = None  # raised to the consumer after the audio
        self.decode_failed = False
        self.in_step = False  # in the flow-LM step running now
        self.decoding = False  # claimed by a decode job
        self.released = False  # out of the engine's list (no new work will claim it)
        self.holders = 0  # workers whose unit of work references it (its state stays alive)
        self.changed = _Signal()  # set on news for the consumer
        self.joined_at = time.perf_counter()
        self.first_audio_at = 0.0  # when frame 0 was decoded (then frame k is due k frames on)

    def _ready_for_lm(self) -> bool:
        return (
            not self.lm_done
            and not self.cancelled
            and not self.in_step
            and self.generated - self.decoded < LOOKAHEAD_FRAMES
            and self.generated - self.consumed < BUFFER_FRAMES
        )

    def _next_due(self) -> float:
        # When its next frame must be heard for the stream to play in real time (earliest
        # deadline first keeps the streams abreast).
        return self.first_audio_at + self.decoded * (FRAME_MS / 1000)

    def _decodable(self) -> bool:
        return not self.decoding and not self.cancelled and self.decoded < self.generated

    def _finished(self) -> bool:
        # After a flow-LM error the frames before it are still decoded, then the error raised.
        return self.cancelled or (
            self.lm_done and (self.decoded == self.generated or self.decode_failed)
        )

    def audio(self) -> Iterator[np.ndarray]:
        """Yield the stream's audio as it is decoded (views into ``chunk.audio``: contiguous
        runs of frames), until its end, its ``stop``, or an error (raised here). Leaving the
        loop early cancels the stream; either way the engine has let go of the stream's state
        when this generator finishes."""
        engine = self.engine
        fs = engine.stages.mimi.frame_size
        try:
            while True:
                while True:
                    with engine._lock:
                        ready = self.decoded - self.consumed
                        if ready > 0:
                            if self.frames_per_yield > 0:
                                ready = min(ready, self.frames_per_yield)
                            a = self.consumed
                            self.consumed += ready
                            engine._wake_workers()  # may unpause the stream
                            break
                        if self.released:
                            if self.error is not None and not self.cancelled:
                                raise self.error
                            return
                        if self.stop.is_set():
                            engine._cancel(self)  # released now, or when its worker is done
                            if self.released:
                                continue
                    self.changed.wait(0.05)  # wakes on news; the timeout polls `stop`
                yield self.chunk.audio[a * fs : (a + ready) * fs]
        finally:
            with engine._lock:
                engine._cancel(self)
            # Until no worker references the stream either: its state is then freed before
            # the caller allocates the next chunk's (two would be alive at once otherwise).
            while True:
                with engine._lock:
                    if self.released and self.holders == 0:
                        break
                self.changed.wait(0.05)


class Engine:
    """Runs the streams of one model (see the module docstring). Thread-safe."""

    def __init__(self, stages: Stages, max_streams: int = 16, max_waiting: int = 256) -> None:
        """An idle engine over ``stages``; ``max_streams`` calls may hold a slot at once and
        ``max_waiting`` more may wait for one."""
        self.stages = stages
        self._lock = threading.Lock()
        self._slot_freed = threading.Condition(self._lock)
        self._streams: list[Stream] = []
        self._waiting: collections.deque[object] = collections.deque()
        self._slots_taken = 0
        self.max_streams = max_streams
        self.max_waiting = max_waiting
        self.configure(max_streams, max_waiting)
        # Per worker ("lm", "decoder"): its thread, whether it runs a unit of work now, the
        # units it finished (and the same count as an int32 for help_until).
        self._threads: dict[str, threading.Thread | None] = {"lm": None, "decoder": None}
        self._busy = {"lm": False, "decoder": False}
        self._busy_first = {"lm": False, "decoder": False}  # a first frame: prefill or decode
        self._units = {"lm": 0, "decoder": 0}
        self._progress = {"lm": np.zeros(1, np.int32), "decoder": np.zeros(1, np.int32)}
        self._wakeup = {"lm": _Signal(), "decoder": _Signal()}  # workers sleep here
        self._step_work = StepWork()
        # The decoder's per-frame work memory belongs to the thread that decodes, not to each
        # stream (about 1.5 MB saved per stream).
        self._decode_scratch = {role: stages.mimi.decoder_scratch() for role in ("lm", "decoder")}
        self._step_ms = 0.0
        self._decode_ms = 0.0
        self.share = cores_available() >= 2

    # ------------------------------------------------------------------ capacity

    def configure(self, max_streams: int | None = None, max_waiting: int | None = None) -> None:
        """Change the limits (they apply to calls that arrive from now on)."""
        if max_streams is not None:
            if not isinstance(max_streams, int) or max_streams < 1:
                raise ValueError(f"max_streams must be an int >= 1, got {max_streams!r}")
            self.max_streams = max_streams
        if max_waiting is not None:
            if not isinstance(max_waiting, int) or max_waiting < 0:
                raise ValueError(f"max_waiting must be an int >= 0, got {max_waiting!r}")
            self.max_waiting = max_waiting
        with self._lock:
            self._slot_freed.notify_all()

    @contextmanager
    def slot(self, stop: threading.Event) -> Iterator[bool]:
        """Hold one of the ``max_streams`` slots for a call (its text chunks run one after
        another in it). Waits in FIFO order while all are taken; yields False, without a slot,
        if ``stop`` is set while waiting. Raises :class:`EngineFullError` when ``max_waiting``
        calls already wait."""
        ticket = object()
        with self._lock:
            if self._slots_taken >= self.max_streams or self._waiting:
                if len(self._waiting) >= self.max_waiting:
                    raise EngineFullError(
                        f"the engine is full: {self._slots_taken} streams running and "
                        f"{len(self._waiting)} waiting (max_streams={self.max_streams}, "
                        f"max_waiting={self.max_waiting}); retry later or raise the limits"
                    )
                self._waiting.append(ticket)
                try:
                    while not (self._waiting[0] is ticket and self._slots_taken < self.max_streams):
                        if stop.is_set():
                            break
                        self._slot_freed.wait(0.05)
                finally:
                    self._waiting.remove(ticket)
                    self._slot_freed.notify_all()
                got = not stop.is_set()
            else:
                got = True
            if got:
                self._slots_taken += 1
        try:
            yield got
        finally:
            if got:
                with self._lock:
                    self._slots_taken -= 1
                    self._slot_freed.notify_all()

    def load(self) -> EngineLoad:
        """The engine's load now: slots, queue, recent step and decode times, and the
        estimated frame period against the 80 ms of real time."""
        with self._lock:
            n = len(self._streams)
            threads = 2 if self.share else 1
            period = (self._step_ms + n * self._decode_ms) / threads if n else 0.0
            return EngineLoad(
                active=self._slots_taken,
                waiting=len(self._waiting),
                max_streams=self.max_streams,
                max_waiting=self.max_waiting,
                streams=n,
                step_ms=self._step_ms,
                decode_ms=self._decode_ms,
                period_ms=period,
                load=period / FRAME_MS,
                state_bytes=sum(_state_bytes(s.chunk) for s in self._streams),
            )

    # ------------------------------------------------------------------ streams

    def start(self, chunk: ChunkState, stop: threading.Event, frames_per_yield: int = 0) -> Stream:
        """Add a text chunk to the engine; its frame 0 (with its text prefill) joins the next
        flow-LM step. Iterate the returned stream's :meth:`Stream.audio`."""
        with self._lock:
            stream = Stream(self, chunk, stop, frames_per_yield)
            self._streams.append(stream)
            for role in ("lm", "decoder"):
                if self._threads[role] is None:
                    t = threading.Thread(
                        target=self._worker,
                        args=(role,),
                        name=f"pocket-tts-engine-{role}",
                        daemon=True,
                    )
                    self._threads[role] = t
                    t.start()
        self._wake_workers()
        return stream

    def _wake_workers(self) -> None:
        """Wake both workers (news: a stream joined, left, or was read from)."""
        for signal in self._wakeup.values():
            signal.set()

    def _cancel(self, stream: Stream) -> None:
        """(Lock held.) Stop generating ``stream``; it leaves as soon as no worker uses it."""
        if not stream.released:
            stream.cancelled = True
            self._try_release(stream)

    def _try_release(self, stream: Stream) -> None:
        """(Lock held.) Let go of a finished stream that no worker is using."""
        if (
            not stream.released
            and stream._finished()
            and not stream.in_step
            and not stream.decoding
        ):
            stream.released = True
            self._streams.remove(stream)
            stream.changed.set()
            self._wake_workers()

    # ------------------------------------------------------------------ workers

    def _worker(self, role: str) -> None:
        """A worker thread's loop: choose a unit of work under the lock, run it outside."""
        other = "decoder" if role == "lm" else "lm"
        while True:
            with self._lock:
                action = self._choose(role, other)
                if action is None and not self._streams:
                    self._threads[role] = None
                    return
                if action is not None and action[0] != "help":
                    self._busy[role] = True
                    if self.share:  # the other worker may be asleep: it can help now
                        self._wakeup[other].set()
            if action is None:
                self._wakeup[role].wait(0.05)  # the timeout polls the streams' `stop` events
                continue
            kind = action[0]
            try:
                if kind == "help":
                    _native.help_until(self._progress[other], action[1])
                elif kind == "step":
                    self._run_step(action[1])
                else:
                    self._run_decode(action[1], role)
            finally:
                if kind != "help":
                    held = action[1] if kind == "step" else [action[1]]
                    action = None
                    with self._lock:
                        self._busy[role] = False
                        self._busy_first[role] = False
                        self._units[role] += 1
                        _native.progress_store(self._progress[role], self._units[role])
                        for s in held:
                            s.holders -= 1
                            s.changed.set()
                        # Dropped under the lock: a consumer that sees holders == 0 finds
                        # the stream's state unreferenced.
                        held = s = None
                    self._wake_workers()
                action = None  # hold no stream while idle: its state is freed when it leaves

    def _choose(self, role: str, other: str) -> tuple | None:
        """(Lock held.) The next unit of work for ``role``: ("step", streams), ("decode",
        stream), ("help", target) or None (nothing: sleep, or exit if no stream is left).
        One pass over the streams, allocating only the batch: it runs several times a frame."""
        first = decode = None
        ready = live = 0
        joiner = False
        for s in self._streams:
            if s.stop.is_set() and not s.cancelled:
                self._cancel(s)
                return self._choose(role, other)  # the list may have changed
            if s._decodable():
                if s.decoded == 0:
                    if first is None or s.joined_at < first.joined_at:
                        first = s
                elif decode is None or s._next_due() < decode._next_due():
                    decode = s
            if not s.lm_done and not s.cancelled and s.generated - s.consumed < BUFFER_FRAMES:
                live += 1  # not paused by its consumer
                if s._ready_for_lm():
                    ready += 1
                    joiner = joiner or s.generated == 0
        if first is not None:  # time to first audio: decode it now, the other thread helps
            return self._claim_decode(first, role)
        if self.share and self._busy_first[other]:
            return ("help", self._units[other] + 1)
        # Step for a joiner at once; otherwise once every live stream can take a frame, so that
        # a step carries as many rows as it can (it reads all the weights whatever its rows),
        # or when there is nothing to decode.
        if role == "lm" and ready and (joiner or ready == live or decode is None):
            steps = -1
            batch = []
            for s in self._streams:
                if s._ready_for_lm() and steps in (-1, s.chunk.sampling.decode_steps):
                    steps = s.chunk.sampling.decode_steps
                    s.in_step = True
                    s.holders += 1
                    batch.append(s)
                    # A joiner's text prefill is most of its time to first audio: the other
                    # thread helps with it, as with a first decode.
                    self._busy_first[role] = self._busy_first[role] or s.generated == 0
            return ("step", batch)
        if decode is not None:
            return self._claim_decode(decode, role)
        if self.share and self._busy[other]:
            return ("help", self._units[other] + 1)
        return None

    def _claim_decode(self, stream: Stream, role: str) -> tuple:
        stream.decoding = True
        stream.holders += 1
        self._busy_first[role] = stream.decoded == 0
        return ("decode", stream)

    def _run_step(self, batch: list[Stream]) -> None:
        """One flow-LM step of ``batch`` (outside the lock), then its bookkeeping."""
        joining = any(s.generated == 0 for s in batch)
        # Size the work area for every live stream (and this step's prefills) now, when the
        # set of streams has just changed, not later in the middle of a steady state.
        with self._lock:
            live = self._streams
            n = max(len(live), len(batch))
            max_keys = max((s.chunk.flow.capacity for s in live), default=1)
        rows = n + sum(len(s.chunk.text_embeddings) for s in batch if s.generated == 0)
        self._step_work.reserve(self.stages.flow_lm, n, rows, max_keys)
        if self.share:
            threads = _native.SHARED
        else:  # a text prefill on both threads (one core: nobody helps)
            threads = 2 if joining else 1
        t0 = time.perf_counter()
        try:
            results: list[bool | Exception] = self.stages.flow_lm_frames(
                [s.chunk for s in batch], threads, self._step_work
            )
        except BaseException as exc:  # noqa: BLE001 - the whole step failed: every row fails
            results = [exc if isinstance(exc, Exception) else RuntimeError(repr(exc))] * len(batch)
        ms = (time.perf_counter() - t0) * 1000
        with self._lock:
            self._step_ms = ms if self._step_ms == 0 else (1 - _EMA) * self._step_ms + _EMA * ms
            for s, r in zip(batch, results, strict=True):
                s.in_step = False
                if isinstance(r, Exception):
                    s.error = r
                    s.lm_done = True
                elif r:
                    s.generated += 1
                    if s.generated >= s.chunk.max_gen_len:
                        s.lm_done = True
                        if s.chunk.stats.eos_step is None:
                            logger.warning(
                                "Maximum generation length reached without EOS, "
                                "this very often indicates an error."
                            )
                else:
                    s.lm_done = True
                s.changed.set()
                self._try_release(s)

    def _run_decode(self, stream: Stream, role: str) -> None:
        """Decode the stream's next frame (outside the lock), then hand it to the consumer."""
        first = stream.decoded == 0
        if self.share:
            threads = _native.SHARED
        else:
            threads = 2 if first else 1
        t0 = time.perf_counter()
        error: BaseException | None = None
        try:
            self.stages.decode_frames(stream.chunk, 1, threads, self._decode_scratch[role])
        except BaseException as exc:  # noqa: BLE001 - forwarded to the consumer
            error = exc
        ms = (time.perf_counter() - t0) * 1000
        with self._lock:
            if not first:  # a first frame also waits for a helper
                self._decode_ms = (
                    ms if self._decode_ms == 0 else (1 - _EMA) * self._decode_ms + _EMA * ms
                )
            stream.decoding = False
            if error is not None:
                stream.error = error
                stream.lm_done = True
                stream.decode_failed = True
            else:
                if stream.decoded == 0:
                    stream.first_audio_at = time.perf_counter()
                stream.decoded += 1
            stream.changed.set()
            self._try_release(stream)


class _Signal:
    """An auto-reset event: :meth:`set` wakes one :meth:`wait` (now or the next one). Unlike
    ``Condition.wait``, waiting allocates nothing, so a stream's steady state does not."""

    def __init__(self) -> None:
        """Start unset."""
        self._lock = threading.Lock()
        self._lock.acquire()

    def set(self) -> None:
        """Wake the waiter (or let the next wait return at once)."""
        if self._lock.locked():  # else already set
            try:
                self._lock.release()
            except RuntimeError:  # set by another thread meanwhile
                pass

    def wait(self, timeout: float) -> None:
        """Return when set (and reset it), or after ``timeout`` seconds."""
        self._lock.acquire(timeout=timeout)


def _state_bytes(chunk: ChunkState) -> int:
    """Bytes of one stream's state: KV caches, decoder state, latents, audio."""
    return int(
        chunk.flow.nbytes
        + chunk.decoder.nbytes
        + chunk.latents.nbytes
        + chunk.mimi_in.nbytes
        + chunk.audio.nbytes
        + chunk.text_embeddings.nbytes
    )
