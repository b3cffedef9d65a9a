"""Text preparation and chunking: the text-side half of ``generate_audio_stream``.

Behaves exactly like ``pocket_tts/models/text_chunking.py`` of the reference (4.0.1) and the
per-chunk preparation in ``TTSModel.generate_audio_stream``:

1. :func:`split_into_best_sentences` normalises the whole text with
   :func:`prepare_text_prompt`, tokenizes it, splits it at sentence-final punctuation tokens
   (but not at a period between two digits), sub-splits sentences longer than ``max_tokens`` at
   ``, ; :`` and greedily packs the pieces into chunks of at most ``max_tokens`` tokens.
2. Each chunk is prepared again on its own (:func:`prepare_chunk`), which gives the text fed
   to the model and a guess of how many frames to generate after the end-of-speech signal
   (``guess + 2``: 5 for chunks of at most four words, 3 otherwise), unless the caller or the
   config fixes that number (:func:`effective_frames_after_eos`).

:func:`chunk_text_for_generation` does both, exactly as the reference; with
``split_oversized=True`` (what ``TTSModel.generate_audio_stream`` uses) it also splits the
chunks the reference leaves over ``max_tokens`` (at other scripts' sentence marks, words, or
between characters), a deliberate deviation that bounds per-chunk memory and time.

The tokenizer only needs ``encode(text) -> list[int]`` and ``decode(ids) -> str``.
"""

from __future__ import annotations

import logging
import re
from array import array
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

__all__ = [
    "TextChunk",
    "TextOptions",
    "TokenizerLike",
    "chunk_text_for_generation",
    "effective_frames_after_eos",
    "ensure_terminal_punctuation",
    "find_boundary_indices",
    "prepare_chunk",
    "prepare_text_prompt",
    "segments_from_boundaries",
    "split_into_best_sentences",
]

logger = logging.getLogger(__name__)

_TERMINAL_PUNCTUATION = ".!?\u2026"
_WEAK_PUNCTUATION = ",;:-\u2013\u2014"
_CLOSERS = "\"'\u201d\u2019)]\u00bb"
# After quote deletion, '"Hi?", she said' reads 'Hi?, she said': keep only the sentence mark.
_MARK_THEN_WEAK_RE = re.compile(r"([.!?\u2026])\s*[,;:]")
# The sentence-boundary and fallback token ids are the ids of these strings minus the first
# id, which the reference assumes is the word-start piece.
_SENTENCE_END_PROBE = ".!...?"
_FALLBACK_PROBE = ",;:"
# Sentence marks of other scripts (CJK full-width and ideographic, Devanagari danda, Arabic and
# Urdu question / full stop, Armenian, Ethiopic) and their closers: where an oversized chunk is
# cut first (the reference's tokenizer-level boundaries are only ". ! ... ?").
_SCRIPT_MARKS = "\u3002\uff01\uff1f\uff0e\uff61\u0964\u0965\u061f\u06d4\u0589\u1362!?"
_SCRIPT_CLOSERS = "\u300d\u300f\u3011\uff09\u201d\u2019\"')]\u00bb"
_SCRIPT_SENTENCE_RE = re.compile(
    "[^{m}]*[{m}]+[{c}]*\\s*|[^{m}]+$".format(
        m=re.escape(_SCRIPT_MARKS), c=re.escape(_SCRIPT_CLOSERS)
    )
)
# No vocabulary piece is this long (SentencePiece caps pieces at 16 characters by default).
_MAX_CHARS_PER_TOKEN = 64
# TTSModel.generate_audio_stream adds this to each chunk's frames-after-EOS guess.
CHUNK_FRAMES_AFTER_EOS_BONUS = 2


class TokenizerLike(Protocol):
    """What the chunker needs from a tokenizer."""

    def encode(self, text: str) -> list[int]:
        """Token ids of ``text`` (no BOS/EOS)."""
        ...

    def decode(self, ids: Sequence[int]) -> str:
        """Text of token ids (a list, or an ``array('l')``)."""
        ...


@dataclass(frozen=True)
class TextOptions:
    """The config's text-handling flags, passed together.

    Field names and defaults match the ``Config`` fields of the same names.
    """

    pad_with_spaces_for_short_inputs: bool = False
    remove_semicolons: bool = False
    append_terminal_punctuation: bool = True
    capitalize_first_letter: bool = True
    replace_characters: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def from_config(cls, config: Any) -> TextOptions:
        """Take the flags from a :class:`pocket_tts.config.Config` (or any object with them)."""
        return cls(
            pad_with_spaces_for_short_inputs=config.pad_with_spaces_for_short_inputs,
            remove_semicolons=config.remove_semicolons,
            append_terminal_punctuation=config.append_terminal_punctuation,
            capitalize_first_letter=config.capitalize_first_letter,
            replace_characters=dict(config.replace_characters or {}),
        )

    def as_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for :func:`prepare_text_prompt` / :func:`split_into_best_sentences`."""
        return {
            "pad_with_spaces_for_short_inputs": self.pad_with_spaces_for_short_inputs,
            "remove_semicolons": self.remove_semicolons,
            "append_terminal_punctuation": self.append_terminal_punctuation,
            "capitalize_first_letter": self.capitalize_first_letter,
            "replace_characters": dict(self.replace_characters),
        }


@dataclass(frozen=True)
class TextChunk:
    """One chunk ready for generation: the prepared text and the frames to run after EOS."""

    text: str
    frames_after_eos: int


def _require_str(text: Any, name: str = "text") -> str:
    if not isinstance(text, str):
        raise TypeError(f"{name} must be a str, got {type(text).__name__}")
    check_unicode(text, name)
    return text


def check_unicode(text: str, name: str = "text") -> None:
    """Raise ValueError for a lone surrogate (a str that is not Unicode text: what
    ``bytes.decode(errors="surrogateescape")`` leaves for undecodable bytes)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise ValueError(
            f"{name} contains a lone surrogate U+{ord(text[exc.start]):04X} at index "
            f"{exc.start}, which is not Unicode text: decode the input with errors='replace' "
            "(or remove the character)"
        ) from None


def ensure_terminal_punctuation(text: str) -> str:
    """Make ``text`` end with sentence-final punctuation, as the model was trained on.

    Text ending in ``. ! ? …`` (possibly followed by closing quotes/brackets) is unchanged; a
    trailing weak mark (``, ; : - – —``) is replaced by a period placed before the closers;
    otherwise a period is appended after everything (after any closers too).
    """
    core = text.rstrip(_CLOSERS + " ")
    closers = text[len(core) :].strip()
    if not core or core[-1] in _TERMINAL_PUNCTUATION:
        return text
    if core[-1] in _WEAK_PUNCTUATION:
        return core.rstrip(_WEAK_PUNCTUATION + " ") + "." + closers
    return text + "."


def prepare_text_prompt(
    text: str,
    pad_with_spaces_for_short_inputs: bool,
    remove_semicolons: bool,
    append_terminal_punctuation: bool = True,
    capitalize_first_letter: bool = True,
    replace_characters: Mapping[str, str] | None = None,
) -> tuple[str, int]:
    """Normalise a prompt the way the model expects; return ``(text, frames_after_eos_guess)``.

    Steps, in order: strip; apply ``replace_characters`` (then collapse whitespace and drop a
    ``, ; :`` that directly follows a sentence mark); reject empty text with
    ``ValueError("Text prompt cannot be empty")``; turn newlines into spaces and halve double
    spaces once; ``;`` -> ``,`` if ``remove_semicolons``; guess 3 frames after EOS for at most
    four words, else 1; upper-case the first character; ensure terminal punctuation; prepend
    eight spaces to texts of fewer than five words if ``pad_with_spaces_for_short_inputs``.
    """
    text = _require_str(text).strip()
    if replace_characters:
        table = str.maketrans(dict(replace_characters))
        text = " ".join(text.translate(table).split())
        text = _MARK_THEN_WEAK_RE.sub(r"\1", text)
    if text == "":
        raise ValueError("Text prompt cannot be empty")
    text = text.replace("\n", " ").replace("\r", " ").replace("  ", " ")
    if remove_semicolons:
        text = text.replace(";", ",")
    frames_after_eos_guess = 3 if len(text.split()) <= 4 else 1

    if capitalize_first_letter and not text[0].isupper():
        text = text[0].upper() + text[1:]

    if append_terminal_punctuation:
        text = ensure_terminal_punctuation(text)

    if pad_with_spaces_for_short_inputs and len(text.split()) < 5:
        text = " " * 8 + text

    return text, frames_after_eos_guess


def _is_decimal_period_boundary(
    tokens: Sequence[int], segment_start: int, tokenizer: TokenizerLike
) -> bool:
    """True when ``segment_start`` follows a period that sits between two digits.

    Only the two characters before the boundary and the one after matter, so a few tokens
    either side are decoded (widened until they give more characters than that, or reach the
    ends): the same answer as decoding everything, in time independent of the text's length
    (a text of many sentences would otherwise take quadratic time)."""
    prefix = suffix = ""
    width = 4
    while True:
        lo = max(0, segment_start - width)
        prefix = tokenizer.decode(list(tokens[lo:segment_start]))
        if len(prefix) > 2 or lo == 0:
            break
        width *= 2
    width = 4
    while True:
        hi = min(len(tokens), segment_start + width)
        suffix = tokenizer.decode(list(tokens[segment_start:hi]))
        if suffix or hi == len(tokens):
            break
        width *= 2
    return (
        len(prefix) >= 2
        and prefix[-1] == "."
        and prefix[-2].isdigit()
        and bool(suffix)
        and suffix[0].isdigit()
    )


def find_boundary_indices(
    tokens: Sequence[int],
    boundary_tokens: Sequence[int],
    tokenizer: TokenizerLike | None = None,
    skip_decimal_periods: bool = False,
) -> list[int]:
    """Token positions that start segments, framed by ``0`` and ``len(tokens)``.

    A segment starts at the first non-boundary token following a run of boundary tokens.
    With ``skip_decimal_periods`` (and a tokenizer), a run that is a period between digits
    (``3.14``) does not end a segment.
    """
    boundary_set = set(boundary_tokens)
    indices = [0]
    previous_was_boundary = False
    for idx, token in enumerate(tokens):
        if token in boundary_set:
            previous_was_boundary = True
            continue
        if previous_was_boundary:
            if (
                skip_decimal_periods
                and tokenizer is not None
                and _is_decimal_period_boundary(tokens, idx, tokenizer)
            ):
                previous_was_boundary = False
                continue
            indices.append(idx)
        previous_was_boundary = False
    indices.append(len(tokens))
    return indices


def segments_from_boundaries(
    tokens: Sequence[int], boundary_indices: Sequence[int], tokenizer: TokenizerLike
) -> list[tuple[int, str]]:
    """Decode the slices between consecutive boundaries into ``(token_count, text)`` pairs."""
    segments = []
    for start, end in zip(boundary_indices[:-1], boundary_indices[1:], strict=True):
        segments.append((end - start, tokenizer.decode(tokens[start:end])))
    return segments


def _probe_ids(tokenizer: TokenizerLike, probe: str) -> list[int]:
    # The reference unpacks `_, *ids = tokenizer(probe)`: drop the first id.
    ids = list(tokenizer.encode(probe))
    if not ids:
        raise ValueError(f"the tokenizer encodes {probe!r} to no tokens")
    return ids[1:]


def split_into_best_sentences(
    tokenizer: TokenizerLike,
    text_to_generate: str,
    max_tokens: int,
    pad_with_spaces_for_short_inputs: bool,
    remove_semicolons: bool,
    append_terminal_punctuation: bool = True,
    capitalize_first_letter: bool = True,
    replace_characters: Mapping[str, str] | None = None,
    warn_oversized: bool = True,
) -> list[str]:
    """Split a text into chunks of at most ``max_tokens`` tokens at sentence boundaries.

    Sentences longer than ``max_tokens`` are split at ``, ; :`` when that gives several pieces;
    a piece that is still too long becomes a chunk of its own and (``warn_oversized``) a
    warning is logged. Chunks are returned stripped but not individually prepared (see
    :func:`prepare_chunk`).
    """
    if isinstance(max_tokens, bool) or not isinstance(max_tokens, int):
        raise TypeError(f"max_tokens must be an int, got {type(max_tokens).__name__}")
    text_to_generate, _ = prepare_text_prompt(
        text_to_generate,
        pad_with_spaces_for_short_inputs,
        remove_semicolons,
        append_terminal_punctuation,
        capitalize_first_letter,
        replace_characters,
    )
    text_to_generate = text_to_generate.strip()
    # 4 bytes per id, not a Python int each: a long text's ids are the peak of chunking.
    tokens = array("l", tokenizer.encode(text_to_generate))

    sentence_end_ids = _probe_ids(tokenizer, _SENTENCE_END_PROBE)
    boundaries = find_boundary_indices(
        tokens, sentence_end_ids, tokenizer, skip_decimal_periods=True
    )
    sentences = segments_from_boundaries(tokens, boundaries, tokenizer)
    del tokens, boundaries

    # Sub-split oversized sentences at commas, semicolons and colons.
    fallback_ids = _probe_ids(tokenizer, _FALLBACK_PROBE)
    segments: list[tuple[int, str]] = []
    for nb_tokens, sentence in sentences:
        # No ", ; :" character, no fallback token: nothing to re-tokenize (a huge run's ids
        # would be the peak of memory).
        if nb_tokens <= max_tokens or not any(c in sentence for c in _FALLBACK_PROBE):
            segments.append((nb_tokens, sentence))
            continue
        sub_tokens = array("l", tokenizer.encode(sentence.strip()))
        sub_boundaries = find_boundary_indices(sub_tokens, fallback_ids)
        sub_segments = segments_from_boundaries(sub_tokens, sub_boundaries, tokenizer)
        if len(sub_segments) > 1:
            segments.extend(sub_segments)
        else:
            segments.append((nb_tokens, sentence))

    chunks: list[str] = []
    current = ""
    current_tokens = 0
    for nb_tokens, sentence in segments:
        if current == "":
            current, current_tokens = sentence, nb_tokens
        elif current_tokens + nb_tokens > max_tokens:
            chunks.append(current.strip())
            current, current_tokens = sentence, nb_tokens
        else:
            current += " " + sentence
            current_tokens += nb_tokens
    if current != "":
        chunks.append(current.strip())

    for chunk in chunks if warn_oversized else ():
        n = len(tokenizer.encode(chunk.strip()))
        if n > max_tokens:
            logger.warning(
                "Chunk has %d tokens (max %d), generation may skip words: '%.50s...'",
                n,
                max_tokens,
                chunk,
            )
    return chunks


def effective_frames_after_eos(
    frames_after_eos: int | None,
    frames_after_eos_guess: int,
    model_recommended_frames_after_eos: int | None = None,
) -> int:
    """Frames to generate after EOS: the caller's value, else the config's, else the guess."""
    if frames_after_eos is None:
        frames_after_eos = model_recommended_frames_after_eos
    return frames_after_eos if frames_after_eos is not None else frames_after_eos_guess


def prepare_chunk(
    chunk: str,
    pad_with_spaces_for_short_inputs: bool,
    remove_semicolons: bool,
    append_terminal_punctuation: bool = True,
    capitalize_first_letter: bool = True,
    replace_characters: Mapping[str, str] | None = None,
) -> tuple[str, int]:
    """Prepare one chunk from :func:`split_into_best_sentences` for generation.

    Returns ``(text, frames_after_eos_guess + 2)``, i.e. a guess of 5 frames for chunks of at
    most four words and 3 otherwise, as ``generate_audio_stream`` does.
    """
    text, guess = prepare_text_prompt(
        chunk,
        pad_with_spaces_for_short_inputs,
        remove_semicolons,
        append_terminal_punctuation,
        capitalize_first_letter,
        replace_characters,
    )
    return text, guess + CHUNK_FRAMES_AFTER_EOS_BONUS


def chunk_text_for_generation(
    tokenizer: TokenizerLike,
    text: str,
    max_tokens: int = 50,
    frames_after_eos: int | None = None,
    model_recommended_frames_after_eos: int | None = None,
    options: TextOptions | None = None,
    *,
    split_oversized: bool = False,
) -> list[TextChunk]:
    """Everything ``generate_audio_stream`` does to the text before generating.

    Splits ``text`` with :func:`split_into_best_sentences`, prepares every chunk with
    :func:`prepare_chunk` and resolves its frames-after-EOS count with
    :func:`effective_frames_after_eos`: exactly the reference's chunks.

    ``split_oversized=True`` (what ``TTSModel.generate_audio_stream`` uses) is a deliberate
    deviation. The reference leaves a run of text with no sentence or comma boundary as one
    oversized chunk and generates it whole (warning that words may be skipped), with KV caches,
    prefill time and a generation budget growing with its length (``'a' * 200000`` ran for
    minutes at 4.9 GB). Here such a chunk is cut into pieces of at most ``max_tokens`` tokens
    (counted on the prepared text), each prepared on its own: at other scripts' sentence marks
    (``。！？``, ``।``, ``؟`` ...) first, then at words, and a run with neither (CJK text, a long
    word, a URL, a base64 blob) between characters. Per-chunk memory and time are then bounded
    by ``max_tokens`` whatever the text; chunks within the limit are the reference's.
    """
    options = options or TextOptions()

    def prepared(piece: str) -> TextChunk:
        text_for_model, guess = prepare_chunk(piece, **options.as_kwargs())
        frames = effective_frames_after_eos(
            frames_after_eos, guess, model_recommended_frames_after_eos
        )
        return TextChunk(text_for_model, frames)

    def fits(chunk: TextChunk) -> bool:
        # A text of more than _MAX_CHARS_PER_TOKEN characters a token cannot fit: a huge one is
        # not tokenized just to learn that (its ids would be the peak of memory).
        if len(chunk.text) > _MAX_CHARS_PER_TOKEN * max_tokens:
            return False
        return len(tokenizer.encode(chunk.text)) <= max_tokens

    out: list[TextChunk] = []
    for chunk in split_into_best_sentences(
        tokenizer, text, max_tokens, **options.as_kwargs(), warn_oversized=not split_oversized
    ):
        whole = prepared(chunk)
        if not split_oversized or fits(whole):
            out.append(whole)
            continue
        out.extend(_bounded_pieces(tokenizer, whole.text.strip(), max_tokens, prepared, fits))
    return out


def _pack(tokenizer: TokenizerLike, parts: list[str], budget: int, sep: str) -> list[str]:
    """Greedily join consecutive ``parts`` (with ``sep``) into pieces of at most ``budget``
    tokens. Part-by-part counts overestimate a join (each part pays its own word-start piece),
    so a join they would refuse is counted for real; every count is of a bounded text."""
    pieces: list[str] = []
    current: list[str] = []
    used = 0
    for part in parts:
        n = len(tokenizer.encode(part))
        if current and used + n > budget:
            joined = len(tokenizer.encode(sep.join([*current, part])))
            if joined <= budget:
                current.append(part)
                used = joined
                continue
            pieces.append(sep.join(current))
            current, used = [], 0
        current.append(part)
        used += n
    if current:
        pieces.append(sep.join(current))
    return pieces


def _bounded_pieces(
    tokenizer: TokenizerLike,
    text: str,
    max_tokens: int,
    prepared: Callable[[str], TextChunk],
    fits: Callable[[TextChunk], bool],
) -> list[TextChunk]:
    """Cut an oversized chunk into prepared pieces of at most ``max_tokens`` tokens: at other
    scripts' sentence marks first (``。！？`` and the like), then at words, and a run without
    either (a long word, CJK text, a URL or base64 blob) between characters, in windows of
    about ``max_tokens`` tokens. Linear in the text's length; a piece that is still over
    (its preparation added a period, or its characters cost more tokens than the average) is
    cut again."""
    sentences = [m.group(0).strip() for m in _SCRIPT_SENTENCE_RE.finditer(text)]
    sentences = [s for s in sentences if s]
    words = text.split()
    budget = max_tokens
    if len(sentences) > 1 or len(words) > 1:
        units = sentences if len(sentences) > 1 else words
        parts = _pack(tokenizer, units, budget, " ")
        # What preparing a piece adds (a capital, a period): pack again leaving room for it.
        added = max(  # the first piece may be capitalised already, the next ones not
            len(tokenizer.encode(prepared(p).text)) - len(tokenizer.encode(p)) for p in parts[:2]
        )
        if added > 0:
            budget = max(1, max_tokens - added)
            parts = _pack(tokenizer, units, budget, " ")
    else:  # one run: cut between characters (never inside one, as a token cut could)
        sample = text[: 4 * _MAX_CHARS_PER_TOKEN * max_tokens]  # its density stands for all
        n = len(tokenizer.encode(sample))
        width = max(1, len(sample) * budget // max(n, 1) * 9 // 10)
        if width >= len(text):
            width = max(1, len(text) // 2)
        parts = []
        start = 0
        while start < len(text):
            end = min(len(text), start + width)
            # Preparing a piece turns a final ", ; : -" into a period: never cut after one.
            while end < len(text) and end - start > 1 and text[end - 1] in _WEAK_PUNCTUATION:
                end -= 1
            parts.append(text[start:end])
            start = end
    if len(parts) <= 1:  # packing could not cut it: halve it
        if len(text) <= 1:
            return [prepared(text)]
        parts = [text[: len(text) // 2], text[len(text) // 2 :]]
    pieces: list[TextChunk] = []
    for part in parts:
        part = part.strip()
        if not part:
            continue
        piece = prepared(part)
        if fits(piece) or len(part) <= 1:
            pieces.append(piece)
        else:
            pieces.extend(_bounded_pieces(tokenizer, part, max_tokens, prepared, fits))
    return pieces
