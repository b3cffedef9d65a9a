"""BLAS thread control without extra dependencies.

The flow LM and the Mimi decoder each run on their own thread with single-threaded BLAS calls;
OpenBLAS's own worker pool would oversubscribe two cores (and spin), so it is limited to one
thread while we generate, and restored afterwards. Works on every OpenBLAS loaded in the process
(scipy's and numpy's are separate libraries with separate pools)."""

from __future__ import annotations

import ctypes
import threading
from collections.abc import Iterator
from contextlib import contextmanager

_SET = (
    "openblas_set_num_threads",
    "scipy_openblas_set_num_threads",
    "scipy_openblas_set_num_threads64_",
    "openblas_set_num_threads64_",
)
_GET = (
    "openblas_get_num_threads",
    "scipy_openblas_get_num_threads",
    "scipy_openblas_get_num_threads64_",
    "openblas_get_num_threads64_",
)
_lock = threading.Lock()
_depth = 0
_saved: list[tuple[object, object, int]] = []


def _openblas_handles() -> list[tuple[object, object]]:
    """(setter, getter) pairs of every OpenBLAS library mapped into this process."""
    import numpy  # noqa: F401  (make sure numpy's and scipy's BLAS are loaded)
    import scipy.linalg  # noqa: F401

    paths = set()
    try:
        with open("/proc/self/maps") as f:
            for line in f:
                path = line.rstrip().split(" ")[-1]
                if "openblas" in path.lower() and ".so" in path:
                    paths.add(path)
    except OSError:
        return []
    handles = []
    for path in sorted(paths):
        try:
            lib = ctypes.CDLL(path)
        except OSError:
            continue
        setter = next((getattr(lib, n) for n in _SET if hasattr(lib, n)), None)
        getter = next((getattr(lib, n) for n in _GET if hasattr(lib, n)), None)
        if setter is not None and getter is not None:
            getter.restype = ctypes.c_int
            handles.append((setter, getter))
    return handles


def blas_threads() -> list[int]:
    """Current thread count of each OpenBLAS in the process."""
    return [int(g()) for _, g in _openblas_handles()]


@contextmanager
def limit_blas_threads(n: int = 1) -> Iterator[None]:
    """Limit every OpenBLAS pool to ``n`` threads inside the block (re-entrant)."""
    global _depth
    with _lock:
        if _depth == 0:
            _saved.clear()
            for setter, getter in _openblas_handles():
                _saved.append((setter, getter, int(getter())))
                setter(ctypes.c_int(n))
        _depth += 1
    try:
        yield
    finally:
        with _lock:
            _depth -= 1
            if _depth == 0:
                for setter, _, old in _saved:
                    setter(ctypes.c_int(old))
