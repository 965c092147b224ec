"""Notebook parameters: read them from the ``parameters`` cell, check and coerce overrides.

papermill only *warns* about a parameter the notebook does not declare and never checks a
type, so a typo in ``-p epochs_ 3`` or ``-p epochs three`` silently runs the defaults. This
module gives the runner what it needs to refuse such a run before anything executes.

The parameters cell is plain Python, one assignment per line, optionally annotated and
commented::

    epochs = 20                     # fine-tuning epochs
    lr: float = 1e-4
    data_root: str | None = None    # None: the synthetic stand-in

The type of a parameter is its annotation when there is one, otherwise the type of its
default; a bare ``None`` default without annotation accepts anything.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from typing import Any

import yaml

from .. import CellreproError

_TYPES: dict[str, type | None] = {
    "int": int, "float": float, "bool": bool, "str": str, "list": list, "dict": dict, "None": None,
}


@dataclass(frozen=True)
class Parameter:
    """One tunable of a notebook: its name, default, accepted types and help text."""

    name: str
    default: Any
    types: tuple[str, ...]  # names from _TYPES; empty means "any"
    help: str = ""

    @property
    def type_name(self) -> str:
        """The accepted types as a user reads them, e.g. ``str | None``."""
        return " | ".join(self.types) if self.types else "any"


def parse_parameters(source: str, where: str = "parameters cell") -> dict[str, Parameter]:
    """Parse the source of a ``parameters`` cell into ordered :class:`Parameter` objects.

    Args:
        source: the cell's Python source.
        where: how to name the cell in error messages (usually the notebook path).

    Raises:
        CellreproError: a line is not ``name = literal`` (the cell must stay declarative,
            so that tools can read it without running it).
    """
    try:
        tree = ast.parse(source)
    except SyntaxError as err:
        raise CellreproError(f"{where}: the parameters cell is not valid Python ({err.msg}, line {err.lineno})") from err
    comments = _line_comments(source)
    params: dict[str, Parameter] = {}
    for node in tree.body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            name, value_node, annotation = node.targets[0].id, node.value, None
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) and node.value is not None:
            name, value_node, annotation = node.target.id, node.value, node.annotation
        else:
            raise CellreproError(
                f"{where}: line {node.lineno} of the parameters cell is not 'name = literal'; "
                "keep that cell declarative and compute derived values in the next cell"
            )
        try:
            default = ast.literal_eval(value_node)
        except ValueError as err:
            raise CellreproError(
                f"{where}: parameter '{name}' (line {node.lineno}) has a default that is not a literal; "
                "keep the parameters cell declarative"
            ) from err
        types = _annotation_types(annotation, where, name) if annotation is not None else _default_types(default)
        params[name] = Parameter(name, default, types, comments.get(node.lineno, ""))
    return params


def _line_comments(source: str) -> dict[int, str]:
    import io
    import tokenize

    out: dict[int, str] = {}
    for tok in tokenize.generate_tokens(io.StringIO(source).readline):
        if tok.type == tokenize.COMMENT:
            out[tok.start[0]] = tok.string.lstrip("#").strip()
    return out


def _default_types(default: Any) -> tuple[str, ...]:
    if default is None:
        return ()
    return (type(default).__name__,) if type(default).__name__ in _TYPES else ()


def _annotation_types(node: ast.expr, where: str, name: str) -> tuple[str, ...]:
    names: list[str] = []

    def walk(n: ast.expr) -> None:
        if isinstance(n, ast.BinOp) and isinstance(n.op, ast.BitOr):
            walk(n.left)
            walk(n.right)
        elif isinstance(n, ast.Name) and n.id in _TYPES:
            names.append(n.id)
        elif isinstance(n, ast.Constant) and n.value is None:
            names.append("None")
        elif isinstance(n, ast.Subscript) and isinstance(n.value, ast.Name) and n.value.id in ("list", "dict"):
            names.append(n.value.id)
        else:
            raise CellreproError(
                f"{where}: parameter '{name}' has an annotation cellrepro cannot check; "
                f"use {', '.join(_TYPES)} joined by '|'"
            )

    walk(node)
    return tuple(names)


def _parse_text(text: str) -> Any:
    """Read a command-line value: a Python literal, else YAML (true, null), else the text."""
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        pass
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        return text


def coerce(param: Parameter, value: Any) -> Any:
    """Return ``value`` converted to the parameter's type, or raise ``TypeError``.

    Strings (from the command line or a YAML profile) are parsed unless the parameter takes
    strings; ints are accepted for floats; ``True`` is not accepted for an int.
    """
    if not param.types:
        return _parse_text(value) if isinstance(value, str) else value
    if isinstance(value, str) and "str" not in param.types:
        value = _parse_text(value)
    if isinstance(value, str) and "str" in param.types and "None" in param.types and value in ("None", "null"):
        return None
    for tname in param.types:
        if tname == "None" and value is None:
            return None
        if tname == "float" and isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if tname == "int" and isinstance(value, int) and not isinstance(value, bool):
            return value
        if tname in ("bool", "str", "list", "dict") and isinstance(value, _TYPES[tname]):
            return value
    raise TypeError(f"expected {param.type_name}, got {value!r}")


def apply_overrides(params: dict[str, Parameter], overrides: dict[str, Any], where: str, source: str) -> dict[str, Any]:
    """Check ``overrides`` against ``params`` and return them coerced.

    Args:
        params: the notebook's declared parameters.
        overrides: names to values (strings from the command line, or YAML values).
        where: the notebook, for messages.
        source: where the overrides come from ("-p", "profile smoke"), for messages.

    Raises:
        CellreproError: an unknown name or a value of the wrong type; the message lists
            every valid name with its type and default.
    """
    out: dict[str, Any] = {}
    for name, value in overrides.items():
        if name not in params:
            raise CellreproError(f"{where}: unknown parameter '{name}' (from {source}).\n{describe(params)}")
        try:
            out[name] = coerce(params[name], value)
        except TypeError as err:
            raise CellreproError(f"{where}: parameter '{name}' (from {source}): {err}.\n{describe(params)}") from None
    return out


def describe(params: dict[str, Parameter]) -> str:
    """A table of parameter names, types and defaults for error messages and ``list``."""
    if not params:
        return "This notebook declares no parameters."
    width = max(len(p.name) for p in params.values())
    tw = max(len(p.type_name) for p in params.values())
    lines = ["Valid parameters (name, type, default):"]
    for p in params.values():
        help_ = f"  # {p.help}" if p.help else ""
        lines.append(f"  {p.name:<{width}}  {p.type_name:<{tw}}  {p.default!r}{help_}")
    return "\n".join(lines)
