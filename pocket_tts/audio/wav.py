"""Writing audio: mono 16-bit PCM WAV, to a file or streamed to a pipe as it is generated.

Numerical behaviour mirrors the reference (``pocket_tts`` 4.0.1's CLI and
``pocket_tts/data/audio.py``) without torch: :class:`StreamingWAVWriter` writes mono 16-bit PCM
with the reference's sample conversion (:func:`float_to_pcm16`: ``(clamp(x, -1, 1) * 32767)``
truncated toward zero), and 0.2 s of silence at ``finalize``. The header comes from the stdlib
:mod:`wave` module, as in the reference. To a destination that cannot seek (a pipe, stdout, an
HTTP body) its sizes say "unknown length" (``0xFFFFFFFF``, read by decoders as "until the end
of the stream"), where the reference writes the sizes of 10^9 frames.

Independent of the prompt path: it takes only the sample-rate check, the codec's rate and
:class:`~pocket_tts.audio.read.AudioError` from :mod:`pocket_tts.audio.read`.
"""

from __future__ import annotations

import io
import logging
import math
import os
import struct
import sys
import wave
from collections.abc import Iterable
from typing import IO, Any, BinaryIO

import numpy as np

from .read import SAMPLE_RATE, AudioError, validate_sample_rate

__all__ = [
    "FIRST_CHUNK_LENGTH_SECONDS",
    "StreamingWAVWriter",
    "float_to_pcm16",
    "stream_audio_chunks",
    "write_wav",
]

logger = logging.getLogger(__name__)

FIRST_CHUNK_LENGTH_SECONDS = float(os.environ.get("FIRST_CHUNK_LENGTH_SECONDS", "0"))
"""Default first-chunk buffering of :class:`StreamingWAVWriter` (env, as in the reference)."""

_UNKNOWN_SIZE = 0xFFFFFFFF
_RIFF_SIZE_OFFSET = 4  # offsets of the two size fields in the 44-byte header
_DATA_SIZE_OFFSET = 40
_TRAILING_SILENCE_SECONDS = 0.2


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
