"""A small, strict YAML-subset parser for the package's configuration files.

PyYAML is not a runtime dependency, so the configs are read with this parser. It accepts the
part of YAML that the shipped configs use and returns exactly what ``yaml.safe_load`` would
return for them. Anything outside the subset raises :class:`YamlSubsetError` naming the line,
rather than being silently misread.

Supported:

* block mappings (``key: value``, ``key:`` followed by an indented block), at any depth;
* block sequences (``- item``), also at the same indentation as their parent key, with
  scalar, flow, nested sequence or compact mapping items;
* flow sequences ``[1, 2]`` and flow mappings ``{a: 1}``, possibly spanning several lines
  (continuation lines indented deeper than the owning key), also as the whole document;
* comments (full-line and trailing, introduced by ``#`` after whitespace);
* plain, single-quoted (``''`` escape) and double-quoted (backslash escapes) scalars;
* YAML 1.1 implicit types as PyYAML resolves them: null (``~``, ``null``, empty), bools
  (``true``/``false``/``yes``/``no``/``on``/``off`` in their three spellings), ints (decimal,
  ``0x``, ``0b``, leading-zero octal, ``_`` separators), floats (PyYAML's YAML 1.1 pattern,
  ``.inf``, ``.nan``);
* an optional leading ``---`` document marker.

Not supported (raises): anchors, aliases, tags, block scalars (``|``, ``>``), multi-line plain
or quoted scalars, complex keys, merge keys, multiple documents,
directives, tabs in indentation, duplicate keys, sexagesimal numbers and timestamps.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

__all__ = ["YamlSubsetError", "parse_yaml"]


class YamlSubsetError(ValueError):
    """Raised when a text is not valid YAML or uses YAML outside the supported subset."""

    def __init__(self, message: str, lineno: int | None = None):
        self.lineno = lineno
        self.reason = message
        super().__init__(f"line {lineno}: {message}" if lineno is not None else message)


@dataclass
class _Line:
    lineno: int  # 1-based
    indent: int
    text: str  # content after the indentation; never blank, never a pure comment


# PyYAML's YAML 1.1 implicit resolvers (yaml/resolver.py), restricted to what we construct.
_NULL_RE = re.compile(r"^(?:~|null|Null|NULL|)$")
_BOOL_VALUES = {
    **dict.fromkeys(("yes", "Yes", "YES", "true", "True", "TRUE", "on", "On", "ON"), True),
    **dict.fromkeys(("no", "No", "NO", "false", "False", "FALSE", "off", "Off", "OFF"), False),
}
_INT_BIN_RE = re.compile(r"^[-+]?0b[0-1_]+$")
_INT_OCT_RE = re.compile(r"^[-+]?0[0-7_]+$")
_INT_DEC_RE = re.compile(r"^[-+]?(?:0|[1-9][0-9_]*)$")
_INT_HEX_RE = re.compile(r"^[-+]?0x[0-9a-fA-F_]+$")
_INT_SEXAGESIMAL_RE = re.compile(r"^[-+]?[1-9][0-9_]*(?::[0-5]?[0-9])+$")
_FLOAT_RE = re.compile(
    r"^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+][0-9]+)?"
    r"|\.[0-9][0-9_]*(?:[eE][-+][0-9]+)?)$"
)
_FLOAT_SEXAGESIMAL_RE = re.compile(r"^[-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+\.[0-9_]*$")
_FLOAT_INF_RE = re.compile(r"^[-+]?\.(?:inf|Inf|INF)$")
_FLOAT_NAN_RE = re.compile(r"^\.(?:nan|NaN|NAN)$")
_TIMESTAMP_RE = re.compile(
    r"^(?:[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]"
    r"|[0-9][0-9][0-9][0-9]-[0-9][0-9]?-[0-9][0-9]?"
    r"(?:[Tt]|[ \t]+)[0-9][0-9]?"
    r":[0-9][0-9]:[0-9][0-9](?:\.[0-9]*)?"
    r"(?:[ \t]*(?:Z|[-+][0-9][0-9]?(?::[0-9][0-9])?))?)$"
)

# Characters that cannot start a plain scalar in our subset (indicators of unsupported features).
_UNSUPPORTED_START = {
    "&": "anchors are not supported",
    "*": "aliases are not supported",
    "!": "tags are not supported",
    "|": "block scalars are not supported",
    ">": "block scalars are not supported",
    "%": "directives are not supported",
    "@": "'@' cannot start a plain scalar",
    "`": "'`' cannot start a plain scalar",
}

_DOUBLE_QUOTE_ESCAPES = {
    "0": "\0",
    "a": "\a",
    "b": "\b",
    "t": "\t",
    "\t": "\t",
    "n": "\n",
    "v": "\v",
    "f": "\f",
    "r": "\r",
    "e": "\x1b",
    " ": " ",
    '"': '"',
    "/": "/",
    "\\": "\\",
    "N": "\x85",
    "_": "\xa0",
    "L": "\u2028",
    "P": "\u2029",
}
_DOUBLE_QUOTE_HEX_LENGTHS = {"x": 2, "u": 4, "U": 8}


def _resolve_plain(token: str, lineno: int) -> Any:
    """Turn a plain (unquoted) scalar into the Python value PyYAML's safe loader would give."""
    if _NULL_RE.match(token):
        return None
    if token in _BOOL_VALUES:
        return _BOOL_VALUES[token]
    if _INT_SEXAGESIMAL_RE.match(token) or _FLOAT_SEXAGESIMAL_RE.match(token):
        raise YamlSubsetError(f"sexagesimal number {token!r} is not supported; quote it", lineno)
    if _TIMESTAMP_RE.match(token):
        raise YamlSubsetError(f"timestamp {token!r} is not supported; quote it", lineno)
    if token == "=" or token == "<<":
        raise YamlSubsetError(f"special key/value {token!r} is not supported", lineno)
    digits = token.replace("_", "")
    sign = -1 if digits.startswith("-") else 1
    unsigned = digits.lstrip("+-")
    if _INT_DEC_RE.match(token):
        return int(digits)
    if _INT_BIN_RE.match(token):
        return sign * int(unsigned[2:], 2)
    if _INT_HEX_RE.match(token):
        return sign * int(unsigned[2:], 16)
    if _INT_OCT_RE.match(token):
        return sign * int(unsigned, 8)
    if _FLOAT_INF_RE.match(token):
        return sign * math.inf
    if _FLOAT_NAN_RE.match(token):
        return math.nan
    if _FLOAT_RE.match(token):
        return float(digits)
    return token


class _LineParser:
    """Parses the content of one line (scalars and single-line flow collections)."""

    def __init__(self, text: str, lineno: int):
        self.text = text
        self.lineno = lineno
        self.pos = 0

    def error(self, message: str) -> YamlSubsetError:
        return YamlSubsetError(message, self.lineno)

    def peek(self) -> str:
        return self.text[self.pos] if self.pos < len(self.text) else ""

    def skip_spaces(self) -> None:
        while self.pos < len(self.text) and self.text[self.pos] in " \t":
            self.pos += 1

    def at_end_or_comment(self) -> bool:
        """True when only whitespace and an optional comment remain."""
        self.skip_spaces()
        if self.pos >= len(self.text):
            return True
        if self.text[self.pos] == "#" and (self.pos == 0 or self.text[self.pos - 1] in " \t"):
            return True
        return False

    def expect_end(self) -> None:
        if not self.at_end_or_comment():
            raise self.error(f"unexpected content {self.text[self.pos :]!r}")

    # -- quoted scalars --------------------------------------------------------------------
    def single_quoted(self) -> str:
        assert self.peek() == "'"
        self.pos += 1
        out = []
        while True:
            if self.pos >= len(self.text):
                raise self.error(
                    "unterminated single-quoted string (multi-line strings are not supported)"
                )
            ch = self.text[self.pos]
            if ch == "'":
                if self.text[self.pos + 1 : self.pos + 2] == "'":
                    out.append("'")
                    self.pos += 2
                    continue
                self.pos += 1
                return "".join(out)
            out.append(ch)
            self.pos += 1

    def double_quoted(self) -> str:
        assert self.peek() == '"'
        self.pos += 1
        out = []
        while True:
            if self.pos >= len(self.text):
                raise self.error(
                    "unterminated double-quoted string (multi-line strings are not supported)"
                )
            ch = self.text[self.pos]
            if ch == '"':
                self.pos += 1
                return "".join(out)
            if ch == "\\":
                code = self.text[self.pos + 1 : self.pos + 2]
                if code == "":
                    raise self.error("line continuation in double-quoted string is not supported")
                if code in _DOUBLE_QUOTE_ESCAPES:
                    out.append(_DOUBLE_QUOTE_ESCAPES[code])
                    self.pos += 2
                    continue
                if code in _DOUBLE_QUOTE_HEX_LENGTHS:
                    n = _DOUBLE_QUOTE_HEX_LENGTHS[code]
                    digits = self.text[self.pos + 2 : self.pos + 2 + n]
                    if len(digits) != n or not all(c in "0123456789abcdefABCDEF" for c in digits):
                        raise self.error(f"bad escape \\{code}{digits} in double-quoted string")
                    try:
                        out.append(chr(int(digits, 16)))
                    except (ValueError, OverflowError) as exc:
                        raise self.error(f"bad escape \\{code}{digits}: {exc}") from None
                    self.pos += 2 + n
                    continue
                raise self.error(f"unknown escape \\{code} in double-quoted string")
            out.append(ch)
            self.pos += 1

    def quoted(self) -> str:
        return self.single_quoted() if self.peek() == "'" else self.double_quoted()

    # -- plain scalars ---------------------------------------------------------------------
    def check_plain_start(self) -> None:
        ch = self.peek()
        if ch in _UNSUPPORTED_START:
            raise self.error(_UNSUPPORTED_START[ch])
        nxt = self.text[self.pos + 1 : self.pos + 2]
        if ch == "?" and nxt in ("", " ", "\t"):
            raise self.error("complex mapping keys ('? ') are not supported")
        if ch == "-" and nxt in ("", " ", "\t"):
            raise self.error("a block sequence entry is not allowed here")
        if ch == ":" and nxt in ("", " ", "\t"):
            raise self.error("a mapping value without a key is not allowed")

    def plain_block(self) -> Any:
        """A plain scalar in block context: runs to the end of the line or a comment."""
        self.check_plain_start()
        start = self.pos
        end = len(self.text)
        i = start
        while i < len(self.text):
            ch = self.text[i]
            if ch == "#" and i > start and self.text[i - 1] in " \t":
                end = i
                break
            if ch == ":" and (i + 1 == len(self.text) or self.text[i + 1] in " \t"):
                raise self.error("mapping values are not allowed here")
            i += 1
        self.pos = end
        return _resolve_plain(self.text[start:end].rstrip(" \t"), self.lineno)

    def plain_flow(self) -> Any:
        """A plain scalar inside a flow collection: stops at ``,``, ``]``, ``}`` or ``: ``."""
        self.check_plain_start()
        if self.peek() in ",]}":
            raise self.error(f"unexpected {self.peek()!r} in flow collection")
        start = self.pos
        i = start
        while i < len(self.text):
            ch = self.text[i]
            if ch in ",[]{}":
                break
            if ch == "#" and self.text[i - 1] in " \t":
                break
            if ch == ":" and (i + 1 == len(self.text) or self.text[i + 1] in " \t,[]{}"):
                break
            i += 1
        self.pos = i
        return _resolve_plain(self.text[start:i].rstrip(" \t"), self.lineno)

    # -- flow collections ------------------------------------------------------------------
    def flow_value(self) -> Any:
        self.skip_spaces()
        ch = self.peek()
        if ch == "":
            raise self.error("multi-line flow collections are not supported")
        if ch == "[":
            return self.flow_sequence()
        if ch == "{":
            return self.flow_mapping()
        if ch in "'\"":
            return self.quoted()
        return self.plain_flow()

    def flow_sequence(self) -> list[Any]:
        assert self.peek() == "["
        self.pos += 1
        items: list[Any] = []
        while True:
            self.skip_spaces()
            ch = self.peek()
            if ch == "":
                raise self.error("multi-line flow collections are not supported")
            if ch == "]":
                self.pos += 1
                return items
            items.append(self.flow_value())
            self.skip_spaces()
            if self.peek() == ":":
                raise self.error("single-pair mappings inside flow sequences are not supported")
            if self.peek() == ",":
                self.pos += 1
            elif self.peek() != "]":
                if self.peek() == "":
                    raise self.error("multi-line flow collections are not supported")
                raise self.error(f"expected ',' or ']' in flow sequence, got {self.peek()!r}")

    def flow_mapping(self) -> dict[Any, Any]:
        assert self.peek() == "{"
        self.pos += 1
        result: dict[Any, Any] = {}
        while True:
            self.skip_spaces()
            ch = self.peek()
            if ch == "":
                raise self.error("multi-line flow collections are not supported")
            if ch == "}":
                self.pos += 1
                return result
            if ch in "[{":
                raise self.error("flow collections as mapping keys are not supported")
            key = self.flow_value()
            self.skip_spaces()
            if self.peek() == ":":
                self.pos += 1
                self.skip_spaces()
                value = None if self.peek() in (",", "}") else self.flow_value()
            else:
                value = None
            _set_unique(result, key, value, self.lineno)
            self.skip_spaces()
            if self.peek() == ",":
                self.pos += 1
            elif self.peek() != "}":
                if self.peek() == "":
                    raise self.error("multi-line flow collections are not supported")
                raise self.error(f"expected ',' or '}}' in flow mapping, got {self.peek()!r}")

    # -- entry points ----------------------------------------------------------------------
    def inline_value(self) -> Any:
        """The value after ``key:`` or ``- `` on a line (scalar or flow collection)."""
        self.skip_spaces()
        if self.at_end_or_comment():
            return None
        ch = self.peek()
        if ch in "[{":
            value = self.flow_sequence() if ch == "[" else self.flow_mapping()
        elif ch in "'\"":
            value = self.quoted()
        else:
            return self.plain_block()
        self.expect_end()
        return value

    def mapping_key(self) -> tuple[Any, str] | None:
        """If the line is a ``key: value`` entry, return ``(key, rest_of_line)``."""
        ch = self.peek()
        if ch in "'\"":
            key = self.quoted()
            self.skip_spaces()
            nxt = self.text[self.pos + 1 : self.pos + 2]
            if self.peek() == ":" and nxt in ("", " ", "\t"):
                return key, self.text[self.pos + 1 :]
            return None
        if ch in "[{":
            return None
        i = 0
        while i < len(self.text):
            c = self.text[i]
            if c == "#" and i > 0 and self.text[i - 1] in " \t":
                return None
            if c == ":" and (i + 1 == len(self.text) or self.text[i + 1] in " \t"):
                key_text = self.text[:i].rstrip(" \t")
                sub = _LineParser(key_text, self.lineno)
                if key_text == "":
                    raise self.error("empty mapping key")
                key = sub.plain_block()
                return key, self.text[i + 1 :]
            i += 1
        return None


def _set_unique(mapping: dict[Any, Any], key: Any, value: Any, lineno: int) -> None:
    try:
        duplicate = key in mapping
    except TypeError:
        raise YamlSubsetError(f"unhashable mapping key {key!r}", lineno) from None
    if duplicate:
        raise YamlSubsetError(f"duplicate mapping key {key!r}", lineno)
    mapping[key] = value


def _is_sequence_entry(text: str) -> bool:
    return text == "-" or text.startswith("- ") or text.startswith("-\t")


def _scan_flow_line(text: str, depth: int, lineno: int) -> tuple[str, int]:
    """Track bracket depth over one line of a flow collection; drop a trailing comment.

    Returns the line (without its comment) and the depth after it. Scanning stops once the
    outermost collection closes; what follows is left for the scalar parser to check.
    """
    quote = ""
    previous = "["  # last significant character outside quotes; quotes open only after these
    i = 0
    while i < len(text):
        ch = text[i]
        if not quote and ch not in " \t":
            opening = previous in "[{,:"
            previous = ch
        else:
            opening = False
        if quote:
            if ch == quote:
                if quote == "'" and text[i + 1 : i + 2] == "'":
                    i += 2
                    continue
                quote = ""
            elif ch == "\\" and quote == '"':
                i += 2
                continue
        elif ch in "'\"" and opening:
            quote = ch
        elif ch == "#" and (i == 0 or text[i - 1] in " \t"):
            return text[:i].rstrip(" \t"), depth
        elif ch in "[{":
            depth += 1
        elif ch in "]}":
            depth -= 1
            if depth == 0:
                return text, 0
        i += 1
    if quote:
        raise YamlSubsetError(
            "unterminated quoted string (multi-line strings are not supported)", lineno
        )
    return text, depth


class _BlockParser:
    def __init__(self, lines: list[_Line]):
        self.lines = lines
        self.pos = 0

    def complete_flow(self, text: str, lineno: int, parent_indent: int) -> str:
        """Join the continuation lines of a flow collection that starts ``text``.

        The lines after the current one (already consumed) are appended while brackets are
        open; they must be indented deeper than ``parent_indent``.
        """
        stripped = text.lstrip(" \t")
        if not stripped or stripped[0] not in "[{":
            return text
        first, depth = _scan_flow_line(stripped, 0, lineno)
        if depth == 0:
            return text
        pieces = [first]
        while depth > 0:
            nxt = self.current()
            if nxt is None or nxt.indent <= parent_indent:
                raise YamlSubsetError("unterminated flow collection", lineno)
            piece, depth = _scan_flow_line(nxt.text, depth, nxt.lineno)
            pieces.append(piece)
            self.pos += 1
        return " ".join(pieces)

    def current(self) -> _Line | None:
        return self.lines[self.pos] if self.pos < len(self.lines) else None

    def parse_document(self) -> dict[Any, Any]:
        first = self.current()
        if first is None:
            return {}
        if first.indent != 0:
            raise YamlSubsetError("the document must start at column 0", first.lineno)
        if first.text.startswith("{"):
            self.pos += 1
            text = self.complete_flow(first.text, first.lineno, -1)
            value = _LineParser(text, first.lineno).inline_value()
            line = self.current()
            if line is not None:
                raise YamlSubsetError("unexpected content after the document", line.lineno)
            return value
        if _is_sequence_entry(first.text):
            raise YamlSubsetError("the top level must be a mapping, not a sequence", first.lineno)
        if _LineParser(first.text, first.lineno).mapping_key() is None:
            raise YamlSubsetError(
                "the top level must be a mapping of 'key: value' lines", first.lineno
            )
        result = self.parse_mapping(0)
        line = self.current()
        if line is not None:
            raise YamlSubsetError("unexpected indentation or content", line.lineno)
        return result

    def parse_block(self, indent: int) -> Any:
        line = self.current()
        assert line is not None and line.indent == indent
        if _is_sequence_entry(line.text):
            return self.parse_sequence(indent)
        if _LineParser(line.text, line.lineno).mapping_key() is None:
            raise YamlSubsetError(
                "expected a 'key: value' entry (multi-line plain scalars are not supported)",
                line.lineno,
            )
        return self.parse_mapping(indent)

    def parse_value_after_indicator(self, indent: int, lineno: int) -> Any:
        """Value for ``key:`` or ``-`` with nothing after it: an indented block, or null."""
        nxt = self.current()
        if nxt is not None and nxt.indent > indent:
            return self.parse_block(nxt.indent)
        return None

    def parse_mapping(self, indent: int) -> dict[Any, Any]:
        result: dict[Any, Any] = {}
        while True:
            line = self.current()
            if line is None or line.indent < indent:
                return result
            if line.indent > indent:
                raise YamlSubsetError("unexpected indentation", line.lineno)
            if _is_sequence_entry(line.text):
                raise YamlSubsetError(
                    "a sequence entry is not allowed inside this mapping", line.lineno
                )
            parser = _LineParser(line.text, line.lineno)
            entry = parser.mapping_key()
            if entry is None:
                raise YamlSubsetError(
                    "expected a 'key: value' entry (multi-line plain scalars are not supported)",
                    line.lineno,
                )
            key, rest = entry
            self.pos += 1
            rest_parser = _LineParser(rest, line.lineno)
            if rest_parser.at_end_or_comment():
                nxt = self.current()
                if nxt is not None and nxt.indent == indent and _is_sequence_entry(nxt.text):
                    value = self.parse_sequence(indent)
                else:
                    value = self.parse_value_after_indicator(indent, line.lineno)
            else:
                text = self.complete_flow(rest, line.lineno, indent)
                value = _LineParser(text, line.lineno).inline_value()
            _set_unique(result, key, value, line.lineno)

    def parse_sequence(self, indent: int) -> list[Any]:
        items: list[Any] = []
        while True:
            line = self.current()
            if line is None or line.indent < indent:
                return items
            if line.indent > indent:
                raise YamlSubsetError("unexpected indentation", line.lineno)
            if not _is_sequence_entry(line.text):
                return items
            content = line.text[1:]
            stripped = content.lstrip(" \t")
            offset = 1 + len(content) - len(stripped)
            item_parser = _LineParser(stripped, line.lineno)
            if item_parser.at_end_or_comment():
                self.pos += 1
                items.append(self.parse_value_after_indicator(indent, line.lineno))
                continue
            if "\t" in content[: len(content) - len(stripped)]:
                raise YamlSubsetError("tabs are not allowed in indentation", line.lineno)
            nested = _is_sequence_entry(stripped) or (
                _LineParser(stripped, line.lineno).mapping_key() is not None
            )
            if nested:
                # A compact nested block ("- - x" or "- key: value"): re-read the rest of the
                # line as if it started a block at the column it occupies.
                self.lines[self.pos] = _Line(line.lineno, indent + offset, stripped)
                items.append(self.parse_block(indent + offset))
            else:
                self.pos += 1
                text = self.complete_flow(stripped, line.lineno, indent)
                items.append(_LineParser(text, line.lineno).inline_value())


def _split_lines(text: str) -> list[_Line]:
    if text.startswith("\ufeff"):
        text = text[1:]
    lines: list[_Line] = []
    seen_content = False
    for lineno, raw in enumerate(text.splitlines(), start=1):
        stripped = raw.lstrip(" ")
        if stripped.strip(" \t") == "" or stripped.startswith("#"):
            continue
        indent = len(raw) - len(stripped)
        if stripped.startswith("\t"):
            raise YamlSubsetError("tabs are not allowed in indentation", lineno)
        body = stripped.rstrip(" \t")
        if indent == 0 and (body == "---" or body.startswith("--- ") or body.startswith("---#")):
            if seen_content:
                raise YamlSubsetError("multiple documents are not supported", lineno)
            rest = _LineParser(body[3:], lineno)
            if not rest.at_end_or_comment():
                raise YamlSubsetError("content after '---' is not supported", lineno)
            seen_content = True
            continue
        if indent == 0 and (body == "..." or body.startswith("... ")):
            raise YamlSubsetError("document end markers are not supported", lineno)
        if indent == 0 and body.startswith("%"):
            raise YamlSubsetError("directives are not supported", lineno)
        seen_content = True
        lines.append(_Line(lineno, indent, body))
    return lines


def parse_yaml(text: str) -> dict[Any, Any]:
    """Parse a YAML document written in the supported subset into a ``dict``.

    For every input inside the subset the result equals ``yaml.safe_load(text)`` (an empty
    document gives ``{}`` instead of ``None``). Inputs outside the subset, or invalid YAML,
    raise :class:`YamlSubsetError` whose message starts with ``line N:``.
    """
    if not isinstance(text, str):
        raise TypeError(f"parse_yaml expects a str, got {type(text).__name__}")
    return _BlockParser(_split_lines(text)).parse_document()
