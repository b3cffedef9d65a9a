"""Encoding audio as it is generated: WAV, raw PCM, FLAC, MP3, Opus (in Ogg) and, with PyAV
installed, AAC (ADTS), each as a stream of bytes whose first piece can leave at once.

One :class:`StreamEncoder` per response: :meth:`~StreamEncoder.start` gives the header,
:meth:`~StreamEncoder.encode` the bytes of one chunk of float samples, and
:meth:`~StreamEncoder.finish` the tail. The destination is never seekable (an HTTP body), so
nothing is patched afterwards:

* ``wav``: the unknown-length header of :mod:`pocket_tts.audio.wav` (``0xFFFFFFFF`` sizes,
  read by decoders as "until the end"), then 16-bit PCM converted like the reference.
* ``pcm``: the same samples, raw (s16le, mono, 24 kHz), as OpenAI's ``pcm``.
* ``flac``, ``mp3``, ``opus``: libsndfile through :mod:`soundfile`, writing into
  :class:`_ForwardSink`. libsndfile seeks back at close to fill in totals (FLAC's STREAMINFO
  sample count and MD5, the MP3 Info frame); those bytes have already left, so they keep the
  values written at open, which decoders read as "unknown" (FLAC: 0 samples; MP3: an empty
  first frame, decoded as silence). FLAC gets the same int16 samples as ``wav``, so it decodes
  to them exactly. Opus pages are flushed every 80 ms frame instead of libsndfile's default
  of about one second.
* ``aac``: PyAV's FFmpeg encoder in an ADTS stream (``pip install av``).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .read import SAMPLE_RATE
from .wav import _wav_header, float_to_pcm16

__all__ = ["CONTENT_TYPES", "FORMATS", "StreamEncoder", "available_formats"]

#: Every format and its HTTP media type (OpenAI's speech API names).
CONTENT_TYPES = {
    "wav": "audio/wav",
    "pcm": "audio/pcm",
    "flac": "audio/flac",
    "mp3": "audio/mpeg",
    "opus": "audio/ogg; codecs=opus",
    "aac": "audio/aac",
}
FORMATS = tuple(CONTENT_TYPES)

#: libsndfile's SFC_SET_OGG_PAGE_LATENCY_MS (sndfile.h, libsndfile >= 1.2).
_SFC_SET_OGG_PAGE_LATENCY_MS = 0x1302
_OPUS_PAGE_MS = 80.0
_SOUNDFILE_FORMATS = {
    "flac": ("FLAC", "PCM_16"),
    "mp3": ("MP3", "MPEG_LAYER_III"),
    "opus": ("OGG", "OPUS"),
}


def _have_pyav() -> bool:
    try:
        import av  # noqa: F401
    except ImportError:
        return False
    return True


def available_formats() -> tuple[str, ...]:
    """The formats this installation can encode (``aac`` needs PyAV)."""
    return tuple(f for f in FORMATS if f != "aac" or _have_pyav())


class _ForwardSink:
    """A write-only file for libsndfile whose bytes are taken away as they are written.

    ``take()`` returns what was written since the last call. A write into bytes already taken
    (libsndfile going back to patch a header) is dropped; a write into bytes still held
    replaces them."""

    def __init__(self) -> None:
        self._held = bytearray()
        self._taken = 0  # bytes handed out before self._held
        self._pos = 0

    def write(self, data: Any) -> int:
        data = bytes(data)
        n = len(data)
        start = self._pos - self._taken
        if start < 0:
            data = data[-start:]
            start = 0
        if start > len(self._held):
            self._held.extend(bytes(start - len(self._held)))
        self._held[start : start + len(data)] = data
        self._pos += n
        return n

    def seek(self, offset: int, whence: int = 0) -> int:
        end = self._taken + len(self._held)
        self._pos = {0: offset, 1: self._pos + offset, 2: end + offset}[whence]
        return self._pos

    def tell(self) -> int:
        return self._pos

    def read(self, size: int = -1) -> bytes:  # libsndfile never reads a file opened to write
        return b""

    def take(self) -> bytes:
        out = bytes(self._held)
        self._taken += len(out)
        self._held.clear()
        return out


class StreamEncoder:
    """Encode float32 mono chunks at ``sample_rate`` into ``fmt`` (one of :data:`FORMATS`)
    progressively; ``trailing_silence`` seconds of zeros are encoded by :meth:`finish` (the
    reference's server ends its WAV on 0.2 s). Not thread-safe: one per stream."""

    def __init__(self, fmt: str, sample_rate: int = SAMPLE_RATE, trailing_silence: float = 0.0):
        if fmt not in CONTENT_TYPES:
            raise ValueError(f"unknown audio format {fmt!r}; supported: {', '.join(FORMATS)}")
        if fmt == "aac" and not _have_pyav():
            raise ValueError("the aac format needs PyAV: pip install av")
        self.format = fmt
        self.content_type = CONTENT_TYPES[fmt]
        self.sample_rate = sample_rate
        self.trailing_silence = trailing_silence
        self._sink = _ForwardSink()
        self._file: Any = None
        self._av: Any = None
        self._done = False

    def start(self) -> bytes:
        """The header: the bytes a client can have before any audio."""
        if self.format == "wav":
            return _wav_header(self.sample_rate, None)
        if self.format in _SOUNDFILE_FORMATS:
            import soundfile as sf

            container, subtype = _SOUNDFILE_FORMATS[self.format]
            self._file = sf.SoundFile(
                self._sink,
                "w",
                samplerate=self.sample_rate,
                channels=1,
                format=container,
                subtype=subtype,
            )
            if self.format == "opus":
                latency = sf._ffi.new("double*", _OPUS_PAGE_MS)
                sf._snd.sf_command(self._file._file, _SFC_SET_OGG_PAGE_LATENCY_MS, latency, 8)
        elif self.format == "aac":
            self._av = _AacWriter(self._sink, self.sample_rate)
        return self._sink.take()

    def encode(self, chunk: np.ndarray) -> bytes:
        """The bytes of one chunk (may be empty while a codec fills a frame or a page)."""
        samples = np.asarray(chunk, dtype=np.float32).reshape(-1)
        if self.format in ("wav", "pcm"):
            return float_to_pcm16(samples).astype("<i2", copy=False).tobytes()
        if self.format == "flac":
            self._file.write(float_to_pcm16(samples))  # the WAV's samples, losslessly
            return self._sink.take()
        clipped = np.clip(samples, -1.0, 1.0)  # as the WAV's; codecs misbehave beyond full scale
        if self.format == "aac":
            self._av.write(clipped)
        else:
            self._file.write(clipped)
        return self._sink.take()

    def finish(self) -> bytes:
        """The trailing silence and the codec's last frames; the stream is complete."""
        if self._done:
            return b""
        self._done = True
        tail = b""
        silence = int(self.sample_rate * self.trailing_silence)
        if silence:
            tail = self.encode(np.zeros(silence, np.float32))
        return tail + self.close()

    def close(self) -> bytes:
        """Release the codec (also after an error); returns what it still had buffered."""
        if self._file is not None:
            self._file.close()
            self._file = None
        if self._av is not None:
            self._av.close()
            self._av = None
        return self._sink.take()


class _AacWriter:
    """AAC-LC in ADTS through PyAV (FFmpeg's native encoder), frames of 1024 samples."""

    def __init__(self, sink: _ForwardSink, sample_rate: int) -> None:
        import av

        self._av = av
        self._container = av.open(sink, "w", format="adts")
        self._stream = self._container.add_stream("aac", rate=sample_rate, layout="mono")
        self._stream.bit_rate = 64000
        self._rate = sample_rate
        self._pts = 0

    def write(self, samples: np.ndarray) -> None:
        frame = self._av.AudioFrame.from_ndarray(samples[None, :], format="flt", layout="mono")
        frame.sample_rate = self._rate
        frame.pts = self._pts
        self._pts += len(samples)
        for packet in self._stream.encode(frame):
            self._container.mux(packet)

    def close(self) -> None:
        for packet in self._stream.encode(None):
            self._container.mux(packet)
        self._container.close()
