"""Strict model configuration, read from the YAML files shipped in ``pocket_tts/configs/``.

The classes mirror the reference's pydantic models (``pocket_tts/utils/config.py`` in
``pocket-tts`` 4.0.1): same class names, field names, types and defaults. They are frozen,
keyword-only dataclasses that validate their fields on construction:

* unknown keys, at any depth, are rejected (the reference uses ``extra="forbid"``);
* missing required keys and values of the wrong type are rejected;
* every error is a :class:`ConfigError` (a ``ValueError``) naming the dotted key path, e.g.
  ``flow_lm.transformer.num_heads``.

Type checking is strict where pydantic would coerce: an ``int`` field takes only ints (not
bools, floats or numeric strings), a ``str`` field only strings, a ``bool`` field only bools.
A ``float`` field takes ints too and stores them as floats, as pydantic does.

Why the schema is hand-written: the reference validates with pydantic, a compiled dependency
that this package would carry for one call at load time, and whose default (lax) mode turns
``"12"`` into ``12`` and ``1.0`` into ``1``. Here the same classes and defaults are plain
dataclasses, checked by ~150 lines of validation that is stricter and whose errors name the
dotted key path and suggest the nearest allowed key. pydantic's strict mode would match the
checks, not the suggestions, and would add a dependency for no gain in error quality.

YAML is parsed by PyYAML (its libyaml ``CSafeLoader`` when built with it, else ``SafeLoader``):
the reference reads its configs with ``yaml.safe_load``, so values and types are the same. On
top of it, a key repeated in one mapping is an error naming the key and both lines (PyYAML
silently keeps the last one; the reference's configs never repeat a key).

Remote paths (``hf://``, ``http(s)://``) inside a config are kept as strings; resolving them is
:mod:`pocket_tts.hub`'s job. Relative local paths can be resolved against the YAML file's folder
with :meth:`Config.resolve_local`.
"""

from __future__ import annotations

import dataclasses
import difflib
import os
import types
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar, Union

import yaml

from pocket_tts.hub import is_remote_path, location_path

__all__ = [
    "CONFIGS_DIR",
    "DEFAULT_EOS_THRESHOLD",
    "Config",
    "ConfigError",
    "ConfigNotFoundError",
    "FlowConfig",
    "FlowLMConfig",
    "FlowLMTransformerConfig",
    "LookupTable",
    "MimiConfig",
    "MimiTransformerConfig",
    "QuantizerConfig",
    "SEANetConfig",
    "available_languages",
    "config_path_for_language",
    "load_config",
]

DEFAULT_EOS_THRESHOLD = -4.0
"""EOS logit threshold used when neither the caller nor the config sets one."""

CONFIGS_DIR = Path(__file__).resolve().parent / "configs"
"""Folder holding the packaged ``<language>.yaml`` configs."""

_YAML_SUFFIXES = (".yaml", ".yml")


class ConfigError(ValueError):
    """An invalid configuration: bad YAML, unknown/missing key, wrong type, bad name or path.

    ``key_path`` holds the dotted path of the offending key when there is one.
    """

    def __init__(self, message: str, key_path: str | None = None):
        super().__init__(message)
        self.key_path = key_path


class ConfigNotFoundError(ConfigError, FileNotFoundError):
    """A config file or packaged language that does not exist.

    It is both a :class:`ConfigError` and a ``FileNotFoundError`` (what the reference raises).
    """


# ----------------------------------------------------------------------------------------------
# Validation machinery
# ----------------------------------------------------------------------------------------------

_T = TypeVar("_T", bound="_StrictConfig")
_HINTS_CACHE: dict[type, dict[str, Any]] = {}


def _hints(cls: type) -> dict[str, Any]:
    hints = _HINTS_CACHE.get(cls)
    if hints is None:
        hints = typing.get_type_hints(cls)
        _HINTS_CACHE[cls] = hints
    return hints


def _type_name(tp: Any) -> str:
    if isinstance(tp, type):
        return tp.__name__
    return str(tp).replace("typing.", "")


def _describe(value: Any) -> str:
    text = repr(value)
    if len(text) > 60:
        text = text[:57] + "..."
    return f"{type(value).__name__} {text}"


def _wrong_type(path: str, expected: str, value: Any) -> ConfigError:
    return ConfigError(f"config key '{path}': expected {expected}, got {_describe(value)}", path)


def _coerce(value: Any, tp: Any, path: str) -> Any:
    """Check ``value`` against the annotation ``tp``; return it, converted where allowed."""
    origin = typing.get_origin(tp)
    if origin is Union or origin is types.UnionType:
        args = typing.get_args(tp)
        if value is None and type(None) in args:
            return None
        others = [a for a in args if a is not type(None)]
        if len(others) != 1:  # pragma: no cover - no such field in the schema
            raise TypeError(f"unsupported annotation {tp!r}")
        if value is None:
            raise _wrong_type(path, _type_name(others[0]), value)
        return _coerce(value, others[0], path)
    if isinstance(tp, type) and issubclass(tp, _StrictConfig):
        if isinstance(value, tp):
            return value
        if isinstance(value, Mapping):
            return tp._from_mapping(value, path)
        raise _wrong_type(path, f"a mapping ({tp.__name__})", value)
    if tp is bool:
        if isinstance(value, bool):
            return value
        raise _wrong_type(path, "bool", value)
    if tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return int(value)
        raise _wrong_type(path, "int", value)
    if tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        raise _wrong_type(path, "float", value)
    if tp is str:
        if isinstance(value, str):
            return value
        raise _wrong_type(path, "str", value)
    if origin is list:
        (item_tp,) = typing.get_args(tp)
        if not isinstance(value, (list, tuple)):
            raise _wrong_type(path, f"a list of {_type_name(item_tp)}", value)
        return [_coerce(v, item_tp, f"{path}[{i}]") for i, v in enumerate(value)]
    if origin is tuple:
        args = typing.get_args(tp)
        if len(args) != 2 or args[1] is not Ellipsis:  # pragma: no cover - not in the schema
            raise TypeError(f"unsupported annotation {tp!r}")
        if not isinstance(value, (list, tuple)):
            raise _wrong_type(path, f"a list of {_type_name(args[0])}", value)
        return tuple(_coerce(v, args[0], f"{path}[{i}]") for i, v in enumerate(value))
    if origin is dict:
        key_tp, value_tp = typing.get_args(tp)
        if not isinstance(value, Mapping):
            raise _wrong_type(path, "a mapping", value)
        result = {}
        for k, v in value.items():
            key = _coerce(k, key_tp, f"{path} key {k!r}")
            result[key] = _coerce(v, value_tp, f"{path}[{k!r}]")
        return result
    raise TypeError(f"unsupported annotation {tp!r}")  # pragma: no cover


class _StrictConfig:
    """Base of the config dataclasses: validation on construction and from mappings."""

    def __post_init__(self) -> None:
        hints = _hints(type(self))
        for f in dataclasses.fields(self):  # type: ignore[arg-type]
            value = getattr(self, f.name)
            coerced = _coerce(value, hints[f.name], f.name)
            if coerced is not value:
                object.__setattr__(self, f.name, coerced)

    @classmethod
    def _from_mapping(cls: type[_T], data: Mapping[Any, Any], path: str = "") -> _T:
        prefix = f"{path}." if path else ""
        if not isinstance(data, Mapping):
            where = f"config key '{path}'" if path else "config"
            raise ConfigError(f"{where}: expected a mapping, got {_describe(data)}", path or None)
        hints = _hints(cls)
        fields_by_name = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
        for key in data:
            if not isinstance(key, str):
                raise ConfigError(
                    f"config key {prefix}{key!r}: keys must be strings, got {type(key).__name__}",
                    f"{prefix}{key}",
                )
            if key not in fields_by_name:
                close = difflib.get_close_matches(key, list(fields_by_name), n=1)
                hint = f" (did you mean '{prefix}{close[0]}'?)" if close else ""
                raise ConfigError(
                    f"unknown config key '{prefix}{key}'{hint}; allowed keys for "
                    f"{cls.__name__}: {sorted(fields_by_name)}",
                    f"{prefix}{key}",
                )
        values: dict[str, Any] = {}
        for name, f in fields_by_name.items():
            if name in data:
                values[name] = _coerce(data[name], hints[name], f"{prefix}{name}")
            elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                raise ConfigError(f"missing required config key '{prefix}{name}'", prefix + name)
        return cls(**values)

    @classmethod
    def from_dict(cls: type[_T], data: Mapping[str, Any]) -> _T:
        """Build and validate from a plain mapping (as parsed from YAML)."""
        return cls._from_mapping(data, "")

    @classmethod
    def model_validate(cls: type[_T], data: Mapping[str, Any]) -> _T:
        """Alias of :meth:`from_dict`, named like the pydantic method of the reference."""
        return cls._from_mapping(data, "")

    def model_dump(self) -> dict[str, Any]:
        """Return the config as nested plain dicts (like pydantic's ``model_dump``)."""
        return dataclasses.asdict(self)  # type: ignore[call-overload]


_frozen = dataclass(frozen=True, kw_only=True)


# ----------------------------------------------------------------------------------------------
# The schema (mirrors pocket_tts/utils/config.py of the reference)
# ----------------------------------------------------------------------------------------------


@_frozen
class FlowConfig(_StrictConfig):
    """The sampler head ("flow net") on top of the flow-LM backbone."""

    dim: int
    depth: int
    # "lsd" (2 time conditions), "flow_matching" (1 time condition, Euler integration),
    # "drifting" (no time condition, one step) or "pointwise" (no time condition, one step).
    type: str = "lsd"


@_frozen
class FlowLMTransformerConfig(_StrictConfig):
    """The flow-LM transformer backbone."""

    hidden_scale: int
    max_period: int
    d_model: int
    num_heads: int
    num_layers: int
    # Width of queries and of the attention output; d_model when None.
    attn_dim: int | None = None
    # Key/value heads, each shared by num_heads // num_kv_heads query heads; num_heads when None.
    num_kv_heads: int | None = None
    # Hidden width of the feed-forward layers; d_model * hidden_scale when None.
    dim_feedforward: int | None = None


@_frozen
class LookupTable(_StrictConfig):
    """The text embedding table and its tokenizer."""

    dim: int
    n_bins: int
    tokenizer: str
    tokenizer_path: str
    # Low-rank table: rank-wide embeddings and a bias-free projection to dim; full when None.
    rank: int | None = None


@_frozen
class FlowLMConfig(_StrictConfig):
    """The flow language model: backbone, sampler head and text conditioning."""

    dtype: str
    flow: FlowConfig
    transformer: FlowLMTransformerConfig
    # Width of the backbone output fed to the sampler and EOS heads: a bias-free projection from
    # d_model when set, the transformer output itself when None.
    z_dim: int | None = None
    lookup_table: LookupTable
    weights_path: str | None = None
    insert_bos_before_voice: bool = False


@_frozen
class SEANetConfig(_StrictConfig):
    """A SEANet convolutional encoder/decoder."""

    dimension: int
    channels: int
    n_filters: int
    n_residual_layers: int
    ratios: list[int]
    kernel_size: int
    residual_kernel_size: int
    last_kernel_size: int
    dilation_base: int
    pad_mode: str
    compress: int


@_frozen
class MimiTransformerConfig(_StrictConfig):
    """A Mimi (codec) transformer."""

    d_model: int
    input_dimension: int
    output_dimensions: tuple[int, ...]
    num_heads: int
    num_layers: int
    layer_scale: float
    context: int
    max_period: float = 10000.0
    dim_feedforward: int


@_frozen
class QuantizerConfig(_StrictConfig):
    """The (dummy) quantizer's projections."""

    dimension: int
    output_dimension: int


@_frozen
class MimiConfig(_StrictConfig):
    """The Mimi audio codec."""

    dtype: str
    sample_rate: int
    channels: int
    frame_rate: float
    seanet: SEANetConfig
    transformer: MimiTransformerConfig
    quantizer: QuantizerConfig
    weights_path: str | None = None
    inner_dim: int | None = None
    outer_dim: int | None = None
    # Decoder-side SEANet and transformer when they differ from the encoder's.
    decoder_seanet: SEANetConfig | None = None
    decoder_transformer: MimiTransformerConfig | None = None


@_frozen
class Config(_StrictConfig):
    """Root configuration of a Pocket TTS model.

    Besides the schema fields, a config loaded from a file remembers the file's folder
    (:attr:`source_dir`) so that relative local paths can be resolved with
    :meth:`resolve_local`.
    """

    flow_lm: FlowLMConfig
    mimi: MimiConfig
    weights_path: str | None = None
    weights_path_without_voice_cloning: str | None = None
    pad_with_spaces_for_short_inputs: bool = False
    remove_semicolons: bool = False
    append_terminal_punctuation: bool = True
    # Upper-case the first letter of each prompt (a Latin-script convention).
    capitalize_first_letter: bool = True
    # Per-character rewrites applied before tokenization ("" deletes the character).
    replace_characters: dict[str, str] = field(default_factory=dict)
    model_recommended_frames_after_eos: int | None = None
    default_temperature: float = 0.3
    default_eos_threshold: float = DEFAULT_EOS_THRESHOLD

    @property
    def source_dir(self) -> Path | None:
        """Folder of the YAML file this config was loaded from (None if built in memory)."""
        return self.__dict__.get("_source_dir")

    def with_source_dir(self, directory: str | os.PathLike[str] | None) -> Config:
        """Return a copy whose relative local paths resolve against ``directory``."""
        clone = dataclasses.replace(self)  # type: ignore[type-var]
        object.__setattr__(clone, "_source_dir", None if directory is None else Path(directory))
        return clone

    def resolve_local(self, path: str | os.PathLike[str] | None) -> str | Path | None:
        """Resolve a path taken from this config (e.g. ``flow_lm.weights_path``).

        * ``None`` stays ``None``; remote locations (``hf://``, ``http(s)://``) are returned
          unchanged as strings, for the download module to handle.
        * ``~`` is expanded; absolute paths are returned as ``Path``.
        * A relative path is taken relative to :attr:`source_dir` (the YAML file's folder).
          For compatibility with the reference, which resolves against the working directory,
          a relative path that exists only relative to the working directory resolves there.
        """
        if path is None:
            return None
        if is_remote_path(path):
            return path
        if not isinstance(path, (str, os.PathLike)):
            raise TypeError(f"resolve_local expects a str or path, got {type(path).__name__}")
        local = Path(path).expanduser()
        if local.is_absolute():
            return local
        base = self.source_dir
        if base is None:
            return local
        candidate = base / local
        if not candidate.exists() and local.exists():
            return local
        return candidate


# ----------------------------------------------------------------------------------------------
# Loading
# ----------------------------------------------------------------------------------------------

# libyaml's parser when PyYAML was built with it (several times faster), else PyYAML's own;
# both resolve tags exactly like the reference's yaml.safe_load.
_SafeLoader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_MERGE_TAG = "tag:yaml.org,2002:merge"


def _reject_duplicate_keys(root: yaml.Node) -> None:
    """Raise :class:`ConfigError` for a key repeated in one mapping, anywhere under ``root``.

    Keys are compared as written (tag and text): the schema accepts only string keys, for which
    that is exact. ``<<`` merge keys are skipped, so a key may override a merged-in one.
    """
    seen_nodes: set[int] = set()  # aliases share nodes, and may even nest in themselves
    pending: list[tuple[yaml.Node, str]] = [(root, "")]
    while pending:
        node, path = pending.pop()
        if id(node) in seen_nodes:
            continue
        seen_nodes.add(id(node))
        if isinstance(node, yaml.SequenceNode):
            pending.extend((item, f"{path}[{i}]") for i, item in enumerate(node.value))
        elif isinstance(node, yaml.MappingNode):
            first_lines: dict[tuple[str, str], int] = {}
            for key_node, value_node in node.value:
                if not isinstance(key_node, yaml.ScalarNode) or key_node.tag == _MERGE_TAG:
                    continue
                key_path = f"{path}.{key_node.value}" if path else str(key_node.value)
                line = key_node.start_mark.line + 1
                key = (key_node.tag, key_node.value)
                if key in first_lines:
                    raise ConfigError(
                        f"duplicate config key '{key_path}' at line {line} (first set at line "
                        f"{first_lines[key]}); YAML would silently keep the last value: remove "
                        "one of them",
                        key_path,
                    )
                first_lines[key] = line
                pending.append((value_node, key_path))


class _ConfigLoader(_SafeLoader):  # type: ignore[valid-type,misc]
    """PyYAML's safe loader, refusing keys repeated in one mapping (see _reject_duplicate_keys)."""

    def construct_document(self, node: yaml.Node) -> Any:
        """Check the whole node tree for duplicate keys, then build it as ``safe_load`` does."""
        _reject_duplicate_keys(node)
        return super().construct_document(node)


def _describe_yaml_error(exc: yaml.YAMLError) -> str:
    """A PyYAML error on one line: 'line L, column C: problem (context at line K)'."""
    if isinstance(exc, yaml.reader.ReaderError) and isinstance(exc.character, int):
        return (
            f"unacceptable character #x{exc.character:04x} at offset {exc.position} "
            f"({exc.reason}): is this a text file?"
        )
    mark = getattr(exc, "problem_mark", None)
    if not isinstance(exc, yaml.MarkedYAMLError) or mark is None:
        return " ".join(str(exc).split())
    text = f"line {mark.line + 1}, column {mark.column + 1}: {exc.problem}"
    if exc.context:
        context_mark = exc.context_mark
        where = f" at line {context_mark.line + 1}" if context_mark is not None else ""
        text += f" ({exc.context}{where})"
    return text


def available_languages() -> list[str]:
    """Names of the packaged configs (``english``, ``french_24l``, ...), sorted."""
    return sorted(p.stem for p in CONFIGS_DIR.glob("*.yaml"))


def config_path_for_language(language: str) -> Path:
    """Path of the packaged YAML config for ``language`` (e.g. ``"english_2m_2026-10"``).

    Raises :class:`ConfigNotFoundError` listing the available languages for an unknown name.
    """
    if not isinstance(language, str):
        raise TypeError(f"language must be a str, got {type(language).__name__}")
    languages = available_languages()
    if language not in languages:
        close = difflib.get_close_matches(language, languages, n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise ConfigNotFoundError(
            f"Unknown language {language!r}.{hint} Available languages: {languages}"
        )
    return CONFIGS_DIR / f"{language}.yaml"


def _looks_like_name(value: str) -> bool:
    return (
        value != ""
        and "/" not in value
        and "\\" not in value
        and "." not in value
        and ":" not in value
    )


def load_config(
    path_or_name: str | os.PathLike[str],
    *,
    download: Callable[[str], str | os.PathLike[str]] | None = None,
) -> Config:
    """Load and validate a model config.

    ``path_or_name`` is either a packaged language name such as ``"english"`` or
    ``"english_2m_2026-10"`` (see :func:`available_languages`), or the path of a YAML file
    ending in ``.yaml``/``.yml``. A remote ``hf://`` / ``https://`` config is accepted only when
    a ``download`` callable (location -> local path) is given.

    Raises :class:`ConfigNotFoundError` for an unknown language or missing file, and
    :class:`ConfigError` for a bad suffix, bad YAML syntax (with the line number), or an
    unknown/missing/wrongly-typed key (with its dotted path).
    """
    if isinstance(path_or_name, str) and _looks_like_name(path_or_name):
        path = config_path_for_language(path_or_name)
    elif isinstance(path_or_name, str) and is_remote_path(path_or_name):
        if Path(location_path(path_or_name)).suffix not in _YAML_SUFFIXES:
            raise ConfigError(
                f"Config should be a path to a YAML file ending with .yaml or .yml: "
                f"{path_or_name!r}"
            )
        if download is None:
            raise ConfigError(
                f"Remote config {path_or_name!r} needs a download function: "
                "pass load_config(..., download=...)"
            )
        path = Path(download(path_or_name))
    elif isinstance(path_or_name, (str, os.PathLike)):
        path = Path(path_or_name).expanduser()
        if path.suffix not in _YAML_SUFFIXES:
            raise ConfigError(
                f"Config should be a path to a YAML file ending with .yaml or .yml "
                f"(or a language name, one of {available_languages()}): {str(path_or_name)!r}"
            )
    else:
        raise TypeError(
            f"load_config expects a language name or a path, got {type(path_or_name).__name__}"
        )

    if not path.exists():
        raise ConfigNotFoundError(f"Config file not found: {path}. Did you make a typo?")
    if not path.is_file():
        raise ConfigError(f"Config path is not a file: {path}")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(
            f"{path}: not a YAML config: the file is not valid UTF-8 text ({exc})"
        ) from exc
    try:
        data = yaml.load(text, Loader=_ConfigLoader)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: invalid config YAML: {_describe_yaml_error(exc)}") from exc
    except ConfigError as exc:  # a duplicate key
        raise ConfigError(f"{path}: {exc}", exc.key_path) from exc
    if data is None:  # an empty file, or only comments: reported as missing keys below
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(
            f"{path}: a config must be a YAML mapping of 'key: value' lines at the top level, "
            f"got {_describe(data)}"
        )
    try:
        config = Config.from_dict(data)
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}", exc.key_path) from exc
    object.__setattr__(config, "_source_dir", path.resolve().parent)
    return config
