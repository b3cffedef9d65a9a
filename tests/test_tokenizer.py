"""Tokenizers: parity with the reference's tokenizer classes, selection rule, bad inputs."""

from __future__ import annotations

import json
import sys

import numpy as np
import pytest
from conftest import TOKENIZER_MODEL, run_reference

from pocket_tts.text.tokenizer import (
    JsonTokenizer,
    SentencePieceTokenizer,
    TokenizerError,
    build_tokenizer,
    tokenizer_kind_for,
)

# Strings chosen to stress the tokenizers: byte fallback, digits (split one by one), the
# word-start piece, control-piece literals, whitespace runs and unusual Unicode.
TRICKY_STRINGS = [
    "",
    " ",
    "   ",
    "\n",
    "\t",
    " \n\t \r\n ",
    "hello",
    "Hello world.",
    "Test sentence.",
    "a",
    "A",
    "1",
    ".",
    ",",
    "...",
    "?!",
    "Hello?! Really?!",
    "Wait... what?",
    ".!...?",
    ",;:",
    "3.14 is pi. Then 2.5.",
    "I have 3. 5 people came.",
    "Dr. Smith and Mrs. Jones met at 10 a.m. on Jan. 5.",
    "e.g. this, i.e. that, etc.",
    "14\u00bd-13\u00bd",
    "The score was 14\u00bd\u201313\u00bd at 9:45 p.m.",
    "12345678901234567890",
    "3,000,000 people and 1.5e-10 seconds, 0.001%.",
    "$4.99 \u20ac5,00 \u00a3100 \u00a5200",
    "\u201cHello,\u201d she said. \u2018Really?\u2019 he asked.",
    "It\u2019s John\u2019s car, isn\u2019t it?",
    '"Hi?", she said.',
    "\u00ab Bonjour \u00bb, dit-il.",
    "\u201eGuten Tag\u201c, sagte er.",
    "Wait \u2014 what? 1990\u20132000 was long \u2013 very long.",
    "em\u2014dash and en\u2013dash and hyphen-ated",
    "I love pizza \U0001f355! \U0001f600\U0001f600 Great \U0001f44d\U0001f3fd.",
    "\U0001f468\u200d\U0001f469\u200d\U0001f467 family",
    "na\u00efve caf\u00e9 r\u00e9sum\u00e9 \u00c9COLE \u00e9l\u00e8ve",
    "\u03a9mega \u4e2d\u6587 \ud14c\uc2a4\ud2b8 \u65e5\u672c\u8a9e "
    "\u0627\u0644\u0639\u0631\u0628\u064a\u0629",
    "\U0001d518\U0001d52b\U0001d526\U0001d520\U0001d52c\U0001d521\U0001d522",
    "e\u0301 combining, \u00df stra\u00dfe, \u01c5 titlecase",
    "\u00a0nbsp\u2003em-space\u3000ideographic",
    "zero\u200bwidth\u200cnon\u200djoiner\ufeffbom",
    "\u00bfQu\u00e9? \u00a1Hola!",
    "Line one\nLine two\r\nLine three\tTabbed",
    "  leading and trailing  ",
    "double  space   triple",
    "<s> </s> <unk> <pad>",
    "\u2581 meta \u2581\u2581 symbol",
    "don't won't can't y'all",
    "[aside] (parenthetical) {braces} <angle>",
    "one; two: three - four",
    "C++ & C# | a/b \\ c_d ~ `tick` ^ @ * = +",
    "https://kyutai.org/path?q=1&r=2#frag",
    "ALL CAPS SENTENCE HERE.",
    "Version 1.2.3 released. Costs 4.99. Then 10. Items.",
    "x" * 300,
    " ".join(["word"] * 200),
    (
        "The quick brown fox jumps over the lazy dog. " * 12
        + "\n\nSecond paragraph, with commas, semicolons; colons: and dashes \u2014 too.\n"
        + "Third paragraph? Yes! Numbers 1.5, 2.25 and 1999."
    ),
]

KNOWN_IDS = {
    "hello": [1876, 393],
    "Hello world.": [2994, 578, 263],
    "Test sentence.": [602, 552, 1472, 599, 263],
}


def _make_tokenizer_json(path) -> None:
    """Convert the SentencePiece model into an equivalent HuggingFace tokenizer.json.

    Unigram with byte fallback, a dummy-prefix normalizer, split on the word-start piece and on
    single digits: for ordinary text this reproduces the SentencePiece ids.
    """
    import sentencepiece
    from tokenizers import AddedToken, Tokenizer, decoders, models, normalizers, pre_tokenizers

    sp = sentencepiece.SentencePieceProcessor(model_file=str(TOKENIZER_MODEL))
    vocab = [(sp.id_to_piece(i), sp.get_score(i)) for i in range(sp.vocab_size())]
    tok = Tokenizer(models.Unigram(vocab, unk_id=sp.unk_id(), byte_fallback=True))
    tok.normalizer = normalizers.Sequence(
        [normalizers.Replace(" ", "\u2581"), normalizers.Prepend("\u2581")]
    )
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split("\u2581", "merged_with_next"),
            pre_tokenizers.Digits(individual_digits=True),
        ]
    )
    tok.decoder = decoders.Sequence(
        [
            decoders.Replace("\u2581", " "),
            decoders.ByteFallback(),
            decoders.Fuse(),
            decoders.Strip(" ", 1, 0),
        ]
    )
    specials = [
        AddedToken(sp.id_to_piece(i), special=True, normalized=False)
        for i in range(sp.vocab_size())
        if sp.is_control(i) or sp.is_unknown(i)
    ]
    tok.add_special_tokens(specials)
    tok.save(str(path))


@pytest.fixture(scope="session")
def tokenizer_json(tmp_path_factory):
    """A tokenizer.json converted from the shared SentencePiece model."""
    pytest.importorskip("tokenizers")
    path = tmp_path_factory.mktemp("tok") / "tokenizer.json"
    _make_tokenizer_json(path)
    return path


@pytest.fixture(scope="session")
def sp_tokenizer() -> SentencePieceTokenizer:
    return SentencePieceTokenizer(TOKENIZER_MODEL, n_bins=4000)


@pytest.fixture(scope="session")
def json_tokenizer(tokenizer_json) -> JsonTokenizer:
    return JsonTokenizer(tokenizer_json, n_bins=4000)


@pytest.fixture(scope="session")
def tokenizer_golden(tmp_path_factory, tokenizer_json) -> dict:
    """One reference run: ids/decodings with the reference's SentencePiece and JSON classes."""
    work = tmp_path_factory.mktemp("tok_golden")
    spec = {
        "strings": TRICKY_STRINGS,
        "options": {"bare": {"replace_characters": None}},
        "max_tokens": [50],
        "decode": [[], [260], [260, 260], [2994, 578, 263], [244, 163], [341, 263, 487]],
    }
    (work / "in.json").write_text(json.dumps(spec), encoding="utf-8")
    run_reference(
        "text_golden.py",
        TOKENIZER_MODEL,
        work / "in.json",
        work / "out.json",
        "--kind",
        "sentencepiece",
        "--extra-tokenizer",
        f"tokenizers={tokenizer_json}",
    )
    golden = json.loads((work / "out.json").read_text(encoding="utf-8"))
    assert [item["text"] for item in golden["items"]] == TRICKY_STRINGS
    return golden


# ------------------------------------------------------------------------------------------
# Parity with the reference
# ------------------------------------------------------------------------------------------


def _check_item(tok, item) -> None:
    text = item["text"]
    assert not isinstance(item["ids"], dict), f"reference failed on {text!r}: {item['ids']}"
    ids = tok.encode(text)
    assert ids == item["ids"], f"ids differ for {text!r}"
    assert tok(text)[0].tolist() == item["call_ids"]
    assert tok.decode(ids) == item["decoded"], f"decode differs for {text!r}"
    if "prefix_decodes" in item:
        ours = [tok.decode(ids[:k]) for k in range(len(ids) + 1)]
        assert ours == item["prefix_decodes"], f"prefix decodings differ for {text!r}"


@pytest.mark.parametrize("idx", range(len(TRICKY_STRINGS)))
def test_sentencepiece_parity(idx, sp_tokenizer, tokenizer_golden):
    item = tokenizer_golden["items"][idx]
    _check_item(sp_tokenizer, item)


@pytest.mark.parametrize("idx", range(len(TRICKY_STRINGS)))
def test_json_tokenizer_parity(idx, json_tokenizer, tokenizer_golden):
    extra = tokenizer_golden["extra"]["tokenizers"]
    assert extra["class"] == "JsonTokenizer"
    _check_item(json_tokenizer, extra["items"][idx])


def test_reference_tokenizer_metadata(sp_tokenizer, tokenizer_golden):
    ref = tokenizer_golden["tokenizer"]
    assert ref["class"] == "SentencePieceTokenizer"
    assert sp_tokenizer.encode(".!...?") == ref["sentence_end_ids"]
    assert sp_tokenizer.encode(",;:") == ref["fallback_ids"]
    for entry in tokenizer_golden["decodes"]:
        assert sp_tokenizer.decode(entry["ids"]) == entry["text"]


def test_known_ids(sp_tokenizer):
    for text, ids in KNOWN_IDS.items():
        assert sp_tokenizer.encode(text) == ids


def test_converted_json_matches_sentencepiece(sp_tokenizer, json_tokenizer):
    """The test's tokenizer.json is a faithful conversion (control-piece literals aside)."""
    for text in TRICKY_STRINGS:
        if "<s>" in text:
            continue
        assert json_tokenizer.encode(text) == sp_tokenizer.encode(text), text
        assert json_tokenizer.decode(sp_tokenizer.encode(text)) == sp_tokenizer.decode(
            sp_tokenizer.encode(text)
        )


# ------------------------------------------------------------------------------------------
# API behaviour
# ------------------------------------------------------------------------------------------


def test_encode_has_no_bos_eos(sp_tokenizer):
    ids = sp_tokenizer.encode("Hello world.")
    assert 1 not in ids and 2 not in ids
    assert sp_tokenizer.encode("") == []
    assert sp_tokenizer.vocab_size == 4000


def test_call_returns_int64_row(sp_tokenizer):
    arr = sp_tokenizer("Hello world.")
    assert arr.dtype == np.int64 and arr.shape == (1, 3)
    assert sp_tokenizer("").shape == (1, 0)


def test_decode_accepts_arrays_and_tuples(sp_tokenizer):
    ids = sp_tokenizer.encode("Hello world.")
    assert sp_tokenizer.decode(np.asarray(ids, dtype=np.int32)) == "Hello world."
    assert sp_tokenizer.decode(tuple(ids)) == "Hello world."
    assert sp_tokenizer.decode([np.int64(i) for i in ids]) == "Hello world."
    # Compact arrays (the chunker's ids of a long text) are checked without a list of ints.
    from array import array

    assert sp_tokenizer.decode(array("l", ids)) == "Hello world."
    assert sp_tokenizer.decode(array("i", ids)) == "Hello world."
    assert sp_tokenizer.decode(array("l")) == ""


@pytest.mark.parametrize("bad", [[4000], [-1], [10**9]])
def test_decode_out_of_range(sp_tokenizer, json_tokenizer, bad):
    with pytest.raises(ValueError, match="out of range"):
        sp_tokenizer.decode(bad)
    with pytest.raises(ValueError, match="out of range"):
        json_tokenizer.decode(bad)
    from array import array

    with pytest.raises(ValueError, match="out of range"):
        sp_tokenizer.decode(array("q", [5, *bad]))
    with pytest.raises(ValueError, match="out of range"):
        sp_tokenizer.decode(np.asarray([5, *bad], np.int64))


@pytest.mark.parametrize(
    "bad", ["abc", b"ab", [1.0], [True], [None], np.zeros((2, 2), int), np.zeros(3, np.float32)]
)
def test_decode_bad_types(sp_tokenizer, bad):
    with pytest.raises(TypeError):
        sp_tokenizer.decode(bad)


@pytest.mark.parametrize("bad", [None, 3, b"bytes", ["a"]])
def test_encode_non_str(sp_tokenizer, json_tokenizer, bad):
    with pytest.raises(TypeError, match="must be a str"):
        sp_tokenizer.encode(bad)
    with pytest.raises(TypeError, match="must be a str"):
        json_tokenizer.encode(bad)


# ------------------------------------------------------------------------------------------
# build_tokenizer selection rule and errors
# ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "kind", "expected"),
    [
        ("tok.model", "sentencepiece", "sentencepiece"),
        ("tok.model", "tokenizers", "tokenizers"),
        ("tok.model", "json", "tokenizers"),
        ("tok.json", "sentencepiece", "tokenizers"),
        ("hf://a/b/tokenizer.json@abc123", "sentencepiece", "tokenizers"),
        ("hf://a/b/tokenizer.model@abc123", "sentencepiece", "sentencepiece"),
        ("tok.json.bak", "sentencepiece", "sentencepiece"),
        ("tok.model", "anything-else", "sentencepiece"),
    ],
)
def test_tokenizer_kind_rule(path, kind, expected):
    assert tokenizer_kind_for(path, kind) == expected


def test_build_tokenizer_selects_backend(tokenizer_json):
    assert isinstance(
        build_tokenizer(4000, TOKENIZER_MODEL, "sentencepiece"), SentencePieceTokenizer
    )
    assert isinstance(build_tokenizer(4000, str(TOKENIZER_MODEL)), SentencePieceTokenizer)
    assert isinstance(build_tokenizer(4000, tokenizer_json, "sentencepiece"), JsonTokenizer)
    assert isinstance(build_tokenizer(4000, str(tokenizer_json), "tokenizers"), JsonTokenizer)


def test_build_tokenizer_vocab_mismatch(tokenizer_json):
    with pytest.raises(TokenizerError, match=r"vocab size=4000 .*n_bins=4001"):
        build_tokenizer(4001, TOKENIZER_MODEL, "sentencepiece")
    with pytest.raises(TokenizerError, match=r"vocab size=4000 .*n_bins=32"):
        build_tokenizer(32, tokenizer_json, "tokenizers")
    with pytest.raises(TypeError, match="n_bins"):
        build_tokenizer("4000", TOKENIZER_MODEL, "sentencepiece")


def test_missing_tokenizer_file(tmp_path):
    missing = tmp_path / "nope.model"
    with pytest.raises(FileNotFoundError, match="nope.model"):
        build_tokenizer(4000, missing, "sentencepiece")
    with pytest.raises(FileNotFoundError, match="nope.json"):
        build_tokenizer(4000, tmp_path / "nope.json", "tokenizers")


def test_tokenizer_path_is_directory(tmp_path):
    with pytest.raises(TokenizerError, match="not a file"):
        SentencePieceTokenizer(tmp_path)


def test_corrupt_sentencepiece_file(tmp_path):
    bad = tmp_path / "bad.model"
    bad.write_bytes(b"this is not a sentencepiece model")
    with pytest.raises(TokenizerError, match="could not load SentencePiece model"):
        build_tokenizer(4000, bad, "sentencepiece")
    empty = tmp_path / "empty.model"
    empty.write_bytes(b"")
    with pytest.raises(TokenizerError):
        SentencePieceTokenizer(empty)


def test_corrupt_json_file(tmp_path):
    pytest.importorskip("tokenizers")
    bad = tmp_path / "tokenizer.json"
    bad.write_text("{not json", encoding="utf-8")
    with pytest.raises(TokenizerError, match="could not load tokenizer.json"):
        build_tokenizer(4000, bad, "tokenizers")
    wrong = tmp_path / "other.json"
    wrong.write_text('{"a": 1}', encoding="utf-8")
    with pytest.raises(TokenizerError):
        JsonTokenizer(wrong)


@pytest.mark.parametrize("path", ["hf://kyutai/x/tokenizer.model@abc", "https://a.b/t.json"])
def test_remote_tokenizer_path_rejected(path):
    with pytest.raises(TokenizerError, match="remote"):
        build_tokenizer(4000, path, "sentencepiece")


def test_bad_path_type():
    with pytest.raises(TypeError, match="path must be"):
        SentencePieceTokenizer(123)


def test_json_tokenizer_without_tokenizers_package(monkeypatch, tokenizer_json):
    monkeypatch.setitem(sys.modules, "tokenizers", None)
    with pytest.raises(ImportError, match="optional 'tokenizers' package"):
        JsonTokenizer(tokenizer_json)
    # The SentencePiece backend does not need it.
    assert SentencePieceTokenizer(TOKENIZER_MODEL).encode("hello") == [1876, 393]
