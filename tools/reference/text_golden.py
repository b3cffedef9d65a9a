"""Dump the reference's text handling (tokenizer, prompt preparation, chunking) as JSON.

Runs ONLY under the reference venv (``.venv-ref``, torch + pocket-tts 4.0.1), from cwd ``/`` so
that the checkout's own ``pocket_tts`` is not importable. Used by the parity tests through
``tests/conftest.py: run_reference``.

Usage::

    text_golden.py TOKENIZER INPUT_JSON OUTPUT_JSON [--kind sentencepiece|tokenizers]
                   [--n-bins 4000] [--extra-tokenizer KIND=PATH ...]
    text_golden.py --configs OUTPUT_JSON

``INPUT_JSON`` is either a list of strings or an object::

    {"strings": [...],                  # texts to run through everything
     "options": {name: {flags...}},     # prepare/split flag sets (defaults below)
     "max_tokens": [50, 12],            # chunk sizes for split_into_best_sentences
     "decode": [[ids...], ...]}         # extra id lists to decode

For every string the output holds the token ids (the reference's own tokenizer class built via
``build_tokenizer``), their decoding, ``prepare_text_prompt`` for every flag set, and
``split_into_best_sentences`` for every flag set and ``max_tokens``, together with what
``generate_audio_stream`` would feed the model for each chunk (prepared text and the
``frames_after_eos_guess + 2``) and the warnings logged. Exceptions are recorded as
``{"error": [type name, message]}``.

Every ``--extra-tokenizer`` adds ``extra[KIND]``: ids, decoding and prefix decodings of every
string with that tokenizer (tokens only, no chunking). ``prefix_decodes`` (decodings of
``ids[:k]`` for every ``k``, for texts of at most ``PREFIX_DECODE_LIMIT`` tokens) is recorded
for the main tokenizer too: the decimal-period rule of the chunker decodes such prefixes.

``--configs`` dumps ``load_config(...).model_dump()`` for every packaged config.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from importlib import metadata
from pathlib import Path

from pocket_tts.models.text_chunking import prepare_text_prompt, split_into_best_sentences
from pocket_tts.modules.text_conditioner import build_tokenizer

DEFAULT_OPTIONS = {
    "english": {
        "pad_with_spaces_for_short_inputs": False,
        "remove_semicolons": False,
        "replace_characters": {"\u2019": "'", "\u2018": "'"},
    },
    "english_2026_01": {
        "pad_with_spaces_for_short_inputs": True,
        "remove_semicolons": False,
        "replace_characters": {"\u2019": "'", "\u2018": "'"},
    },
    "french": {
        "pad_with_spaces_for_short_inputs": False,
        "remove_semicolons": True,
        "replace_characters": {
            '"': "",
            "\u201c": "",
            "\u201d": "",
            "\u201e": "",
            "\u00ab": "",
            "\u00bb": "",
            "\u2019": "'",
            "\u2018": "'",
            ":": ",",
            "(": "",
            ")": "",
            "[": "",
            "]": "",
            "\u2013": ",",
        },
    },
    "bare": {
        "pad_with_spaces_for_short_inputs": False,
        "remove_semicolons": False,
        "append_terminal_punctuation": False,
        "capitalize_first_letter": False,
        "replace_characters": None,
    },
}
DEFAULT_MAX_TOKENS = [50, 12]
PREFIX_DECODE_LIMIT = 400


class _ListHandler(logging.Handler):
    def __init__(self) -> None:
        super().__init__(level=logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


def _error(exc: BaseException) -> dict:
    return {"error": [type(exc).__name__, str(exc)]}


def _prepare_kwargs(flags: dict) -> dict:
    return {
        "pad_with_spaces_for_short_inputs": flags.get("pad_with_spaces_for_short_inputs", False),
        "remove_semicolons": flags.get("remove_semicolons", False),
        "append_terminal_punctuation": flags.get("append_terminal_punctuation", True),
        "capitalize_first_letter": flags.get("capitalize_first_letter", True),
        "replace_characters": flags.get("replace_characters"),
    }


def _versions() -> dict:
    out = {}
    for name in ("pocket-tts", "sentencepiece", "tokenizers", "torch"):
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


def _split(tokenizer, text: str, max_tokens: int, kwargs: dict, handler: _ListHandler) -> dict:
    handler.messages.clear()
    try:
        chunks = split_into_best_sentences(tokenizer, text, max_tokens, **kwargs)
    except Exception as exc:  # noqa: BLE001 - recorded for parity
        return _error(exc)
    prepared = []
    for chunk in chunks:
        # What TTSModel.generate_audio_stream does with each chunk.
        try:
            chunk_text, guess = prepare_text_prompt(chunk, **kwargs)
            prepared.append([chunk_text, guess + 2])
        except Exception as exc:  # noqa: BLE001
            prepared.append(_error(exc))
    return {"chunks": chunks, "prepared": prepared, "warnings": list(handler.messages)}


def _tokens_only(tokenizer, text: str) -> dict:
    item: dict = {"text": text}
    try:
        ids = tokenizer.encode(text)
        item["ids"] = ids
        item["decoded"] = tokenizer.decode(ids)
        item["call_ids"] = tokenizer(text)[0].tolist()
        if len(ids) <= PREFIX_DECODE_LIMIT:
            item["prefix_decodes"] = [tokenizer.decode(ids[:k]) for k in range(len(ids) + 1)]
    except Exception as exc:  # noqa: BLE001
        item["ids"] = _error(exc)
    return item


def dump_text(
    tokenizer_path: str,
    input_path: str,
    output_path: str,
    kind: str,
    n_bins: int,
    extra: list[str] | None = None,
) -> None:
    spec = json.loads(Path(input_path).read_text(encoding="utf-8"))
    if isinstance(spec, list):
        spec = {"strings": spec}
    strings = spec["strings"]
    options = spec.get("options") or DEFAULT_OPTIONS
    max_tokens_list = spec.get("max_tokens") or DEFAULT_MAX_TOKENS

    tokenizer = build_tokenizer(n_bins, tokenizer_path, kind)
    handler = _ListHandler()
    chunk_logger = logging.getLogger("pocket_tts.models.text_chunking")
    chunk_logger.addHandler(handler)
    chunk_logger.propagate = False

    items = []
    for text in strings:
        item = _tokens_only(tokenizer, text)
        item["prepare"] = {}
        item["split"] = {}
        for name, flags in options.items():
            kwargs = _prepare_kwargs(flags)
            try:
                prepared_text, guess = prepare_text_prompt(text, **kwargs)
                item["prepare"][name] = {"text": prepared_text, "guess": guess}
            except Exception as exc:  # noqa: BLE001
                item["prepare"][name] = _error(exc)
            item["split"][name] = {
                str(mt): _split(tokenizer, text, mt, kwargs, handler) for mt in max_tokens_list
            }
        items.append(item)

    decodes = []
    for ids in spec.get("decode", []):
        try:
            decodes.append({"ids": ids, "text": tokenizer.decode(ids)})
        except Exception as exc:  # noqa: BLE001
            decodes.append({"ids": ids, **_error(exc)})

    extra_out = {}
    for spec_str in extra or []:
        extra_kind, _, extra_path = spec_str.partition("=")
        extra_tok = build_tokenizer(n_bins, extra_path, extra_kind)
        extra_out[extra_kind] = {
            "class": type(extra_tok).__name__,
            "items": [_tokens_only(extra_tok, text) for text in strings],
        }

    out = {
        "versions": _versions(),
        "tokenizer": {
            "class": type(tokenizer).__name__,
            "vocab_size": n_bins,
            "sentence_end_ids": tokenizer(".!...?")[0].tolist(),
            "fallback_ids": tokenizer(",;:")[0].tolist(),
        },
        "options": options,
        "max_tokens": max_tokens_list,
        "items": items,
        "decodes": decodes,
        "extra": extra_out,
    }
    Path(output_path).write_text(json.dumps(out, ensure_ascii=True), encoding="utf-8")


def dump_configs(output_path: str) -> None:
    from pocket_tts.utils.config import CONFIGS_DIR, load_config

    configs = {}
    for path in sorted(CONFIGS_DIR.glob("*.yaml")):
        configs[path.stem] = load_config(path).model_dump()
    Path(output_path).write_text(
        json.dumps({"versions": _versions(), "configs": configs}), encoding="utf-8"
    )


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("paths", nargs="*", help="TOKENIZER INPUT_JSON OUTPUT_JSON")
    parser.add_argument("--kind", default="sentencepiece", help="lookup_table.tokenizer value")
    parser.add_argument("--n-bins", type=int, default=4000)
    parser.add_argument(
        "--extra-tokenizer",
        action="append",
        default=[],
        metavar="KIND=PATH",
        help="also dump ids/decodings with this tokenizer",
    )
    parser.add_argument("--configs", metavar="OUTPUT_JSON", help="dump every packaged config")
    args = parser.parse_args(argv)
    if args.configs:
        if args.paths:
            parser.error("--configs takes no positional arguments")
        dump_configs(args.configs)
        return 0
    if len(args.paths) != 3:
        parser.error("expected TOKENIZER INPUT_JSON OUTPUT_JSON")
    dump_text(*args.paths, kind=args.kind, n_bins=args.n_bins, extra=args.extra_tokenizer)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
