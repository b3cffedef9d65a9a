"""Fuzz the config loader: YAML syntax, keys, types and values."""

from __future__ import annotations

import sys

from common import main, scratch_file

try:
    import atheris

    with atheris.instrument_imports():
        from pocket_tts.config import load_config
except ImportError:
    from pocket_tts.config import load_config


def one_input(data: bytes) -> None:
    load_config(str(scratch_file(data, ".yaml")))


if __name__ == "__main__":
    main(one_input)
    sys.exit(0)
