"""On-disk cache of the packed flow-LM matrices, read back on later loads.

Packing converts and transposes every matrix the flow LM streams per frame (~300 MB in float32):
most of a load's time. The packed form depends only on the checkpoint file and the storage
dtype, so the first load writes it to ``<cache>/packed/<key>.bin`` (on a background thread)
and later loads read it straight into place (``preadv`` on two threads, no conversion). It is
read, not memory-mapped, on purpose: fresh anonymous memory gets transparent huge pages, and
the per-frame GEMV streams its weights markedly slower through a file mapping's 4 KB pages (TLB
misses; measured 37 vs 22 ms per fp32 frame). The file is replaced atomically, never rewritten
in place. ``<key>`` hashes the checkpoint's real path, size and mtime, the dtype, the tensor
layout and this format's version: a changed checkpoint gets a new entry.

Set ``POCKET_TTS_PACKED_CACHE=0`` to disable it; the folder is ``$POCKET_TTS_CACHE_DIR/packed``
(default ``~/.cache/pocket_tts/packed``). A missing, truncated or foreign file is ignored and
rewritten; a cache that cannot be written only costs the speed-up.

File layout: ``MAGIC``, u64 little-endian header length, JSON header ``{"tensors": {name:
[dtype, shape, offset]}}``, then each tensor at a 64-byte-aligned offset.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import struct
import tempfile
import threading
from collections import deque
from pathlib import Path

import numpy as np

logger = logging.getLogger("pocket_tts")

MAGIC = b"PTTSPACK"
VERSION = 1
_ALIGN = 64
_DTYPES = {"float32": np.float32, "uint16": np.uint16, "int8": np.int8}

__all__ = [
    "cache_file",
    "load_packed",
    "save_packed",
    "save_packed_in_background",
    "wait_for_saves",
]


def cache_file(
    weights_path: str | os.PathLike, dtype: str, layout: dict[str, tuple[int, ...]]
) -> Path | None:
    """Where the packed matrices of ``weights_path`` in ``dtype`` are cached (None: disabled)."""
    if os.environ.get("POCKET_TTS_PACKED_CACHE", "1").strip().lower() in ("0", "false", "off"):
        return None
    from ..hub import cache_dir

    real = os.path.realpath(weights_path)
    st = os.stat(real)
    ident = json.dumps(
        [VERSION, real, st.st_size, st.st_mtime_ns, dtype, sorted(layout.items())]
    ).encode()
    return cache_dir() / "packed" / (hashlib.sha256(ident).hexdigest()[:40] + ".bin")


def load_packed(path: Path, want: dict[str, tuple[str, tuple[int, ...]]]) -> dict | None:
    """The cached arrays ``{name: array}`` if ``path`` holds exactly ``want`` ({name: (numpy
    dtype name, shape)}), else None. Each array is read (``preadv``, on two threads) into fresh
    64-byte-aligned memory."""
    from .loader import aligned_empty

    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return None
    try:
        size = os.fstat(fd).st_size
        head = os.pread(fd, 16, 0)
        if len(head) != 16 or head[:8] != MAGIC:
            return None
        (n,) = struct.unpack("<Q", head[8:])
        if n > min(size, 1 << 24):
            return None
        header = json.loads(os.pread(fd, n, 16))
        tensors = header.get("tensors") if isinstance(header, dict) else None
        if not isinstance(tensors, dict) or set(tensors) != set(want):
            return None
        out, pieces = {}, []
        for name, (dt, shape) in want.items():
            entry = tensors[name]
            if not (isinstance(entry, list) and len(entry) == 3) or entry[0] != dt:
                return None
            if tuple(entry[1]) != tuple(shape) or not isinstance(entry[2], int):
                return None
            offset, np_dtype = entry[2], np.dtype(_DTYPES[dt])
            nbytes = int(np.prod(shape, dtype=np.int64)) * np_dtype.itemsize
            if offset % _ALIGN or offset < 16 + n or offset + nbytes > size:
                return None
            arr = aligned_empty(tuple(shape), np_dtype)
            view = memoryview(arr).cast("B")
            for start in range(0, nbytes, _READ_PIECE):
                pieces.append((view[start : start + _READ_PIECE], offset + start))
            out[name] = arr
        return out if _read_pieces(fd, pieces) else None
    except (OSError, ValueError):
        return None
    finally:
        os.close(fd)


#: Bytes per read of the parallel load (each read also faults in its fresh pages).
_READ_PIECE = 4 << 20


def _read_pieces(fd: int, pieces: list[tuple[memoryview, int]]) -> bool:
    """Fill every (buffer, file offset) piece, on two threads: a read from the page cache is
    CPU-bound (faulting in and zeroing the fresh pages, then the copy), so two cores halve it.
    False on a short read or an I/O error."""
    todo = deque(pieces)
    failed: list[BaseException | None] = []

    def work() -> None:
        try:
            while not failed:
                try:
                    view, offset = todo.popleft()
                except IndexError:
                    return
                done = 0
                while done < len(view):
                    got = os.preadv(fd, [view[done:]], offset + done)
                    if got <= 0:
                        failed.append(None)
                        return
                    done += got
        except OSError as exc:
            failed.append(exc)

    helper = threading.Thread(target=work, name="pocket-tts-load", daemon=True)
    helper.start()
    work()
    helper.join()
    return not failed


#: Background writes not yet joined (see save_packed_in_background).
_pending: list[threading.Thread] = []
_pending_lock = threading.Lock()


def save_packed_in_background(path: Path, arrays: dict[str, np.ndarray]) -> threading.Thread:
    """:func:`save_packed` on a thread of its own, so that a first load returns once the
    weights are packed: writing ~340 MB (float32) can take seconds when the disk is busy
    (measured 4.5 s here). The arrays are the model's own read-only weights, written as they
    are (no copy). The thread is not a daemon: the interpreter waits for it at exit, so the
    cache is complete for the next process (an interrupted write leaves no entry, only a
    temp file)."""
    thread = threading.Thread(
        target=save_packed, args=(path, arrays), name="pocket-tts-cache-write", daemon=False
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


def save_packed(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """Write ``arrays`` to ``path`` atomically (temp file + rename); failures only log."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        entries, offset = {}, 0
        for name, a in arrays.items():
            entries[name] = [a.dtype.name, list(a.shape), offset]
            offset += -(-a.nbytes // _ALIGN) * _ALIGN

        # Offsets are relative to the data start until the header size is known.
        def header_bytes(base: int) -> bytes:
            t = {k: [d, s, base + o] for k, (d, s, o) in entries.items()}
            return json.dumps({"tensors": t}).encode()

        n = len(header_bytes(0)) + 24 * len(entries) + 64  # room for the offsets' digits
        base = -(-(16 + n) // _ALIGN) * _ALIGN
        head = header_bytes(base)
        assert len(head) <= base - 16
        head += b" " * (base - 16 - len(head))
        fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(MAGIC + struct.pack("<Q", len(head)) + head)
                for name, a in arrays.items():
                    f.seek(entries[name][2] + base)
                    f.write(np.ascontiguousarray(a).data)
                f.truncate(base + offset)
            os.replace(tmp, path)
        except BaseException:
            os.unlink(tmp)
            raise
    except OSError as exc:
        logger.warning("could not write the packed-weights cache %s: %s", path, exc)
