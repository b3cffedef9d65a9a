"""Config loading: the YAML subset parser, the strict schema, names/paths, reference parity."""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path

import pytest
import yaml
from conftest import run_reference

from pocket_tts import config as cfgmod
from pocket_tts.config import (
    CONFIGS_DIR,
    DEFAULT_EOS_THRESHOLD,
    Config,
    ConfigError,
    ConfigNotFoundError,
    FlowConfig,
    FlowLMConfig,
    FlowLMTransformerConfig,
    LookupTable,
    MimiConfig,
    MimiTransformerConfig,
    QuantizerConfig,
    SEANetConfig,
    available_languages,
    config_path_for_language,
    load_config,
)
from pocket_tts.yaml_subset import YamlSubsetError, parse_yaml

SHIPPED = sorted(CONFIGS_DIR.glob("*.yaml"))

# The language names listed by TTSModel.load_model's docstring (spec section 7).
SPEC_LANGUAGES = {
    "english_2026-01",
    "english_2026-04",
    "english_2026-09",
    "english_2026-09_2",
    "english_2026-10",
    "english_drifting_26-09",
    "english_18m_2026-10",
    "english_18m_refl_2026-10",
    "english_7m_2026-10",
    "english_7m_refl_2026-10",
    "english_2m_2026-10",
    "english_2m_refl_2026-10",
    "english",
    "french",
    "french_24l",
    "german",
    "german_24l",
    "portuguese",
    "portuguese_24l",
    "italian",
    "italian_24l",
    "spanish",
    "spanish_24l",
    "dutch",
    "dutch_24l",
    "english_2026-04_24l",
    "english_2026-09_24l",
}


def _minimal() -> dict:
    """A small valid config dict (only required keys)."""
    seanet = {
        "dimension": 512,
        "channels": 1,
        "n_filters": 64,
        "n_residual_layers": 1,
        "ratios": [6, 5, 4],
        "kernel_size": 7,
        "residual_kernel_size": 3,
        "last_kernel_size": 3,
        "dilation_base": 2,
        "pad_mode": "constant",
        "compress": 2,
    }
    return {
        "flow_lm": {
            "dtype": "float32",
            "flow": {"dim": 512, "depth": 6},
            "transformer": {
                "hidden_scale": 4,
                "max_period": 10000,
                "d_model": 1024,
                "num_heads": 16,
                "num_layers": 6,
            },
            "lookup_table": {
                "dim": 1024,
                "n_bins": 4000,
                "tokenizer": "sentencepiece",
                "tokenizer_path": "tokenizer.model",
            },
        },
        "mimi": {
            "dtype": "float32",
            "sample_rate": 24000,
            "channels": 1,
            "frame_rate": 12.5,
            "seanet": seanet,
            "transformer": {
                "d_model": 512,
                "input_dimension": 512,
                "output_dimensions": [512],
                "num_heads": 8,
                "num_layers": 2,
                "layer_scale": 0.01,
                "context": 250,
                "dim_feedforward": 2048,
            },
            "quantizer": {"dimension": 32, "output_dimension": 512},
        },
    }


def _set(d: dict, dotted: str, value) -> dict:
    *parents, last = dotted.split(".")
    for p in parents:
        d = d[p]
    d[last] = value
    return d


def _delete(d: dict, dotted: str) -> None:
    *parents, last = dotted.split(".")
    for p in parents:
        d = d[p]
    del d[last]


# ------------------------------------------------------------------------------------------
# YAML subset parser
# ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.stem)
def test_parse_yaml_matches_pyyaml_on_shipped(path):
    text = path.read_text(encoding="utf-8")
    assert parse_yaml(text) == yaml.safe_load(text)


YAML_CASES = {
    "scalars": (
        "i: 12\nneg: -4\nplus: +7\nunder: 1_000\nzero: 0\nhex: 0x1F\noct: 017\nbin: 0b101\n"
        "f: 12.5\nf2: -4.0\nf3: 1.\nf4: .5\nf5: 1.0e+5\nf6: 6.5E-3\ninf: .inf\nninf: -.Inf\n"
        "s_exp: 1e5\ns_exp2: 1.0e5\ns_negdot: -.5\n"
        "t: true\nT: True\ny: yes\nn: No\non: ON\noff: off\nnul: null\ntilde: ~\nempty:\n"
        "word: lsd\nver: 2026-10x\nhf: hf://kyutai/x/model.safetensors@db04f0e\n"
        "url: https://a.b/c?d=1#frag\nhash: a#b\nspaced: two words here\n"
    ),
    "quoted": (
        "a: 'single'\nb: \"double\"\nc: 'it''s'\nd: ''''\ne: \"\"\nf: ''\n"
        'g: "tab\\tnl\\nq\\"bs\\\\u\\u2019x\\x41U\\U0001F600"\n'
        "h: '# not a comment'  # but this is\ni: \"#x\"\nj: 'true'\nk: '12'\n"
        "'\u2019': \"'\"\n'\u2018': ''''\n\"\u201c\": ''\n'\"': ''\n':': ','\n"
    ),
    "nesting": (
        "# header comment\n\ntop:\n  mid:\n    leaf: 1   # trailing\n    list:\n    - 6\n"
        "    - 5\n    other:\n      - a\n      - b\n  after: x\n"
        "seq_same_indent:\n- 1\n- 2\nnested:\n  - - 1\n    - 2\n  - - 3\n"
        "maps_in_seq:\n  - name: a\n    v: 1\n  - name: b\n    v: 2\n"
        "null_items:\n  -\n  - ~\n"
    ),
    "flow": (
        "a: [1, 2, 3]\nb: []\nc: [a, 'b c', \"d\", 1.5, true, null]\nd: [[1, 2], [3]]\n"
        "e: {}\nf: {x: 1, 'y': [1, 2], z: {w: null}}\ng: [ 512 ]  # comment\n"
    ),
    "document_marker": "---\na: 1\n",
    "multiline_flow": (
        "a: [1,\n  2, 3]\nb: {x: 1,  # comment\n    'y': [it's, \"q#z\"],\n  z: 'a, b'}\n"
        "c:\n  - [1,\n    2]\n  - {k: v}\nd: [[1,\n   2], [3]]\n"
    ),
    "flow_document": "{a: 1, b: [1, 2],\n  c: {d: x}}\n",
    "crlf": "a: 1\r\nb:\r\n  c: 2\r\n",
    "unicode_values": "x: caf\u00e9 \u4e2d\u6587\ny: \U0001f600\n",
    "keys": "2: one\ntrue: t\nnull: n\n'quoted key': 1\nspaced key: 2\na:b: 3\n",
}


@pytest.mark.parametrize("name", sorted(YAML_CASES))
def test_parse_yaml_matches_pyyaml_on_subset(name):
    text = YAML_CASES[name]
    ours = parse_yaml(text)
    ref = yaml.safe_load(text)
    assert ours == ref
    # == treats 1 and 1.0 and True alike: compare the types too.
    assert json.dumps(ours, sort_keys=False, default=str) == json.dumps(ref, default=str)


def test_parse_yaml_nan_and_types():
    out = parse_yaml("a: .nan\nb: 10000\nc: 10000.0\nd: yes\n")
    assert math.isnan(out["a"])
    assert type(out["b"]) is int and type(out["c"]) is float and out["d"] is True


def test_parse_yaml_empty_document():
    assert parse_yaml("") == {}
    assert parse_yaml("# only comments\n\n   \n") == {}


@pytest.mark.parametrize(
    ("text", "line", "message"),
    [
        ("a: 1\n\tb: 2\n", 2, "tabs"),
        ("a: &x 1\n", 1, "anchors"),
        ("a: 1\nb: *x\n", 2, "aliases"),
        ("a: !!str 1\n", 1, "tags"),
        ("a: |\n  text\n", 1, "block scalars"),
        ("a: >\n  text\n", 1, "block scalars"),
        ("a: [1,\n2]\n", 1, "unterminated flow collection"),
        ("a: {b: 1\n", 1, "unterminated flow collection"),
        ("a: [1, 'x\n  y']\n", 1, "unterminated quoted string"),
        ("a: 'open\n", 1, "unterminated single-quoted"),
        ('a: "open\n', 1, "unterminated double-quoted"),
        ('a: "bad \\q escape"\n', 1, "unknown escape"),
        ("a: 1\n  b: 2\n", 2, "unexpected indentation"),
        ("a:\n    b: 1\n  c: 2\n", 3, "unexpected indentation"),
        ("a: 1\na: 2\n", 2, "duplicate mapping key 'a'"),
        ("- 1\n- 2\n", 1, "top level must be a mapping"),
        ("just a scalar\n", 1, "top level must be a mapping"),
        ("a: 2026-10-01\n", 1, "timestamp"),
        ("a: 1:30\n", 1, "sexagesimal"),
        ("a: 1\n---\nb: 2\n", 2, "multiple documents"),
        ("a: first line\n  continued\n", 2, "unexpected indentation"),
        ("a: b: c\n", 1, "mapping values are not allowed"),
        ("a: - b\n", 1, "block sequence entry"),
        ("? a\n: b\n", 1, "top level must be a mapping"),
        ("a:\n  - 1\n  b: 2\n", 3, "unexpected indentation"),
        ("a:\n- 1\nb\n", 3, "expected a 'key: value' entry"),
        ("[1, 2]\n", 1, "top level must be a mapping"),
        ("{a: 1}\nb: 2\n", 2, "unexpected content after the document"),
        ("%YAML 1.1\na: 1\n", 1, "directives"),
        ("a: [1, 2] extra\n", 1, "unexpected content"),
        ("a: 'x' extra\n", 1, "unexpected content"),
        ("  a: 1\n", 1, "column 0"),
        ("a: [1, 2\n", 1, "unterminated flow collection"),
        ("a: [1, 2]]\n", 1, "unexpected content"),
        ("a: <<\n", 1, "not supported"),
    ],
)
def test_parse_yaml_rejects_outside_subset(text, line, message):
    with pytest.raises(YamlSubsetError, match=message) as info:
        parse_yaml(text)
    assert info.value.lineno == line
    assert str(info.value).startswith(f"line {line}:")


def test_parse_yaml_rejects_non_str():
    with pytest.raises(TypeError):
        parse_yaml(b"a: 1")


# ------------------------------------------------------------------------------------------
# Loading the shipped configs
# ------------------------------------------------------------------------------------------


def test_available_languages():
    langs = available_languages()
    assert langs == sorted(p.stem for p in SHIPPED)
    assert set(langs) == SPEC_LANGUAGES


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.stem)
def test_every_shipped_config_loads(path):
    by_name = load_config(path.stem)
    by_path = load_config(path)
    by_str = load_config(str(path))
    assert by_name == by_path == by_str
    assert isinstance(by_name, Config)
    assert by_name.source_dir == CONFIGS_DIR
    assert config_path_for_language(path.stem) == path
    assert by_name.flow_lm.lookup_table.n_bins == 4000
    assert by_name.mimi.sample_rate == 24000
    # Remote locations stay strings.
    assert by_name.weights_path.startswith("hf://")
    assert by_name.resolve_local(by_name.weights_path) == by_name.weights_path


def test_shipped_config_values():
    en = load_config("english")
    assert en.flow_lm.transformer.d_model == 1024
    assert en.flow_lm.flow.type == "lsd"
    assert en.mimi.seanet.ratios == [6, 5, 4]
    assert en.mimi.transformer.output_dimensions == (512,)
    assert isinstance(en.mimi.transformer.max_period, float)
    assert en.replace_characters == {"\u2019": "'", "\u2018": "'"}
    assert en.default_eos_threshold == DEFAULT_EOS_THRESHOLD == -4.0
    assert en.flow_lm.lookup_table.tokenizer == "tokenizers"
    two = load_config("english_2m_2026-10")
    assert two.flow_lm.flow.type == "pointwise"
    assert two.flow_lm.lookup_table.rank == 32
    assert two.flow_lm.lookup_table.tokenizer == "sentencepiece"
    assert two.mimi.decoder_transformer.num_layers == 4
    assert two.default_eos_threshold == -1.0
    assert load_config("english_2026-01").pad_with_spaces_for_short_inputs is True
    assert load_config("english_2026-01").flow_lm.insert_bos_before_voice is False
    assert load_config("french").remove_semicolons is True
    assert load_config("french").replace_characters[":"] == ","
    assert load_config("spanish").replace_characters["\u00bf"] == ""


def _strict_equal(a, b, path="") -> None:
    """Equal values of identical JSON types (1 vs 1.0 vs True differ)."""
    assert type(a) is type(b), f"{path}: {type(a).__name__} {a!r} vs {type(b).__name__} {b!r}"
    if isinstance(a, dict):
        assert list(a) == list(b), f"{path}: keys {list(a)} vs {list(b)}"
        for k in a:
            _strict_equal(a[k], b[k], f"{path}.{k}")
    elif isinstance(a, list):
        assert len(a) == len(b), path
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            _strict_equal(x, y, f"{path}[{i}]")
    else:
        assert a == b, f"{path}: {a!r} vs {b!r}"


@pytest.fixture(scope="module")
def reference_configs(tmp_path_factory) -> dict:
    out = tmp_path_factory.mktemp("cfg") / "configs.json"
    run_reference("text_golden.py", "--configs", out)
    return json.loads(out.read_text(encoding="utf-8"))["configs"]


def test_configs_match_reference_pydantic(reference_configs):
    """Same field names (and order), defaults, values and value types as the reference."""
    assert sorted(reference_configs) == available_languages()
    for name, ref_dump in reference_configs.items():
        ours = json.loads(json.dumps(load_config(name).model_dump()))
        _strict_equal(ours, ref_dump, name)


# ------------------------------------------------------------------------------------------
# Schema: class/field names, defaults, strictness
# ------------------------------------------------------------------------------------------


def test_class_and_default_values():
    assert FlowConfig(dim=1, depth=2).type == "lsd"
    t = FlowLMTransformerConfig(hidden_scale=4, max_period=1, d_model=8, num_heads=2, num_layers=1)
    assert (t.attn_dim, t.num_kv_heads, t.dim_feedforward) == (None, None, None)
    assert LookupTable(dim=1, n_bins=2, tokenizer="x", tokenizer_path="y").rank is None
    cfg = Config.from_dict(_minimal())
    assert cfg.weights_path is None and cfg.weights_path_without_voice_cloning is None
    assert cfg.pad_with_spaces_for_short_inputs is False
    assert cfg.remove_semicolons is False
    assert cfg.append_terminal_punctuation is True
    assert cfg.capitalize_first_letter is True
    assert cfg.replace_characters == {}
    assert cfg.model_recommended_frames_after_eos is None
    assert cfg.default_temperature == 0.3
    assert cfg.default_eos_threshold == -4.0
    assert cfg.flow_lm.z_dim is None and cfg.flow_lm.weights_path is None
    assert cfg.flow_lm.insert_bos_before_voice is False
    assert cfg.mimi.transformer.max_period == 10000.0
    for name in ("weights_path", "inner_dim", "outer_dim", "decoder_seanet", "decoder_transformer"):
        assert getattr(cfg.mimi, name) is None
    assert isinstance(cfg.flow_lm, FlowLMConfig) and isinstance(cfg.mimi, MimiConfig)
    assert isinstance(cfg.mimi.seanet, SEANetConfig)
    assert isinstance(cfg.mimi.transformer, MimiTransformerConfig)
    assert isinstance(cfg.mimi.quantizer, QuantizerConfig)
    assert cfg.source_dir is None
    assert cfg.model_dump() == Config.model_validate(cfg.model_dump()).model_dump()


def test_frozen_and_validated_on_construction():
    cfg = Config.from_dict(_minimal())
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.remove_semicolons = True  # type: ignore[misc]
    with pytest.raises(ConfigError, match="'remove_semicolons': expected bool"):
        dataclasses.replace(cfg, remove_semicolons="yes")
    # Nested mappings are converted on direct construction too.
    direct = Config(**_minimal())
    assert direct == cfg
    with pytest.raises(ConfigError, match=r"'mimi\.seanet\.ratios\[0\]'"):
        d = _minimal()
        d["mimi"]["seanet"]["ratios"] = ["6"]
        Config(**d)


@pytest.mark.parametrize(
    "dotted",
    [
        "surprise",
        "flow_lm.surprise",
        "flow_lm.transformer.surprise",
        "flow_lm.lookup_table.surprise",
        "mimi.seanet.surprise",
        "mimi.quantizer.surprise",
        "mimi.transformer.surprise",
    ],
)
def test_unknown_key_rejected(dotted):
    d = _minimal()
    _set(d, dotted, 1)
    with pytest.raises(ConfigError, match=f"unknown config key '{dotted}'") as info:
        Config.from_dict(d)
    assert info.value.key_path == dotted


def test_unknown_key_suggestion():
    d = _minimal()
    d["flow_lm"]["transformer"]["num_head"] = 3
    with pytest.raises(ConfigError, match="did you mean 'flow_lm.transformer.num_heads'"):
        Config.from_dict(d)


def test_unknown_key_in_decoder_seanet():
    d = _minimal()
    d["mimi"]["decoder_seanet"] = dict(d["mimi"]["seanet"], bogus=1)
    with pytest.raises(ConfigError, match="'mimi.decoder_seanet.bogus'"):
        Config.from_dict(d)


@pytest.mark.parametrize(
    "dotted",
    [
        "flow_lm",
        "mimi",
        "flow_lm.dtype",
        "flow_lm.flow.dim",
        "flow_lm.transformer.num_layers",
        "flow_lm.lookup_table.tokenizer_path",
        "mimi.seanet.ratios",
        "mimi.transformer.context",
        "mimi.transformer.dim_feedforward",
        "mimi.quantizer.dimension",
        "mimi.frame_rate",
    ],
)
def test_missing_key_rejected(dotted):
    d = _minimal()
    _delete(d, dotted)
    with pytest.raises(ConfigError, match=f"missing required config key '{dotted}'") as info:
        Config.from_dict(d)
    assert info.value.key_path == dotted


@pytest.mark.parametrize(
    ("dotted", "value", "expected"),
    [
        ("flow_lm.flow.dim", "512", "int"),
        ("flow_lm.flow.dim", 512.0, "int"),
        ("flow_lm.flow.dim", True, "int"),
        ("flow_lm.flow.dim", None, "int"),
        ("flow_lm.flow.type", 3, "str"),
        ("flow_lm.insert_bos_before_voice", 1, "bool"),
        ("flow_lm.insert_bos_before_voice", "true", "bool"),
        ("flow_lm.z_dim", "64", "int"),
        ("flow_lm.transformer", [1, 2], "a mapping"),
        ("flow_lm.transformer.attn_dim", 1.5, "int"),
        ("mimi.frame_rate", "12.5", "float"),
        ("mimi.frame_rate", False, "float"),
        ("mimi.seanet.ratios", 6, "a list of int"),
        ("mimi.seanet.ratios", "654", "a list of int"),
        ("mimi.transformer.output_dimensions", {"a": 1}, "a list of int"),
        ("mimi.decoder_transformer", "none", "a mapping"),
        ("replace_characters", ["a"], "a mapping"),
        ("default_temperature", "0.3", "float"),
        ("weights_path", 5, "str"),
        ("model_recommended_frames_after_eos", 2.0, "int"),
    ],
)
def test_wrong_type_rejected(dotted, value, expected):
    d = _minimal()
    _set(d, dotted, value)
    with pytest.raises(ConfigError, match=f"config key '{dotted}': expected {expected}"):
        Config.from_dict(d)


def test_wrong_type_in_containers():
    d = _minimal()
    d["mimi"]["seanet"]["ratios"] = [6, "5", 4]
    with pytest.raises(ConfigError, match=r"'mimi\.seanet\.ratios\[1\]': expected int"):
        Config.from_dict(d)
    d = _minimal()
    d["replace_characters"] = {"a": None}
    with pytest.raises(ConfigError, match=r"replace_characters\['a'\]': expected str"):
        Config.from_dict(d)
    d = _minimal()
    d["replace_characters"] = {1: "a"}
    with pytest.raises(ConfigError, match="replace_characters key 1"):
        Config.from_dict(d)
    d = _minimal()
    d[3] = "x"
    with pytest.raises(ConfigError, match="keys must be strings"):
        Config.from_dict(d)
    with pytest.raises(ConfigError, match="expected a mapping"):
        Config.from_dict(["not", "a", "mapping"])  # type: ignore[arg-type]


def test_ints_accepted_for_float_fields():
    d = _minimal()
    d["mimi"]["frame_rate"] = 12
    d["default_eos_threshold"] = -1
    d["mimi"]["transformer"]["max_period"] = 10000
    cfg = Config.from_dict(d)
    assert type(cfg.mimi.frame_rate) is float and cfg.mimi.frame_rate == 12.0
    assert type(cfg.default_eos_threshold) is float
    assert type(cfg.mimi.transformer.max_period) is float


# ------------------------------------------------------------------------------------------
# load_config: names, paths, errors
# ------------------------------------------------------------------------------------------


def _write(tmp_path: Path, text: str, name: str = "cfg.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_unknown_language_lists_available():
    with pytest.raises(ConfigNotFoundError, match="Available languages: .*'english_2m_2026-10'"):
        load_config("klingon")
    with pytest.raises(FileNotFoundError, match="Did you mean 'english'"):
        load_config("englsh")
    with pytest.raises(ConfigError):
        config_path_for_language("../config/english")
    with pytest.raises(TypeError):
        config_path_for_language(None)  # type: ignore[arg-type]


@pytest.mark.parametrize("bad", ["config.json", "dir/english", "english.txt"])
def test_path_must_end_with_yaml(bad):
    with pytest.raises(ConfigError, match="ending with .yaml"):
        load_config(bad)


def test_path_object_without_suffix_rejected():
    with pytest.raises(ConfigError, match="ending with .yaml"):
        load_config(Path("english"))


def test_missing_file(tmp_path):
    with pytest.raises(ConfigNotFoundError, match="Config file not found"):
        load_config(tmp_path / "missing.yaml")
    with pytest.raises(FileNotFoundError):
        load_config(str(tmp_path / "missing.yml"))


def test_directory_path(tmp_path):
    d = tmp_path / "dir.yaml"
    d.mkdir()
    with pytest.raises(ConfigError, match="not a file"):
        load_config(d)


def test_bad_yaml_syntax_reports_file_and_line(tmp_path):
    path = _write(tmp_path, "flow_lm:\n  dtype: float32\n   flow: 1\n")
    with pytest.raises(ConfigError, match=r"cfg\.yaml: invalid config YAML: line 3:") as info:
        load_config(path)
    assert isinstance(info.value.__cause__, YamlSubsetError)


def test_bad_yaml_anchor(tmp_path):
    path = _write(tmp_path, yaml.safe_dump(_minimal()) + "extra: &a 1\n")
    with pytest.raises(ConfigError, match="anchors are not supported"):
        load_config(path)


def test_non_utf8_file(tmp_path):
    path = tmp_path / "latin.yaml"
    path.write_bytes("remove_semicolons: caf\u00e9\n".encode("latin-1"))
    with pytest.raises(ConfigError, match="not valid UTF-8"):
        load_config(path)


def test_empty_yaml_file(tmp_path):
    with pytest.raises(ConfigError, match="missing required config key 'flow_lm'"):
        load_config(_write(tmp_path, "# nothing\n"))


def test_file_errors_name_key_path(tmp_path):
    d = _minimal()
    d["mimi"]["seanet"]["bogus_key"] = 3
    path = _write(tmp_path, yaml.safe_dump(d, allow_unicode=True))
    with pytest.raises(ConfigError, match="unknown config key 'mimi.seanet.bogus_key'") as info:
        load_config(path)
    assert info.value.key_path == "mimi.seanet.bogus_key"
    assert "cfg.yaml" in str(info.value)


def test_custom_yaml_round_trip(tmp_path):
    d = _minimal()
    d["replace_characters"] = {"\u2019": "'", "\u00ab": ""}
    d["flow_lm"]["weights_path"] = "weights/flow.safetensors"
    for dumper in (
        lambda x: yaml.safe_dump(x, allow_unicode=True),
        lambda x: yaml.safe_dump(x, allow_unicode=False, default_flow_style=None),
        lambda x: yaml.safe_dump(x, allow_unicode=True, indent=4, sort_keys=False),
    ):
        path = _write(tmp_path, dumper(d), "custom.yml")
        assert load_config(path) == Config.from_dict(d)


def test_resolve_local(tmp_path, monkeypatch):
    (tmp_path / "weights").mkdir()
    (tmp_path / "weights" / "flow.safetensors").write_bytes(b"")
    d = _minimal()
    d["flow_lm"]["weights_path"] = "weights/flow.safetensors"
    d["weights_path"] = "hf://kyutai/pocket-tts/model.safetensors@abc"
    cfg = load_config(_write(tmp_path, yaml.safe_dump(d)))
    assert cfg.source_dir == tmp_path.resolve()
    assert cfg.resolve_local(cfg.flow_lm.weights_path) == (
        tmp_path.resolve() / "weights" / "flow.safetensors"
    )
    assert cfg.resolve_local(cfg.weights_path) == cfg.weights_path
    assert cfg.resolve_local("https://x.y/z.safetensors") == "https://x.y/z.safetensors"
    assert cfg.resolve_local(None) is None
    assert cfg.resolve_local("/abs/file.bin") == Path("/abs/file.bin")
    # Not found next to the yaml: still resolved against its folder (for the error message)...
    assert cfg.resolve_local("nope.bin") == tmp_path.resolve() / "nope.bin"
    # ...unless it exists relative to the working directory (the reference's behaviour).
    other = tmp_path / "cwd"
    other.mkdir()
    (other / "local.bin").write_bytes(b"")
    monkeypatch.chdir(other)
    assert cfg.resolve_local("local.bin") == Path("local.bin")
    # In-memory configs resolve against the working directory.
    mem = Config.from_dict(d)
    assert mem.resolve_local("weights/flow.safetensors") == Path("weights/flow.safetensors")
    assert mem.with_source_dir(tmp_path).resolve_local("x") == tmp_path / "x"
    with pytest.raises(TypeError):
        cfg.resolve_local(3)  # type: ignore[arg-type]


def test_remote_config_needs_download(tmp_path):
    with pytest.raises(ConfigError, match="needs a download function"):
        load_config("hf://kyutai/pocket-tts/config.yaml@abc")
    with pytest.raises(ConfigError, match="ending with .yaml"):
        load_config("hf://kyutai/pocket-tts/config.json@abc")
    local = _write(tmp_path, yaml.safe_dump(_minimal()))
    seen = []

    def fake_download(location: str) -> Path:
        seen.append(location)
        return local

    cfg = load_config("https://example.com/cfg.yaml", download=fake_download)
    assert seen == ["https://example.com/cfg.yaml"]
    assert cfg == Config.from_dict(_minimal())


def test_load_config_rejects_non_path():
    with pytest.raises(TypeError):
        load_config(42)  # type: ignore[arg-type]


def test_module_exports():
    for name in cfgmod.__all__:
        assert hasattr(cfgmod, name)


def _random_document(rng) -> dict:
    alphabet = "abcXYZ019 _-.:#'\"\u2019\u00ab\u00bb,[]{}!&*?|>%@`~\\/\u00e9\u4e2d\U0001f600\t"
    specials = [
        "yes",
        "no",
        "null",
        "~",
        "1e5",
        "1.0",
        "0x10",
        "010",
        "2026-10-01",
        "1:30",
        "true",
        "-.5",
        ".5",
        "",
        " lead",
        "trail ",
        "a: b",
        "- x",
        "#c",
        "a #b",
        "=",
    ]

    def scalar():
        r = rng.random()
        if r < 0.15:
            return rng.randint(-(10**6), 10**6)
        if r < 0.3:
            return rng.choice([0.0, -4.0, 12.5, 1e-7, 1e20, 0.01, -0.5, float("inf")])
        if r < 0.4:
            return rng.choice([True, False, None])
        if r < 0.5:
            return rng.choice(specials)
        return "".join(rng.choice(alphabet) for _ in range(rng.randint(1, 12)))

    def key():
        return "".join(rng.choice("abcdef_") for _ in range(rng.randint(1, 8)))

    def value(depth):
        r = rng.random()
        if depth > 3 or r < 0.5:
            return scalar()
        if r < 0.75:
            return {key(): value(depth + 1) for _ in range(rng.randint(0, 4))}
        return [value(depth + 1) for _ in range(rng.randint(0, 4))]

    return {key(): value(0) for _ in range(rng.randint(1, 5))}


def test_parse_yaml_differential_fuzz():
    """On PyYAML's own output, parse_yaml either agrees exactly or refuses (never misreads)."""
    import random

    rng = random.Random(1234)
    agreed = 0
    for _ in range(1500):
        doc = _random_document(rng)
        text = yaml.safe_dump(
            doc,
            default_flow_style=rng.choice([None, False, True]),
            allow_unicode=rng.random() < 0.5,
            width=rng.choice([20, 80, 1000]),
            indent=rng.choice([2, 4]),
            sort_keys=False,
        )
        ref = yaml.safe_load(text)
        try:
            ours = parse_yaml(text)
        except YamlSubsetError:
            continue
        assert json.dumps(ours, default=repr) == json.dumps(ref, default=repr), text
        agreed += 1
    assert agreed > 1000
