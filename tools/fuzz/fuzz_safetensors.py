"""Fuzz the safetensors reader: headers, offsets and dtypes of checkpoints and voice states."""

from __future__ import annotations

import sys

from common import main, scratch_file

try:  # instrument the package's Python code for coverage when fuzzing
    import atheris

    with atheris.instrument_imports():
        from pocket_tts.checkpoint.safetensors import read_header, read_safetensors
except ImportError:
    from pocket_tts.checkpoint.safetensors import read_header, read_safetensors


def one_input(data: bytes) -> None:
    path = scratch_file(data, ".safetensors")
    header = read_header(path)
    tensors = read_safetensors(path, raw_bf16=True)
    assert set(tensors) == set(header.tensors)
    for name, t in header.tensors.items():
        assert tuple(tensors[name].shape) == tuple(t.shape), name


if __name__ == "__main__":
    main(one_input)
    sys.exit(0)
