"""Grids of notebook parameters: parse ``--grid NAME=V1,V2``, expand, name each run.

A grid is a mapping from parameter names to lists of values; a sweep runs the notebook once
per combination (the cartesian product, in the order given). Each run is named by a short,
stable hash of the notebook key, the profile and the run's own parameter values, so that
the same run has the same name on every machine and in every later invocation, whatever
order the grid was written in.

>>> split_values("1,2,3")
['1', '2', '3']
>>> split_values("[1, 2],[3],'a,b'")
['[1, 2]', '[3]', "'a,b'"]
>>> [run for run in expand({"n": [2, 3], "seed": [0, 1]})][:2]
[{'n': 2, 'seed': 0}, {'n': 2, 'seed': 1}]
>>> run_id("demo/tiny", "smoke", {"seed": 0, "n": 2}) == run_id("demo/tiny", "smoke", {"n": 2, "seed": 0})
True
"""

from __future__ import annotations

import hashlib
import itertools
import json
from typing import Any, Iterator

from .. import CellreproError

ID_LENGTH = 10  # hex digits of sha256: collisions need ~10^6 runs in one sweep


def split_values(text: str) -> list[str]:
    """Split ``V1,V2,...`` at the commas that are outside brackets, braces and quotes.

    A value may itself be a list (``[1, 2]``), a dict or a quoted string with commas.
    """
    values: list[str] = []
    depth, quote, start = 0, "", 0
    for i, ch in enumerate(text):
        if quote:
            quote = "" if ch == quote else quote
        elif ch in "'\"":
            quote = ch
        elif ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth -= 1
        elif ch == "," and depth == 0:
            values.append(text[start:i].strip())
            start = i + 1
    values.append(text[start:].strip())
    return values


def parse_grid(specs: list[str], seeds: str | None = None) -> dict[str, list[str]]:
    """``["n=2,3", "scale=0.5,1"]`` (and ``--seeds 0,1``) -> ``{"n": ["2", "3"], ...}``.

    Values stay text here; :func:`cellrepro.sweep.plan.plan_sweep` checks and converts them
    against the notebook's declared parameters.

    Raises:
        CellreproError: a spec without ``=``, an empty name or value, a name given twice
            (``--seeds`` counts as ``--grid seed=...``).
    """
    grid: dict[str, list[str]] = {}
    named = [(spec, "--grid") for spec in specs] + ([(f"seed={seeds}", "--seeds")] if seeds is not None else [])
    for spec, option in named:
        name, sep, text = spec.partition("=")
        name = name.strip()
        if not sep or not name:
            raise CellreproError(f"{option} {spec!r}: expected NAME=V1,V2,... (for example --grid epochs=10,20)")
        values = split_values(text)
        if any(v == "" for v in values):
            raise CellreproError(f"{option} {spec!r}: empty value in the list {text!r}")
        if name in grid:
            raise CellreproError(f"{option}: parameter '{name}' is given twice; list all its values in one option")
        grid[name] = values
    return grid


def expand(grid: dict[str, list[Any]]) -> Iterator[dict[str, Any]]:
    """Every combination of the grid's values, the last name varying fastest."""
    names = list(grid)
    for combo in itertools.product(*(grid[n] for n in names)):
        yield dict(zip(names, combo))


def run_id(notebook: str, profile: str, parameters: dict[str, Any]) -> str:
    """A short stable name for one run: a hash of notebook key, profile and parameter values.

    The values must be JSON-serialisable (the checked values, not the command-line text:
    ``--grid lr=0.1`` and ``--grid lr=1e-1`` name the same run).
    """
    key = json.dumps({"notebook": notebook, "profile": profile, "parameters": parameters}, sort_keys=True)
    return hashlib.sha256(key.encode("utf-8")).hexdigest()[:ID_LENGTH]
