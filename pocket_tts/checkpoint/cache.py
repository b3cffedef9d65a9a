"""On-disk cache of the tensors the loader converts (packed matrices, narrowed tables), read back
on later loads.

Packing converts and transposes every matrix the flow LM streams per frame (~300 MB in float32):
most of a load's time. The packed form depends only on the checkpoint file, the storage dtype
and the tensor table, so the first load writes it to ``<cache>/packed/<key>.safetensors`` (on a
background thread) and later loads read it straight into place, with no conversion.

The file is a plain safetensors file, written and read by :mod:`.safetensors` (F32 / F16 / BF16
/ I8 tensors named by checkpoint key, ``<key>.scale`` for int8 scales); its ``__metadata__``
records what it was made from. Its tensors are read, not memory-mapped, on purpose: fresh
anonymous memory gets transparent huge pages, and the per-frame GEMV streams its weights
markedly slower through a file mapping's 4 KB pages (TLB misses; measured 37 vs 22 ms per fp32
frame). They are read into 64-byte-aligned arrays (the alignment the kernels want), in 4 MiB
pieces on two threads; the offsets inside the file need no alignment for that, so the file is
laid out exactly as the official library writes it.

``<key>`` hashes the identity in the metadata: the checkpoint's real path, size and mtime, the
dtype, a hash of the tensor table (:func:`layout_hash`) and this format's version; a changed
checkpoint gets a new entry, and a file whose metadata or tensors differ from what the load
wants (damaged, foreign, or an older format) is ignored and rewritten. The file is replaced
atomically (temp file + rename), never rewritten in place; a cache that cannot be written only
costs the speed-up.

Set ``POCKET_TTS_PACKED_CACHE=0`` to disable it; the folder is ``$POCKET_TTS_CACHE_DIR/packed``
(default ``~/.cache/pocket_tts/packed``).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .layout import TensorEntry
from .safetensors import RawTensor, SafetensorsError, SafetensorsFile, write_safetensors
from .storage import StorageDtype, aligned_empty

logger = logging.getLogger("pocket_tts")

#: Version of the cache's content (bump when the stored form of a tensor changes).
VERSION = 2

__all__ = [
    "CacheEntry",
    "cache_entry",
    "layout_hash",
    "load_packed",
    "save_packed",
    "save_packed_in_background",
    "wait_for_saves",
]

#: ``{name: (storage dtype, shape)}`` of the tensors a load converts (and caches).
StoredLayout = dict[str, tuple[StorageDtype, tuple[int, ...]]]


@dataclass(frozen=True)
class CacheEntry:
    """Where the converted tensors of one checkpoint in one dtype are cached, and the
    ``__metadata__`` that identifies them."""

    path: Path
    metadata: dict[str, str]


def layout_hash(table: list[TensorEntry], stored: StoredLayout) -> str:
    """Hash of the tensor table (keys, shapes, storage classes) and of the stored form of the
    converted tensors (names, dtypes, shapes)."""
    rows = [[e.key, list(e.shape), e.storage.value] for e in table]
    rows += [[name, st.safetensors, list(shape)] for name, (st, shape) in stored.items()]
    return hashlib.sha256(json.dumps(rows).encode()).hexdigest()


def cache_entry(
    weights_path: str | os.PathLike, dtype: str, table: list[TensorEntry], stored: StoredLayout
) -> CacheEntry | None:
    """The cache entry of ``weights_path`` loaded as ``dtype`` (None: the cache is disabled)."""
    if os.environ.get("POCKET_TTS_PACKED_CACHE", "1").strip().lower() in ("0", "false", "off"):
        return None
    from ..hub import cache_dir

    real = os.path.realpath(weights_path)
    st = os.stat(real)
    metadata = {
        "format": "pocket_tts packed weights",
        "version": str(VERSION),
        "source": real,
        "source_size": str(st.st_size),
        "source_mtime_ns": str(st.st_mtime_ns),
        "dtype": dtype,
        "layout": layout_hash(table, stored),
    }
    name = hashlib.sha256(json.dumps(metadata, sort_keys=True).encode()).hexdigest()[:40]
    return CacheEntry(cache_dir() / "packed" / f"{name}.safetensors", metadata)


def load_packed(entry: CacheEntry, want: StoredLayout) -> dict[str, np.ndarray] | None:
    """The cached arrays ``{name: array}`` if ``entry``'s file has its metadata and holds
    exactly ``want``, else None. Each array is read (``pread``, on two threads) into fresh
    64-byte-aligned memory."""
    try:
        with SafetensorsFile(entry.path) as f:
            found = f.header.tensors
            if f.metadata != entry.metadata or set(found) != set(want):
                return None
            for name, (st, shape) in want.items():
                if found[name].dtype != st.safetensors or found[name].shape != shape:
                    return None
            out = {name: aligned_empty(shape, st.element) for name, (st, shape) in want.items()}
            f.read_tensors_into(out)
            return out
    except FileNotFoundError:
        return None
    except (OSError, SafetensorsError) as exc:
        logger.info("ignoring the packed-weights cache %s: %s", entry.path, exc)
        return None


#: Background writes not yet joined (see save_packed_in_background).
_pending: list[threading.Thread] = []
_pending_lock = threading.Lock()


def save_packed_in_background(
    entry: CacheEntry, arrays: dict[str, np.ndarray], layout: StoredLayout
) -> threading.Thread:
    """:func:`save_packed` on a thread of its own, so that a first load returns once the
    weights are packed: writing ~340 MB (float32) can take seconds when the disk is busy
    (measured 4.5 s here). The arrays are the model's own weights, written as they are (no
    copy). The thread is not a daemon: the interpreter waits for it at exit, so the cache is
    complete for the next process (an interrupted write leaves no entry, only a temp file)."""
    thread = threading.Thread(
        target=save_packed,
        args=(entry, arrays, layout),
        name="pocket-tts-cache-write",
        daemon=False,
    )
    with _pending_lock:
        _pending[:] = [t for t in _pending if t.is_alive()]
        _pending.append(thread)
    thread.start()
    return thread


def wait_for_saves() -> None:
    """Block until every background cache write started so far has finished."""
    with _pending_lock:
        threads = list(_pending)
    for t in threads:
        t.join()


def save_packed(entry: CacheEntry, arrays: dict[str, np.ndarray], layout: StoredLayout) -> None:
    """Write ``arrays`` (stored as ``layout`` says) to ``entry`` atomically (temp file +
    rename, by :func:`.safetensors.write_safetensors`); failures only log."""
    try:
        entry.path.parent.mkdir(parents=True, exist_ok=True)
        tensors = {name: RawTensor(layout[name][0].safetensors, a) for name, a in arrays.items()}
        write_safetensors(entry.path, tensors, metadata=entry.metadata)
    except (OSError, SafetensorsError) as exc:
        logger.warning("could not write the packed-weights cache %s: %s", entry.path, exc)
