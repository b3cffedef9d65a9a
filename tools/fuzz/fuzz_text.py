"""Fuzz text preparation, the tokenizer and the chunker with arbitrary Unicode: every chunk
must come out within max_tokens tokens, whatever the text."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from common import main

try:
    import atheris

    with atheris.instrument_imports():
        from pocket_tts.text.prepare import chunk_text_for_generation
        from pocket_tts.text.tokenizer import SentencePieceTokenizer
except ImportError:
    from pocket_tts.text.prepare import chunk_text_for_generation
    from pocket_tts.text.tokenizer import SentencePieceTokenizer

SHARED = Path(os.environ.get("POCKET_TTS_SHARED_DATA", Path(__file__).parents[3] / "shared/data"))
TOKENIZER = SentencePieceTokenizer(SHARED / "tokenizer.model")


def one_input(data: bytes) -> None:
    if len(data) < 2:
        return
    max_tokens = 1 + data[0] % 64
    text = data[1:].decode("utf-8", errors="surrogatepass")  # lone surrogates included
    chunks = chunk_text_for_generation(TOKENIZER, text, max_tokens, split_oversized=True)
    for c in chunks:
        n = len(TOKENIZER.encode(c.text))
        # A single character whose preparation adds a capital and a period may exceed a tiny
        # limit; anything longer must fit.
        assert n <= max_tokens or len(c.text.strip()) <= 2, (max_tokens, n, c.text)


if __name__ == "__main__":
    main(one_input, expected=(ValueError, TypeError))
    sys.exit(0)
