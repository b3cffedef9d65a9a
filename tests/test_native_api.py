"""The installed native module matches its type stub, and the stub ships with the package."""

from __future__ import annotations

import ast
import inspect
from pathlib import Path

from pocket_tts import _native


def _stub() -> ast.Module:
    path = Path(_native.__file__).with_name("_native.pyi")
    assert path.is_file(), "pocket_tts/_native.pyi is not installed"
    assert path.with_name("py.typed").is_file(), "pocket_tts/py.typed is not installed"
    return ast.parse(path.read_text())


def _public(names) -> set[str]:
    return {n for n in names if not n.startswith("_")}


def _runtime_params(obj) -> list[str]:
    """Parameter names from the signature Cython embeds in the docstring (embedsignature):
    ``name(const float[:, ::1] x, int n, bias=None)`` -> ``["x", "n", "bias"]``."""
    doc = obj.__doc__ or ""
    inner = doc[doc.index("(") + 1 :]
    params, depth, cur = [], 0, ""
    for ch in inner:
        if depth == 0 and ch in ",)":
            if cur.strip() and cur.strip() != "*":
                params.append(cur.split("=")[0].split()[-1].lstrip("*"))
            cur = ""
            if ch == ")":
                break
            continue
        depth += ch in "[("
        depth -= ch in "])"
        cur += ch
    return params


def _stub_params(node: ast.FunctionDef) -> list[str]:
    return [a.arg for a in node.args.args + node.args.kwonlyargs]


def test_stub_lists_every_public_name_and_method() -> None:
    stub = _stub()
    top: dict[str, ast.AST] = {}
    for node in stub.body:
        if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
            top[node.name] = node
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            top[node.target.id] = node
    runtime = _public(n for n in dir(_native) if n != "np")
    assert _public(top) == runtime
    for name in runtime:
        obj = getattr(_native, name)
        if inspect.isclass(obj):
            members = {}
            for n in top[name].body:
                if isinstance(n, ast.FunctionDef):
                    members[n.name] = n
                elif isinstance(n, ast.AnnAssign) and isinstance(n.target, ast.Name):
                    members[n.target.id] = n
            assert _public(members) == _public(vars(obj)), name
            for m, node in members.items():
                if isinstance(node, ast.FunctionDef) and not _is_property(node):
                    if m == "__init__":  # Cython embeds it in the class docstring, without self
                        runtime = ["self", *_runtime_params(obj)]
                    else:
                        runtime = _runtime_params(getattr(obj, m))
                    assert _stub_params(node) == runtime, (name, m)
        elif isinstance(top[name], ast.FunctionDef):
            # Same parameters, in order: the stub is what mypy checks callers against.
            assert _stub_params(top[name]) == _runtime_params(obj), name


def _is_property(node: ast.FunctionDef) -> bool:
    return any(isinstance(d, ast.Name) and d.id == "property" for d in node.decorator_list)


def test_every_stub_entry_has_a_docstring() -> None:
    for node in ast.walk(_stub()):
        if isinstance(node, (ast.FunctionDef, ast.ClassDef)) and not node.name.startswith("_"):
            if node.name == "__init__" and ast.get_docstring(node) is None:
                continue  # the class docstring covers a plain constructor
            assert ast.get_docstring(node), node.name
