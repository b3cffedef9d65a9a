"""Concurrent streams on one model, this engine against the reference, in one run.

    python benchmarks/compare_streams.py [--config english_2026-10]
                                         [--dtypes float32 float16 int8]
                                         [--n 1 2 4 8 12 16 24] [--frames 250]
                                         [--ref-n 1 2 4 8 12 16 24] [--ref-frames 125]
                                         [--quick] [--json artifacts/streams.json]

Writes a seeded random checkpoint in the official layout, then runs ``benchmarks/streams.py``
in a fresh process for every N: with the reference's venv for each N of ``--ref-n`` (it has
float32 only), and with this package for each dtype (after one load that fills the
packed-weights cache, so no run packs weights or writes the cache while it is timed). Prints
one table per dtype, ours against the reference with ratios (ours / ref for throughput,
ref / ours for times and memory: > 1 means we are better), and the issue's targets with their
verdicts.

The reference makes about 0.7 s of audio per second per stream on one core, so 24 streams of
20 s take it minutes: ``--ref-frames`` makes its streams shorter (125 frames = 10 s by
default). Throughput and real-time factor are per-second figures, so streams of different
lengths compare; time to first audio and the step time do not depend on the length.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from compare import REF_PYTHON, first_load_s, shared_data

REPO = Path(__file__).resolve().parent.parent
FRAME_S = 0.08
#: (key, label, higher is better)
FIGURES = [
    ("audio_s_per_s", "audio s / wall s", True),
    ("slowest_rtf", "slowest RTF", False),
    ("join_ttfa_ms_p50", "join TTFA p50 ms", False),
    ("join_ttfa_ms_p95", "join TTFA p95 ms", False),
    ("lm_step_ms", "LM step ms", False),
    ("peak_rss_mb", "peak RSS MB", False),
]


@dataclass(frozen=True)
class Target:
    """The issue's target: ``figure`` at ``streams`` concurrent streams is at most ``limit``."""

    dtypes: tuple[str, ...] | None  # None: every dtype
    figure: str
    streams: int
    limit: float
    text: str


TARGETS = [
    Target(("float16",), "slowest_rtf", 16, 1.0, "16 streams, each faster than real time"),
    Target(("int8",), "slowest_rtf", 20, 1.0, "20 streams, each faster than real time"),
    Target(("float32",), "slowest_rtf", 12, 1.0, "12 streams, each faster than real time"),
    # A stream joining 8 running streams makes 9: streams.py's joiner joins N - 1.
    Target(None, "join_ttfa_ms_p95", 9, 150.0, "a stream joining 8 running ones: TTFA p95"),
    Target(("float16",), "peak_rss_mb", 16, 640.0, "peak RSS with 16 streams"),
]


def verdict(values: dict[int, float], target: Target) -> str:
    """Whether ``values`` (figure by N) meet ``target``. Where its N was not measured, the
    figure is taken to grow with N: a larger N within the limit meets it, a smaller N over
    the limit misses it, and anything else is undecided."""
    at, limit = target.streams, target.limit
    if at in values:
        ok = values[at] <= limit
        return f"{'met' if ok else 'not met'} ({number(values[at])} at N={at}, limit {limit:g})"
    above = [n for n in values if n > at]
    below = [n for n in values if n < at]
    if above and values[min(above)] <= limit:
        n = min(above)
        return f"met ({number(values[n])} at N={n} > {at}, limit {limit:g})"
    if below and values[max(below)] > limit:
        n = max(below)
        return f"not met ({number(values[n])} already at N={n} < {at}, limit {limit:g})"
    return f"undecided (N={at} not measured: add it to --n)"


def run_streams(
    python: Path | str,
    yaml_path: Path,
    voice: Path,
    dtype: str,
    n: int,
    frames: int,
    quick: bool,
    cache: Path,
) -> dict:
    """streams.py's figures for one engine, dtype and N, in a fresh process."""
    cmd = [str(python), str(REPO / "benchmarks" / "streams.py"), str(yaml_path)]
    cmd += ["--voice", str(voice), "--dtype", dtype, "--n", str(n), "--frames", str(frames)]
    if quick:
        cmd.append("--quick")
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    env["POCKET_TTS_CACHE_DIR"] = str(cache)
    if str(python) == str(REF_PYTHON):
        env.pop("PYTHONPATH", None)
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd="/", timeout=7200)
    if proc.returncode != 0:
        raise RuntimeError(f"streams.py failed ({python}, N={n}):\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def number(value: float) -> str:
    """Three significant digits, without an exponent for values up to 10^6 (MB, ms)."""
    return f"{value:.0f}" if abs(value) >= 100 else f"{value:.3g}"


def cell(ours: dict | None, ref: dict | None, key: str, higher_is_better: bool) -> str:
    """``ours (ref X, ratio)``, the ratio oriented so that > 1 means ours is better."""
    if ours is None:
        return "-"
    text = number(ours[key])
    if ref is None or ref.get(key) is None:
        return text
    mine, theirs = ours[key], ref[key]
    better, worse = (mine, theirs) if higher_is_better else (theirs, mine)
    ratio = better / worse if worse else float("inf")
    return f"{text} (ref {number(theirs)}, {ratio:.2f}x)"


def print_table(dtype: str, ours: dict[int, dict], ref: dict[int, dict], ns: list[int]) -> None:
    """One dtype's figures by N, ours against the reference."""
    print(f"\n## ours {dtype} vs reference float32\n")
    print("| N | " + " | ".join(label for _, label, _ in FIGURES) + " |")
    print("|---|" + "---|" * len(FIGURES))
    for n in ns:
        cells = [cell(ours.get(n), ref.get(n), key, hib) for key, _, hib in FIGURES]
        print(f"| {n} | " + " | ".join(cells) + " |")
    batched = {r.get("lm_step_batched") for r in ours.values()}
    if batched != {True}:
        print("\nours' LM step: a loop of flow_lm.step (no flow_lm.step_batch in this build)")


def main() -> int:
    """Run every configuration, print the tables and verdicts, write the JSON."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--config", default="english_2026-10")
    p.add_argument("--dtypes", nargs="+", default=["float32", "float16", "int8"])
    p.add_argument("--n", nargs="+", type=int, default=[1, 2, 4, 8, 12, 16, 24])
    p.add_argument("--frames", type=int, default=250, help="ours: frames per stream (250 = 20 s)")
    p.add_argument("--ref-n", nargs="*", type=int, default=None, help="default: --n; none: skip")
    p.add_argument("--ref-frames", type=int, default=125, help="the reference's frames per stream")
    p.add_argument("--quick", action="store_true", help="fewer joins and step repeats")
    p.add_argument("--json", default=str(REPO / "artifacts" / "streams.json"))
    p.add_argument("--workdir", default="/tmp/pocket-tts-streams")
    args = p.parse_args()
    ref_ns = args.n if args.ref_n is None else args.ref_n
    for name, values in (("--n", args.n), ("--ref-n", ref_ns)):
        if any(n < 1 for n in values):
            p.error(f"{name} takes stream counts of at least 1, got {values}")
    if args.frames < 1 or args.ref_frames < 1:
        p.error("--frames and --ref-frames must be at least 1")
    if ref_ns and not REF_PYTHON.exists():
        p.error(f"reference Python {REF_PYTHON} not found: set POCKET_TTS_REF_PYTHON or --ref-n")

    from pocket_tts.testing import make_random_checkpoint

    data = shared_data()
    voice = data / "ref.wav"
    work = Path(args.workdir)
    cache = work / "cache"
    yaml_path, _ = make_random_checkpoint(
        args.config, 0, work / args.config, tokenizer=data / "tokenizer.model"
    )
    print(
        f"streams of {args.frames * FRAME_S:g} s (ours) and {args.ref_frames * FRAME_S:g} s "
        "(reference), EOS disabled; throughput and RTF are per-second figures, comparable "
        "across lengths"
    )
    ref: dict[int, dict] = {}
    for n in ref_ns:
        ref[n] = run_streams(
            REF_PYTHON, yaml_path, voice, "float32", n, args.ref_frames, args.quick, cache
        )
        print(f"reference N={n}: {json.dumps(ref[n])}", flush=True)
    ours: dict[str, dict[int, dict]] = {}
    for dtype in args.dtypes:
        first_load_s(yaml_path, dtype, cache)  # fills the packed-weights cache
        ours[dtype] = {}
        for n in args.n:
            ours[dtype][n] = run_streams(
                sys.executable, yaml_path, voice, dtype, n, args.frames, args.quick, cache
            )
            print(f"ours {dtype} N={n}: {json.dumps(ours[dtype][n])}", flush=True)

    ns = sorted(set(args.n) | set(ref_ns))
    verdicts: list[dict] = []
    for dtype in args.dtypes:
        print_table(dtype, ours[dtype], ref, ns)
        print()
        for target in TARGETS:
            if target.dtypes is not None and dtype not in target.dtypes:
                continue
            values = {n: r[target.figure] for n, r in ours[dtype].items()}
            result = verdict(values, target)
            verdicts.append({"dtype": dtype, "target": target.text, "verdict": result})
            print(f"target, {dtype}, {target.text}: {result}")

    report = {
        "machine": {"platform": platform.platform(), "cpus": os.cpu_count()},
        "config": args.config,
        "frames": args.frames,
        "ref_frames": args.ref_frames,
        "reference": ref,
        "ours": ours,
        "targets": verdicts,
    }
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(report, indent=2))
    print(f"\nresults: {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
