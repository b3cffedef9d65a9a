"""Measure N concurrent streams on one model and print the figures as JSON.

Runs with either Python: ours (this package installed) or the reference's side venv (PyTorch
``pocket-tts`` 4.0.1), detected as in ``measure.py``. Both are driven the way a server drives
them: one model, one thread per stream calling ``generate_audio_stream`` and reading its chunks
as fast as it can (ours with ``seed=i``, so each stream has its own noise generator; the
reference with its defaults, ``copy_state=True``, as its server runs concurrent requests).

    python benchmarks/streams.py CONFIG.yaml --voice ref.wav --n 8 [--dtype float16]
                                 [--frames 250] [--joiners 12] [--quick]

EOS is disabled and every stream makes exactly ``--frames`` frames (250 = 20 s). Figures:

* ``audio_s_per_s``: audio seconds of all N streams / wall time from the first call to the
  last chunk (all N start together);
* ``slowest_rtf``: max over those streams of (call -> last chunk) / its audio seconds;
* ``peak_rss_mb``: VmHWM after load, voice prompt and the N streams (before the harness's own
  extra states below);
* ``join_ttfa_ms_p50`` / ``_p95``: N - 1 streams run (restarted when they end, so N - 1 are
  always running); once every one of them has heard its first audio, ``--joiners`` streams
  join one after another, each after a random 0.1-0.3 s pause (so joins fall anywhere in the
  engine's frame period), and each is timed from its call to its first chunk, then stopped.
  A join during which a background stream restarted (its prefill would be counted) is
  discarded and retried (``join_discarded``);
* ``lm_step_ms``: one flow-LM frame for N streams. Ours: ``flow_lm.step_batch`` over N rows
  (``lm_step_batched: true``), or a loop of ``flow_lm.step`` where the batched step does not
  exist (``false``); median of 20 (10 with ``--quick``). The reference has no batched step:
  N threads each run one ``_run_flow_lm_and_increment_step`` on their own state copy, and the
  figure is the wall time of that round (``lm_step_batched: false``);
* ``engine_load``: ours' ``model.engine.load()`` sampled while the N streams run, if the
  model has an engine (else null).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import math
import random
import threading
import time
from collections.abc import Callable, Generator
from typing import Any

import numpy as np
from measure import IS_REFERENCE, SENTENCE, median_time, peak_rss_mb, voice_len

#: How long to wait for streams that should have produced audio long before.
STALL_TIMEOUT_S = 1800.0
JOIN_PAUSE_S = (0.1, 0.3)
LM_STEP_WARMUP = 3


@dataclasses.dataclass
class StreamTiming:
    """Wall-clock marks of one stream (``time.perf_counter`` seconds)."""

    call: float
    first_chunk: float | None = None
    last_chunk: float | None = None
    samples: int = 0

    def chunk_marks(self) -> tuple[float, float]:
        """(first chunk, last chunk) of a stream that made audio."""
        if self.first_chunk is None or self.last_chunk is None:
            raise ValueError("a stream made no audio: only streams that ran have chunk times")
        return self.first_chunk, self.last_chunk


def open_stream(
    model: Any, voice: Any, seed: int, stop: threading.Event
) -> Generator[Any, None, None]:
    """One stream of ``SENTENCE`` through the engine's public API (the reference has no
    per-call seed)."""
    if IS_REFERENCE:
        return model.generate_audio_stream(voice, SENTENCE, stop=stop)
    return model.generate_audio_stream(voice, SENTENCE, stop=stop, seed=seed)


def set_frames(model: Any, frames: int) -> None:
    """Make every stream exactly ``frames`` frames long (with EOS disabled at load)."""
    model._estimate_max_gen_len = lambda token_count: frames


def engine_load(model: Any) -> dict | None:
    """``model.engine.load()`` as a dict, or None when the model has no engine."""
    load = getattr(getattr(model, "engine", None), "load", None)
    if load is None:
        return None
    value = load()
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    if isinstance(value, dict):
        return dict(value)
    names = ("active", "waiting", "step_ms", "period_ms")
    return {name: getattr(value, name, None) for name in names}


def concurrent_streams(
    model: Any,
    voice: Any,
    n: int,
    frames: int,
    on_all_heard: Callable[[], None] | None = None,
) -> list[StreamTiming]:
    """Run ``n`` streams of ``frames`` frames at once, one thread each, released together;
    ``on_all_heard`` runs on this thread once every stream has had its first chunk."""
    set_frames(model, frames)
    gate = threading.Barrier(n)
    heard = threading.Semaphore(0)
    timings: list[StreamTiming | None] = [None] * n
    errors: list[BaseException] = []

    def run(i: int) -> None:
        gate.wait()
        timing = StreamTiming(time.perf_counter())
        try:
            for chunk in open_stream(model, voice, i, threading.Event()):
                now = time.perf_counter()
                if timing.first_chunk is None:
                    timing.first_chunk = now
                    heard.release()
                timing.last_chunk = now
                timing.samples += chunk.shape[-1]
        except BaseException as e:  # reported on the main thread
            errors.append(e)
        finally:
            if timing.first_chunk is None:
                heard.release()  # never leave the main thread waiting
            timings[i] = timing

    threads = [threading.Thread(target=run, args=(i,), name=f"stream-{i}") for i in range(n)]
    for t in threads:
        t.start()
    for _ in range(n):
        if not heard.acquire(timeout=STALL_TIMEOUT_S):
            raise RuntimeError(f"no first audio within {STALL_TIMEOUT_S:.0f} s")
    if on_all_heard is not None and not errors:
        on_all_heard()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]
    expected = frames * frame_samples(model)
    done = [t for t in timings if t is not None]
    short = [t.samples for t in done if t.samples != expected]
    if short:
        raise RuntimeError(
            f"streams made {short} samples, not {expected} ({frames} frames): is EOS disabled "
            "(eos_threshold=1e9) and the text one chunk?"
        )
    return done


def frame_samples(model: Any) -> int:
    """Audio samples per frame (1920 at 24 kHz, 12.5 Hz)."""
    return round(model.sample_rate / model.config.mimi.frame_rate)


def throughput(model: Any, timings: list[StreamTiming]) -> dict[str, float]:
    """Audio seconds per wall second over all streams, the slowest stream's real-time factor,
    and the first-audio times of streams that all started together."""
    rate = model.sample_rate
    marks = [t.chunk_marks() for t in timings]
    wall = max(last for _, last in marks) - min(t.call for t in timings)
    first_ms = [1000 * (first - t.call) for (first, _), t in zip(marks, timings, strict=True)]
    return {
        "audio_s_per_stream": timings[0].samples / rate,
        "audio_s_per_s": sum(t.samples for t in timings) / rate / wall,
        "slowest_rtf": max(
            (last - t.call) / (t.samples / rate)
            for (_, last), t in zip(marks, timings, strict=True)
        ),
        "start_ttfa_ms_p50": float(np.percentile(first_ms, 50)),
        "start_ttfa_ms_max": max(first_ms),
    }


def join_latencies(
    model: Any, voice: Any, running: int, frames: int, joiners: int, seed: int = 0
) -> tuple[list[float], int]:
    """Times to first audio (s) of ``joiners`` streams joining ``running`` streams that have
    all heard their first audio, and how many joins were discarded (a background stream
    restarted during them)."""
    set_frames(model, frames)
    finished = threading.Event()
    warm = [False] * running
    restarts = [0]
    lock = threading.Lock()
    errors: list[BaseException] = []

    def background(i: int) -> None:
        seed = i
        try:
            while not finished.is_set():
                with lock:
                    warm[i] = False
                    restarts[0] += 1
                stop = threading.Event()
                for _ in open_stream(model, voice, seed, stop):
                    warm[i] = True
                    if finished.is_set():
                        stop.set()
                        break
                seed += running
        except BaseException as e:  # reported on the main thread
            errors.append(e)
            finished.set()

    def wait_until_warm() -> None:
        deadline = time.perf_counter() + STALL_TIMEOUT_S
        while not all(warm):
            if errors:
                raise errors[0]
            if time.perf_counter() > deadline:
                raise RuntimeError(f"background streams silent for {STALL_TIMEOUT_S:.0f} s")
            time.sleep(0.002)

    threads = [threading.Thread(target=background, args=(i,)) for i in range(running)]
    for t in threads:
        t.start()
    pauses = random.Random(seed)
    latencies: list[float] = []
    discarded = 0
    try:
        for k in range(3 * joiners):
            wait_until_warm()
            time.sleep(pauses.uniform(*JOIN_PAUSE_S))
            wait_until_warm()
            with lock:
                restarts_before = restarts[0]
            stop = threading.Event()
            call = time.perf_counter()
            stream = open_stream(model, voice, 10_000 + k, stop)
            next(stream)
            latency = time.perf_counter() - call
            stop.set()
            stream.close()
            with lock:
                clean = restarts[0] == restarts_before and all(warm)
            if clean:
                latencies.append(latency)
            else:
                discarded += 1
            if len(latencies) == joiners:
                break
    finally:
        finished.set()
        for t in threads:
            t.join()
    if errors:
        raise errors[0]
    return latencies, discarded


def lm_step_ours(model: Any, voice: Any, n: int, repeats: int, threads: int) -> tuple[float, bool]:
    """Median wall time (ms) of one flow-LM frame for ``n`` streams, and whether it was one
    batched call."""
    lm = model.flow_lm
    states = [voice.to_flow_state(lm, voice.offset + 400) for _ in range(n)]
    if hasattr(lm, "step_batch"):
        latents_in = np.full((n, lm.ldim), np.nan, np.float32)
        noise = np.zeros((n, lm.ldim), np.float32)
        latents_out = np.zeros((n, lm.ldim), np.float32)
        conds = np.zeros((n, lm.cond_dim), np.float32)
        eos = np.zeros(n, np.float32)

        def step() -> None:
            lm.step_batch(states, latents_in, noise, latents_out, conds, eos, threads=threads)

        batched = True
    else:
        x = np.full(lm.ldim, np.nan, np.float32)
        noise1, lat = np.zeros(lm.ldim, np.float32), np.zeros(lm.ldim, np.float32)
        cond = np.zeros(lm.cond_dim, np.float32)

        def step() -> None:
            for state in states:
                lm.step(state, x, noise1, lat, cond)

        batched = False
    for _ in range(LM_STEP_WARMUP):
        step()
    return 1000 * median_time(step, repeats), batched


def lm_step_reference(model: Any, voice: Any, n: int, repeats: int) -> float:
    """Median wall time (ms) of a round in which ``n`` threads each run one flow-LM frame on
    their own copy of the voice state (the reference has no batched step)."""
    import copy

    import torch

    states = []
    for _ in range(n):
        state = copy.deepcopy(voice)
        model._expand_kv_cache(state, sequence_length=voice_len(voice) + 400)
        states.append(state)
    x = torch.full((1, 1, model.flow_lm.ldim), float("nan"))
    rounds = LM_STEP_WARMUP + repeats
    start, end = threading.Barrier(n + 1), threading.Barrier(n + 1)

    def worker(state: Any) -> None:
        with torch.no_grad():  # thread-local in torch
            for _ in range(rounds):
                start.wait()
                model._run_flow_lm_and_increment_step(model_state=state, backbone_input_latents=x)
                end.wait()

    threads = [threading.Thread(target=worker, args=(s,)) for s in states]
    for t in threads:
        t.start()
    times = []
    for _ in range(rounds):
        t0 = time.perf_counter()
        start.wait()
        end.wait()
        times.append(time.perf_counter() - t0)
    for t in threads:
        t.join()
    return 1000 * float(np.median(times[LM_STEP_WARMUP:]))


def load(args: argparse.Namespace) -> tuple[Any, Any, dict]:
    """The model (EOS disabled), the voice state, and the JSON's identity fields."""
    if IS_REFERENCE:
        import torch

        from pocket_tts import TTSModel

        torch.set_num_threads(1)  # as measure.py: the streams' threads share the two cores
        model = TTSModel.load_model(config=args.config, eos_threshold=1e9)
        identity = {"engine": "reference", "dtype": "float32"}
    else:
        from pocket_tts import TTSModel

        model = TTSModel.load_model(config=args.config, eos_threshold=1e9, dtype=args.dtype, seed=0)
        # Room for N streams plus the timed joiners, none of them queued.
        model.engine.configure(max_streams=max(16, args.n + 1))
        identity = {"engine": "ours", "dtype": args.dtype}
    return model, model.get_state_for_audio_prompt(args.voice), identity


def measure(args: argparse.Namespace) -> dict:
    """Every figure for one engine, dtype and N (see the module docstring)."""
    model, voice, res = load(args)
    n = args.n
    res.update(streams=n, frames=args.frames)
    concurrent_streams(model, voice, 1, 4)  # warm-up: first-call allocations, caches

    load_sample: list[dict | None] = [None]
    timings = concurrent_streams(
        model, voice, n, args.frames, lambda: load_sample.__setitem__(0, engine_load(model))
    )
    res.update(throughput(model, timings))
    res["peak_rss_mb"] = peak_rss_mb()
    res["engine_load"] = load_sample[0]

    joiners = args.joiners if args.joiners is not None else (6 if args.quick else 12)
    latencies, discarded = join_latencies(model, voice, n - 1, args.frames, joiners)
    ms = [1000 * t for t in latencies]
    res.update(
        join_ttfa_ms_p50=float(np.percentile(ms, 50)) if ms else math.nan,
        join_ttfa_ms_p95=float(np.percentile(ms, 95)) if ms else math.nan,
        join_count=len(ms),
        join_discarded=discarded,
    )

    repeats = 10 if args.quick else 20
    if IS_REFERENCE:
        res["lm_step_ms"] = lm_step_reference(model, voice, n, repeats)
        res["lm_step_batched"] = False
        res["lm_step_how"] = f"{n} threads, one step each: wall time of the round"
    else:
        res["lm_step_ms"], res["lm_step_batched"] = lm_step_ours(
            model, voice, n, repeats, args.lm_threads
        )
        how = "flow_lm.step_batch" if res["lm_step_batched"] else "loop of flow_lm.step"
        res["lm_step_how"] = f"{how} over {n} rows, threads={args.lm_threads}"
    return res


def main() -> None:
    """Parse the command line, measure, print one JSON line."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("config")
    p.add_argument("--voice", required=True)
    p.add_argument("--dtype", default="float32", help="ours only; the reference is float32")
    p.add_argument("--n", type=int, default=1, help="concurrent streams")
    p.add_argument("--frames", type=int, default=250, help="frames per stream (250 = 20 s)")
    p.add_argument("--joiners", type=int, default=None, help="joins timed (default 12, quick 6)")
    p.add_argument("--lm-threads", type=int, default=1, help="threads= of ours' batched step")
    p.add_argument("--quick", action="store_true", help="fewer joins and step repeats")
    args = p.parse_args()
    if args.n < 1:
        p.error(f"--n must be at least 1, got {args.n}")
    if args.frames < 1:
        p.error(f"--frames must be at least 1, got {args.frames}")
    if args.joiners is not None and args.joiners < 1:
        p.error(f"--joiners must be at least 1, got {args.joiners}")
    # Both engines warn on every stream that ends without EOS, which is this benchmark's design.
    logging.getLogger("pocket_tts").setLevel(logging.ERROR)
    print(json.dumps(measure(args)))


if __name__ == "__main__":
    main()
