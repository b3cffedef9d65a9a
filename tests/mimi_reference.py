"""Shared, cached reference data and models for test_mimi.py and test_voice.py.

``golden(yaml, wav)`` runs ``tools/reference/mimi_golden.py golden`` once per (checkpoint, wav)
for the whole pytest session; ``models(yaml)`` loads our Mimi and FlowLM once per checkpoint.
"""

from __future__ import annotations

import atexit
import shutil
import tempfile
from pathlib import Path

import numpy as np
from conftest import run_reference

from pocket_tts.checkpoint.loader import load_weights
from pocket_tts.config import load_config
from pocket_tts.flow_lm import FlowLM
from pocket_tts.mimi import Mimi

#: Latent frames the reference decodes frame by frame (>= 25).
FRAMES = 30

_ROOT = Path(tempfile.mkdtemp(prefix="mimi-golden-"))
atexit.register(shutil.rmtree, _ROOT, True)
_golden: dict[tuple[str, str], tuple[dict[str, np.ndarray], Path]] = {}
_models: dict[str, tuple[Mimi, FlowLM]] = {}


def golden(yaml_path: Path, wav: Path) -> tuple[dict[str, np.ndarray], Path]:
    """(reference arrays, path of the voice file the reference exported) for (yaml, wav)."""
    key = (str(yaml_path), str(wav))
    if key not in _golden:
        d = _ROOT / f"g{len(_golden)}"
        d.mkdir()
        out, voice = d / "golden.npz", d / "voice.safetensors"
        run_reference(
            "mimi_golden.py", "golden", yaml_path, wav, out, voice, "--frames", str(FRAMES)
        )
        with np.load(out) as z:
            _golden[key] = ({k: z[k] for k in z.files}, voice)
    return _golden[key]


def reference_load_voice(yaml_path: Path, voice: Path) -> dict[str, np.ndarray]:
    """The caches the reference reads back from a voice file."""
    out = _ROOT / f"load-{len(list(_ROOT.iterdir()))}.npz"
    run_reference("mimi_golden.py", "load-voice", yaml_path, voice, out)
    with np.load(out) as z:
        return {k: z[k] for k in z.files}


def models(yaml_path: Path, weights_path: Path) -> tuple[Mimi, FlowLM]:
    """Our (Mimi, FlowLM) for a checkpoint, loaded once."""
    key = str(yaml_path)
    if key not in _models:
        config = load_config(yaml_path)
        weights = load_weights(config, weights_path)
        _models[key] = (Mimi(config, weights), FlowLM(config, weights))
    return _models[key]
