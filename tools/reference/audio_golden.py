"""Dump the reference's audio handling (read, resample, end_on_pause, prompt prep, WAV writing).

Runs ONLY under the reference venv (``.venv-ref``, torch + pocket-tts 4.0.1), from cwd ``/`` so
that the checkout's own ``pocket_tts`` is not importable. Used by ``tests/test_audio.py`` through
``tests/conftest.py: run_reference``.

Usage::

    audio_golden.py SPEC_JSON OUT_NPZ [--soundfile-shim DIR]

``SPEC_JSON`` holds ``{"items": [{"id": ..., "op": ..., ...}, ...]}``. Ops (arrays are ``.npy``
paths; results go to ``OUT_NPZ`` under the item's id, metadata to stdout as JSON):

* ``read`` ``{"path"}``: ``data.audio.audio_read`` -> ``[T]`` float32 and ``sample_rate``.
* ``read_soundfile`` ``{"path"}``: ``data.audio._audio_read_with_soundfile``.
* ``convert`` ``{"npy", "from", "to"}``: ``convert_audio(x[None], from, to, 1)[0]``.
* ``end_on_pause`` ``{"npy", "sr"}``: ``end_on_pause(x, sr)`` (x of any shape).
* ``prompt`` ``{"path"}`` or ``{"npy"}``, ``"truncate"``: runs the real
  ``TTSModel.get_state_for_audio_prompt`` on a stand-in model whose ``_encode_audio`` captures
  its input (the audio that would be encoded, ``[1, C, T]``).
* ``pcm`` ``{"npy"}``: ``(x.clamp(-1, 1) * 32767).short()``.
* ``writer`` ``{"npz", "sr", "seekable"}``: bytes produced by ``StreamingWAVWriter`` for the
  chunks ``chunk0, chunk1, ...`` of ``npz`` written to a BytesIO (seekable or not).
* ``linspace`` ``{"steps"}``: ``torch.linspace(1, 0, steps)``.

Exceptions are recorded as ``{"error": [type name, message]}``.

The reference reads non-16-bit-WAV files with ``soundfile``, an optional extra that the side
venv may lack; ``--soundfile-shim DIR`` prepends a folder exposing the test runner's soundfile
(only ``soundfile``, ``_soundfile``, ``_soundfile_data`` and ``_cffi_backend``) when the venv
has none of its own.
"""

from __future__ import annotations

import argparse
import io
import json
import sys
import types

import numpy as np


def _load_soundfile(shim: str | None) -> str:
    try:
        import soundfile  # noqa: F401
    except ImportError:
        if shim is None:
            return "missing"
        sys.path.insert(0, shim)
        import soundfile  # noqa: F401

        return "shim"
    return "venv"


class _Captured(Exception):
    def __init__(self, audio):
        super().__init__("captured")
        self.audio = audio


class _Unseekable(io.RawIOBase):
    def __init__(self):
        self.buf = bytearray()

    def writable(self):
        return True

    def seekable(self):
        return False

    def write(self, b):
        self.buf += bytes(b)
        return len(b)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("spec")
    parser.add_argument("out")
    parser.add_argument("--soundfile-shim", default=None)
    args = parser.parse_args()
    soundfile_source = _load_soundfile(args.soundfile_shim)

    import torch

    from pocket_tts.data import audio as ref_audio
    from pocket_tts.data.audio_utils import convert_audio, end_on_pause
    from pocket_tts.models.tts_model import TTSModel

    with open(args.spec) as f:
        spec = json.load(f)

    arrays: dict[str, np.ndarray] = {}
    meta: dict[str, object] = {"_soundfile": soundfile_source}

    def fake_model():
        def encode(audio):
            raise _Captured(audio)

        return types.SimpleNamespace(
            has_voice_cloning=True,
            has_custom_weights=False,
            origin=None,
            config=types.SimpleNamespace(mimi=types.SimpleNamespace(sample_rate=24000)),
            device=torch.device("cpu"),
            _encode_audio=encode,
        )

    for item in spec["items"]:
        key, op = item["id"], item["op"]
        try:
            if op == "read":
                wav, sr = ref_audio.audio_read(item["path"])
                arrays[key] = wav.numpy()[0]
                meta[key] = {"sr": sr, "dtype": str(wav.dtype), "shape": list(wav.shape)}
            elif op == "read_soundfile":
                from pathlib import Path

                wav, sr = ref_audio._audio_read_with_soundfile(Path(item["path"]))
                arrays[key] = wav.numpy()[0]
                meta[key] = {"sr": sr, "dtype": str(wav.dtype), "shape": list(wav.shape)}
            elif op == "convert":
                x = torch.from_numpy(np.load(item["npy"]))[None]
                y = convert_audio(x, item["from"], item["to"], 1)
                arrays[key] = y.numpy()[0]
                meta[key] = {"dtype": str(y.dtype)}
            elif op == "end_on_pause":
                x = torch.from_numpy(np.load(item["npy"]))
                y = end_on_pause(x, item["sr"])
                arrays[key] = y.numpy()
                meta[key] = {"dtype": str(y.dtype), "shape": list(y.shape)}
            elif op == "prompt":
                source = item["path"] if "path" in item else torch.from_numpy(np.load(item["npy"]))
                try:
                    TTSModel.get_state_for_audio_prompt(
                        fake_model(), source, truncate=item.get("truncate", False)
                    )
                    raise RuntimeError("encoder was not reached")
                except _Captured as cap:
                    arrays[key] = cap.audio.numpy()
                    meta[key] = {"dtype": str(cap.audio.dtype), "shape": list(cap.audio.shape)}
            elif op == "pcm":
                x = torch.from_numpy(np.load(item["npy"]))
                arrays[key] = (x.clamp(-1, 1) * 32767).short().numpy()
                meta[key] = {}
            elif op == "writer":
                chunks = np.load(item["npz"])
                n = len(chunks.files)
                if item["seekable"]:
                    stream = io.BytesIO()
                else:
                    stream = _Unseekable()
                writer = ref_audio.StreamingWAVWriter(stream, item["sr"])
                writer.write_header(item["sr"])
                for i in range(n):
                    writer.write_pcm_data(torch.from_numpy(chunks[f"chunk{i}"]))
                writer.finalize()
                data = stream.getvalue() if item["seekable"] else bytes(stream.buf)
                arrays[key] = np.frombuffer(data, dtype=np.uint8)
                meta[key] = {"nbytes": len(data)}
            elif op == "linspace":
                arrays[key] = torch.linspace(1, 0, item["steps"]).numpy()
                meta[key] = {}
            else:
                raise ValueError(f"unknown op {op!r}")
        except Exception as exc:  # noqa: BLE001 - recorded for the test to inspect
            meta[key] = {"error": [type(exc).__name__, str(exc)]}

    np.savez(args.out, **arrays)
    json.dump(meta, sys.stdout)


if __name__ == "__main__":
    main()
