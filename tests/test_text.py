"""Prompt preparation and chunking: parity with the reference, quirks, bad inputs."""

from __future__ import annotations

import json
import logging

import pytest
from conftest import TOKENIZER_MODEL, run_reference

from pocket_tts.config import load_config
from pocket_tts.text.prepare import (
    TextChunk,
    TextOptions,
    chunk_text_for_generation,
    effective_frames_after_eos,
    ensure_terminal_punctuation,
    find_boundary_indices,
    prepare_chunk,
    prepare_text_prompt,
    segments_from_boundaries,
    split_into_best_sentences,
)
from pocket_tts.text.tokenizer import SentencePieceTokenizer

LONG_COMMA_SENTENCE = (
    "When the morning train finally arrived at the crowded station, the tired passengers, who "
    "had been waiting for nearly two hours in the freezing cold, rushed toward the doors, "
    "pushing past one another, clutching their heavy bags, paper coffee cups, and dripping "
    "umbrellas, while the exhausted conductor shouted instructions that nobody could possibly "
    "hear over the noise of the engines and the announcements."
)
# About 60 tokens: one sentence over max_tokens=50 that must be split at its commas.
SIXTY_TOKEN_COMMAS = (
    "The committee, after weeks of careful deliberation, approved the new budget, which funds "
    "schools, hospitals, and roads, although a few members, citing costs, voted against it."
)
NO_PUNCTUATION = " ".join(
    "the river kept moving past the old mill and nobody in the village seemed to notice "
    "how the water had changed its colour over the long summer months".split()
    * 4
)
PARAGRAPHS = (
    "Pocket TTS is a small text-to-speech model. It runs on a CPU, in real time! Does it "
    "sound good? Most listeners think so.\n\n"
    "The second paragraph talks about numbers: it costs 3.99 dollars, weighs 2.5 kg and was "
    "released in 2026. Version 1.2.3 fixed a bug; version 1.2.4 fixed another one.\n\n"
    "\u201cQuotes,\u201d she said, \u201care tricky.\u201d He replied: \u2018Not really\u2019 "
    "\u2014 and left. Dr. Smith agreed\u2026 mostly.\n"
    "Finally, a very long sentence follows, with many clauses, separated by commas, so that "
    "the chunker has to fall back on them, because otherwise the sentence would be far too "
    "long for a single chunk of fifty tokens, which the model cannot handle well at all."
)
SEMICOLONS = ("First clause; second clause: third clause, fourth clause; " * 6).strip()
MANY_SHORT = " ".join(["Yes.", "No.", "Maybe!", "Why?", "OK\u2026", "Sure."] * 10)

TEXTS = [
    "",
    "   ",
    "\n\t\r\n",
    "hello",
    "hello world",
    "Hello world.",
    "one two three four",
    "one two three four five",
    "3.14 is pi. Then 2.5.",
    "I have 3. 5 people came.",
    "It costs 3.\u20095 dollars.",
    "Dr. Smith",
    "...",
    "?!",
    "!",
    "Hello?! Really?!",
    "Wait... what? Yes.",
    "14\u00bd-13\u00bd",
    "\u201cHello,\u201d she said. \u2018Really?\u2019 he asked.",
    '"Hi?", she said.',
    "She said \u201cstop\u201d",
    'He said "stop".',
    "He said \u201cstop.\u201d",
    "It\u2019s John\u2019s car",
    "\u00ab Bonjour \u00bb, dit-il",
    "\u00abOui\u00bb",
    "\u201e\u201c",
    "(see below)",
    "[aside]",
    "Hello,",
    "Hello -",
    "Hello \u2014",
    "Wait \u2014 what? 1990\u20132000 was long \u2013 very long",
    "list: ",
    "one; two; three",
    "end\u2026",
    "Trailing closers.\u201d\u2019)]\u00bb",
    "weak then closer,\u201d",
    "I love pizza \U0001f355! \U0001f600 Great \U0001f44d\U0001f3fd",
    "\u00e9l\u00e8ve \u00e0 l\u2019\u00e9cole",
    "\u00df is a letter",
    "\u01c6 digraph",
    "\u00bfQu\u00e9? \u00a1Hola!",
    "\u00a1\u00bf",
    "3 cats",
    "Line one\nLine two\r\nLine three\tTabbed",
    "a  b    c      d",
    "a\n\nb",
    "  leading and trailing  ",
    "\u00a0nbsp\u2003em-space",
    "e.g. this, i.e. that, etc.",
    "Version 1.2.3 released. Costs 4.99. Then 10. Items.",
    "x" * 300,
    LONG_COMMA_SENTENCE,
    SIXTY_TOKEN_COMMAS,
    NO_PUNCTUATION,
    PARAGRAPHS,
    SEMICOLONS,
    MANY_SHORT,
    PARAGRAPHS + "\n\n" + LONG_COMMA_SENTENCE + " " + NO_PUNCTUATION,
]

CONFIG_OPTIONS = ["english", "english_2026-01", "english_2m_2026-10", "french", "german", "spanish"]
MAX_TOKENS = [50, 12, 3]


def _options() -> dict[str, dict]:
    options = {
        name: TextOptions.from_config(load_config(name)).as_kwargs() for name in CONFIG_OPTIONS
    }
    options["bare"] = TextOptions(
        append_terminal_punctuation=False, capitalize_first_letter=False
    ).as_kwargs()
    options["bare"]["replace_characters"] = None
    options["no_replace"] = TextOptions().as_kwargs()
    return options


OPTIONS = _options()


@pytest.fixture(scope="session")
def tok() -> SentencePieceTokenizer:
    return SentencePieceTokenizer(TOKENIZER_MODEL, n_bins=4000)


@pytest.fixture(scope="session")
def text_golden(tmp_path_factory) -> dict:
    """One reference run over every text, flag set and max_tokens value."""
    work = tmp_path_factory.mktemp("text_golden")
    spec = {"strings": TEXTS, "options": OPTIONS, "max_tokens": MAX_TOKENS}
    (work / "in.json").write_text(json.dumps(spec), encoding="utf-8")
    run_reference("text_golden.py", TOKENIZER_MODEL, work / "in.json", work / "out.json")
    golden = json.loads((work / "out.json").read_text(encoding="utf-8"))
    assert [item["text"] for item in golden["items"]] == TEXTS
    return golden


def _ours_or_error(fn, *args, **kwargs):
    try:
        return fn(*args, **kwargs)
    except Exception as exc:  # noqa: BLE001 - compared with the reference's exception
        return {"error": [type(exc).__name__, str(exc)]}


# ------------------------------------------------------------------------------------------
# Parity with the reference
# ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("idx", range(len(TEXTS)))
def test_prepare_text_prompt_parity(idx, text_golden):
    item = text_golden["items"][idx]
    for name, kwargs in OPTIONS.items():
        ref = item["prepare"][name]
        ours = _ours_or_error(prepare_text_prompt, item["text"], **kwargs)
        if isinstance(ours, tuple):
            ours = {"text": ours[0], "guess": ours[1]}
        assert ours == ref, f"{name}: {item['text']!r}"


@pytest.mark.parametrize("idx", range(len(TEXTS)))
def test_split_into_best_sentences_parity(idx, text_golden, tok, caplog):
    item = text_golden["items"][idx]
    for name, kwargs in OPTIONS.items():
        for max_tokens in MAX_TOKENS:
            ref = item["split"][name][str(max_tokens)]
            caplog.clear()
            with caplog.at_level(logging.WARNING, logger="pocket_tts.text.prepare"):
                chunks = _ours_or_error(
                    split_into_best_sentences, tok, item["text"], max_tokens, **kwargs
                )
            where = f"{name}, max_tokens={max_tokens}: {item['text'][:60]!r}"
            if "error" in ref:
                assert chunks == ref, where
                continue
            assert chunks == ref["chunks"], where
            warnings = [
                r.getMessage() for r in caplog.records if r.name == "pocket_tts.text.prepare"
            ]
            assert warnings == ref["warnings"], where
            prepared = [list(_ours_or_error(prepare_chunk, c, **kwargs)) for c in chunks]
            assert prepared == ref["prepared"], where


@pytest.mark.parametrize("idx", range(len(TEXTS)))
def test_chunk_text_for_generation_matches_reference(idx, text_golden, tok):
    """The one-call helper gives what generate_audio_stream feeds the model (english flags)."""
    item = text_golden["items"][idx]
    ref = item["split"]["english"]["50"]
    options = TextOptions(**OPTIONS["english"])
    if "error" in ref:
        with pytest.raises(ValueError, match="Text prompt cannot be empty"):
            chunk_text_for_generation(tok, item["text"], 50, options=options)
        return
    chunks = chunk_text_for_generation(tok, item["text"], 50, options=options)
    assert [[c.text, c.frames_after_eos] for c in chunks] == ref["prepared"]
    forced = chunk_text_for_generation(
        tok,
        item["text"],
        50,
        frames_after_eos=7,
        model_recommended_frames_after_eos=9,
        options=options,
    )
    assert [c.frames_after_eos for c in forced] == [7] * len(chunks)
    recommended = chunk_text_for_generation(
        tok, item["text"], 50, model_recommended_frames_after_eos=9, options=options
    )
    assert [c.frames_after_eos for c in recommended] == [9] * len(chunks)


def test_golden_boundary_ids(text_golden, tok):
    assert tok.encode(".!...?") == text_golden["tokenizer"]["sentence_end_ids"]
    assert tok.encode(",;:") == text_golden["tokenizer"]["fallback_ids"]


def test_long_texts_really_chunk(text_golden, tok):
    """The long inputs exercise multi-chunk packing, comma fallback and the warning."""
    by_text = {item["text"]: item for item in text_golden["items"]}
    para = by_text[PARAGRAPHS]["split"]["english"]["50"]["chunks"]
    assert len(para) >= 4
    comma = by_text[LONG_COMMA_SENTENCE]["split"]["english"]["50"]["chunks"]
    assert len(comma) >= 2  # one sentence over 50 tokens, split on commas
    assert 55 <= len(tok.encode(SIXTY_TOKEN_COMMAS)) <= 65
    sixty = by_text[SIXTY_TOKEN_COMMAS]["split"]["english"]["50"]
    assert len(sixty["chunks"]) == 2 and sixty["chunks"][0].endswith(",")
    # The comma-ended first chunk is then given a period of its own.
    assert sixty["prepared"][0][0].endswith("members.")
    nopunct = by_text[NO_PUNCTUATION]["split"]["english"]["50"]
    assert len(nopunct["chunks"]) == 1 and nopunct["warnings"]  # nothing to split on


# ------------------------------------------------------------------------------------------
# Behaviour details (independent of the reference run)
# ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Hello", "Hello."),
        ("Hello.", "Hello."),
        ("Hello?", "Hello?"),
        ("Hello\u2026", "Hello\u2026"),
        ("Hello,", "Hello."),
        ("Hello ,;: ", "Hello."),
        ("Hello \u2014", "Hello."),
        ("Hello -\u201d", "Hello.\u201d"),
        ("He said \u201cstop\u201d", "He said \u201cstop\u201d."),
        ("He said \u201cstop.\u201d", "He said \u201cstop.\u201d"),
        ("(aside)", "(aside)."),
        ("\u201d", "\u201d"),
        ("", ""),
    ],
)
def test_ensure_terminal_punctuation(text, expected):
    assert ensure_terminal_punctuation(text) == expected


def test_prepare_text_prompt_steps():
    assert prepare_text_prompt("hello world", False, False) == ("Hello world.", 3)
    assert prepare_text_prompt("a b c d e", False, False) == ("A b c d e.", 1)
    assert prepare_text_prompt("hi there", True, False) == ("        Hi there.", 3)
    assert prepare_text_prompt("one; two", False, True) == ("One, two.", 3)
    assert prepare_text_prompt("x", False, False, False, False) == ("x", 3)
    # ß upper-cases to two letters.
    assert prepare_text_prompt("\u00df x", False, False)[0] == "SS x."
    # One pass of "  " -> " " without replace_characters; full collapse with it.
    assert prepare_text_prompt("a    b", False, False, False, False)[0] == "a  b"
    assert prepare_text_prompt("a    b", False, False, False, False, {"z": "y"})[0] == "a b"
    # A deleted quote leaves "?," which becomes "?".
    assert prepare_text_prompt('"Hi?", she said', False, False, replace_characters={'"': ""}) == (
        "Hi? she said.",
        3,
    )


def test_decimal_period_rule(tok):
    assert split_into_best_sentences(
        tok, "Pi is 3.14 and e is 2.71. Next one.", 5, False, False
    ) == ["Pi is 3.14 and e is 2.71.", "Next one."]
    # Quirk kept from the reference: SentencePiece decodes the suffix without its leading
    # space, so "3. 5" also counts as a decimal period and is not a boundary.
    assert split_into_best_sentences(tok, "I have 3. 5 people came.", 3, False, False) == [
        "I have 3. 5 people came."
    ]


def test_boundary_helpers(tok):
    ids = tok.encode("A b. C d! E f?")
    end_ids = tok.encode(".!...?")[1:]
    bounds = find_boundary_indices(ids, end_ids, tok, skip_decimal_periods=True)
    assert bounds[0] == 0 and bounds[-1] == len(ids)
    segments = segments_from_boundaries(ids, bounds, tok)
    assert [s for _, s in segments] == ["A b.", "C d!", "E f?"]
    assert sum(n for n, _ in segments) == len(ids)
    assert find_boundary_indices([], end_ids) == [0, 0]


def test_effective_frames_after_eos():
    assert effective_frames_after_eos(None, 5) == 5
    assert effective_frames_after_eos(None, 3, 8) == 8
    assert effective_frames_after_eos(2, 3, 8) == 2
    assert effective_frames_after_eos(0, 3, 8) == 0


def test_prepare_chunk_adds_two():
    assert prepare_chunk("short one", False, False) == ("Short one.", 5)
    assert prepare_chunk("this one has five words", False, False)[1] == 3


def test_text_options_from_config():
    opts = TextOptions.from_config(load_config("french"))
    assert opts.remove_semicolons is True and opts.replace_characters[":"] == ","
    assert TextOptions.from_config(load_config("english_2026-01")).pad_with_spaces_for_short_inputs
    assert TextOptions().as_kwargs() == {
        "pad_with_spaces_for_short_inputs": False,
        "remove_semicolons": False,
        "append_terminal_punctuation": True,
        "capitalize_first_letter": True,
        "replace_characters": {},
    }
    chunk = TextChunk("Hi.", 5)
    assert chunk.text == "Hi." and chunk.frames_after_eos == 5


def test_oversized_chunk_warns(tok, caplog):
    with caplog.at_level(logging.WARNING, logger="pocket_tts.text.prepare"):
        chunks = split_into_best_sentences(tok, NO_PUNCTUATION, 50, False, False)
    assert len(chunks) == 1
    assert any("generation may skip words" in r.getMessage() for r in caplog.records)


def _words(text: str) -> list[str]:
    """Words compared across chunkings: each piece is prepared on its own (capitalised, given
    a period), so case and a trailing period do not count."""
    return [w.lower().rstrip(".") for w in text.split()]


@pytest.mark.parametrize("idx", range(len(TEXTS)))
def test_split_oversized_keeps_every_reference_chunk_that_fits(idx, text_golden, tok):
    """split_oversized=True gives the reference's chunks, except that a chunk over max_tokens is
    replaced by pieces of at most max_tokens tokens holding its words in order."""
    item = text_golden["items"][idx]
    ref = item["split"]["english"]["50"]
    options = TextOptions(**OPTIONS["english"])
    if "error" in ref:
        with pytest.raises(ValueError, match="Text prompt cannot be empty"):
            chunk_text_for_generation(tok, item["text"], 50, options=options, split_oversized=True)
        return
    got = [
        [c.text, c.frames_after_eos]
        for c in chunk_text_for_generation(
            tok, item["text"], 50, options=options, split_oversized=True
        )
    ]
    i = 0
    for text, frames in ref["prepared"]:
        if len(tok.encode(text)) <= 50:
            assert got[i] == [text, frames]
            i += 1
            continue
        words: list[str] = []
        while len("".join(words)) < len("".join(_words(text))):
            piece = got[i][0]
            assert len(tok.encode(piece)) <= 50, piece
            words += _words(piece)
            i += 1
        # In order; a word longer than the limit is cut between characters.
        assert "".join(words) == "".join(_words(text)) and len(words) >= len(_words(text))
    assert i == len(got)


def test_split_oversized_cuts_unpunctuated_text(tok):
    options = TextOptions(**OPTIONS["english"])
    assert len(chunk_text_for_generation(tok, NO_PUNCTUATION, 50, options=options)) == 1
    pieces = chunk_text_for_generation(
        tok, NO_PUNCTUATION, 50, options=options, split_oversized=True
    )
    assert len(pieces) >= 2
    for piece in pieces:
        assert len(tok.encode(piece.text)) <= 50
        # Each piece is prepared on its own: capitalised, with a period, its own EOS guess.
        assert piece.text[0].isupper() and piece.text.endswith(".")
        assert piece.frames_after_eos == 3
    assert _words(" ".join(p.text for p in pieces)) == _words(NO_PUNCTUATION)
    forced = chunk_text_for_generation(tok, NO_PUNCTUATION, 50, 7, 9, options, split_oversized=True)
    assert [p.text for p in forced] == [p.text for p in pieces]
    assert {p.frames_after_eos for p in forced} == {7}
    recommended = chunk_text_for_generation(
        tok, NO_PUNCTUATION, 50, None, 9, options, split_oversized=True
    )
    assert {p.frames_after_eos for p in recommended} == {9}


def _core(piece: str) -> str:
    """A prepared piece without what preparation added: padding, a final period, a capital."""
    text = piece.strip()
    text = text[:-1] if text.endswith(".") else text
    return text[:1].lower() + text[1:]


@pytest.mark.parametrize(
    "text",
    [
        "a" * 200_000,  # one "word" of 200 001 tokens
        "x9Q/Zk+7" * 4000,  # a base64 blob
        "example-host/" + "path/segment-" * 1500 + "end",  # a URL path
        "日本語" * 3000,  # CJK without any sentence mark
    ],
    ids=["letters", "base64", "url", "cjk-run"],
)
def test_split_oversized_bounds_runs_without_spaces(tok, text):
    """A run with no sentence mark, comma or space (the reference generates it as one chunk:
    minutes and gigabytes) is cut between characters into chunks of at most max_tokens
    tokens that hold the whole run, in order, and no broken character."""
    ref = split_into_best_sentences(tok, text, 50, False, False, warn_oversized=False)
    assert max(len(tok.encode(c)) for c in ref) > 1000  # the reference: one huge chunk
    pieces = chunk_text_for_generation(tok, text, 50, split_oversized=True)
    assert len(pieces) > 1
    assert max(len(tok.encode(p.text)) for p in pieces) <= 50
    assert "\ufffd" not in "".join(p.text for p in pieces)
    assert "".join(_core(p.text) for p in pieces).lower() == text.lower()


def test_split_oversized_cuts_at_other_scripts_sentence_marks(tok):
    """。！？ (and the like) end sentences for the cut: each piece is whole sentences, unless one
    sentence alone is over the limit."""
    sentences = ["日本語のテキストです。", "元気ですか？", "すごい！", "मैं ठीक हूँ।", "هل أنت بخير؟"]
    text = "".join(sentences * 60)
    pieces = chunk_text_for_generation(tok, text, 50, split_oversized=True)
    assert max(len(tok.encode(p.text)) for p in pieces) <= 50
    assert "".join(_core(p.text).replace(" ", "") for p in pieces) == text.replace(" ", "")
    marks = tuple("。？！।؟")
    assert all(_core(p.text).endswith(marks) for p in pieces[:-1])


def test_split_oversized_packs_words_up_to_the_limit(tok):
    """Unpunctuated words fill chunks up to max_tokens (not a fraction of it): what
    preparation adds to a piece is reserved, not paid for by halving."""
    pieces = chunk_text_for_generation(tok, "word " * 2000, 50, split_oversized=True)
    sizes = [len(tok.encode(p.text)) for p in pieces]
    assert max(sizes) <= 50 and min(sizes[:-1]) >= 45, sizes
    assert sum(len(p.text.split()) for p in pieces) == 2000


def test_decimal_period_check_reads_only_the_boundary(tok):
    """The decimal-period rule looks at a few tokens around each boundary, with the answer of
    decoding the whole text, so a text of many sentences chunks in linear time."""
    from pocket_tts.text import prepare

    text = " ".join(f"Item {i}. {i % 10}.5 units. x{i}.{i} y? {i}.z" for i in range(40))
    ids = tok.encode(text)
    calls: list[int] = []

    class Counting:
        def encode(self, t):
            return tok.encode(t)

        def decode(self, t):
            calls.append(len(t))
            return tok.decode(t)

    for start in range(1, len(ids)):
        prefix = tok.decode(list(ids[:start]))
        suffix = tok.decode(list(ids[start:]))
        want = (
            len(prefix) >= 2
            and prefix[-1] == "."
            and prefix[-2].isdigit()
            and bool(suffix)
            and suffix[0].isdigit()
        )
        assert prepare._is_decimal_period_boundary(ids, start, Counting()) == want, start
    assert max(calls) <= 16  # never the whole text


# ------------------------------------------------------------------------------------------
# Bad inputs
# ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("text", ["", "   ", "\n\t\r\n "])
def test_empty_text_rejected(text, tok):
    with pytest.raises(ValueError, match="Text prompt cannot be empty"):
        prepare_text_prompt(text, False, False)
    with pytest.raises(ValueError, match="Text prompt cannot be empty"):
        split_into_best_sentences(tok, text, 50, False, False)
    with pytest.raises(ValueError, match="Text prompt cannot be empty"):
        chunk_text_for_generation(tok, text)


def test_text_empty_after_replacement(tok):
    french = TextOptions.from_config(load_config("french")).as_kwargs()
    with pytest.raises(ValueError, match="Text prompt cannot be empty"):
        prepare_text_prompt("\u00ab \u00bb \u201c\u201d", **french)
    with pytest.raises(ValueError, match="Text prompt cannot be empty"):
        split_into_best_sentences(tok, "( )", 50, **french)


@pytest.mark.parametrize("bad", [None, 42, b"bytes", ["a list"]])
def test_non_str_text_rejected(bad, tok):
    with pytest.raises(TypeError, match="text must be a str"):
        prepare_text_prompt(bad, False, False)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="text must be a str"):
        split_into_best_sentences(tok, bad, 50, False, False)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="text must be a str"):
        chunk_text_for_generation(tok, bad)  # type: ignore[arg-type]


@pytest.mark.parametrize("bad", [None, 50.0, "50", True])
def test_bad_max_tokens(bad, tok):
    with pytest.raises(TypeError, match="max_tokens"):
        split_into_best_sentences(tok, "Hello.", bad, False, False)  # type: ignore[arg-type]


def test_bad_replace_characters():
    with pytest.raises(ValueError):
        prepare_text_prompt("hello", False, False, replace_characters={"ab": "c"})
