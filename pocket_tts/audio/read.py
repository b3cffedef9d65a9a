"""Reading audio files, and the checks every audio input goes through.

Numerical behaviour mirrors the reference's ``audio_read`` (``pocket_tts/data/audio.py`` in
``pocket-tts`` 4.0.1) without torch: a ``.wav`` file with 16-bit samples goes through the stdlib
:mod:`wave` module (``int16 / 32768``, channels averaged in float32); anything else through
:mod:`soundfile` as float32, channels averaged. Unlike the reference, a ``.wav`` file that
:mod:`wave` cannot parse at all (IEEE-float or ``WAVE_FORMAT_EXTENSIBLE`` WAVs, which raise
``wave.Error: unknown format`` in the reference) is handed to soundfile too.

This is the bottom of :mod:`pocket_tts.audio`: the codec's :data:`SAMPLE_RATE`, the sample-rate
and sample checks, and the errors. Every problem with the input is an :class:`AudioError` (a
``ValueError``); a missing file is an :class:`AudioFileNotFoundError`, which is also a
``FileNotFoundError``.
"""

from __future__ import annotations

import math
import os
import struct
import wave
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "MAX_SAMPLE_RATE",
    "SAMPLE_RATE",
    "AudioError",
    "AudioFileNotFoundError",
    "read_audio",
    "validate_audio",
    "validate_sample_rate",
]

SAMPLE_RATE = 24_000
"""Sample rate of the Mimi codec: prompts are resampled to it and generated audio uses it."""

MAX_SAMPLE_RATE = 768_000
"""Highest sample rate accepted (the highest rate common audio hardware/formats use)."""


class AudioError(ValueError):
    """Audio that cannot be used: unreadable, empty, silent, non-finite, bad rate or shape."""


class AudioFileNotFoundError(AudioError, FileNotFoundError):
    """An audio file that does not exist (both an :class:`AudioError` and a FileNotFoundError)."""


# ----------------------------------------------------------------------------------------------
# Validation
# ----------------------------------------------------------------------------------------------


def validate_sample_rate(sample_rate: Any, what: str = "audio") -> int:
    """Return ``sample_rate`` as an int after checking it is an integer in ``1..MAX_SAMPLE_RATE``.

    Integral floats (``24000.0``) are accepted; bools, fractional or non-numeric values and
    rates outside the range raise :class:`AudioError`.
    """
    if isinstance(sample_rate, (bool, np.bool_)) or not isinstance(
        sample_rate, (int, float, np.integer, np.floating)
    ):
        raise AudioError(f"{what}: sample rate must be an integer, got {sample_rate!r}")
    if not math.isfinite(float(sample_rate)) or float(sample_rate) != int(sample_rate):
        raise AudioError(f"{what}: sample rate must be an integer, got {sample_rate!r}")
    rate = int(sample_rate)
    if rate <= 0 or rate > MAX_SAMPLE_RATE:
        raise AudioError(
            f"{what}: unsupported sample rate {rate} Hz (expected 1..{MAX_SAMPLE_RATE} Hz)"
        )
    return rate


def validate_audio(audio: np.ndarray, what: str = "audio", *, allow_silent: bool = False) -> None:
    """Check that ``audio`` (any shape, floating dtype) is usable as a voice prompt.

    Raises :class:`AudioError` when it holds no samples, holds NaN or infinite values, or
    (unless ``allow_silent``) is digital silence: all samples exactly zero. An all-zero prompt
    would pass through :func:`end_on_pause` unchanged apart from the fade (every frame ties
    with the loudest one), and conditions the model on nothing; any non-zero signal, however
    quiet, is accepted because the pause detection is relative to the loudest frame.
    """
    if audio.size == 0:
        raise AudioError(f"{what}: the audio is empty (zero samples)")
    if not np.all(np.isfinite(audio)):
        bad = int(np.count_nonzero(~np.isfinite(audio)))
        raise AudioError(f"{what}: the audio holds {bad} NaN or infinite sample(s)")
    if not allow_silent and not np.any(audio):
        raise AudioError(
            f"{what}: the audio is completely silent (all {audio.size} samples are zero); "
            "a voice prompt needs some speech"
        )


# ----------------------------------------------------------------------------------------------
# Reading
# ----------------------------------------------------------------------------------------------


def _import_soundfile() -> Any:
    try:
        import soundfile
    except ImportError as exc:  # pragma: no cover - soundfile is a runtime dependency
        raise ImportError(
            "soundfile is required to read non-WAV or non-16-bit WAV audio files. "
            "Install it with: pip install soundfile"
        ) from exc
    return soundfile


def _read_with_soundfile(path: Path, max_seconds: float | None) -> tuple[np.ndarray, int]:
    sf = _import_soundfile()
    blocks: list[np.ndarray] = []
    try:
        with sf.SoundFile(str(path)) as f:
            sample_rate = int(f.samplerate)
            validate_sample_rate(sample_rate, what=str(path))
            left = None if max_seconds is None else int(max_seconds * sample_rate)
            if f.seekable():
                f.seek(0)  # as sf.read does: libsndfile's MP3 decoder differs by 1 ulp without
            # By blocks, never sf.read: a header's frame count is not trusted for one
            # allocation (a 415-byte FLAC claiming 8.6e9 frames asked for 32 GiB).
            while left is None or left > 0:
                want = _READ_BLOCK_FRAMES if left is None else min(left, _READ_BLOCK_FRAMES)
                block = f.read(want, dtype="float32", always_2d=True)
                if not len(block):
                    break
                blocks.append(
                    block.mean(axis=1, dtype=np.float32)
                    if block.shape[1] > 1
                    else block[:, 0].copy()
                )
                if left is not None:
                    left -= len(block)
    except (RuntimeError, OSError, ValueError, TypeError) as exc:
        # soundfile.LibsndfileError is a RuntimeError subclass.
        raise AudioError(f"cannot read audio file {str(path)!r}: {exc}") from exc
    samples = np.concatenate(blocks) if blocks else np.zeros(0, np.float32)
    return np.ascontiguousarray(samples, dtype=np.float32), sample_rate


def _read_wav_16bit(path: Path) -> tuple[np.ndarray, int] | None:
    """Read a 16-bit PCM WAV with :mod:`wave`; None when it is not one (use soundfile)."""
    try:
        with wave.open(str(path), "rb") as wav_file:
            sample_rate = wav_file.getframerate()
            n_channels = wav_file.getnchannels()
            sample_width = wav_file.getsampwidth()
            if sample_width != 2:
                return None
            raw = wav_file.readframes(-1)
    except (wave.Error, EOFError, struct.error, RuntimeError):
        # Not a RIFF/PCM file wave understands (float, WAVE_FORMAT_EXTENSIBLE on Python 3.11,
        # broken header...): soundfile either reads it or reports the problem.
        return None
    if n_channels < 1:
        raise AudioError(f"cannot read audio file {str(path)!r}: it declares 0 channels")
    frame_bytes = 2 * n_channels
    if len(raw) % frame_bytes:
        # A truncated last frame (the reference would fail to reshape): drop it.
        raw = raw[: len(raw) - len(raw) % frame_bytes]
    samples = np.frombuffer(raw, dtype="<i2").astype(np.float32) / 32768.0
    if n_channels > 1:
        samples = samples.reshape(-1, n_channels).mean(axis=1)
    return samples, int(sample_rate)


#: Frames decoded per soundfile read (about 2.7 s at 24 kHz).
_READ_BLOCK_FRAMES = 65536


def read_audio(
    path: str | os.PathLike[str], max_seconds: float | None = None
) -> tuple[np.ndarray, int]:
    """Read an audio file as mono float32 ``[T]`` and its sample rate, like ``audio_read``.

    A ``.wav`` file with 16-bit samples is read with the stdlib :mod:`wave` module, as
    ``int16 / 32768`` with the channels averaged; every other file (and WAVs :mod:`wave` cannot
    parse) is read by :mod:`soundfile` as float32 with the channels averaged. The samples are
    returned as they are in the file (no validation of their values); a missing file raises
    :class:`AudioFileNotFoundError`, an unreadable or corrupt one :class:`AudioError`, and a
    sample rate outside ``1..MAX_SAMPLE_RATE`` :class:`AudioError`. With ``max_seconds`` only
    that much of the start is decoded (counted at the file's own rate). Memory follows the
    samples actually decoded, whatever length a header claims.
    """
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"read_audio expects a path, got {type(path).__name__}")
    filepath = Path(path)
    if not filepath.exists():
        raise AudioFileNotFoundError(f"audio file not found: {str(filepath)!r}")
    if not filepath.is_file():
        raise AudioError(f"not a file: {str(filepath)!r}")

    result = None
    if filepath.suffix.lower() == ".wav":
        try:
            result = _read_wav_16bit(filepath)
        except OSError as exc:
            raise AudioError(f"cannot read audio file {str(filepath)!r}: {exc}") from exc
    if result is None:
        result = _read_with_soundfile(filepath, max_seconds)
    samples, sample_rate = result
    if max_seconds is not None:
        samples = samples[: int(max_seconds * sample_rate)]
    validate_sample_rate(sample_rate, what=str(filepath))
    return samples, sample_rate
