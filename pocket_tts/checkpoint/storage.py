"""How weights are held in memory: the storage dtypes, the storage classes of checkpoint tensors,
the panel layout of packed matrices, and aligned buffers.

One table of storage dtypes serves the whole package (:data:`STORAGE_DTYPES`): each name (the
``dtype=`` a model is loaded with, and the storage of one tensor) with the numpy type of its
stored elements and its safetensors dtype (the packed-weights cache). The C side maps the same
names to gemm.h's element codes (``PT_F32`` ...) in the native module; Python never handles
those codes.

A :class:`StorageClass` says how one checkpoint tensor is stored for a model loaded in a given
dtype; :mod:`.layout` gives every tensor its class, the loader and the kernels' binding code
follow it.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = [
    "ALIGNMENT",
    "COMPACT_CONV_MIN_WEIGHTS",
    "PANEL",
    "STORAGE_DTYPES",
    "StorageClass",
    "StorageDtype",
    "aligned_empty",
    "check_model_dtype",
    "panel_shape",
]


@dataclass(frozen=True)
class StorageDtype:
    """One storage format of weights."""

    name: str  # "float32", "float16", "bfloat16", "int8"
    element: np.dtype  # numpy type of the stored elements (16-bit floats as uint16 bits)
    safetensors: str  # safetensors dtype of the same bits


#: Every storage dtype, by name. ``float16``/``bfloat16`` hold raw 16-bit patterns as uint16
#: (numpy has no bfloat16, and the kernels read bits); ``int8`` matrices come with a float32
#: per-row scale (see :mod:`.loader`).
STORAGE_DTYPES: dict[str, StorageDtype] = {
    d.name: d
    for d in (
        StorageDtype("float32", np.dtype(np.float32), "F32"),
        StorageDtype("float16", np.dtype(np.uint16), "F16"),
        StorageDtype("bfloat16", np.dtype(np.uint16), "BF16"),
        StorageDtype("int8", np.dtype(np.int8), "I8"),
    )
}


def check_model_dtype(dtype: str) -> str:
    """``dtype`` if it names a storage dtype, else ``ValueError`` listing the valid ones."""
    if dtype in STORAGE_DTYPES:
        return dtype
    raise ValueError(
        f"unknown weight dtype {dtype!r}; supported: {', '.join(map(repr, STORAGE_DTYPES))}"
    )


#: SEANet convs with at least this many weights are stored like the codec's matrices (float16
#: in compact models): the low-rate convs, whose weights stream through the cache every frame.
#: The small high-rate ones stay float32: there, widening would cost more than it saves.
COMPACT_CONV_MIN_WEIGHTS = 1 << 18


class StorageClass(enum.Enum):
    """How a checkpoint tensor is stored; :meth:`dtype` gives its storage for a model dtype.

    The per-frame matrices of the flow LM are packed at load time in the model's dtype (the
    per-frame GEMV's bytes); an int8 model keeps an fp16 flow head (it writes the latent
    directly: int8 there costs ~3 dB of latent SNR for ~10 % fewer bytes per frame). The large
    weights outside that stream (Mimi's transformer matrices and large convs, streamed by every
    decoded frame, and the text-embedding table) are float32 in float32 models and float16 in
    every compact one: the most precise 16-bit format, and these weights have no values beyond
    its range.
    """

    #: float32 as in the file: vectors, norms, biases, the small matrices and convs the
    #: kernels' binding re-lays out itself.
    FLOAT32 = "float32"
    #: A flow-LM transformer matrix: packed panels in the model dtype.
    LM_MATRIX = "lm-matrix"
    #: A flow-head Linear weight: packed panels in the model dtype, float16 in int8 models.
    HEAD_MATRIX = "head-matrix"
    #: A Mimi transformer matrix: packed panels, float16 in compact models.
    CODEC_MATRIX = "codec-matrix"
    #: The text-embedding table: rows ``[n_bins + 1, dim]`` (not packed), float16 in compact
    #: models.
    EMBEDDING_TABLE = "embedding-table"
    #: A SEANet conv of at least :data:`COMPACT_CONV_MIN_WEIGHTS` weights: loaded float32 (the
    #: codec re-lays it out), stored by the codec's binding in float16 in compact models.
    CODEC_CONV = "codec-conv"

    def dtype(self, model_dtype: str) -> str:
        """Storage dtype name of a tensor of this class in a model loaded as ``model_dtype``."""
        check_model_dtype(model_dtype)
        if self is StorageClass.FLOAT32:
            return "float32"
        if self is StorageClass.LM_MATRIX:
            return model_dtype
        if self is StorageClass.HEAD_MATRIX:
            return "float16" if model_dtype == "int8" else model_dtype
        return "float32" if model_dtype == "float32" else "float16"

    @property
    def packed(self) -> bool:
        """True when the loader returns the tensor packed in panels (:func:`panel_shape`)."""
        return self in (
            StorageClass.LM_MATRIX,
            StorageClass.HEAD_MATRIX,
            StorageClass.CODEC_MATRIX,
        )

    def converted_at_load(self, model_dtype: str) -> bool:
        """True when the loader returns the tensor in another form than the file's float32
        (packed, or narrowed): what the packed-weights cache holds."""
        if self.packed:
            return True
        return self is StorageClass.EMBEDDING_TABLE and self.dtype(model_dtype) != "float32"


#: Rows per panel of a packed matrix (``PT_PANEL`` in csrc/gemm.h).
PANEL = 16


def panel_shape(shape: tuple[int, ...]) -> tuple[int, int, int]:
    """Shape ``[ceil(out/16), in, 16]`` of matrix ``[out, in]`` packed in panels."""
    out, n_in = shape
    return (-(-out // PANEL), n_in, PANEL)


#: Byte alignment of every array the loader returns (a cache line; AVX-512 wide).
ALIGNMENT = 64


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
