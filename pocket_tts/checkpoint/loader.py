"""Strict loading of TTSModel-layout safetensors checkpoints into aligned numpy arrays.

The key set and every shape must match the tensor table (:func:`.layout.tensor_table`) exactly
(the reference loads with ``load_state_dict(strict=True)``); all problems are reported together
in one :class:`CheckpointError`. Tensors stored as F32, F16 or BF16 are accepted and widened to
float32 (both conversions are exact). Each tensor is then stored as its table entry's
:class:`~.storage.StorageClass` says for the model's dtype: packed in panels for the kernels
(csrc/gemm.h: ``[ceil(out/16), in, 16]``, zero-padded; int8 with a ``<key>.scale`` float32
``[ceil(out/16) * 16]`` entry), narrowed (the text-embedding table of compact models), or float32
as in the file. Every returned array is a fresh, writable, C-contiguous, 64-byte-aligned buffer
that does not reference the file: the file is memory-mapped and each tensor is converted straight
into its own buffer, one tensor at a time, so loading never holds a second full copy of the
checkpoint.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

import numpy as np

from . import cache as weight_cache
from .layout import TensorEntry, tensor_table
from .safetensors import SafetensorsFile, bfloat16_bits_to_float32
from .storage import PANEL, STORAGE_DTYPES, aligned_empty, check_model_dtype, panel_shape

if TYPE_CHECKING:
    from ..config import Config

__all__ = [
    "ACCEPTED_FILE_DTYPES",
    "CheckpointError",
    "converted_layout",
    "load_weights",
    "pack_panels",
    "quantize_rows_int8",
    "unpack_panels",
]

#: safetensors dtypes accepted in a checkpoint file.
ACCEPTED_FILE_DTYPES = ("F32", "F16", "BF16")


def quantize_rows_int8(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Symmetric per-row int8: ``scale = max|row| / 127``, ``q = round(x / scale)``."""
    x = np.asarray(x, dtype=np.float32)
    mx = np.abs(x).max(axis=1)
    scale = np.where(mx > 0, mx / np.float32(127.0), np.float32(1.0)).astype(np.float32)
    q = np.clip(np.rint(x / scale[:, None]), -127, 127).astype(np.int8)
    return q, scale


class CheckpointError(ValueError):
    """A checkpoint does not match the model layout.

    Attributes list every problem found: ``missing`` and ``unexpected`` key names,
    ``wrong_shape`` as ``(key, expected_shape, found_shape)`` and ``wrong_dtype`` as
    ``(key, found_dtype)``.
    """

    def __init__(
        self,
        path: str,
        missing: list[str],
        unexpected: list[str],
        wrong_shape: list[tuple[str, tuple[int, ...], tuple[int, ...]]],
        wrong_dtype: list[tuple[str, str]],
    ) -> None:
        self.path = path
        self.missing = missing
        self.unexpected = unexpected
        self.wrong_shape = wrong_shape
        self.wrong_dtype = wrong_dtype
        parts = []
        if missing:
            parts.append(f"{len(missing)} missing: " + ", ".join(missing))
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected: " + ", ".join(unexpected))
        if wrong_shape:
            parts.append(
                f"{len(wrong_shape)} with the wrong shape: "
                + ", ".join(f"{k} (expected {list(e)}, found {list(f)})" for k, e, f in wrong_shape)
            )
        if wrong_dtype:
            parts.append(
                f"{len(wrong_dtype)} with an unsupported dtype (want one of "
                f"{'/'.join(ACCEPTED_FILE_DTYPES)}): "
                + ", ".join(f"{k} ({d})" for k, d in wrong_dtype)
            )
        super().__init__(f"checkpoint {path} does not match the model: " + "; ".join(parts))


def pack_panels(w: np.ndarray) -> np.ndarray:
    """``w[out, in]`` (any dtype) -> aligned panels ``[ceil(out/16), in, 16]``, zero-padded:
    panel p, row i holds ``w[16p : 16p + 16, i]``. The numpy twin of the C packer that loading
    uses (tests, benchmarks)."""
    out, n_in = w.shape
    panels = -(-out // PANEL)
    dst = aligned_empty((panels, n_in, PANEL), w.dtype)
    full = out // PANEL
    dst[:full] = w[: full * PANEL].reshape(full, PANEL, n_in).transpose(0, 2, 1)
    if full < panels:
        dst[full:] = 0
        dst[full, :, : out - full * PANEL] = w[full * PANEL :].T
    return dst


def unpack_panels(packed: np.ndarray, out: int) -> np.ndarray:
    """Inverse of :func:`pack_panels` (tests, voice tools): ``[out, in]``."""
    panels, n_in, _ = packed.shape
    return packed.transpose(0, 2, 1).reshape(panels * PANEL, n_in)[:out]


def _store(weights: dict[str, np.ndarray], key: str, f32: np.ndarray, storage: str) -> None:
    """Convert one float32 matrix to its packed ``storage`` (in C, one pass) into ``weights``."""
    from .. import _native

    dst = aligned_empty(panel_shape(f32.shape), STORAGE_DTYPES[storage].element)
    scale = None
    if storage == "int8":
        scale = weights[key + ".scale"] = aligned_empty(dst.shape[0] * PANEL, np.float32)
    _native.pack_weights(f32, dst, scale, storage)
    weights[key] = dst


def _narrow(f32: np.ndarray, storage: str) -> np.ndarray:
    """float32 ``[rows, dim]`` -> aligned 16-bit ``storage`` bits (uint16), rounded as the
    packer does."""
    from .. import _native

    dst = aligned_empty(f32.shape, STORAGE_DTYPES[storage].element)
    _native.to_half_bits(f32.reshape(-1), storage, dst.reshape(-1))
    return dst


def converted_layout(table: list[TensorEntry], dtype: str) -> weight_cache.StoredLayout:
    """``{name: (storage dtype, shape)}`` of the tensors :func:`load_weights` converts at read
    time for a model in ``dtype`` (and caches): packed matrices (with their int8 scales), and
    the embedding table in a compact model."""
    out: weight_cache.StoredLayout = {}
    for e in table:
        if not e.storage.converted_at_load(dtype):
            continue
        st = STORAGE_DTYPES[e.storage.dtype(dtype)]
        shape = panel_shape(e.shape) if e.storage.packed else e.shape
        if st.name == "int8":
            out[e.key + ".scale"] = (STORAGE_DTYPES["float32"], (shape[0] * PANEL,))
        out[e.key] = (st, shape)
    return out


def load_weights(
    config: Config, path: str | os.PathLike, dtype: str = "float32", *, cache: bool = False
) -> dict[str, np.ndarray]:
    """Load the TTSModel-layout safetensors checkpoint at ``path`` for ``config``, strictly.

    Returns ``{key: array}`` in the reference's state-dict order (an int8 matrix's
    ``<key>.scale`` just before it). Every array is C-contiguous, 64-byte aligned, writable and
    owned (independent of the file), stored as its table entry's storage class says for
    ``dtype`` (one of :data:`.storage.STORAGE_DTYPES`); each is converted on its own, so only
    the converted copy stays resident. With ``cache``, the converted tensors come from the
    cache of :mod:`.cache`, or are saved to it by a background thread
    (``cache.wait_for_saves`` waits for it).

    Raises :class:`.safetensors.SafetensorsError` if the file is malformed, a single
    :class:`CheckpointError` naming every missing, unexpected, wrong-shape and wrong-dtype tensor
    if it does not match the layout of ``config``, and ``ValueError`` for an unknown ``dtype``.
    """
    dtype = check_model_dtype(dtype)
    table = tensor_table(config)
    expected = {e.key: e.shape for e in table}
    with SafetensorsFile(path) as f:
        found = f.header.tensors
        missing = [k for k in expected if k not in found]
        unexpected = [k for k in found if k not in expected]
        wrong_shape = [
            (k, shape, found[k].shape)
            for k, shape in expected.items()
            if k in found and found[k].shape != shape
        ]
        wrong_dtype = [
            (k, found[k].dtype)
            for k in expected
            if k in found and found[k].dtype not in ACCEPTED_FILE_DTYPES
        ]
        if missing or unexpected or wrong_shape or wrong_dtype:
            raise CheckpointError(str(path), missing, unexpected, wrong_shape, wrong_dtype)

        weights: dict[str, np.ndarray] = {}
        converted = converted_layout(table, dtype)
        entry = weight_cache.cache_entry(path, dtype, table, converted) if cache else None
        cached = weight_cache.load_packed(entry, converted) if entry else None
        # One float32 staging buffer, reused for every tensor that gets converted.
        sizes = [int(np.prod(e.shape)) for e in table if e.key in converted]
        staging = np.empty(0 if cached else max(sizes, default=0), np.float32)
        for e in table:
            if e.key not in converted:
                dst = aligned_empty(e.shape, np.float32)
                _read(f, e.key, found[e.key].dtype, dst)
                weights[e.key] = dst
            elif cached is not None:
                if e.key + ".scale" in cached:
                    weights[e.key + ".scale"] = cached[e.key + ".scale"]
                weights[e.key] = cached[e.key]
            else:
                f32 = staging[: int(np.prod(e.shape))].reshape(e.shape)
                _read(f, e.key, found[e.key].dtype, f32)
                storage = e.storage.dtype(dtype)
                if e.storage.packed:
                    _store(weights, e.key, f32, storage)
                else:
                    weights[e.key] = _narrow(f32, storage)
    if entry is not None and cached is None:
        weight_cache.save_packed_in_background(entry, {k: weights[k] for k in converted}, converted)
    return weights


def _widen(src: np.ndarray, file_dtype: str, dst: np.ndarray) -> None:
    if file_dtype == "BF16":
        bfloat16_bits_to_float32(src, out=dst)
    else:  # F32 copy or exact F16 -> F32 widening, straight into dst
        np.copyto(dst, src, casting="safe")


def _read(f: SafetensorsFile, key: str, file_dtype: str, dst: np.ndarray) -> None:
    """Read one tensor into float32 ``dst``: straight from the file for F32, through a raw
    buffer of the tensor's own size for F16/BF16 (widened exactly)."""
    if file_dtype == "F32":
        f.read_into(key, dst)
        return
    raw = np.empty(dst.shape, np.uint16)
    f.read_into(key, raw)
    _widen(raw.view(np.float16) if file_dtype == "F16" else raw, file_dtype, dst)
