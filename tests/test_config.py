"""Config loading: YAML through PyYAML (duplicate keys refused), the strict schema, names and
paths, remote locations, parity with the reference's pydantic configs."""

from __future__ import annotations

import dataclasses
import json
import re
import subprocess
import sys
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
    with pytest.raises(
        ConfigError, match=r"cfg\.yaml: invalid config YAML: line 3, column"
    ) as info:
        load_config(path)
    assert isinstance(info.value.__cause__, yaml.YAMLError)
    # An unclosed flow sequence: the error names where it started.
    path = _write(tmp_path, "mimi:\n  seanet:\n    ratios: [6, 5, 4\nflow_lm: {}\n")
    with pytest.raises(ConfigError, match=r"invalid config YAML: line \d+, column \d+: .*line 3"):
        load_config(path)


@pytest.mark.parametrize(
    ("text", "dotted", "line", "first"),
    [
        ("remove_semicolons: true\nremove_semicolons: false\n", "remove_semicolons", 2, 1),
        ("flow_lm:\n  flow:\n    dim: 1\n    depth: 2\n    dim: 3\n", "flow_lm.flow.dim", 5, 3),
        ("mimi:\n  transformer: {d_model: 1, d_model: 2}\n", "mimi.transformer.d_model", 2, 2),
        ("replace_characters:\n  'a': b\n  \"a\": c\n", "replace_characters.a", 3, 2),
        ("flow_lm: {}\nmimi: {}\nflow_lm: {}\n", "flow_lm", 3, 1),
    ],
    ids=["top_level", "nested", "flow_mapping", "quoted_keys", "top_level_sections"],
)
def test_duplicate_keys_rejected(tmp_path, text, dotted, line, first):
    # PyYAML alone keeps the last value silently.
    assert yaml.safe_load(text) is not None
    with pytest.raises(ConfigError, match=f"duplicate config key '{re.escape(dotted)}'") as info:
        load_config(_write(tmp_path, text))
    message = str(info.value)
    assert f"at line {line} (first set at line {first})" in message
    assert "cfg.yaml" in message and "remove one of them" in message
    assert info.value.key_path == dotted


def test_duplicate_key_inside_a_list_item_names_its_index(tmp_path):
    text = "mimi:\n  seanet:\n    ratios:\n      - {a: 1, a: 2}\n"
    with pytest.raises(ConfigError, match=r"duplicate config key 'mimi\.seanet\.ratios\[0\]\.a'"):
        load_config(_write(tmp_path, text))


def test_anchors_aliases_and_merge_keys_work_as_in_the_reference(tmp_path):
    # yaml.safe_load (the reference's loader) accepts them, and a key may override a merged one.
    d = _minimal()
    seanet = d["mimi"].pop("seanet")
    seanet_lines = "".join(f"    {k}: {json.dumps(v)}\n" for k, v in seanet.items())
    text = yaml.safe_dump(d).replace(
        "mimi:\n",
        "mimi:\n  seanet: &enc\n" + seanet_lines + "  decoder_seanet:\n"
        "    <<: *enc\n    n_filters: 32\n",
        1,
    )
    cfg = load_config(_write(tmp_path, text))
    assert cfg.mimi.seanet == SEANetConfig(**seanet)
    assert cfg.mimi.decoder_seanet == SEANetConfig(**{**seanet, "n_filters": 32})


@pytest.mark.parametrize(
    ("text", "got"),
    [
        ("- flow_lm\n- mimi\n", "list"),
        ("just a sentence\n", "str"),
        ("42\n", "int"),
    ],
)
def test_yaml_that_is_not_a_mapping_rejected(tmp_path, text, got):
    with pytest.raises(ConfigError, match=f"must be a YAML mapping .* at the top level, got {got}"):
        load_config(_write(tmp_path, text))


def test_non_utf8_file(tmp_path):
    path = tmp_path / "latin.yaml"
    path.write_bytes("remove_semicolons: caf\u00e9\n".encode("latin-1"))
    with pytest.raises(ConfigError, match="not a YAML config: the file is not valid UTF-8"):
        load_config(path)


def test_binary_file_with_yaml_suffix(tmp_path):
    # A safetensors or audio file given as --config by mistake.
    path = tmp_path / "weights.yaml"
    path.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)))
    with pytest.raises(ConfigError, match="weights.yaml: not a YAML config"):
        load_config(path)
    # Valid UTF-8, but control characters YAML does not allow.
    path.write_bytes(b"flow_lm:\n  dtype: \x01\x02\n")
    with pytest.raises(ConfigError, match="weights.yaml: invalid config YAML: .*unacceptable"):
        load_config(path)


def test_wrong_value_type_from_yaml_implicit_types(tmp_path):
    # YAML 1.1 reads an unquoted date as a date and "yes" as a bool, as the reference does;
    # the schema then names the key.
    d = _minimal()
    d["flow_lm"]["lookup_table"]["tokenizer_path"] = "PLACEHOLDER"
    text = yaml.safe_dump(d).replace("PLACEHOLDER", "2026-10-01")
    with pytest.raises(
        ConfigError, match="'flow_lm.lookup_table.tokenizer_path': expected str, got date"
    ):
        load_config(_write(tmp_path, text))
    text = yaml.safe_dump(_minimal()) + "remove_semicolons: yes\n"
    assert load_config(_write(tmp_path, text)).remove_semicolons is True


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


def test_pure_python_loader_behaves_the_same(tmp_path):
    # Without libyaml (PyYAML built without it) the pure-Python SafeLoader is used: the shipped
    # configs load to the same values, and duplicate keys are refused the same way.
    duplicate = _write(tmp_path, "flow_lm:\n  flow:\n    dim: 1\n    dim: 3\n")
    code = (
        "import json, sys, yaml\n"
        "del yaml.CSafeLoader\n"
        "from pocket_tts.config import ConfigError, _ConfigLoader, available_languages\n"
        "from pocket_tts.config import load_config\n"
        "assert _ConfigLoader.__mro__[1] is yaml.SafeLoader\n"
        "dumps = {n: load_config(n).model_dump() for n in available_languages()}\n"
        "try:\n"
        "    load_config(sys.argv[1])\n"
        "except ConfigError as exc:\n"
        "    dumps['error'] = str(exc)\n"
        "print(json.dumps(dumps))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, str(duplicate)],
        cwd=tmp_path,  # the installed package, not the source tree
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    pure = json.loads(out.stdout)
    error = pure.pop("error")
    assert "duplicate config key 'flow_lm.flow.dim' at line 4 (first set at line 3)" in error
    assert pure == {n: json.loads(json.dumps(load_config(n).model_dump())) for n in pure}
    assert len(pure) == len(SHIPPED)
