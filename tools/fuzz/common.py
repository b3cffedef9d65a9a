"""Shared by the fuzz targets: run one target under atheris (coverage-guided, libFuzzer), or
replay its corpus once without atheris (what CI does, in seconds).

    python tools/fuzz/fuzz_text.py [libFuzzer flags] CORPUS_DIR      # fuzz (atheris)
    python tools/fuzz/fuzz_text.py --replay CORPUS_DIR               # every file once

A target is ``one_input(data: bytes) -> None``: it may raise only the errors its API documents
for bad input (``EXPECTED``); anything else, a hang or an unbounded allocation (libFuzzer's
``-rss_limit_mb`` / ``-timeout``) is a finding.
"""

from __future__ import annotations

import os
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

#: Errors a parser may raise on bad bytes: a clear message, never a crash.
EXPECTED: tuple[type[BaseException], ...] = (ValueError, TypeError, OSError)


def scratch_file(data: bytes, suffix: str) -> Path:
    """``data`` in a file of a per-process scratch folder (rewritten each input)."""
    folder = Path(tempfile.gettempdir()) / f"pocket-tts-fuzz-{os.getpid()}"
    folder.mkdir(exist_ok=True)
    path = folder / f"input{suffix}"
    path.write_bytes(data)
    return path


def guarded(target: Callable[[bytes], None], expected: tuple[type[BaseException], ...]):
    """``target`` with the documented errors swallowed (anything else propagates)."""

    def one_input(data: bytes) -> None:
        try:
            target(data)
        except expected:
            pass

    return one_input


def main(target: Callable[[bytes], None], expected=EXPECTED) -> None:
    """Fuzz with atheris, or ``--replay DIR...`` every corpus file once."""
    one_input = guarded(target, expected)
    if len(sys.argv) > 1 and sys.argv[1] == "--replay":
        n = 0
        for folder in sys.argv[2:]:
            for path in sorted(Path(folder).iterdir()):
                if path.is_file():
                    one_input(path.read_bytes())
                    n += 1
        print(f"{Path(sys.argv[0]).name}: replayed {n} inputs, no finding")
        return
    import atheris

    atheris.Setup(sys.argv, one_input)
    atheris.Fuzz()
