"""Import point of the compiled kernels: a half-built package fails here with a clear message
instead of silently falling back to slow Python."""

from __future__ import annotations

try:
    from . import _flow_lm, _kernels, _mimi, _pack
except ImportError as exc:  # pragma: no cover - exercised only on a broken install
    raise ImportError(
        "pocket_tts: the compiled C/Cython kernels are missing or failed to load "
        f"({exc}). Build them with `pip install .` (needs a C compiler and Python headers); "
        "in a source checkout, `python setup.py build_ext --inplace`."
    ) from exc

__all__ = ["_flow_lm", "_kernels", "_mimi", "_pack"]
