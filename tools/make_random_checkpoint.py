#!/usr/bin/env python3
"""Write a seeded random checkpoint (reference key layout) and a matching config.

    python tools/make_random_checkpoint.py --config english_2026-10 --seed 0 --out DIR \
        [--tokenizer /path/tokenizer.model]

writes DIR/<config>.safetensors and DIR/<config>.yaml (see pocket_tts.testing, which holds the
reusable code; this is a thin command-line front end). Needs only numpy and this package.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pocket_tts.testing import make_random_checkpoint  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    """Parse the command line, write the checkpoint and config, print their paths."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--config", required=True, help="packaged config name or path to a .yaml")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", required=True, type=Path, help="output folder")
    p.add_argument("--tokenizer", type=Path, help="local SentencePiece tokenizer.model to use")
    args = p.parse_args(argv)
    t0 = time.perf_counter()
    yaml_path, weights_path = make_random_checkpoint(
        args.config, args.seed, args.out, args.tokenizer
    )
    size = weights_path.stat().st_size / 1e6
    print(f"{yaml_path}\n{weights_path} ({size:.1f} MB, {time.perf_counter() - t0:.1f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
