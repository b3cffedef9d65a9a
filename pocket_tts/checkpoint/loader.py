"""Strict loading of TTSModel-layout safetensors checkpoints into aligned numpy arrays.

The key set and every shape must match :func:`pocket_tts.layout.expected_tensors` exactly (the
reference loads with ``load_state_dict(strict=True)``); all problems are reported together in
one :class:`CheckpointError`. Tensors stored as F32, F16 or BF16 are accepted and widened to
float32 (both conversions are exact). Every returned array is a fresh, writable, C-contiguous,
64-byte-aligned float32 buffer that does not reference the file: the file is memory-mapped and
each tensor is converted straight into its own buffer, one tensor at a time, so loading never
holds a second full copy of the checkpoint.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

import numpy as np

from . import cache as weight_cache
from .layout import expected_tensors
from .safetensors import SafetensorsFile, bfloat16_bits_to_float32

if TYPE_CHECKING:
    from ..config import Config

__all__ = [
    "ALIGNMENT",
    "ACCEPTED_FILE_DTYPES",
    "CheckpointError",
    "aligned_empty",
    "load_weights",
]

#: Byte alignment of every array returned by :func:`load_weights` (a cache line; AVX-512 wide).
ALIGNMENT = 64

#: safetensors dtypes accepted in a checkpoint file.
ACCEPTED_FILE_DTYPES = ("F32", "F16", "BF16")

#: In-memory storage of the matrices the flow LM streams every frame (transformer and flow head:
#: the per-frame GEMV's bytes). They are kept packed in 16-column panels
#: ``[ceil(out/16), in, 16]`` for the kernels (csrc/gemm.h); every other tensor stays float32.
#: ``float16``/``bfloat16`` hold the raw 16-bit patterns as uint16; ``int8`` holds symmetric
#: per-row int8 plus a ``<key>.scale`` float32 ``[ceil(out/16) * 16]`` entry (zero-padded); an
#: int8 model's flow head is stored in float16 (:func:`head_storage`). The Mimi transformers'
#: matrices are packed too, and with the text-embedding table they are kept in float32 or
#: float16 (:func:`side_storage`).
STORAGE_DTYPES = ("float32", "float16", "bfloat16", "int8")
_STORAGE_NP = {"float32": np.float32, "float16": np.uint16, "bfloat16": np.uint16, "int8": np.int8}
_LOWP_SUFFIXES = (
    ".self_attn.in_proj.weight",
    ".self_attn.out_proj.weight",
    ".linear1.weight",
    ".linear2.weight",
)
#: The flow head's Linear weights (SimpleMLPAdaLN); its norms and biases stay float32.
_HEAD_SUFFIXES = (
    ".mlp.0.weight",
    ".mlp.2.weight",
    ".adaLN_modulation.1.weight",
    "cond_embed.weight",
    "input_proj.weight",
    "final_layer.linear.weight",
)


PANEL = 16


def is_low_precision_key(key: str) -> bool:
    """True for the matrices the flow LM streams every frame (stored packed, in ``dtype``):
    the transformer's and the flow head's Linear weights."""
    if key.startswith("flow_lm.flow_net."):
        return key.endswith(_HEAD_SUFFIXES)
    return key.startswith("flow_lm.transformer.layers.") and key.endswith(_LOWP_SUFFIXES)


def is_codec_matrix_key(key: str) -> bool:
    """True for the Mimi transformers' Linear weights (kept packed, in
    :func:`side_storage`)."""
    return (
        key.startswith(("mimi.decoder_transformer.", "mimi.encoder_transformer."))
        and ".transformer.layers." in key
        and key.endswith(_LOWP_SUFFIXES)
    )


def is_packed_key(key: str) -> bool:
    """True for every matrix :func:`load_weights` returns packed in panels: the flow LM's
    (:func:`is_low_precision_key`) and the Mimi transformers' (:func:`is_codec_matrix_key`)."""
    return is_low_precision_key(key) or is_codec_matrix_key(key)


def head_storage(dtype: str) -> str:
    """Storage of the flow head's matrices for a model stored in ``dtype``: the same, except
    that int8 models keep an fp16 head (it writes the latent directly; measured: int8 there
    costs ~3 dB of latent SNR for ~10 % fewer bytes per frame)."""
    return "float16" if dtype == "int8" else dtype


def side_storage(dtype: str) -> str:
    """Storage of the large weights outside the flow LM's per-frame stream, for a model loaded
    in ``dtype``: the Mimi transformers' matrices and large convs (streamed by every decoded
    frame, see mimi.COMPACT_CONV_MIN_WEIGHTS) and the text-embedding table. float32 for float32
    models, float16 for every compact dtype: the most precise 16-bit format, and these weights
    have no values beyond its range."""
    return "float32" if dtype == "float32" else "float16"


#: The text-embedding lookup table: kept unpacked ``[n_bins + 1, dim]``, in :func:`side_storage`.
EMBEDDING_TABLE_KEY = "flow_lm.conditioner.embed.weight"


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


def aligned_empty(
    shape: int | tuple[int, ...], dtype: Any = np.float32, alignment: int = ALIGNMENT
) -> np.ndarray:
    """An uninitialised C-contiguous array whose data starts on an ``alignment``-byte boundary.

    The array is a view of a slightly larger byte buffer (so ``flags.owndata`` is False) that it
    keeps alive; it is writable and references nothing else.
    """
    if alignment <= 0 or alignment & (alignment - 1):
        raise ValueError(f"alignment must be a power of two, got {alignment}")
    dtype = np.dtype(dtype)
    shape = (shape,) if isinstance(shape, int | np.integer) else tuple(int(s) for s in shape)
    nbytes = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    count = nbytes // dtype.itemsize
    room = max(nbytes, dtype.itemsize)  # an empty slice would lose the offset: keep one item
    buf = np.empty(room + alignment, dtype=np.uint8)
    start = -buf.ctypes.data % alignment
    arr = buf[start : start + room].view(dtype)[:count].reshape(shape)
    assert arr.ctypes.data % alignment == 0 and arr.flags.c_contiguous
    return arr


def _check_storage_dtype(dtype: str) -> str:
    if dtype in STORAGE_DTYPES:
        return dtype
    raise ValueError(
        f"unknown weight dtype {dtype!r}; supported: {', '.join(map(repr, STORAGE_DTYPES))}"
    )


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


def _store(weights: dict[str, np.ndarray], key: str, f32: np.ndarray, dtype: str) -> None:
    """Convert one float32 matrix to its packed storage (in C, one pass) into ``weights``."""
    from .._native import _pack

    out, n_in = f32.shape
    panels = -(-out // PANEL)
    dst = aligned_empty((panels, n_in, PANEL), _STORAGE_NP[dtype])
    scale = None
    if dtype == "int8":
        scale = weights[key + ".scale"] = aligned_empty(panels * PANEL, np.float32)
    _pack.pack_weights(f32, dst, scale, dtype)
    weights[key] = dst


def load_weights(
    config: Config, path: str | os.PathLike, dtype: str = "float32", *, cache: bool = False
) -> dict[str, np.ndarray]:
    """Load the TTSModel-layout safetensors checkpoint at ``path`` for ``config``, strictly.

    Returns ``{key: array}`` in the reference's state-dict order. Every array is C-contiguous,
    64-byte aligned, writable and owned (independent of the file); all are float32 ``[...]`` as
    in the file except the flow-LM transformer and flow-head matrices, packed in ``dtype`` (see
    :data:`STORAGE_DTYPES`), and the Mimi transformers' matrices, packed in
    :func:`side_storage`; each is converted on its own, so only the packed copy stays
    resident. With ``cache``, the packed matrices come from the cache of
    :mod:`pocket_tts.weight_cache`, or are saved to it by a background thread
    (``weight_cache.wait_for_saves`` waits for it).

    Raises :class:`pocket_tts.safetensors.SafetensorsError` if the file is malformed, a single
    :class:`CheckpointError` naming every missing, unexpected, wrong-shape and wrong-dtype tensor
    if it does not match the layout of ``config``, and ``ValueError`` for an unknown ``dtype``.
    """
    dtype = _check_storage_dtype(dtype)
    expected = expected_tensors(config)
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
        packed_layout = _packed_layout(expected, dtype)
        cache_path = weight_cache.cache_file(path, dtype, expected) if cache else None
        cached = weight_cache.load_packed(cache_path, packed_layout) if cache_path else None
        # One float32 staging buffer, reused for every matrix that gets packed.
        sizes = [int(np.prod(s)) for k, s in expected.items() if k in packed_layout]
        staging = np.empty(0 if cached else max(sizes, default=0), np.float32)
        for key, shape in expected.items():
            file_dtype = found[key].dtype
            if key in packed_layout:
                if cached is not None:
                    if key + ".scale" in cached:
                        weights[key + ".scale"] = cached[key + ".scale"]
                    weights[key] = cached[key]
                else:
                    f32 = staging[: int(np.prod(shape))].reshape(shape)
                    _read(f, key, file_dtype, f32)
                    if is_packed_key(key):
                        _store(weights, key, f32, _storage_of(key, dtype))
                    else:  # the embedding table, as float16 bits
                        weights[key] = _half_table(f32)
                continue
            dst = aligned_empty(shape, np.float32)
            _read(f, key, file_dtype, dst)
            weights[key] = dst
    if cache_path is not None and cached is None:
        weight_cache.save_packed_in_background(cache_path, {k: weights[k] for k in packed_layout})
    return weights


def _storage_of(key: str, dtype: str) -> str:
    """Storage of packed matrix ``key`` in a model loaded as ``dtype``."""
    if is_codec_matrix_key(key):
        return side_storage(dtype)
    return head_storage(dtype) if key.startswith("flow_lm.flow_net.") else dtype


def _half_table(f32: np.ndarray) -> np.ndarray:
    """float32 ``[rows, dim]`` -> aligned float16 bits (uint16), rounded as the packer does."""
    from .._native import _pack

    dst = aligned_empty(f32.shape, np.uint16)
    _pack.to_half_bits(f32.reshape(-1), "float16", dst.reshape(-1))
    return dst


def _packed_layout(
    expected: dict[str, tuple[int, ...]], dtype: str
) -> dict[str, tuple[str, tuple[int, ...]]]:
    """{name: (numpy dtype name, shape)} of the entries :func:`load_weights` converts at read
    time (and caches): the packed matrices, and the embedding table in a compact model."""
    out = {}
    if side_storage(dtype) == "float16" and EMBEDDING_TABLE_KEY in expected:
        out[EMBEDDING_TABLE_KEY] = ("uint16", expected[EMBEDDING_TABLE_KEY])
    for key, shape in expected.items():
        if not is_packed_key(key):
            continue
        storage = _storage_of(key, dtype)
        panels = -(-shape[0] // PANEL)
        out[key] = (np.dtype(_STORAGE_NP[storage]).name, (panels, shape[1], PANEL))
        if storage == "int8":
            out[key + ".scale"] = ("float32", (panels * PANEL,))
    return out


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
