"""Text tokenizers: SentencePiece ``.model`` files and HuggingFace ``tokenizer.json`` files.

Mirrors ``pocket_tts/modules/text_conditioner.py`` of the reference without torch:

* :class:`SentencePieceTokenizer` wraps ``sentencepiece`` (``encode(text, out_type=int)``, no
  BOS/EOS);
* :class:`JsonTokenizer` wraps the optional ``tokenizers`` package (``encode(text).ids``);
* :func:`build_tokenizer` picks one with the reference's rule and checks that the vocabulary
  size equals the config's ``n_bins``.

Paths must be local files: ``hf://`` and ``https://`` locations are resolved (downloaded) by
another module before reaching here.
"""

from __future__ import annotations

import logging
import os
from array import array
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..hub import is_remote_path, location_path
from .prepare import check_unicode

__all__ = [
    "JsonTokenizer",
    "SentencePieceTokenizer",
    "Tokenizer",
    "TokenizerError",
    "build_tokenizer",
    "tokenizer_kind_for",
]

logger = logging.getLogger(__name__)


class TokenizerError(ValueError):
    """A tokenizer file that cannot be used: corrupt, or with the wrong vocabulary size."""


def _local_file(path: str | os.PathLike[str], what: str) -> Path:
    if is_remote_path(path):
        raise TokenizerError(
            f"{what} path {path!r} is remote; download it first (the config module keeps "
            "hf:// and https:// locations as strings for the download helper to resolve)"
        )
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"{what} path must be a str or os.PathLike, got {type(path).__name__}")
    local = Path(path).expanduser()
    if not local.exists():
        raise FileNotFoundError(f"{what} file not found: {local}")
    if not local.is_file():
        raise TokenizerError(f"{what} path is not a file: {local}")
    return local


def _check_text(text: Any) -> str:
    if not isinstance(text, str):
        raise TypeError(f"text must be a str, got {type(text).__name__}")
    check_unicode(text)
    return text


def _check_ids(ids: Iterable[Any], vocab_size: int, compact: bool = False) -> Sequence[int]:
    """Validated token ids as a list; with ``compact``, an ``array('l')`` (or 1-D integer
    ndarray) is checked in place and returned as an ``array('l')``: a long text's ids then
    never become one Python int each (SentencePiece decodes any sequence)."""
    if isinstance(ids, (str, bytes)):
        raise TypeError("token ids must be a sequence of ints, not a string")
    if compact and (
        isinstance(ids, array)
        and ids.typecode in "bBhHiIlLqQ"
        or isinstance(ids, np.ndarray)
        and ids.ndim == 1
        and np.issubdtype(ids.dtype, np.integer)
    ):
        values = np.asarray(ids)
        if values.size and (int(values.min()) < 0 or int(values.max()) >= vocab_size):
            bad = int(values.min()) if int(values.min()) < 0 else int(values.max())
            raise ValueError(f"token id {bad} is out of range for a vocabulary of {vocab_size}")
        return ids if isinstance(ids, array) and ids.typecode == "l" else array("l", values)
    if isinstance(ids, np.ndarray):
        if ids.ndim != 1 or not np.issubdtype(ids.dtype, np.integer):
            raise TypeError(f"token ids must be a 1-D integer array, got {ids.dtype} {ids.shape}")
        ids = ids.tolist()
    out = []
    for i in ids:
        if isinstance(i, bool) or not isinstance(i, (int, np.integer)):
            raise TypeError(f"token ids must be ints, got {type(i).__name__} {i!r}")
        i = int(i)
        if not 0 <= i < vocab_size:
            raise ValueError(f"token id {i} is out of range for a vocabulary of {vocab_size}")
        out.append(i)
    return out


class SentencePieceTokenizer:
    """A SentencePiece model (``tokenizer.model``).

    ``encode`` gives ``sp.encode(text, out_type=int)``: no BOS/EOS is added. When ``n_bins`` is
    given, the vocabulary size must equal it.
    """

    kind = "sentencepiece"

    def __init__(self, path: str | os.PathLike[str], n_bins: int | None = None):
        import sentencepiece

        local = _local_file(path, "SentencePiece tokenizer")
        logger.info("Loading sentencepiece tokenizer from %s", local)
        self.path = local
        try:
            self.sp = sentencepiece.SentencePieceProcessor(model_file=str(local))
        except (RuntimeError, OSError) as exc:
            raise TokenizerError(
                f"could not load SentencePiece model {local} (corrupt or not a .model file?): {exc}"
            ) from exc
        _check_vocab(self.vocab_size, n_bins, local)

    @property
    def vocab_size(self) -> int:
        """Number of pieces in the vocabulary."""
        return int(self.sp.vocab_size())

    def encode(self, text: str) -> list[int]:
        """Token ids of ``text`` (no BOS/EOS)."""
        ids = self.sp.encode(_check_text(text), out_type=int)
        return ids if isinstance(ids, list) else list(ids)  # no copy of a long text's ids

    def decode(self, ids: Iterable[int]) -> str:
        """Text of a sequence of token ids (list, tuple or 1-D integer array)."""
        return self.sp.decode(_check_ids(ids, self.vocab_size, compact=True))

    def __call__(self, text: str) -> np.ndarray:
        """Token ids as an int64 array of shape ``[1, T]`` (the reference returns a tensor)."""
        return np.asarray(self.encode(text), dtype=np.int64).reshape(1, -1)

    def __repr__(self) -> str:
        return f"SentencePieceTokenizer({str(self.path)!r}, vocab_size={self.vocab_size})"


def _import_tokenizers() -> Any:
    try:
        import tokenizers
    except ImportError as exc:
        raise ImportError(
            "reading a tokenizer.json needs the optional 'tokenizers' package: "
            "pip install 'pocket-tts-fast[json-tokenizer]' (or pip install tokenizers)"
        ) from exc
    return tokenizers


class JsonTokenizer:
    """A HuggingFace ``tokenizer.json`` (needs the optional ``tokenizers`` package).

    The released configs point at JSON files converted from the SentencePiece models, which give
    the same ids. ``encode`` returns ``tokenizer.encode(text).ids``.
    """

    kind = "tokenizers"

    def __init__(self, path: str | os.PathLike[str], n_bins: int | None = None):
        tokenizers = _import_tokenizers()
        local = _local_file(path, "tokenizer.json")
        logger.info("Loading tokenizers json from %s", local)
        self.path = local
        try:
            self.tokenizer = tokenizers.Tokenizer.from_file(str(local))
        except Exception as exc:  # tokenizers raises its own Exception subclass
            raise TokenizerError(
                f"could not load tokenizer.json {local} (corrupt or not a tokenizers file?): {exc}"
            ) from exc
        _check_vocab(self.vocab_size, n_bins, local)

    @property
    def vocab_size(self) -> int:
        """Number of tokens in the vocabulary (including added tokens)."""
        return int(self.tokenizer.get_vocab_size())

    def encode(self, text: str) -> list[int]:
        """Token ids of ``text``."""
        return list(self.tokenizer.encode(_check_text(text)).ids)

    def decode(self, ids: Iterable[int]) -> str:
        """Text of a sequence of token ids (list, tuple or 1-D integer array)."""
        return self.tokenizer.decode(_check_ids(ids, self.vocab_size))

    def __call__(self, text: str) -> np.ndarray:
        """Token ids as an int64 array of shape ``[1, T]`` (the reference returns a tensor)."""
        return np.asarray(self.encode(text), dtype=np.int64).reshape(1, -1)

    def __repr__(self) -> str:
        return f"JsonTokenizer({str(self.path)!r}, vocab_size={self.vocab_size})"


Tokenizer = SentencePieceTokenizer | JsonTokenizer


def _check_vocab(vocab_size: int, n_bins: int | None, path: Path) -> None:
    if n_bins is None:
        return
    if isinstance(n_bins, bool) or not isinstance(n_bins, int):
        raise TypeError(f"n_bins must be an int, got {type(n_bins).__name__}")
    if vocab_size != n_bins:
        raise TokenizerError(
            f"tokenizer {path} has vocab size={vocab_size} but the config's "
            f"flow_lm.lookup_table.n_bins={n_bins}: wrong tokenizer for this model?"
        )


def tokenizer_kind_for(path: str | os.PathLike[str], kind: str = "sentencepiece") -> str:
    """The backend the reference picks: ``"tokenizers"`` or ``"sentencepiece"``.

    ``kind`` ``"tokenizers"``/``"json"``, or a path ending in ``.json`` (ignoring an
    ``@revision`` suffix), selects the JSON backend; anything else selects SentencePiece.
    """
    if kind in ("tokenizers", "json") or location_path(path).endswith(".json"):
        return "tokenizers"
    return "sentencepiece"


def build_tokenizer(
    n_bins: int, path: str | os.PathLike[str], kind: str = "sentencepiece"
) -> Tokenizer:
    """Load the tokenizer named by a config's ``lookup_table`` (``n_bins``, path, ``tokenizer``).

    Uses :func:`tokenizer_kind_for` to choose the backend, and raises :class:`TokenizerError`
    when the vocabulary size differs from ``n_bins``, ``FileNotFoundError`` for a missing file.
    """
    if tokenizer_kind_for(path, kind) == "tokenizers":
        return JsonTokenizer(path, n_bins=n_bins)
    return SentencePieceTokenizer(path, n_bins=n_bins)
