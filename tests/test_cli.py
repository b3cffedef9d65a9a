"""End-to-end command line: WAV file, WAV streamed to stdout, text sources, export-voice,
and clear errors for bad arguments."""

from __future__ import annotations

import io
import subprocess
import sys
import wave

import numpy as np
import pytest
from conftest import REF_WAV

from pocket_tts.cli import main


def run_cli(*args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess:
    # cwd=/ keeps a source checkout's uncompiled pocket_tts/ off the child's sys.path.
    return subprocess.run(
        [sys.executable, "-m", "pocket_tts", *args],
        input=stdin,
        capture_output=True,
        timeout=300,
        cwd="/",
    )


def read_wav(data: bytes) -> tuple[np.ndarray, int]:
    with wave.open(io.BytesIO(data)) as w:
        assert w.getnchannels() == 1 and w.getsampwidth() == 2
        frames = w.readframes(w.getnframes() if w.getnframes() < 10**8 else 10**8)
        return np.frombuffer(frames, np.int16), w.getframerate()


def test_generate_to_wav_file(small, tmp_path) -> None:
    out = tmp_path / "out.wav"
    proc = run_cli(
        "generate",
        "Hello there.",
        "--config",
        small,
        "--voice",
        str(REF_WAV),
        "--seed",
        "3",
        "--eos-threshold",
        "-100",
        "--frames-after-eos",
        "2",
        "-o",
        str(out),
    )
    assert proc.returncode == 0, proc.stderr.decode()
    samples, rate = read_wav(out.read_bytes())
    assert rate == 24000
    # EOS at frame 6 + 2 frames after it, plus the 0.2 s of silence the reference appends.
    assert len(samples) == 8 * 1920 + 4800
    assert np.abs(samples[: 8 * 1920]).max() > 0 and not samples[8 * 1920 :].any()
    err = proc.stderr.decode()
    assert "time to first audio" in err and "real-time factor" in err


def test_generate_streams_to_stdout_and_matches_the_file(small, tmp_path) -> None:
    common = ["--config", small, "--voice", "none", "--seed", "5", "--eos-threshold", "-100"]
    proc = run_cli("generate", "--text", "-", *common, "-o", "-", stdin=b"Streaming test.")
    assert proc.returncode == 0, proc.stderr.decode()
    assert proc.stdout[:4] == b"RIFF" and proc.stdout[8:12] == b"WAVE"
    assert proc.stdout[4:8] == b"\xff\xff\xff\xff"  # unknown length: streamed
    streamed = np.frombuffer(proc.stdout[44:], np.int16)
    text_file = tmp_path / "t.txt"
    text_file.write_text("Streaming test.")
    out = tmp_path / "o.wav"
    proc = run_cli("generate", "--text-file", str(text_file), *common, "-o", str(out), "-q")
    assert proc.returncode == 0 and proc.stderr == b""
    samples, _ = read_wav(out.read_bytes())
    assert np.array_equal(samples, streamed)


def test_export_voice_then_generate_with_it(small, tmp_path) -> None:
    voice_file = tmp_path / "voice.safetensors"
    assert main(["export-voice", str(REF_WAV), str(voice_file), "--config", small, "-q"]) == 0
    assert voice_file.stat().st_size > 0
    out_a, out_b = tmp_path / "a.wav", tmp_path / "b.wav"
    args = [
        "generate",
        "Same voice.",
        "--config",
        small,
        "--seed",
        "1",
        "-q",
        "--eos-threshold",
        "-100",
    ]
    assert main([*args, "--voice", str(voice_file), "-o", str(out_a)]) == 0
    assert main([*args, "--voice", str(REF_WAV), "--truncate", "-o", str(out_b)]) == 0
    # The exported state skips the clone's noise draw, so compare lengths, not samples.
    assert len(read_wav(out_a.read_bytes())[0]) == len(read_wav(out_b.read_bytes())[0])


def test_bad_arguments_are_clear_errors(small, tmp_path, capsys) -> None:
    assert main(["generate", "x", "--config", "/nope/missing.yaml", "--voice", "none"]) == 1
    assert "not found" in capsys.readouterr().err
    assert main(["generate", "a", "--text", "b", "--config", small]) == 2
    assert "once" in capsys.readouterr().err
    assert main(["generate", "   ", "--config", small, "--voice", "none"]) == 2
    assert main(["generate", "x", "--language", "english", "--config", small]) == 2
    assert (
        main(
            [
                "generate",
                "x",
                "--config",
                small,
                "--voice",
                "none",
                "-o",
                str(tmp_path / "no" / "dir" / "o.wav"),
            ]
        )
        == 2
    )
    assert main(["generate", "x", "--config", small, "--voice", str(tmp_path / "none.wav")]) == 1
    assert main(["generate", "x", "--config", small, "--text-file", str(tmp_path / "t")]) == 2
    capsys.readouterr()
    for bad, says in (
        (["--max-tokens", "0"], "must be >= 1, got 0"),
        (["--max-tokens", "many"], "expected an integer >= 1, got 'many'"),
        (["--seed", "1.5"], "expected an integer, got '1.5'"),
        (["--seed", str(2**70)], "the range torch.manual_seed accepts"),
        (["--temperature", "-1"], "must be a finite number >= 0"),
        (["--temperature", "abc"], "expected a number >= 0, got 'abc'"),
        (["--eos-threshold", "nan"], "must be a number, got nan"),
        (["--dtype", "float64"], "invalid choice"),
    ):
        with pytest.raises(SystemExit) as exc:
            main(["generate", "x", "--config", small, *bad])
        assert exc.value.code == 2
        err = capsys.readouterr().err
        assert says in err and "_non_negative" not in err and "_positive" not in err, err


def test_clear_cache_command(tmp_path, monkeypatch, capsys) -> None:
    monkeypatch.setenv("POCKET_TTS_CACHE_DIR", str(tmp_path))
    packed = tmp_path / "packed"
    packed.mkdir()
    (packed / "a.safetensors").write_bytes(b"x" * 2048)
    (packed / ".b.safetensors.123.tmp").write_bytes(b"y" * 10)
    (packed / "keep.txt").write_text("not ours")
    assert main(["clear-cache"]) == 0
    out = capsys.readouterr().out
    assert "removed 2 files" in out and str(packed) in out
    assert [p.name for p in packed.iterdir()] == ["keep.txt"]
    assert main(["clear-cache", "-q"]) == 0 and capsys.readouterr().out == ""


def test_reference_flags_version_and_help(small, capsys) -> None:
    """The reference's flags: --device cpu and --no-quantize are accepted, --device cuda and
    --checkpoint get one clear line; --version; every option's help shows its default."""
    with pytest.raises(SystemExit) as exc:
        main(["--version"])
    assert exc.value.code == 0 and capsys.readouterr().out.startswith("pocket-tts ")
    args = ["generate", "x", "--config", small, "--voice", "none", "-q"]
    assert main([*args, "--device", "cuda"]) == 2
    assert "runs on the CPU only" in capsys.readouterr().err
    assert main([*args, "--checkpoint", "model.pt"]) == 2
    assert "need torch" in capsys.readouterr().err
    assert main([*args, "--quantize", "--no-quantize"]) == 2
    assert "contradict" in capsys.readouterr().err
    for cmd in ("generate", "export-voice"):
        with pytest.raises(SystemExit):
            main([cmd, "--help"])
        text = capsys.readouterr().out
        assert "(default: float32)" in text and "--device" in text
        assert "(default: 50)" in text or cmd == "export-voice"


@pytest.mark.parametrize("route", ["offline", "unreachable"])
def test_first_run_without_the_hub_fails_fast_naming_the_fixes(tmp_path, route) -> None:
    """Issue 14.5: a first run with no hub access (empty cache) ends in a short error that
    names the fixes, each line printed once."""
    import os
    import socket
    import time

    env = {k: v for k, v in os.environ.items() if not k.startswith("HF_")}
    env.update(HOME=str(tmp_path), HF_HOME=str(tmp_path / "hf"), XDG_CACHE_HOME=str(tmp_path))
    if route == "offline":
        env["HF_HUB_OFFLINE"] = "1"
    else:
        with socket.socket() as s:  # a port nobody listens on: connection refused
            s.bind(("127.0.0.1", 0))
            env["HF_ENDPOINT"] = f"http://127.0.0.1:{s.getsockname()[1]}"
    start = time.monotonic()
    proc = subprocess.run(
        [sys.executable, "-m", "pocket_tts", "generate", "--voice", "alba", "--text", "Hi."],
        capture_output=True,
        timeout=120,
        cwd="/",
        env=env,
    )
    assert time.monotonic() - start < 60  # generous: the point is no minutes of retries
    err = proc.stderr.decode()
    lines = [line for line in err.splitlines() if line.strip()]
    assert proc.returncode == 1, err
    assert len(lines) == 1 and len(err) < 700, err
    for fix in ("--config", "HF_HUB_OFFLINE", "network"):
        assert fix in err, err


def test_custom_config_without_voice_offline_says_to_pass_voice(small, tmp_path) -> None:
    """Issue 14.5: --config without --voice needs the hf:// default voice; with no hub the
    error says so at once and names --voice."""
    import os
    import socket

    env = {k: v for k, v in os.environ.items() if not k.startswith("HF_")}
    env.update(HF_HOME=str(tmp_path / "hf"), XDG_CACHE_HOME=str(tmp_path))
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        env["HF_ENDPOINT"] = f"http://127.0.0.1:{s.getsockname()[1]}"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "pocket_tts",
            "generate",
            "--config",
            small,
            "--text",
            "Hi.",
            "--output-path",
            str(tmp_path / "o.wav"),
        ],
        capture_output=True,
        timeout=120,
        cwd="/",
        env=env,
    )
    err = proc.stderr.decode()
    assert proc.returncode == 2, err
    assert "--voice" in err and "default voice" in err and "alba-mackenna" in err, err
    assert not (tmp_path / "o.wav").exists()
