"""The multi-stream engine (``pocket_tts.engine``): concurrent calls share batched flow-LM steps
and each still gets the audio it gets alone; flow control, capacity, load report, the asyncio
API, and nothing left behind."""

from __future__ import annotations

import asyncio
import gc
import threading
import time
import weakref

import numpy as np
import pytest
from conftest import REF_WAV, engine_threads_exit

from pocket_tts import TTSModel, _native
from pocket_tts.engine import BUFFER_FRAMES, LOOKAHEAD_FRAMES, EngineFullError

LONG = "This sentence goes on and on for quite a while, so that it lasts several seconds."


@pytest.fixture(scope="module")
def model_and_voice(random_checkpoint):
    yaml_path, _ = random_checkpoint("english_2m_2026-10")
    model = TTSModel.load_model(config=str(yaml_path), eos_threshold=1e9, seed=0)
    return model, model.get_state_for_audio_prompt(str(REF_WAV))


@pytest.fixture
def batch_sizes(model_and_voice, monkeypatch):
    """The number of streams in every flow-LM step the engine runs."""
    model, _ = model_and_voice
    sizes: list[int] = []
    real = model._stages.flow_lm_frames

    def recording(chunks, threads, work):
        sizes.append(len(chunks))
        return real(chunks, threads, work)

    monkeypatch.setattr(model._stages, "flow_lm_frames", recording)
    return sizes


def _run_concurrently(calls, stagger: float = 0.02) -> dict[int, np.ndarray]:
    """Run ``calls`` (functions returning audio) on one thread each, joining ``stagger``
    seconds apart; their results by index (exceptions re-raised)."""
    got: dict[int, np.ndarray] = {}
    errors: list[BaseException] = []

    def run(i: int) -> None:
        try:
            time.sleep(stagger * i)
            got[i] = calls[i]()
        except BaseException as exc:  # noqa: BLE001 - re-raised below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(calls))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=600)
    if errors:
        raise errors[0]
    return got


def test_eos_at_different_frames_batched_and_alone(model_and_voice, batch_sizes) -> None:
    """Streams whose EOS falls on different frames (and with different frames_after_eos,
    voices, texts and seeds) are batched together, and each is bit-identical to its run
    alone: a stream that leaves changes nothing for the others."""
    model, voice = model_and_voice
    texts = ["Hello there, how are you?", LONG, "Numbers: one, two, three.", "Short.", LONG]
    voices = [voice, None, voice, None, voice]
    # Pick an EOS threshold that the random model crosses at different frames per stream.
    logits = []
    for i, t in enumerate(texts):
        model.generate_audio(voices[i], t, seed=i)
        logits.append(model.last_chunk_stats["eos_logits"])
    threshold = float(np.quantile(np.concatenate([x[6:30] for x in logits]), 0.9))
    old = model.eos_threshold
    model.eos_threshold = threshold
    try:
        want, eos_steps = [], []
        for i, t in enumerate(texts):
            want.append(model.generate_audio(voices[i], t, seed=i, frames_after_eos=i % 3))
            eos_steps.append(model.last_chunk_stats["eos_step"])
        assert len(set(eos_steps)) > 2, eos_steps  # the case exercises different EOS frames
        batch_sizes.clear()
        calls = [
            (lambda i=i: model.generate_audio(voices[i], texts[i], seed=i, frames_after_eos=i % 3))
            for i in range(len(texts))
        ]
        got = _run_concurrently(calls, stagger=0.003)
    finally:
        model.eos_threshold = old
    for i in range(len(texts)):
        assert got[i].tobytes() == want[i].tobytes(), i
    assert max(batch_sizes) >= 3, batch_sizes  # the streams really shared flow-LM steps


def test_stalled_consumer_pauses_only_its_own_stream(model_and_voice) -> None:
    model, voice = model_and_voice
    want_stalled = model.generate_audio(voice, LONG, seed=7)
    want = [model.generate_audio(None, "Others keep going.", seed=s) for s in range(3)]
    model.max_decoder_frames_per_call = 1
    try:
        stalled = model.generate_audio_stream(voice, LONG, seed=7)
        first = [np.array(next(stalled))]
        calls = [
            (lambda s=s: model.generate_audio(None, "Others keep going.", seed=s)) for s in range(3)
        ]
        got = _run_concurrently(calls, stagger=0)
        # Meanwhile the stalled stream ran at most its buffer ahead of its consumer.
        (stream,) = model.engine._streams
        with model.engine._lock:
            ahead = stream.generated - stream.consumed
            decoded_ahead = stream.decoded - stream.consumed
        assert 0 < ahead <= BUFFER_FRAMES and decoded_ahead <= BUFFER_FRAMES
        assert stream.generated - stream.decoded <= LOOKAHEAD_FRAMES
        rest = [np.array(c) for c in stalled]
    finally:
        model.max_decoder_frames_per_call = 0
    for i in range(3):
        assert got[i].tobytes() == want[i].tobytes()
    assert np.concatenate(first + rest).tobytes() == want_stalled.tobytes()


def test_capacity_fifo_wait_queue_and_full_error(model_and_voice) -> None:
    model, voice = model_and_voice
    engine = model.engine
    engine.configure(max_streams=1, max_waiting=2)
    order: list[str] = []
    try:
        holder = model.generate_audio_stream(voice, LONG, seed=0)
        next(holder)  # holds the only slot
        assert engine.load().active == 1

        def waiting_call(name: str) -> None:
            for _ in model.generate_audio_stream(
                None, "Queued call.", seed=1, on_text_chunk=lambda i, n, t: order.append(name)
            ):
                pass

        a = threading.Thread(target=waiting_call, args=("a",))
        a.start()
        _until(lambda: engine.load().waiting == 1)
        b = threading.Thread(target=waiting_call, args=("b",))
        b.start()
        _until(lambda: engine.load().waiting == 2)
        with pytest.raises(EngineFullError, match="max_streams=1, max_waiting=2"):
            model.generate_audio(None, "One too many.")
        # A waiting call whose stop is set leaves the queue without audio.
        stop = threading.Event()
        engine.configure(max_waiting=3)
        out: list[np.ndarray] = []
        c = threading.Thread(
            target=lambda: out.extend(model.generate_audio_stream(None, "Never.", stop=stop))
        )
        c.start()
        _until(lambda: engine.load().waiting == 3)
        stop.set()
        c.join(timeout=60)
        assert not c.is_alive() and out == [] and engine.load().waiting == 2
        assert order == []  # nobody got past the holder
        holder.close()
        a.join(timeout=120)
        b.join(timeout=120)
        assert order == ["a", "b"]  # first in, first served
    finally:
        engine.configure(max_streams=16, max_waiting=256)
    assert engine.load().active == 0 and engine.load().waiting == 0
    with pytest.raises(ValueError, match="max_streams"):
        engine.configure(max_streams=0)
    assert len(model.generate_audio(None, "Still serving.", seed=0)) > 0


def test_load_report_and_state_bytes(model_and_voice) -> None:
    model, voice = model_and_voice
    engine = model.engine
    gens = [model.generate_audio_stream(voice, LONG, seed=s) for s in range(3)]
    for g in gens:
        next(g)
    try:
        load = engine.load()
        assert load.active == 3 and load.streams == 3 and load.waiting == 0
        assert load.step_ms > 0 and load.decode_ms > 0
        threads = 2 if engine.share else 1
        assert load.period_ms == pytest.approx((load.step_ms + 3 * load.decode_ms) / threads)
        assert load.load == pytest.approx(load.period_ms / 80.0)
        # Bytes per stream: its KV caches (sized for text + frames; the voice prompt's
        # positions are read from the voice, shared by its streams), its decoder state and its
        # buffers, all allocated when it started.
        chunk = engine._streams[0].chunk
        lm = model.flow_lm
        shared = chunk.flow.shared_positions
        assert shared == voice.offset > 0  # all three streams read one copy of the voice
        assert all(s.chunk.flow.shared_kv is voice.kv for s in engine._streams)
        own = chunk.flow.capacity - shared
        kv = lm.num_layers * 2 * own * lm.num_kv_heads * lm.head_dim * 4
        assert chunk.flow.own_kv.nbytes == kv
        frames = chunk.max_gen_len
        buffers = frames * (2 * lm.ldim + model.mimi.frame_size) * 4
        per_stream = load.state_bytes / 3
        assert per_stream >= kv + buffers + chunk.decoder.nbytes
    finally:
        for g in gens:
            g.close()
    assert engine.load().state_bytes == 0 and engine.load().streams == 0


def test_async_streams_match_sync_and_do_not_block_the_loop(model_and_voice) -> None:
    model, voice = model_and_voice
    want = [model.generate_audio(voice if s % 2 else None, LONG, seed=s) for s in range(3)]

    async def main() -> tuple[list[np.ndarray], int]:
        ticks = 0
        done = asyncio.Event()

        async def ticker() -> None:
            nonlocal ticks
            while not done.is_set():
                ticks += 1
                await asyncio.sleep(0.001)

        tick_task = asyncio.create_task(ticker())
        got = await asyncio.gather(
            *(model.agenerate_audio(voice if s % 2 else None, LONG, seed=s) for s in range(3))
        )
        done.set()
        await tick_task
        return list(got), ticks

    got, ticks = asyncio.run(main())
    assert all(g.tobytes() == w.tobytes() for g, w in zip(got, want, strict=True))
    assert ticks >= 20  # the loop kept running other tasks throughout


def test_async_cancellation_and_errors(model_and_voice) -> None:
    model, voice = model_and_voice

    async def cancel_after_first_chunk() -> int:
        got = 0

        async def consume() -> None:
            nonlocal got
            async for chunk in model.agenerate_audio_stream(voice, LONG * 4, seed=0):
                got += len(chunk)

        task = asyncio.create_task(consume())
        while got == 0:
            await asyncio.sleep(0.005)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        return got

    assert asyncio.run(cancel_after_first_chunk()) > 0
    assert engine_threads_exit()
    assert model.engine.load().streams == 0

    async def bad() -> None:
        await model.agenerate_audio(voice, None)  # type: ignore[arg-type]

    with pytest.raises(TypeError, match="text must be a str"):
        asyncio.run(bad())
    assert engine_threads_exit()


def test_a_hundred_short_streams_leave_nothing_behind(model_and_voice, monkeypatch) -> None:
    model, voice = model_and_voice
    engine = model.engine
    refs: list[weakref.ref] = []
    real_start = engine.start

    def recording_start(chunk, stop, frames_per_yield=0):
        stream = real_start(chunk, stop, frames_per_yield)
        refs.extend([weakref.ref(stream), weakref.ref(chunk), weakref.ref(chunk.flow.own_kv)])
        return stream

    monkeypatch.setattr(engine, "start", recording_start)
    old = model.eos_threshold
    model.eos_threshold = -1e9  # EOS at frame 6: short streams
    try:
        calls = [
            (lambda i=i: model.generate_audio(voice if i % 2 else None, "Hi.", seed=i))
            for i in range(100)
        ]

        # Ten threads, ten calls each, with one in five cancelled after its first chunk.
        def ten(k: int) -> np.ndarray:
            for i in range(10 * k, 10 * k + 10):
                if i % 5 == 0:
                    gen = model.generate_audio_stream(None, LONG, seed=i)
                    next(gen)
                    gen.close()
                else:
                    calls[i]()
            return np.zeros(1)

        _run_concurrently([(lambda k=k: ten(k)) for k in range(10)], stagger=0.005)
    finally:
        model.eos_threshold = old
    assert len(refs) == 300
    assert engine_threads_exit()
    assert engine._streams == [] and engine.load().active == 0
    gc.collect()
    assert all(r() is None for r in refs)  # every stream's state is freed


def _until(cond, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached")
        time.sleep(0.005)


@pytest.mark.skipif(
    _native.isa() != "avx512",
    reason="needs an AVX-512 CPU (the AVX2 kernels are tested on every x86-64 run)",
)
@pytest.mark.parametrize("dtype", ["float32", "float16", "int8"])
def test_avx512_and_avx2_kernels_give_the_same_audio(random_checkpoint, dtype: str) -> None:
    """Whole streams, alone and batched (the flow-LM steps in the GEMV order over several
    rows, the Mimi decoder's multi-row products), are bit-identical on the AVX-512 and AVX2
    kernels."""
    yaml_path, _ = random_checkpoint("english_2m_2026-10")
    model = TTSModel.load_model(config=str(yaml_path), eos_threshold=1e9, seed=0, dtype=dtype)
    voice = model.get_state_for_audio_prompt(str(REF_WAV))
    texts = ["Hello there, how are you?", LONG, "Numbers: one, two, three."]
    audio = {}
    for level in ("avx2", "avx512"):
        _native.cap_isa(level)
        try:
            alone = [model.generate_audio(voice, t, seed=i) for i, t in enumerate(texts)]
            calls = [
                (lambda i=i: model.generate_audio(voice, texts[i], seed=i))
                for i in range(len(texts))
            ]
            batched = _run_concurrently(calls, stagger=0.003)
            audio[level] = [a.tobytes() for a in alone] + [batched[i].tobytes() for i in range(3)]
        finally:
            _native.cap_isa("avx512")
    assert audio["avx2"] == audio["avx512"]
