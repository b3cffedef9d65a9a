"""Fuzz the audio prompt reader and resampler: WAV / FLAC / Ogg bytes, then the prompt's
preparation (mono, resampling to 24 kHz, the end-on-pause cut)."""

from __future__ import annotations

import sys

from common import main, scratch_file

try:
    import atheris

    with atheris.instrument_imports():
        from pocket_tts.audio.prompt import load_prompt_audio
except ImportError:
    from pocket_tts.audio.prompt import load_prompt_audio

#: The container is chosen by the first byte, so one corpus covers every reader.
SUFFIXES = (".wav", ".flac", ".ogg")


def one_input(data: bytes) -> None:
    if not data:
        return
    path = scratch_file(data[1:], SUFFIXES[data[0] % len(SUFFIXES)])
    wav = load_prompt_audio(str(path), truncate=True)
    assert wav.ndim == 1 and wav.dtype.name == "float32"


if __name__ == "__main__":
    main(one_input)
    sys.exit(0)
