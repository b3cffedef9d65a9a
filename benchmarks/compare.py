"""This engine against the reference, same checkpoint, same machine, same run.

    python benchmarks/compare.py [--configs english_2026-10 english_2m_2026-10]
                                 [--dtypes float32 float16 int8] [--quick]
                                 [--json artifacts/bench.json] [--min-rtf-ratio 1.0]

For each config: writes a seeded random checkpoint in the official layout, runs
``benchmarks/measure.py`` once with the reference's venv and once per dtype with this package
(one process each, one after the other, so peak RSS is per engine), then prints every figure
side by side with the ratio reference / ours (> 1: we are faster or smaller). Also reports the
machine's single-thread read bandwidth, the LM step's distance from its floor
(weight bytes / bandwidth), and the quality of compact weights: teacher-forced per-frame latent
and audio SNR against float32.

``--min-rtf-ratio R`` exits 1 when any dtype's real-time-factor ratio is below R: the CI gate
against gross regressions (a ratio within one run, never an absolute time).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
REF_PYTHON = Path(os.environ.get("POCKET_TTS_REF_PYTHON", REPO / ".venv-ref" / "bin" / "python"))
FIGURES = [
    ("first_load_s", "first load incl. import, packs weights (s)", 1.0),
    ("load_s", "model load incl. import (s)", 1.0),
    ("voice_encode_s", "10 s voice prompt -> state (s)", 1.0),
    ("ttfa_ms", "time to first audio (ms)", 1.0),
    ("lm_step_ms", "flow-LM frame incl. head (ms)", 1.0),
    ("mimi_frame_ms", "Mimi decode, one frame (ms)", 1.0),
    ("rtf", "real-time factor, 100 frames", 1.0),
    ("peak_rss_mb", "peak RSS (MB)", 1.0),
]


def shared_data() -> Path:
    for cand in (
        Path(os.environ.get("POCKET_TTS_SHARED_DATA", "")),
        REPO.parent / "shared" / "data",
        Path("/work/shared/data"),
    ):
        if str(cand) and (cand / "ref.wav").exists():
            return cand
    raise SystemExit("shared data folder (ref.wav, tokenizer.model) not found")


_FIRST_LOAD = """import time; t0 = time.perf_counter()
import sys; from pocket_tts import TTSModel
TTSModel.load_model(config=sys.argv[1], dtype=sys.argv[2])
print(time.perf_counter() - t0)"""


def first_load_s(yaml_path: Path, dtype: str, cache: Path) -> float:
    """Load time of a first load (empty packed-weights cache: packs and writes it), which also
    warms the cache that measure.py's ``load_s`` then maps."""
    import shutil

    shutil.rmtree(cache, ignore_errors=True)
    env = dict(os.environ, POCKET_TTS_CACHE_DIR=str(cache))
    proc = subprocess.run(
        [sys.executable, "-c", _FIRST_LOAD, str(yaml_path), dtype],
        capture_output=True,
        text=True,
        env=env,
        cwd="/",
        timeout=600,
        check=True,
    )
    return float(proc.stdout.strip().splitlines()[-1])


def run_measure(
    python: str, yaml_path: Path, voice: Path, dtype: str, quick: bool, cache: Path | None = None
) -> dict:
    cmd = [
        python,
        str(REPO / "benchmarks" / "measure.py"),
        str(yaml_path),
        "--voice",
        str(voice),
        "--dtype",
        dtype,
    ]
    if quick:
        cmd.append("--quick")
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    env.pop("PYTHONPATH", None) if python == str(REF_PYTHON) else None
    if cache is not None:
        env["POCKET_TTS_CACHE_DIR"] = str(cache)
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd="/", timeout=1800)
    if proc.returncode != 0:
        raise RuntimeError(f"measure.py failed ({python}):\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def read_bandwidth_gbs() -> float:
    """Single-thread streaming read bandwidth through our fp32 GEMV kernel on 256 MB."""
    from pocket_tts import _native
    from pocket_tts.checkpoint.loader import pack_panels

    w = pack_panels(np.ones((8192, 8192), np.float32))
    x = np.ones((1, 8192), np.float32)
    _native.gemm(x, w, "float32", 8192)
    best = 0.0
    for _ in range(5):
        t = time.perf_counter()
        _native.gemm(x, w, "float32", 8192)
        best = max(best, w.nbytes / (time.perf_counter() - t) / 1e9)
    del w
    return best


def lm_bytes(yaml_path: Path, weights: Path, dtype: str) -> int:
    """Bytes the LM step streams per frame: transformer and flow-head matrices (in ``dtype``)
    and the head's float32 vectors."""
    from pocket_tts.checkpoint.layout import tensor_table
    from pocket_tts.checkpoint.loader import load_weights
    from pocket_tts.checkpoint.storage import StorageClass
    from pocket_tts.config import load_config

    cfg = load_config(yaml_path)
    w = load_weights(cfg, weights, dtype=dtype)
    per_frame = {
        e.key
        for e in tensor_table(cfg)
        if e.storage is StorageClass.LM_MATRIX
        or (e.consumer.field.startswith("head.") and not e.consumer.field.startswith("head.time"))
    }
    return sum(v.nbytes for k, v in w.items() if k.removesuffix(".scale") in per_frame)


def snr_db(ref: np.ndarray, test: np.ndarray) -> float:
    noise = np.sum((ref.astype(np.float64) - test) ** 2)
    return float(10 * np.log10(np.sum(ref.astype(np.float64) ** 2) / max(noise, 1e-30)))


def quality(yaml_path: Path, weights: Path, dtypes: list[str], frames: int = 40) -> dict:
    """Teacher-forced: every dtype sees the same input latents and noise as float32; per-frame
    latents and the decoded audio are compared to float32's by SNR, and so is the codec alone
    (float32's latents decoded by each dtype's Mimi)."""
    from pocket_tts.checkpoint.loader import load_weights
    from pocket_tts.config import load_config
    from pocket_tts.flow_lm import FlowLM
    from pocket_tts.mimi import Mimi

    cfg = load_config(yaml_path)
    rng = np.random.default_rng(0)
    tokens = rng.integers(0, cfg.flow_lm.lookup_table.n_bins, 16)
    noise = (rng.standard_normal((frames, 32)) * 0.55).astype(np.float32)
    teacher = rng.standard_normal((frames, 32)).astype(np.float32)
    outs = {}
    for dtype in ["float32", *[d for d in dtypes if d != "float32"]]:
        w = load_weights(cfg, weights, dtype=dtype)
        lm, mimi = FlowLM(cfg, w, dtype=dtype), Mimi(cfg, w, dtype)
        st = lm.new_state(16 + frames + 2)
        lm.prefill(st, lm.embed_tokens(st, tokens))
        lat = np.zeros((frames, 32), np.float32)
        cond = np.zeros(lm.cond_dim, np.float32)
        x = np.full(32, np.nan, np.float32)
        for f in range(frames):
            lm.step(st, x, noise[f], lat[f], cond)
            x = teacher[f]
        z = lat * w["flow_lm.emb_std"] + w["flow_lm.emb_mean"]
        if dtype == "float32":
            z_ref = z.astype(np.float32)
        audio = mimi.decode(mimi.new_decoder_state(), z.astype(np.float32))
        codec = mimi.decode(mimi.new_decoder_state(), z_ref)
        outs[dtype] = (lat, audio, codec)
    ref_lat, ref_audio, _ = outs["float32"]
    return {
        d: {
            "latent_snr_db": snr_db(ref_lat, lat),
            "audio_snr_db": snr_db(ref_audio, audio),
            "codec_snr_db": snr_db(ref_audio, codec),
        }
        for d, (lat, audio, codec) in outs.items()
        if d != "float32"
    }


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--configs", nargs="+", default=["english_2026-10", "english_2m_2026-10"])
    p.add_argument("--dtypes", nargs="+", default=["float32", "float16", "int8"])
    p.add_argument("--quick", action="store_true", help="fewer repeats (CI)")
    p.add_argument("--json", default=str(REPO / "artifacts" / "bench.json"))
    p.add_argument("--workdir", default="/tmp/pocket-tts-bench")
    p.add_argument("--min-rtf-ratio", type=float, default=None)
    args = p.parse_args()

    from pocket_tts.testing import make_random_checkpoint

    data = shared_data()
    voice = data / "ref.wav"
    bandwidth = read_bandwidth_gbs()
    report = {
        "machine": {
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
            "read_bandwidth_gbs": bandwidth,
        },
        "configs": {},
    }
    print(f"single-thread read bandwidth: {bandwidth:.1f} GB/s")
    failed = False
    for name in args.configs:
        yaml_path, weights = make_random_checkpoint(
            name, 0, Path(args.workdir) / name, tokenizer=data / "tokenizer.model"
        )
        ref = run_measure(str(REF_PYTHON), yaml_path, voice, "float32", args.quick)
        ref["first_load_s"] = ref["load_s"]  # the reference has no load-time packing
        ours = {}
        cache = Path(args.workdir) / "cache"
        for d in args.dtypes:
            first = first_load_s(yaml_path, d, cache)
            ours[d] = run_measure(sys.executable, yaml_path, voice, d, args.quick, cache)
            ours[d]["first_load_s"] = first
        q = quality(yaml_path, weights, args.dtypes)
        floors = {}
        for d in args.dtypes:
            nbytes = lm_bytes(yaml_path, weights, d)
            floor_ms = nbytes / bandwidth / 1e6
            floors[d] = {
                "lm_bytes": nbytes,
                "lm_floor_ms": floor_ms,
                "lm_step_over_floor": ours[d]["lm_step_ms"] / floor_ms,
            }
        report["configs"][name] = {"reference": ref, "ours": ours, "quality": q, "floor": floors}

        print(f"\n## {name}\n")
        head = "| figure | reference | " + " | ".join(f"ours {d}" for d in args.dtypes) + " |"
        print(head)
        print("|" + "---|" * (2 + len(args.dtypes)))
        for key, label, _ in FIGURES:
            cells = [f"{ref[key]:.3g}"]
            for d in args.dtypes:
                ratio = ref[key] / ours[d][key] if ours[d][key] else float("inf")
                cells.append(f"{ours[d][key]:.3g} ({ratio:.2f}x)")
            print(f"| {label} | " + " | ".join(cells) + " |")
        for d in args.dtypes:
            f = floors[d]
            print(
                f"\nLM step {d}: {ours[d]['lm_step_ms']:.2f} ms, floor {f['lm_floor_ms']:.2f} ms "
                f"({f['lm_bytes'] / 1e6:.0f} MB at {bandwidth:.1f} GB/s): "
                f"{f['lm_step_over_floor']:.2f}x the floor"
            )
        for d, v in q.items():
            print(
                f"quality {d} vs float32 (teacher-forced): latent SNR {v['latent_snr_db']:.1f} dB, "
                f"audio SNR {v['audio_snr_db']:.1f} dB (codec alone {v['codec_snr_db']:.1f} dB)"
            )
        if args.min_rtf_ratio is not None:
            for d in args.dtypes:
                ratio = ref["rtf"] / ours[d]["rtf"]
                if ratio < args.min_rtf_ratio:
                    print(f"REGRESSION: {name} {d} RTF ratio {ratio:.2f} < {args.min_rtf_ratio}")
                    failed = True
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(report, indent=2))
    print(f"\nresults: {args.json}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
