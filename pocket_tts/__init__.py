"""Torch-free CPU engine for Kyutai's Pocket TTS, a drop-in for the ``pocket_tts`` package.

``from pocket_tts import TTSModel, export_model_state``. The compiled engine
(``pocket_tts._native``) loads on first use of these names; a half-built install raises a clear
ImportError there instead of silently falling back to slow Python."""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import Any

__all__ = ["EngineFullError", "TTSModel", "export_model_state"]
__version__ = "0.1.0"


def _load_native() -> ModuleType:
    """Import the compiled extension, or fail with a message saying how to build it."""
    try:
        return importlib.import_module(f"{__name__}._native")
    except ImportError as exc:
        from pathlib import Path

        here = Path(__file__).resolve().parent
        if (here.parent / "setup.py").is_file():  # a source checkout shadows the install
            raise ImportError(
                f"pocket_tts is imported from the source tree {here}, where the C engine is not "
                f"built: run from another folder (the installed package is then used), or build "
                f"it in place with `python setup.py build_ext --inplace` in {here.parent}."
            ) from exc
        raise ImportError(
            "pocket_tts: the compiled C/Cython engine (pocket_tts._native) is missing or failed "
            f"to load ({exc}). Build it with `pip install .` (needs a C compiler and Python "
            "headers); in a source checkout, `python setup.py build_ext --inplace`."
        ) from exc


def __getattr__(name: str) -> Any:
    # ``from . import _native`` (every caller) asks the package for the attribute before the
    # submodule is imported: this is where a missing or broken build gets its clear message.
    if name == "_native":
        return _load_native()
    if name == "TTSModel":
        from .tts_model import TTSModel

        return TTSModel
    if name == "EngineFullError":
        from .engine import EngineFullError

        return EngineFullError
    if name == "export_model_state":
        from .voice import export_model_state

        return export_model_state
    raise AttributeError(f"module 'pocket_tts' has no attribute {name!r}")
