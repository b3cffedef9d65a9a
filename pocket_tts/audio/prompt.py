"""Voice prompts: audio from a file, a URL or an array, ready for the Mimi encoder.

Numerical behaviour mirrors the reference (``pocket_tts/data/audio_utils.py`` and
``TTSModel.get_state_for_audio_prompt`` in ``pocket-tts`` 4.0.1) without torch:

* :func:`end_on_pause` cuts trailing silence, fades out the last 20 ms and appends 80 ms of
  zeros, exactly like the reference (same frames, same threshold, torch's ``linspace`` values).
* :func:`load_prompt_audio` is what ``TTSModel.get_state_for_audio_prompt`` does to an audio
  prompt before encoding it: read (:mod:`pocket_tts.audio.read`), truncate to
  :data:`PROMPT_TRUNCATE_SECONDS` on request, resample to 24 kHz
  (:mod:`pocket_tts.audio.resample`), then :func:`end_on_pause`.

Problems with the input raise the :class:`~pocket_tts.audio.read.AudioError` family.
"""

from __future__ import annotations

import difflib
import logging
import os
from pathlib import Path
from typing import Any

import numpy as np

from ..hub import PREDEFINED_VOICES, is_remote_path, location_path, resolve_path
from .read import SAMPLE_RATE, AudioError, AudioFileNotFoundError, read_audio, validate_audio
from .resample import resample, torch_linspace

__all__ = ["PROMPT_TRUNCATE_SECONDS", "end_on_pause", "load_prompt_audio"]

logger = logging.getLogger(__name__)

PROMPT_TRUNCATE_SECONDS = 30
"""``load_prompt_audio(..., truncate=True)`` keeps this many seconds, at the file's own rate."""


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
            audio, rate = read_audio(path, PROMPT_TRUNCATE_SECONDS + 1 if truncate else None)
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
    seconds = len(wav) / SAMPLE_RATE
    if seconds > PROMPT_TRUNCATE_SECONDS:
        logger.warning(
            "the voice prompt is %.0f s long: encoding it takes a while, and the longer the "
            "prompt, the slower every generation with its voice (a voice state grows with it); "
            "%d s clone a voice as well: pass truncate=True (CLI: the default) to keep them",
            seconds,
            PROMPT_TRUNCATE_SECONDS,
        )
    return end_on_pause(wav, SAMPLE_RATE)
