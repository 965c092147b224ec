"""Notebook parameters: read them from the ``parameters`` cell, check and coerce overrides.

papermill only *warns* about a parameter the notebook does not declare and never checks a
type, so a typo in ``-p epochs_ 3`` or ``-p epochs three`` silently runs the defaults. This
module gives the runner what it needs to refuse such a run before anything executes.

The parameters cell is plain Python, one assignment per line, optionally annotated and
commented; the one statement besides assignments it may hold is ``from typing import ...``::

    from typing import Literal

    epochs = 20                     # fine-tuning epochs
    lr: float = 1e-4
    data_root: str | None = None    # None: the synthetic stand-in
    loss: Literal["bce_dice", "ssim_dice"] = "bce_dice"
    head: Literal["a", "b"] | None = None
    losses: list[Literal["bce_dice", "ssim_dice"]] = ["bce_dice"]

The type of a parameter is its annotation when there is one, otherwise the type of its
default; a bare ``None`` default without annotation accepts anything. ``Literal[...]`` gives
the parameter its *choices*: a value outside them is refused, and so is a default outside
them. For a list (or dict) parameter the choices bind each item (or key).

Notebooks already published cannot gain annotations without changing their source (which
their run records hash), so the package keeps a registry of choices beside the profiles,
``cellrepro/profiles/choices.yml``, keyed by notebook like the profiles; each parameter maps
to a list of values or to ``"module:ATTRIBUTE"``, a tuple, list or dict (its keys) of the
package that is the single source of truth::

    organoid/pipeline:
      loss: cellrepro.losses.segmentation:FINETUNE_LOSSES
      dataset: [organoid]

:func:`load_choices` reads it and :func:`with_choices` merges one entry into a notebook's
parameters (:attr:`cellrepro.publish.project.Notebook.parameters` does both).
"""

from __future__ import annotations

import ast
import functools
import importlib
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import yaml

from .. import CellreproError

_TYPES: dict[str, type | None] = {
    "int": int, "float": float, "bool": bool, "str": str, "list": list, "dict": dict, "None": None,
}


@dataclass(frozen=True)
class Parameter:
    """One tunable of a notebook: its name, default, accepted types, help text and choices."""

    name: str
    default: Any
    types: tuple[str, ...]  # names from _TYPES; empty means "any"
    help: str = ""
    choices: tuple = ()  # allowed values (of each item of a list, each key of a dict); empty: any

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
            so that tools can read it without running it), an annotation cannot be checked, or
            a default lies outside its ``Literal`` choices.
    """
    try:
        tree = ast.parse(source)
    except SyntaxError as err:
        raise CellreproError(f"{where}: the parameters cell is not valid Python ({err.msg}, line {err.lineno})") from err
    comments = _line_comments(source)
    params: dict[str, Parameter] = {}
    for node in tree.body:
        if isinstance(node, ast.ImportFrom) and node.module == "typing":
            continue  # `from typing import Literal`: the kernel evaluates the annotations
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
        types, choices = _annotation_types(annotation, where, name) if annotation is not None else (_default_types(default), ())
        params[name] = _checked_default(Parameter(name, default, types, comments.get(node.lineno, ""), choices), where)
    return params


def _outside(param: Parameter, value: Any) -> list:
    """The values (items of a list, keys of a dict) of ``value`` outside ``param.choices``."""
    if not param.choices or value is None:
        return []
    items = list(value) if isinstance(value, (list, tuple, dict)) else [value]
    return [v for v in items if v not in param.choices]


def _checked_default(param: Parameter, where: str) -> Parameter:
    bad = _outside(param, param.default)
    if bad:
        raise CellreproError(f"{where}: parameter '{param.name}' has the default {param.default!r}, "
                             f"but {bad[0]!r} is not one of its choices {_choices_text(param)}")
    return param


def _choices_text(param: Parameter) -> str:
    return ", ".join(repr(c) for c in param.choices)


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


def _annotation_types(node: ast.expr, where: str, name: str) -> tuple[tuple[str, ...], tuple]:
    """(type names, choices) of an annotation such as ``str | None`` or ``Literal["a", "b"]``."""
    names: list[str] = []
    choices: list = []

    def literal(n: ast.expr) -> list:
        """The values of ``Literal[...]`` (added to the choices), or [] for another node."""
        if not (isinstance(n, ast.Subscript) and isinstance(n.value, ast.Name) and n.value.id == "Literal"):
            return []
        values = ast.literal_eval(n.slice)  # ValueError: not literal values
        values = list(values) if isinstance(n.slice, ast.Tuple) else [values]
        choices.extend(values)
        return values

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
            # list[Literal[...]] and dict[Literal[...], ...]: the choices of each item (key)
            literal(n.slice.elts[0] if isinstance(n.slice, ast.Tuple) and n.value.id == "dict" else n.slice)
        else:
            values = literal(n)
            if not values or any(type(v).__name__ not in _TYPES for v in values):
                raise ValueError(n)
            names.extend(type(v).__name__ for v in values)

    try:
        walk(node)
    except ValueError:
        raise CellreproError(
            f"{where}: parameter '{name}' has an annotation cellrepro cannot check; use "
            f"{', '.join(_TYPES)} or Literal[value, ...] joined by '|'"
        ) from None
    return tuple(dict.fromkeys(names)), tuple(choices)


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
    """Return ``value`` converted to the parameter's type and checked against its choices.

    Strings (from the command line or a YAML profile) are parsed unless the parameter takes
    strings; ints are accepted for floats; ``True`` is not accepted for an int.

    Raises:
        TypeError: a value of the wrong type.
        ValueError: a value (an item of a list, a key of a dict) outside ``param.choices``;
            the message lists the allowed values.
    """
    value = _coerce_type(param, value)
    bad = _outside(param, value)
    if bad:
        each = {"list": "each item ", "dict": "each key "}.get(type(value).__name__, "")
        raise ValueError(f"expected {each}one of {_choices_text(param)}, got {bad[0]!r}")
    return value


def _coerce_type(param: Parameter, value: Any) -> Any:
    """``value`` converted to the parameter's type (see :func:`coerce`); ``TypeError`` otherwise."""
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
        CellreproError: an unknown name, a value of the wrong type or one outside the
            parameter's choices; the message lists every valid name with its type, default
            and choices.
    """
    out: dict[str, Any] = {}
    for name, value in overrides.items():
        if name not in params:
            raise CellreproError(f"{where}: unknown parameter '{name}' (from {source}).\n{describe(params)}")
        try:
            out[name] = coerce(params[name], value)
        except (TypeError, ValueError) as err:
            raise CellreproError(f"{where}: parameter '{name}' (from {source}): {err}.\n{describe(params)}") from None
    return out


def describe(params: dict[str, Parameter]) -> str:
    """A table of parameter names, types, defaults and choices for error messages and ``list``."""
    if not params:
        return "This notebook declares no parameters."
    width = max(len(p.name) for p in params.values())
    tw = max(len(p.type_name) for p in params.values())
    lines = ["Valid parameters (name, type, default):"]
    for p in params.values():
        help_ = f"  # {p.help}" if p.help else ""
        each = {"list": "each ", "dict": "keys "}.get(type(p.default).__name__, "")
        choices = f"  ({each}one of {_choices_text(p)})" if p.choices else ""
        lines.append(f"  {p.name:<{width}}  {p.type_name:<{tw}}  {p.default!r}{choices}{help_}")
    return "\n".join(lines)


def load_choices(path: str | Path) -> dict[str, dict[str, tuple]]:
    """The registry of choices (``choices.yml``): notebook key -> parameter -> allowed values.

    Each parameter maps to a list of values or to ``"module:ATTRIBUTE"``, a tuple, list or dict
    (its keys) of the package; a missing file is an empty registry.

    Raises:
        CellreproError: the file is not such a mapping, or a reference does not resolve.
    """
    path = Path(path)
    if not path.is_file():
        return {}
    return _load_choices(str(path), path.stat().st_mtime_ns)


@functools.lru_cache(maxsize=8)
def _load_choices(path: str, mtime_ns: int) -> dict[str, dict[str, tuple]]:
    try:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as err:
        raise CellreproError(f"{path}: not valid YAML ({err})") from err
    if not isinstance(data, dict) or not all(isinstance(v, dict) for v in data.values()):
        raise CellreproError(f"{path}: expected a mapping 'paper/experiment: {{parameter: [value, ...] or module:ATTRIBUTE}}'")
    out: dict[str, dict[str, tuple]] = {}
    for key, entry in data.items():
        out[str(key)] = {}
        for name, spec in entry.items():
            if isinstance(spec, list) and spec:
                out[str(key)][name] = tuple(spec)
            elif isinstance(spec, str) and ":" in spec:
                out[str(key)][name] = resolve_choices(spec, where=f"{path}: {key}: {name}")
            else:
                raise CellreproError(f"{path}: {key}: {name}: expected a list of values or 'module:ATTRIBUTE', got {spec!r}")
    return out


@functools.cache
def resolve_choices(ref: str, where: str = "choices") -> tuple:
    """The values ``"module:ATTRIBUTE"`` names: a tuple or list, or a dict's keys.

    A module of this package is read without importing it (no torch for ``cellrepro list``)
    when ``ATTRIBUTE`` is a plain literal assignment there (a dict's values need not be
    literal); otherwise the module is imported.

    Raises:
        CellreproError: no such module or attribute, or not a tuple, list or dict.
    """
    module, _, attr = ref.partition(":")
    root = Path(__file__).resolve().parents[1]  # the cellrepro package
    parts = module.split(".")
    files = [root.joinpath(*parts[1:]).with_suffix(".py"), root.joinpath(*parts[1:], "__init__.py")]
    source = next((f for f in files if f.is_file()), None) if parts[0] == root.name and len(parts) > 1 else None
    value = _static_value(source, attr) if source else None
    if value is None:
        try:
            value = getattr(importlib.import_module(module), attr)
        except (ImportError, AttributeError) as err:
            raise CellreproError(f"{where}: {ref!r} does not resolve ({err})") from None
    if not isinstance(value, (tuple, list, dict)) or not value:
        raise CellreproError(f"{where}: {ref!r} is not a non-empty tuple, list or dict")
    return tuple(value)


def _static_value(source: Path, attr: str) -> tuple | list | dict | None:
    """The literal a module's last top-level assignment gives ``attr`` (for a dict with
    literal keys and any values: its keys), or None when that is not a plain literal."""
    nodes = [n for n in ast.parse(source.read_text(encoding="utf-8")).body
             if isinstance(n, ast.Assign) and [getattr(t, "id", None) for t in n.targets] == [attr]
             or isinstance(n, ast.AnnAssign) and getattr(n.target, "id", None) == attr and n.value is not None]
    if not nodes:
        return None
    value = nodes[-1].value
    try:
        if isinstance(value, ast.Dict):
            return {ast.literal_eval(k): None for k in value.keys}
        return ast.literal_eval(value)
    except (ValueError, TypeError, SyntaxError):
        return None


def with_choices(params: dict[str, Parameter], choices: dict[str, tuple], where: str) -> dict[str, Parameter]:
    """``params`` with the registry's ``choices`` (parameter -> allowed values) set on them.

    Raises:
        CellreproError: the registry names a parameter the notebook lacks, one that declares
            its own ``Literal`` choices, or one whose default lies outside the choices.
    """
    out = dict(params)
    for name, allowed in choices.items():
        if name not in params:
            raise CellreproError(f"{where}: the registry of choices names no parameter of the notebook: '{name}'")
        if params[name].choices:
            raise CellreproError(f"{where}: parameter '{name}' declares its choices with Literal; "
                                 "drop its entry from the registry of choices")
        out[name] = _checked_default(replace(params[name], choices=tuple(allowed)), where)
    return out
