"""Load on ``pocket-tts serve``: this server against the reference's, same load, one run.

    python benchmarks/serve_load.py [--config english_2026-10] [--dtype float16]
                                    [--k 1 4 8 16] [--requests 2] [--text "..."]
                                    [--json artifacts/serve_load.json]

Writes a seeded random checkpoint in the official layout (EOS disabled, so every answer has
the same fixed length), starts each server on loopback (ours from this package; the
reference's ``pocket-tts serve`` from ``.venv-ref``), and for each K runs K concurrent
clients, each sending ``--requests`` POSTs to the reference's ``/tts`` route (both servers
have it) one after another. Per K: time to first byte p50 / p95, the aggregate real-time
factor (seconds of audio received per wall second, over K), the slowest client's real-time
factor (its wall time / its audio), and errors. Every loop is bounded: a request taking over
``--timeout`` seconds counts as an error.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "benchmarks"))
from compare import REF_PYTHON, shared_data  # noqa: E402


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(cmd: list[str], port: int, log: Path) -> subprocess.Popen:
    proc = subprocess.Popen(
        cmd,
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
        cwd="/",
        env={**os.environ, "PYTHONPATH": ""},
    )
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{cmd[0]} exited: {log.read_text()[-2000:]}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                return proc
        except httpx.HTTPError:
            time.sleep(0.3)
    proc.kill()
    raise RuntimeError("server did not start")


def one_request(url: str, text: str, timeout: float) -> tuple[float, float, float]:
    """(time to first byte, total time, seconds of audio)."""
    start = time.perf_counter()
    first = None
    size = 0
    with httpx.stream("POST", f"{url}/tts", data={"text": text}, timeout=timeout) as r:
        r.raise_for_status()
        for piece in r.iter_bytes():
            if first is None and piece:
                first = time.perf_counter() - start
            size += len(piece)
    total = time.perf_counter() - start
    audio_s = max(size - 44, 0) / 2 / 24000 - 0.2  # both append 0.2 s of silence
    return first or total, total, audio_s


def load(url: str, k: int, requests: int, text: str, timeout: float) -> dict:
    ttfb: list[float] = []
    audio = [0.0] * k
    walls = [0.0] * k
    errors = [0]
    lock = threading.Lock()

    def client(i: int) -> None:
        t0 = time.perf_counter()
        for _ in range(requests):
            try:
                first, _, seconds = one_request(url, text, timeout)
            except Exception:  # noqa: BLE001 - counted
                with lock:
                    errors[0] += 1
                continue
            with lock:
                ttfb.append(first)
                audio[i] += seconds
        walls[i] = time.perf_counter() - t0

    start = time.perf_counter()
    threads = [threading.Thread(target=client, args=(i,)) for i in range(k)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - start
    slowest = (
        max(w / a for w, a in zip(walls, audio, strict=True) if a > 0)
        if any(audio)
        else float("nan")
    )
    return {
        "k": k,
        "ttfb_p50_ms": float(np.percentile(ttfb, 50) * 1000) if ttfb else None,
        "ttfb_p95_ms": float(np.percentile(ttfb, 95) * 1000) if ttfb else None,
        "audio_s_per_wall_s": sum(audio) / wall,
        "slowest_rtf": slowest,
        "errors": errors[0],
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", default="english_2026-10")
    ap.add_argument("--dtype", default="float16")
    ap.add_argument("--k", type=int, nargs="+", default=[1, 4, 8, 16])
    ap.add_argument("--requests", type=int, default=2)
    ap.add_argument("--text", default="The quick brown fox jumps over the lazy dog, twice.")
    ap.add_argument("--timeout", type=float, default=600)
    ap.add_argument("--skip-reference", action="store_true")
    ap.add_argument("--json")
    args = ap.parse_args()

    from pocket_tts.testing import make_random_checkpoint

    tmp = Path(tempfile.mkdtemp(prefix="serve-load-"))
    yaml_path, _ = make_random_checkpoint(
        args.config, 0, tmp / "ckpt", tokenizer=shared_data() / "tokenizer.model"
    )
    # EOS off (a top-level key both servers read): every answer lasts the text's maximum
    # generation length, so both servers make the same audio seconds.
    text = yaml_path.read_text()
    if "default_eos_threshold:" in text:
        text = text.replace("default_eos_threshold:", "default_eos_threshold: 1.0e+9 #")
    else:
        text += "\ndefault_eos_threshold: 1.0e+9\n"
    yaml_path.write_text(text)
    voice = str(shared_data() / "ref.wav")
    ours_port, ref_port = _free_port(), _free_port()
    servers = {
        "ours": (
            [
                sys.executable,
                "-m",
                "pocket_tts",
                "serve",
                "--config",
                str(yaml_path),
                "--dtype",
                args.dtype,
                "--host",
                "127.0.0.1",
                "--port",
                str(ours_port),
                "--default-voice",
                voice,
                "--max-streams",
                "16",
                "--log-level",
                "warning",
            ],
            ours_port,
        ),
    }
    if not args.skip_reference:
        ref_cli = str(Path(REF_PYTHON).parent / "pocket-tts")
        servers["reference"] = (
            [
                ref_cli,
                "serve",
                "--config",
                str(yaml_path),
                "--host",
                "127.0.0.1",
                "--port",
                str(ref_port),
                "--default-voice",
                voice,
            ],
            ref_port,
        )
    results: dict[str, list[dict]] = {}
    for name, (cmd, port) in servers.items():
        proc = start(cmd, port, tmp / f"{name}.log")
        try:
            url = f"http://127.0.0.1:{port}"
            one_request(url, args.text, args.timeout)  # warm-up
            results[name] = [load(url, k, args.requests, args.text, args.timeout) for k in args.k]
        finally:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(60)
            except subprocess.TimeoutExpired:
                proc.kill()
    print(f"# {args.config}, ours {args.dtype}; K clients x {args.requests} requests to /tts")
    print("| K | server | TTFB p50 ms | TTFB p95 ms | audio s / wall s | slowest RTF | errors |")
    print("|---|---|---|---|---|---|---|")
    for i, k in enumerate(args.k):
        for name in results:
            r = results[name][i]
            print(
                f"| {k} | {name} | {r['ttfb_p50_ms']:.0f} | {r['ttfb_p95_ms']:.0f} | "
                f"{r['audio_s_per_wall_s']:.2f} | {r['slowest_rtf']:.2f} | {r['errors']} |"
            )
    if "reference" in results:
        print()
        print("| K | audio s / wall s, ours / reference | TTFB p95, reference / ours |")
        print("|---|---|---|")
        for i, k in enumerate(args.k):
            o, r = results["ours"][i], results["reference"][i]
            ttfb = (
                f"{r['ttfb_p95_ms'] / o['ttfb_p95_ms']:.1f}x"
                if o["ttfb_p95_ms"] and r["ttfb_p95_ms"]
                else "-"
            )
            print(f"| {k} | {o['audio_s_per_wall_s'] / r['audio_s_per_wall_s']:.1f}x | {ttfb} |")
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
