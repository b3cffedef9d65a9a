"""pytest-benchmark suites of this engine (english_2026-10 and english_2m_2026-10, random
checkpoints). Run: ``pytest benchmarks/ --benchmark-json=artifacts/engine.json``.
Side-by-side with the reference: ``python benchmarks/compare.py``."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
from conftest import SHARED

SENTENCE = "Hello world, this is a short test of speech."  # 12 tokens


def test_time_to_first_audio(benchmark, loaded) -> None:
    name, model, voice = loaded
    model._estimate_max_gen_len = lambda n: 4

    def first():
        gen = model.generate_audio_stream(voice, SENTENCE)
        chunk = next(gen)
        gen.close()
        return chunk

    chunk = benchmark.pedantic(first, rounds=10, warmup_rounds=2)
    assert len(chunk) % 1920 == 0
    del model._estimate_max_gen_len


def test_lm_step(benchmark, loaded) -> None:
    name, model, voice = loaded
    lm = model.flow_lm
    state = voice.to_flow_state(lm, voice.offset + 2000)
    x = np.full(lm.ldim, np.nan, np.float32)
    noise, lat = np.zeros(lm.ldim, np.float32), np.zeros(lm.ldim, np.float32)
    cond = np.zeros(lm.cond_dim, np.float32)
    benchmark.pedantic(lambda: lm.step(state, x, noise, lat, cond), rounds=100, warmup_rounds=3)
    benchmark.extra_info["weight_mb"] = lm.step_bytes / 1e6
    benchmark.extra_info["gb_per_s"] = lm.step_bytes / benchmark.stats.stats.median / 1e9


def test_flow_head(benchmark, loaded) -> None:
    name, model, voice = loaded
    lm = model.flow_lm
    state = lm.new_state(4)
    cond = np.random.default_rng(0).standard_normal(lm.cond_dim).astype(np.float32)
    noise, lat = np.zeros(lm.ldim, np.float32), np.zeros(lm.ldim, np.float32)
    benchmark.pedantic(lambda: lm.kernel.sample_head(state, cond, noise, 1, lat), rounds=200)


def test_mimi_decode_frame(benchmark, loaded) -> None:
    name, model, voice = loaded
    dec = model.mimi.new_decoder_state()
    z = np.random.default_rng(0).standard_normal((1, 32)).astype(np.float32) * 0.5
    out = np.empty(1920, np.float32)
    benchmark.pedantic(lambda: model.mimi.decode(dec, z, out), rounds=100, warmup_rounds=3)


def test_real_time_factor_100_frames(benchmark, loaded) -> None:
    name, model, voice = loaded
    model._estimate_max_gen_len = lambda n: 100
    audio = benchmark.pedantic(lambda: model.generate_audio(voice, SENTENCE), rounds=3)
    del model._estimate_max_gen_len
    assert len(audio) == 100 * 1920
    benchmark.extra_info["rtf"] = benchmark.stats.stats.median / 8.0


def test_voice_prompt_encoding(benchmark, loaded) -> None:
    name, model, voice = loaded
    state = benchmark.pedantic(
        lambda: model.get_state_for_audio_prompt(str(SHARED / "ref.wav")), rounds=3
    )
    assert state.offset == voice.offset


def test_model_load_and_peak_rss(benchmark, checkpoint) -> None:
    """Load in a fresh process (import included); peak RSS after load + voice + 100 frames."""
    name, yaml_path, _ = checkpoint
    code = (
        "import time; t=time.perf_counter(); from pocket_tts import TTSModel;"
        f"m=TTSModel.load_model(config={str(yaml_path)!r}, eos_threshold=1e9);"
        "load=time.perf_counter()-t;"
        f"v=m.get_state_for_audio_prompt({str(SHARED / 'ref.wav')!r});"
        "m._estimate_max_gen_len=lambda n: 100; m.generate_audio(v, 'Hello there.');"
        "import json; hwm=[l for l in open('/proc/self/status') if l.startswith('VmHWM')];"
        "print(json.dumps([load, int(hwm[0].split()[1])/1024]))"
    )

    def run():
        out = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd="/"
        )
        return json.loads(out.stdout.strip().splitlines()[-1])

    load_s, rss_mb = benchmark.pedantic(run, rounds=1)
    benchmark.extra_info.update(load_s=load_s, peak_rss_mb=rss_mb)
