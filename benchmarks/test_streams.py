"""pytest-benchmark suite of concurrent streams on one model (the multi-stream engine).
Run: ``pytest benchmarks/test_streams.py --benchmark-json=artifacts/streams-bench.json``.
The full sweep over N and dtypes, side by side with the reference: ``compare_streams.py``."""

from __future__ import annotations

from streams import concurrent_streams, throughput

STREAMS = 4
FRAMES = 12  # ~1 s of audio per stream: long enough to overlap, short enough for a suite


def test_concurrent_streams(benchmark, loaded) -> None:
    name, model, voice = loaded
    try:
        timings = benchmark.pedantic(
            lambda: concurrent_streams(model, voice, STREAMS, FRAMES), rounds=3, warmup_rounds=1
        )
    finally:
        del model._estimate_max_gen_len
    assert len(timings) == STREAMS
    assert [t.samples for t in timings] == [FRAMES * 1920] * STREAMS
    benchmark.extra_info.update(streams=STREAMS, frames=FRAMES, **throughput(model, timings))
