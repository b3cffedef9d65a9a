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
wants (damaged, foreign, or an older format) is ignored and rewritten. The metadata also holds a
checksum of every tensor's bytes (:func:`checksum`: the sum and the xor of its 64-bit words,
~50 ms for 340 MB, a memory-bandwidth pass): bytes changed on disk after the write are caught
when the tensors are read, logged, and the weights packed again. The file is replaced
atomically (temp file + rename), never rewritten in place; a cache that cannot be written only
costs the speed-up.

The folder is bounded: after each write the least recently used entries (a load that uses an
entry touches it) are removed until the folder holds at most ``POCKET_TTS_PACKED_CACHE_MAX_MB``
(default 2048) megabytes; the entry just written always stays. ``pocket-tts clear-cache``
empties it (:func:`clear`).

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
VERSION = 3
#: Default bound of the cache folder, in megabytes.
DEFAULT_MAX_MB = 2048
#: The metadata entry with the tensors' checksums (not part of an entry's identity).
CHECKSUMS = "checksums"

__all__ = [
    "CacheEntry",
    "cache_entry",
    "checksum",
    "clear",
    "folder",
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


def checksum(a: np.ndarray) -> str:
    """Sum and xor of the 64-bit words of ``a``'s bytes (the tail zero-padded), in hex: one pass
    at memory speed. Not cryptographic: it catches bytes damaged on disk, not tampering."""
    raw = np.ascontiguousarray(a).reshape(-1).view(np.uint8)
    whole = raw.size // 8 * 8
    words = raw[:whole].view(np.uint64)
    tail = np.zeros(8, np.uint8)
    tail[: raw.size - whole] = raw[whole:]
    total = int(words.sum(dtype=np.uint64)) + int(tail.view(np.uint64)[0])
    xor = int(np.bitwise_xor.reduce(words)) if words.size else 0
    xor ^= int(tail.view(np.uint64)[0])
    return f"{total % 2**64:016x}{xor:016x}"


def folder() -> Path:
    """The packed-weights cache folder."""
    from ..hub import cache_dir

    return cache_dir() / "packed"


def cache_entry(
    weights_path: str | os.PathLike, dtype: str, table: list[TensorEntry], stored: StoredLayout
) -> CacheEntry | None:
    """The cache entry of ``weights_path`` loaded as ``dtype`` (None: the cache is disabled)."""
    if os.environ.get("POCKET_TTS_PACKED_CACHE", "1").strip().lower() in ("0", "false", "off"):
        return None
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
    return CacheEntry(folder() / f"{name}.safetensors", metadata)


def load_packed(entry: CacheEntry, want: StoredLayout) -> dict[str, np.ndarray] | None:
    """The cached arrays ``{name: array}`` if ``entry``'s file has its metadata and holds
    exactly ``want``, else None. Each array is read (``pread``, on two threads) into fresh
    64-byte-aligned memory."""
    try:
        with SafetensorsFile(entry.path) as f:
            found = f.header.tensors
            meta = dict(f.metadata or {})
            sums = meta.pop(CHECKSUMS, None)
            if meta != entry.metadata or set(found) != set(want):
                return None
            for name, (st, shape) in want.items():
                if found[name].dtype != st.safetensors or found[name].shape != shape:
                    return None
            out = {name: aligned_empty(shape, st.element) for name, (st, shape) in want.items()}
            f.read_tensors_into(out)
    except FileNotFoundError:
        return None
    except (OSError, SafetensorsError) as exc:
        logger.info("ignoring the packed-weights cache %s: %s", entry.path, exc)
        return None
    try:
        expected = json.loads(sums) if sums is not None else None
    except ValueError:
        expected = None
    bad = (
        "no checksums"
        if not isinstance(expected, dict)
        else next((n for n in want if expected.get(n) != checksum(out[n])), None)
    )
    if bad is not None:
        logger.warning(
            "the packed-weights cache %s is damaged (%s); packing the weights again",
            entry.path,
            bad if bad == "no checksums" else f"tensor {bad!r} does not match its checksum",
        )
        return None
    try:
        os.utime(entry.path)  # most recently used: the last to be evicted
    except OSError:
        pass
    return out


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
        sums = json.dumps({name: checksum(a) for name, a in arrays.items()}, sort_keys=True)
        write_safetensors(entry.path, tensors, metadata={**entry.metadata, CHECKSUMS: sums})
    except (OSError, SafetensorsError) as exc:
        logger.warning("could not write the packed-weights cache %s: %s", entry.path, exc)
        return
    evict(keep=entry.path)


def _max_bytes() -> int:
    text = os.environ.get("POCKET_TTS_PACKED_CACHE_MAX_MB", str(DEFAULT_MAX_MB))
    try:
        mb = float(text)
    except ValueError:
        logger.warning(
            "POCKET_TTS_PACKED_CACHE_MAX_MB=%r is not a number: using %d", text, DEFAULT_MAX_MB
        )
        mb = DEFAULT_MAX_MB
    return max(0, int(mb * 2**20))


def _entries() -> list[tuple[float, int, Path]]:
    """(last use, bytes, path) of every cache file, oldest first."""
    out = []
    try:
        paths = list(folder().glob("*.safetensors"))
    except OSError:
        return []
    for p in paths:
        try:
            st = p.stat()
        except OSError:
            continue
        out.append((st.st_mtime, st.st_size, p))
    return sorted(out)


def evict(keep: Path | None = None) -> int:
    """Remove the least recently used entries until the folder fits its bound (``keep`` is
    never removed); returns the bytes freed."""
    entries = _entries()
    total = sum(size for _, size, _ in entries)
    limit = _max_bytes()
    freed = 0
    for _, size, path in entries:
        if total <= limit:
            break
        if keep is not None and path == keep:
            continue
        try:
            path.unlink()
        except OSError:
            continue
        total -= size
        freed += size
        logger.info("packed-weights cache: removed %s (least recently used)", path.name)
    return freed


def clear() -> tuple[int, int]:
    """Remove every entry (and left-over temp files); returns (files, bytes) removed."""
    files = size = 0
    try:
        paths = [p for p in folder().iterdir() if p.is_file()]
    except OSError:
        return 0, 0
    for p in paths:
        if not (p.suffix == ".safetensors" or p.name.endswith(".tmp")):
            continue
        try:
            n = p.stat().st_size
            p.unlink()
        except OSError:
            continue
        files += 1
        size += n
    return files, size
