"""Write the seed corpora of the fuzz targets (small valid inputs) to tools/fuzz/corpus/.

python tools/fuzz/make_corpus.py
"""

from __future__ import annotations

import io
import shutil
from pathlib import Path

import numpy as np
import soundfile

from pocket_tts.checkpoint.safetensors import RawTensor, write_safetensors
from pocket_tts.config import CONFIGS_DIR

HERE = Path(__file__).resolve().parent / "corpus"


def _safetensors(folder: Path) -> None:
    rng = np.random.default_rng(0)
    write_safetensors(
        folder / "mixed.safetensors",
        {
            "a": rng.standard_normal((3, 4)).astype(np.float32),
            "b": rng.standard_normal(5).astype(np.float16),
            "c": np.arange(6, dtype=np.int64),
            "d": RawTensor("BF16", rng.integers(0, 2**16, 4, dtype=np.uint16)),
            "e": rng.integers(-128, 128, (2, 2), dtype=np.int8),
        },
        metadata={"format": "pt"},
    )
    kv = rng.standard_normal((2, 1, 3, 2, 4)).astype(np.float32)
    voice = {}
    for i in range(2):
        voice[f"transformer.layers.{i}.self_attn/cache"] = kv
        voice[f"transformer.layers.{i}.self_attn/offset"] = np.array([3], np.int64)
        voice[f"transformer.layers.{i}.self_attn/pad"] = np.array([0], np.int64)
    write_safetensors(folder / "voice.safetensors", voice)
    write_safetensors(folder / "empty_tensor.safetensors", {"z": np.zeros((0, 3), np.float32)})


def _configs(folder: Path) -> None:
    for name in ("english_2026-10", "english_2m_2026-10"):
        shutil.copy(CONFIGS_DIR / f"{name}.yaml", folder / f"{name}.yaml")


def _audio(folder: Path) -> None:
    t = np.arange(2400) / 24000
    tone = (0.3 * np.sin(2 * np.pi * 220 * t)).astype(np.float32)
    stereo = np.stack([tone, tone[::-1]], axis=1)
    cases = {
        "pcm16.wav": (0, "WAV", "PCM_16", tone, 24000),
        "float.wav": (0, "WAV", "FLOAT", stereo, 16000),
        "pcm16.flac": (1, "FLAC", "PCM_16", tone[:800], 8000),
        "vorbis.ogg": (2, "OGG", "VORBIS", tone, 44100),
    }
    for name, (first, fmt, subtype, data, rate) in cases.items():
        buf = io.BytesIO()
        soundfile.write(buf, data, rate, format=fmt, subtype=subtype)
        # The target picks the reader's suffix from the first byte (see fuzz_audio.py).
        (folder / name).write_bytes(bytes([first]) + buf.getvalue())


def _text(folder: Path) -> None:
    texts = {
        "prose": "Hello world. This is a test, with commas; and: colons! Is it fine? Yes...",
        "numbers": "Pi is 3.14, e is 2.718. Call 555-1234 at 10:30.",
        "cjk": "日本語のテキストです。元気ですか？すごい！",
        "mixed": "मैं ठीक हूँ। هل أنت بخير؟ «Bonjour», dit-il.",
        "run": "a" * 300,
        "url": "https://example.com/path?q=1&r=2#frag " * 3,
    }
    for name, text in texts.items():
        (folder / f"{name}.txt").write_bytes(bytes([50]) + text.encode("utf-8"))


def main() -> None:
    """(Re)write every corpus."""
    for name, make in (
        ("safetensors", _safetensors),
        ("config", _configs),
        ("audio", _audio),
        ("text", _text),
    ):
        folder = HERE / name
        folder.mkdir(parents=True, exist_ok=True)
        make(folder)
        print(f"{folder}: {len(list(folder.iterdir()))} seeds")


if __name__ == "__main__":
    main()
