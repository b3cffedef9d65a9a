"""Resampling, and torch's ``linspace`` for the fades, without torch.

* :func:`resample` is the reference's ``convert_audio`` (``pocket_tts/data/audio_utils.py`` in
  ``pocket-tts`` 4.0.1): ``scipy.signal.resample_poly(x, up, down)`` with the rates reduced by
  their gcd, default Kaiser window, computed in float32 and returned as float32.
* :func:`torch_linspace` gives ``torch.linspace``'s values bit for bit; the fade-out of
  :func:`pocket_tts.audio.prompt.end_on_pause` and the pipeline's fade-in use it.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from .read import AudioError, validate_sample_rate

__all__ = ["resample", "torch_linspace"]


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
    wide = np.dtype(np.float64 if dt.itemsize < 8 else np.longdouble)
    idx = np.arange(steps)
    halfway = steps // 2
    out = np.empty(steps, dtype=dt)
    step_w = np.asarray(step, dtype=wide)
    out[:halfway] = np.asarray(s, dtype=wide) + step_w * idx[:halfway].astype(wide)
    out[halfway:] = np.asarray(e, dtype=wide) - step_w * (steps - 1 - idx[halfway:]).astype(wide)
    return out
