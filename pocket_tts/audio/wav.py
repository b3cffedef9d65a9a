"""Audio I/O: reading voice prompts, resampling, ``end_on_pause`` and streaming WAV output.

Numerical behaviour mirrors the reference (``pocket_tts/data/audio.py`` and
``pocket_tts/data/audio_utils.py`` in ``pocket-tts`` 4.0.1) without torch:

* :func:`read_audio` is the reference's ``audio_read``: a ``.wav`` file with 16-bit samples goes
  through the stdlib :mod:`wave` module (``int16 / 32768``, channels averaged in float32);
  anything else through :mod:`soundfile` as float32, channels averaged. Unlike the reference, a
  ``.wav`` file that :mod:`wave` cannot parse at all (IEEE-float or ``WAVE_FORMAT_EXTENSIBLE``
  WAVs, which raise ``wave.Error: unknown format`` in the reference) is handed to soundfile too.
* :func:`resample` is ``convert_audio``: ``scipy.signal.resample_poly(x, up, down)`` with the
  rates reduced by their gcd, default Kaiser window, computed in float32 and returned as float32.
* :func:`end_on_pause` cuts trailing silence, fades out the last 20 ms and appends 80 ms of
  zeros, exactly like the reference (same frames, same threshold, torch's ``linspace`` values).
* :func:`load_prompt_audio` is what ``TTSModel.get_state_for_audio_prompt`` does to an audio
  prompt before encoding it.
* :class:`StreamingWAVWriter` writes mono 16-bit PCM with the reference's sample conversion,
  ``(clamp(x, -1, 1) * 32767)`` truncated toward zero, and 0.2 s of silence at ``finalize``.
  The header comes from the stdlib :mod:`wave` module, as in the reference. To a destination
  that cannot seek (a pipe, stdout, an HTTP body) its sizes say "unknown length"
  (``0xFFFFFFFF``, read by decoders as "until the end of the stream"), where the reference
  writes the sizes of 10^9 frames.

Every problem with the input is an :class:`AudioError` (a ``ValueError``); a missing file is an
:class:`AudioFileNotFoundError`, which is also a ``FileNotFoundError``.
"""

from __future__ import annotations

import difflib
import io
import logging
import math
import os
import struct
import sys
import wave
from collections.abc import Iterable
from pathlib import Path
from typing import IO, Any, BinaryIO

import numpy as np

from ..hub import PREDEFINED_VOICES, is_remote_path, location_path, resolve_path

__all__ = [
    "FIRST_CHUNK_LENGTH_SECONDS",
    "MAX_SAMPLE_RATE",
    "PROMPT_TRUNCATE_SECONDS",
    "SAMPLE_RATE",
    "AudioError",
    "AudioFileNotFoundError",
    "StreamingWAVWriter",
    "end_on_pause",
    "float_to_pcm16",
    "load_prompt_audio",
    "read_audio",
    "resample",
    "stream_audio_chunks",
    "torch_linspace",
    "validate_audio",
    "validate_sample_rate",
    "write_wav",
]

logger = logging.getLogger(__name__)

SAMPLE_RATE = 24_000
"""Sample rate of the Mimi codec: prompts are resampled to it and generated audio uses it."""

MAX_SAMPLE_RATE = 768_000
"""Highest sample rate accepted (the highest rate common audio hardware/formats use)."""

PROMPT_TRUNCATE_SECONDS = 30
"""``load_prompt_audio(..., truncate=True)`` keeps this many seconds, at the file's own rate."""

FIRST_CHUNK_LENGTH_SECONDS = float(os.environ.get("FIRST_CHUNK_LENGTH_SECONDS", "0"))
"""Default first-chunk buffering of :class:`StreamingWAVWriter` (env, as in the reference)."""

_UNKNOWN_SIZE = 0xFFFFFFFF
_RIFF_SIZE_OFFSET = 4  # offsets of the two size fields in the 44-byte header
_DATA_SIZE_OFFSET = 40
_TRAILING_SILENCE_SECONDS = 0.2


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


def _read_with_soundfile(path: Path) -> tuple[np.ndarray, int]:
    sf = _import_soundfile()
    try:
        data, sample_rate = sf.read(str(path), dtype="float32")
    except (RuntimeError, OSError, ValueError, TypeError) as exc:
        # soundfile.LibsndfileError is a RuntimeError subclass.
        raise AudioError(f"cannot read audio file {str(path)!r}: {exc}") from exc
    if data.ndim == 1:
        samples = data
    else:
        samples = data.mean(axis=1)
    return np.ascontiguousarray(samples, dtype=np.float32), int(sample_rate)


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


def read_audio(path: str | os.PathLike[str]) -> tuple[np.ndarray, int]:
    """Read an audio file as mono float32 ``[T]`` and its sample rate, like ``audio_read``.

    A ``.wav`` file with 16-bit samples is read with the stdlib :mod:`wave` module, as
    ``int16 / 32768`` with the channels averaged; every other file (and WAVs :mod:`wave` cannot
    parse) is read by :mod:`soundfile` as float32 with the channels averaged. The samples are
    returned as they are in the file (no validation of their values); a missing file raises
    :class:`AudioFileNotFoundError`, an unreadable or corrupt one :class:`AudioError`, and a
    sample rate outside ``1..MAX_SAMPLE_RATE`` :class:`AudioError`.
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
        result = _read_with_soundfile(filepath)
    samples, sample_rate = result
    validate_sample_rate(sample_rate, what=str(filepath))
    return samples, sample_rate


# ----------------------------------------------------------------------------------------------
# Resampling and end_on_pause
# ----------------------------------------------------------------------------------------------


def resample(audio: np.ndarray, from_sr: int, to_sr: int) -> np.ndarray:
    """Resample ``audio`` ``[..., T]`` from ``from_sr`` to ``to_sr`` Hz, like ``convert_audio``.

    Uses ``scipy.signal.resample_poly(audio, to_sr // g, from_sr // g, axis=-1)`` with
    ``g = gcd(from_sr, to_sr)`` and scipy's default Kaiser window; float32 input is filtered in
    float32. The result has the input's dtype. Equal rates return the input unchanged (the
    same object, as the reference does).
    """
    from_rate = validate_sample_rate(from_sr, "resample source")
    to_rate = validate_sample_rate(to_sr, "resample target")
    audio = np.asarray(audio)
    if from_rate == to_rate:
        return audio
    if not np.issubdtype(audio.dtype, np.floating):
        raise AudioError(f"resample expects floating-point audio, got dtype {audio.dtype}")
    from scipy.signal import resample_poly

    g = math.gcd(from_rate, to_rate)
    out = resample_poly(audio, to_rate // g, from_rate // g, axis=-1)
    return np.asarray(out).astype(audio.dtype, copy=False)


def torch_linspace(start: float, end: float, steps: int, dtype: Any = np.float32) -> np.ndarray:
    """``torch.linspace(start, end, steps, dtype=dtype)`` on CPU, bit for bit (float32).

    torch computes ``step = (end - start) / (steps - 1)`` in ``dtype``, then the first half as
    ``start + step * i`` and the second half as ``end - step * (steps - 1 - i)``, each with a
    fused multiply-add (its vectorized kernel), so the last value is exactly ``end``. numpy's
    ``linspace`` differs in the last bit. The FMA is emulated by computing in a wider type
    (exact for float32; float64 uses ``np.longdouble``, best effort).
    """
    dt = np.dtype(dtype)
    if steps <= 0:
        return np.zeros(0, dtype=dt)
    if steps == 1:
        return np.full(1, start, dtype=dt)
    s, e = dt.type(start), dt.type(end)
    step = dt.type((e - s) / dt.type(steps - 1))
    wide = np.float64 if dt.itemsize < 8 else np.longdouble
    idx = np.arange(steps)
    halfway = steps // 2
    out = np.empty(steps, dtype=dt)
    out[:halfway] = wide(s) + wide(step) * idx[:halfway].astype(wide)
    out[halfway:] = wide(e) - wide(step) * (steps - 1 - idx[halfway:]).astype(wide)
    return out


def end_on_pause(
    audio: np.ndarray,
    sample_rate: int,
    pause_sec: float = 0.08,
    fade_sec: float = 0.02,
    floor_db: float = 35.0,
) -> np.ndarray:
    """End a voice prompt ``[..., T]`` on exactly ``pause_sec`` of silence (reference algorithm).

    The audio is cut into ``int(0.02 * sample_rate)``-sample frames (a tail shorter than a
    frame is ignored); each frame's RMS over all leading dimensions is turned into dB
    (``20 log10(rms + 1e-12)``). Everything after the last frame louder than
    ``max_dB - floor_db`` is cut, the last ``min(int(fade_sec * sample_rate), end)`` samples
    are multiplied by ``linspace(1, 0)`` (torch's values), and ``int(pause_sec * sample_rate)``
    zeros are appended. Audio shorter than one frame is returned unchanged, as in the
    reference. A new array of the input's dtype is returned; the input is not modified.

    Frame energies are computed in float64 (the reference reduces in the input dtype); this
    can only move the cut when a frame's level is within float32 rounding of the threshold.
    """
    audio = np.asarray(audio)
    if audio.ndim == 0:
        raise AudioError("end_on_pause expects audio of shape [..., T], got a scalar")
    if not np.issubdtype(audio.dtype, np.floating):
        raise AudioError(f"end_on_pause expects floating-point audio, got dtype {audio.dtype}")
    frame = max(1, int(0.02 * sample_rate))
    n = audio.shape[-1] // frame
    if n == 0:
        return audio
    frames = audio[..., : n * frame].reshape(-1, n, frame).astype(np.float64)
    rms = np.sqrt(np.mean(np.square(frames), axis=(0, 2)))
    with np.errstate(divide="ignore"):
        db = 20.0 * np.log10(rms + 1e-12)
    loud = np.flatnonzero(db > db.max() - floor_db)
    if loud.size == 0:  # only possible with NaN samples
        raise AudioError("end_on_pause: the audio holds NaN samples")
    end = (int(loud[-1]) + 1) * frame
    fade = min(int(fade_sec * sample_rate), end)
    pause = int(pause_sec * sample_rate)
    out = np.zeros((*audio.shape[:-1], end + pause), dtype=audio.dtype)
    out[..., :end] = audio[..., :end]
    if fade > 0:
        out[..., end - fade : end] *= torch_linspace(1, 0, fade, audio.dtype)
    return out


# ----------------------------------------------------------------------------------------------
# Voice prompt
# ----------------------------------------------------------------------------------------------


def _as_array(source: Any) -> np.ndarray:
    if isinstance(source, np.ndarray):
        return source
    if hasattr(source, "detach") and hasattr(source, "cpu") and hasattr(source, "numpy"):
        return source.detach().cpu().numpy()  # a torch.Tensor, without importing torch
    try:
        return np.asarray(source)
    except Exception as exc:  # noqa: BLE001 - report any conversion failure the same way
        raise AudioError(f"cannot convert {type(source).__name__} to an audio array") from exc


def _prompt_from_array(source: Any, sample_rate: int | None) -> np.ndarray:
    arr = _as_array(source)
    if arr.dtype == np.bool_ or not (
        np.issubdtype(arr.dtype, np.floating) or np.issubdtype(arr.dtype, np.integer)
    ):
        raise AudioError(f"voice prompt array must hold float samples, got dtype {arr.dtype}")
    if np.issubdtype(arr.dtype, np.integer):
        raise AudioError(
            f"voice prompt array has integer dtype {arr.dtype}; pass float samples in [-1, 1] "
            "(e.g. int16 PCM / 32768)"
        )
    if arr.ndim == 2:
        if arr.shape[0] != 1:
            raise AudioError(
                f"voice prompt array has shape {arr.shape}: expected [T] or [1, T] mono audio "
                f"(the codec takes one channel; mix down first, e.g. audio.mean(axis=0))"
            )
        arr = arr[0]
    elif arr.ndim != 1:
        raise AudioError(
            f"voice prompt array has shape {arr.shape}: expected [T] or [1, T] mono audio"
        )
    validate_audio(arr, "voice prompt array")
    wav = np.ascontiguousarray(arr, dtype=np.float32)
    if sample_rate is not None:
        wav = resample(wav[None, :], sample_rate, SAMPLE_RATE)[0]
    return wav


def _is_safetensors_source(source: str) -> bool:
    # The reference's model_state._is_safetensors_source.
    return location_path(source).endswith(".safetensors")


def load_prompt_audio(
    source: str | os.PathLike[str] | np.ndarray | Any,
    truncate: bool = False,
    *,
    sample_rate: int | None = None,
) -> np.ndarray:
    """Prepare a voice prompt as float32 ``[T]`` at 24 kHz, as ``get_state_for_audio_prompt`` does.

    ``source`` is one of:

    * a path (``str`` or ``os.PathLike``); a ``str`` may also be an ``hf://`` or ``http(s)://``
      location, downloaded through :func:`pocket_tts.hub.resolve_path`. The file is read with
      :func:`read_audio`; with ``truncate`` only its first 30 s (counted at the file's own
      rate) are kept; it is resampled to 24 kHz with :func:`resample`;
    * an array (numpy, or anything ``np.asarray`` accepts, e.g. a CPU torch tensor) of shape
      ``[T]`` or ``[1, T]`` holding float samples, taken as already 24 kHz (or at
      ``sample_rate``, then resampled) and, as in the reference, never truncated. The
      reference encodes a ``[C, T]`` tensor as C codec channels, which fails for C > 1, so
      multi-channel arrays are rejected here rather than silently mixed down.

    Then :func:`end_on_pause` is applied. Raises :class:`AudioError` for an unreadable file,
    empty, non-finite or all-zero audio, a bad sample rate, shape or dtype, and
    :class:`AudioFileNotFoundError` for a missing file.
    """
    if isinstance(source, (str, os.PathLike)):
        name = str(source)
        if _is_safetensors_source(name):
            raise AudioError(
                f"{name!r} is a .safetensors file (an exported voice state), not audio"
            )
        if sample_rate is not None:
            raise TypeError("sample_rate is only used for array sources (files carry their own)")
        if is_remote_path(source):
            path = resolve_path(source)
        else:
            path = Path(source)
        try:
            audio, rate = read_audio(path)
        except AudioFileNotFoundError as exc:
            if "/" in name or "\\" in name or "." in name:
                raise
            close = difflib.get_close_matches(name, PREDEFINED_VOICES, n=1)
            hint = f" Did you mean the predefined voice {close[0]!r}?" if close else ""
            raise AudioFileNotFoundError(
                f"{name!r} is neither an audio file nor a predefined voice name.{hint} "
                f"Predefined voices: {list(PREDEFINED_VOICES)}"
            ) from exc
        if truncate:
            max_samples = int(PROMPT_TRUNCATE_SECONDS * rate)
            if audio.shape[-1] > max_samples:
                audio = audio[..., :max_samples]
                logger.info("Audio truncated to first 30 seconds (%d samples)", max_samples)
        validate_audio(audio, name)  # what is kept must be usable
        wav = resample(audio[None, :], rate, SAMPLE_RATE)[0]
    else:
        wav = _prompt_from_array(source, sample_rate)
    return end_on_pause(wav, SAMPLE_RATE)


# ----------------------------------------------------------------------------------------------
# Writing
# ----------------------------------------------------------------------------------------------


def float_to_pcm16(audio: np.ndarray) -> np.ndarray:
    """Convert float samples to int16 like the reference: ``(clamp(x, -1, 1) * 32767)`` truncated.

    The product is computed in the input's float dtype and cast toward zero, so ``1.0`` maps to
    32767, ``-1.0`` to -32767 and ``0.99999`` to 32766. NaN samples become 0. int16 input is
    returned unchanged (already PCM); other integer, bool or complex input raises
    :class:`AudioError`. The result is flattened to 1-D.
    """
    arr = np.asarray(audio)
    if arr.dtype == np.int16:
        return arr.reshape(-1)
    if not np.issubdtype(arr.dtype, np.floating):
        raise AudioError(f"cannot write audio of dtype {arr.dtype} (expected float or int16)")
    clipped = np.clip(arr.reshape(-1), -1, 1)
    clipped = np.where(np.isnan(clipped), 0, clipped).astype(arr.dtype, copy=False)
    return (clipped * arr.dtype.type(32767)).astype(np.int16)


def _wav_header(sample_rate: int, data_bytes: int | None) -> bytes:
    """The 44-byte header of a mono 16-bit PCM WAV holding ``data_bytes`` bytes of samples.

    :mod:`wave` writes it: ``RIFF`` <36 + data size> ``WAVE``, a 16-byte ``fmt `` chunk (PCM,
    1 channel, the rate, 2 * rate bytes/s, 2-byte frames, 16 bits), ``data`` <data size>, all
    little-endian. ``data_bytes=None`` gives the unknown-length header of a stream.
    """
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(sample_rate)
        wav.setnframes(0 if data_bytes is None else data_bytes // 2)
        wav.writeframesraw(b"")  # the first write emits the header for that many frames
        header = bytearray(buffer.getvalue())  # taken before close() patches it to 0 frames
    if data_bytes is None:
        # wave cannot say "unknown length": its sizes derive from a frame count (an even data
        # size, with 36 + size within 32 bits), so the two size fields are set here.
        struct.pack_into("<I", header, _RIFF_SIZE_OFFSET, _UNKNOWN_SIZE)
        struct.pack_into("<I", header, _DATA_SIZE_OFFSET, _UNKNOWN_SIZE)
    return bytes(header)


def _is_append_mode(obj: object) -> bool:
    """True when writes always go to the end (O_APPEND, e.g. ``>>`` redirection)."""
    if "a" in str(getattr(obj, "mode", "")):
        return True
    try:
        import fcntl

        return bool(fcntl.fcntl(obj.fileno(), fcntl.F_GETFL) & os.O_APPEND)  # type: ignore[attr-defined]
    except (ImportError, AttributeError, OSError, ValueError, io.UnsupportedOperation):
        return False


def _is_seekable(obj: object) -> bool:
    if _is_append_mode(obj):
        return False  # the header could not be patched in place
    seekable = getattr(obj, "seekable", None)
    if seekable is not None:
        try:
            return bool(seekable())
        except (OSError, ValueError):
            return False
    return all(hasattr(obj, attr) for attr in ("seek", "tell"))


class StreamingWAVWriter:
    """Write mono 16-bit PCM WAV incrementally to a file path or a binary file object.

    The 44-byte header is written at construction, so the first audio chunk can flow at once.
    For an unseekable destination (stdout, a pipe, a socket, an HTTP body) the RIFF and data
    sizes are ``0xFFFFFFFF`` ("unknown length", which decoders read until end of stream); for
    a seekable one they are patched at :meth:`finalize` (or :meth:`close`), relative to where
    the header was written. Chunks are converted with :func:`float_to_pcm16`; ``finalize``
    appends ``trailing_silence`` seconds (0.2 s, like the reference) of zeros. A path is opened
    and closed by the writer; a file object is flushed but left open.

    ``first_chunk_seconds`` (default: the ``FIRST_CHUNK_LENGTH_SECONDS`` env variable, 0)
    holds back audio until that much has been written, then releases it in one write, as the
    reference does. Also usable as a context manager (finalizes on a clean exit).
    """

    def __init__(
        self,
        fileobj_or_path: str | os.PathLike[str] | BinaryIO | IO[bytes],
        sample_rate: int = SAMPLE_RATE,
        *,
        trailing_silence: float = _TRAILING_SILENCE_SECONDS,
        first_chunk_seconds: float | None = None,
    ) -> None:
        self.sample_rate = validate_sample_rate(sample_rate, "StreamingWAVWriter")
        if not (trailing_silence >= 0 and math.isfinite(trailing_silence)):
            raise ValueError(f"trailing_silence must be >= 0, got {trailing_silence!r}")
        self.trailing_silence = float(trailing_silence)
        if first_chunk_seconds is None:
            first_chunk_seconds = FIRST_CHUNK_LENGTH_SECONDS
        self._first_chunk_bytes = int(self.sample_rate * first_chunk_seconds) * 2
        self._buffer: list[bytes] | None = [] if self._first_chunk_bytes > 0 else None

        if isinstance(fileobj_or_path, (str, os.PathLike)):
            self._file: Any = open(fileobj_or_path, "wb")  # noqa: SIM115 - closed in close()
            self._owns_file = True
        elif hasattr(fileobj_or_path, "write"):
            self._file = fileobj_or_path
            self._owns_file = False
        else:
            raise TypeError(
                "StreamingWAVWriter expects a path or a binary file object, got "
                f"{type(fileobj_or_path).__name__}"
            )
        self.is_seekable = _is_seekable(self._file)
        self._header_pos = 0
        if self.is_seekable:
            try:
                self._header_pos = self._file.tell()
            except (OSError, ValueError):
                self.is_seekable = False
        self.data_bytes = 0
        self._closed = False
        self._finalized = False
        self._write(_wav_header(self.sample_rate, None))
        self._flush()

    @property
    def frames_written(self) -> int:
        """Number of samples handed to the destination so far (silence included)."""
        return self.data_bytes // 2

    def _write(self, data: bytes) -> None:
        if data:
            self._file.write(data)

    def _flush(self) -> None:
        flush = getattr(self._file, "flush", None)
        if flush is not None:
            flush()

    def _write_pcm(self, data: bytes) -> None:
        self._write(data)
        self.data_bytes += len(data)

    def write(self, chunk: np.ndarray) -> None:
        """Append a chunk of float samples (any shape, flattened) or int16 PCM."""
        if self._closed:
            raise ValueError("write() on a finalized or closed StreamingWAVWriter")
        data = float_to_pcm16(chunk).astype("<i2", copy=False).tobytes()
        if self._buffer is not None:
            self._buffer.append(data)
            if sum(len(c) for c in self._buffer) < self._first_chunk_bytes:
                return
            data = b"".join(self._buffer)
            self._buffer = None
        self._write_pcm(data)
        if not self.is_seekable:
            self._flush()

    def _release_buffer(self) -> None:
        if self._buffer is not None:
            self._write_pcm(b"".join(self._buffer))
            self._buffer = None

    def _patch_header(self) -> None:
        if not self.is_seekable:
            return
        if self.data_bytes > _UNKNOWN_SIZE - 36:
            logger.warning("WAV data exceeds 4 GiB; header sizes left at 0xFFFFFFFF")
            return
        end = self._file.tell()
        self._file.seek(self._header_pos)
        self._file.write(_wav_header(self.sample_rate, self.data_bytes))
        self._file.seek(end)

    def finalize(self) -> None:
        """Release buffered audio, append the trailing silence, fix the header, flush/close."""
        if self._closed:
            return
        self._release_buffer()
        self._write_pcm(bytes(int(self.sample_rate * self.trailing_silence) * 2))
        self._finalized = True
        self.close()

    def close(self) -> None:
        """Release buffered audio, fix the header (seekable files), flush; no silence added."""
        if self._closed:
            return
        self._closed = True
        try:
            self._release_buffer()
            self._patch_header()
            self._flush()
        finally:
            if self._owns_file:
                self._file.close()

    def __enter__(self) -> StreamingWAVWriter:
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        if exc_type is None:
            self.finalize()
        else:
            self.close()


def write_wav(
    path: str | os.PathLike[str] | BinaryIO,
    audio: np.ndarray,
    sample_rate: int = SAMPLE_RATE,
    *,
    trailing_silence: float = _TRAILING_SILENCE_SECONDS,
) -> None:
    """Write ``audio`` (float or int16, flattened) as a mono 16-bit WAV file.

    Uses :class:`StreamingWAVWriter`, so the samples and the 0.2 s of appended silence match
    what the reference CLI writes; pass ``trailing_silence=0`` for the bare samples.
    """
    with StreamingWAVWriter(path, sample_rate, trailing_silence=trailing_silence) as writer:
        writer.write(audio)


def stream_audio_chunks(
    path: str | os.PathLike[str] | BinaryIO | None,
    audio_chunks: Iterable[np.ndarray],
    sample_rate: int = SAMPLE_RATE,
) -> None:
    """Stream chunks to a WAV file, to stdout (``"-"``), or nowhere (``None``), like the reference.

    A path is opened and closed here; a file object (including ``sys.stdout.buffer`` for
    ``"-"``) is flushed but left open. With ``None`` the chunks are only consumed.
    """
    if path is None:
        for _ in audio_chunks:
            pass
        return
    dest: Any = sys.stdout.buffer if path == "-" else path
    with StreamingWAVWriter(dest, sample_rate) as writer:
        for chunk in audio_chunks:
            writer.write(chunk)
