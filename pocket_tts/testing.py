"""Seeded random checkpoints in the reference layout, for tests and benchmarks.

The real weights cannot be downloaded here, so correctness is shown by parity with the
reference on the same random checkpoint. :func:`random_weights` draws every tensor of a config's
layout with magnitudes that keep activations O(1) through the network;
:func:`make_random_checkpoint` writes them as ``<config>.safetensors`` next to a copy of the
packaged config whose ``weights_path`` points at that file (``tools/make_random_checkpoint.py``
is the command-line front end).
"""

from __future__ import annotations

import json
import math
import re
import zlib
from pathlib import Path

import numpy as np

from .checkpoint.layout import expected_tensors
from .checkpoint.safetensors import write_safetensors
from .config import Config, load_config

__all__ = [
    "CONFIG_DIR",
    "config_path",
    "make_random_checkpoint",
    "random_weights",
    "timestep_freqs",
]

CONFIG_DIR = Path(__file__).resolve().parent / "configs"

_LAYER_NORMS = ("norm1", "norm2", "out_norm", "in_ln")


def config_path(name_or_path: str | Path) -> Path:
    """The YAML path of a packaged config name (``"english_2026-10"``) or of a given path."""
    s = str(name_or_path)
    if s.endswith((".yaml", ".yml")) or "/" in s:
        return Path(s)
    return CONFIG_DIR / f"{s}.yaml"


def timestep_freqs(half: int = 128, max_period: float = 10000.0) -> np.ndarray:
    """``TimestepEmbedder.freqs``: ``exp(-ln(max_period) * arange(half) / half)`` in float32.

    The exponent is formed in float32 as torch does; the exponential is then correctly rounded
    (float64, rounded once), which can differ from torch's own float32 ``exp`` by one ulp.
    """
    t = (np.float32(-math.log(max_period)) * np.arange(half, dtype=np.float32)) / np.float32(half)
    return np.exp(t.astype(np.float64)).astype(np.float32)


def _fan_in(key: str, shape: tuple[int, ...]) -> int:
    if len(shape) == 2:  # Linear [out, in], speaker_proj_weight [d_model, latent]
        return shape[1]
    if len(shape) == 3 and ".convtr." in key:
        # ConvTranspose1d [in, out/groups, K] with K = 2 * stride: each output sample sums
        # (in/groups) * K/stride = 2 * (in/groups) taps. The Mimi upsample is depthwise.
        return 2 if key.startswith("mimi.upsample.") else 2 * shape[0]
    if len(shape) == 3:  # Conv1d [out, in/groups, K]
        return shape[1] * shape[2]
    raise ValueError(f"no fan-in rule for {key} {shape}")


def _random_tensor(key: str, shape: tuple[int, ...], rng: np.random.Generator) -> np.ndarray:
    def normal(std: float, mean: float = 0.0) -> np.ndarray:
        x = rng.standard_normal(shape, dtype=np.float32)
        x *= np.float32(std)
        if mean:
            x += np.float32(mean)
        return x

    leaf = key.rsplit(".", 1)[-1]
    module = key.rsplit(".", 2)[-2] if key.count(".") >= 2 else ""
    if key.endswith(".freqs"):
        return timestep_freqs(shape[0])
    if key.endswith(".mlp.3.alpha"):  # RMSNorm
        return normal(0.05, 1.0)
    if key == "flow_lm.emb_std":
        return rng.uniform(0.5, 1.5, shape).astype(np.float32)
    if key == "flow_lm.emb_mean":
        return normal(0.1)
    if key in ("flow_lm.bos_emb", "flow_lm.bos_before_voice", "flow_lm.conditioner.embed.weight"):
        return normal(1.0)
    if module.startswith("layer_scale_"):
        return rng.uniform(0.01, 0.1, shape).astype(np.float32)
    if module in _LAYER_NORMS:
        return normal(0.05, 1.0) if leaf == "weight" else normal(0.05)
    if leaf == "bias":
        return normal(0.02)
    return normal(1.0 / math.sqrt(_fan_in(key, shape)))


def random_weights(config: Config, seed: int) -> dict[str, np.ndarray]:
    """Seeded float32 tensors for every key of ``config``'s layout, in state-dict order.

    Each tensor has its own generator seeded from ``(seed, crc32(key))``, so a tensor's values
    do not depend on the other keys. Linear/conv weights ~ N(0, 1/fan_in); biases N(0, 0.02);
    LayerNorm weight 1 + N(0, 0.05), bias N(0, 0.05); RMSNorm alpha 1 + N(0, 0.05); Mimi
    layer-scale U(0.01, 0.1); emb_std U(0.5, 1.5), emb_mean N(0, 0.1); bos_emb,
    bos_before_voice and the text embedding table N(0, 1); ``freqs`` the exact formula.
    """
    out = {}
    for key, shape in expected_tensors(config).items():
        rng = np.random.default_rng([int(seed), zlib.crc32(key.encode())])
        out[key] = _random_tensor(key, shape, rng)
    return out


def _yaml_scalar(value: str) -> str:
    if re.fullmatch(r"[A-Za-z0-9_./+-]+", value) and not value.startswith("-"):
        return value
    return json.dumps(value)  # a double-quoted YAML scalar


def _rewrite_config(text: str, weights: Path, tokenizer: Path | None, header: str) -> str:
    lines = [
        line
        for line in text.splitlines()
        if not re.match(r"weights_path(_without_voice_cloning)?\s*:", line)
    ]
    if tokenizer is not None:
        for field, value in (("tokenizer", "sentencepiece"), ("tokenizer_path", str(tokenizer))):
            hits = [i for i, line in enumerate(lines) if re.match(rf"\s+{field}\s*:", line)]
            if len(hits) != 1:
                raise ValueError(f"expected one '{field}:' line in the config, found {len(hits)}")
            indent = lines[hits[0]][: len(lines[hits[0]]) - len(lines[hits[0]].lstrip())]
            lines[hits[0]] = f"{indent}{field}: {_yaml_scalar(value)}"
    top = [header, f"weights_path: {_yaml_scalar(str(weights))}"]
    return "\n".join(top + lines) + "\n"


def make_random_checkpoint(
    config_name: str,
    seed: int,
    out_dir: str | Path,
    tokenizer: str | Path | None = None,
) -> tuple[Path, Path]:
    """Write a seeded random checkpoint for a packaged config; return ``(yaml, safetensors)``.

    Writes ``out_dir/<config>.safetensors`` (exactly the reference keys and shapes, float32) and
    ``out_dir/<config>.yaml``: the packaged config with ``weights_path`` set to the absolute
    path of that file and ``weights_path_without_voice_cloning`` removed; with ``tokenizer``,
    ``flow_lm.lookup_table`` switches to ``tokenizer: sentencepiece`` at that path.
    """
    src = config_path(config_name)
    stem = src.stem
    out = Path(out_dir).resolve()
    out.mkdir(parents=True, exist_ok=True)
    weights_file = out / f"{stem}.safetensors"
    yaml_file = out / f"{stem}.yaml"
    config = load_config(src)
    tensors = random_weights(config, seed)
    write_safetensors(
        weights_file, tensors, metadata={"config": stem, "seed": str(seed), "kind": "random"}
    )
    tok = Path(tokenizer).resolve() if tokenizer is not None else None
    header = f"# Random checkpoint of {stem} (seed {seed}) made by pocket_tts.testing."
    text = _rewrite_config(src.read_text(encoding="utf-8"), weights_file, tok, header)
    yaml_file.write_text(text, encoding="utf-8")
    return yaml_file, weights_file
