"""Torch-free CPU engine for Kyutai's Pocket TTS, a drop-in for the ``pocket_tts`` package.

``from pocket_tts import TTSModel, export_model_state``. The compiled kernels load on first
use of these names (a half-built install raises a clear ImportError there)."""

from __future__ import annotations

from typing import Any

__all__ = ["TTSModel", "export_model_state"]
__version__ = "0.1.0"


def __getattr__(name: str) -> Any:
    if name == "TTSModel":
        from .tts_model import TTSModel

        return TTSModel
    if name == "export_model_state":
        from .voice import export_model_state

        return export_model_state
    raise AttributeError(f"module 'pocket_tts' has no attribute {name!r}")
