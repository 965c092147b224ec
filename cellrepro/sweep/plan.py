"""A sweep's plan on disk: the run manifest and one parameter file per run.

:func:`plan_sweep` checks every grid value against the notebook's declared parameters (the
same checks, and the same refusals, as ``cellrepro run -p``) before anything is written, so a
typo never reaches a scheduler. :func:`write_plan` lays the plan out in the sweep folder::

    <out>/sweep.json              the manifest the packaged Snakefile reads
    <out>/params/<run>.json       one run's parameters: an input of its job
    <out>/runs/<run>/<experiment>.ipynb, .record.json   written by the job (cellrepro run's code)
    <out>/logs/<run>.log          the job's log; a failed run's partial notebook and record beside

A parameter file is rewritten only when its content changes (a new profile value, a moved
checkout), so Snakemake's modification-time trigger re-runs exactly the runs it concerns.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from importlib import resources as importlib_resources
from pathlib import Path
from typing import Any

import yaml

from .. import CellreproError, __version__
from .._io import atomic_write_json
from ..publish.params import apply_overrides
from ..publish.project import Notebook, Project
from ..publish.runner import resolve_overrides
from .grid import expand, run_id

log = logging.getLogger(__name__)

MANIFEST = "sweep.json"
SCHEMA = 1


@dataclass(frozen=True)
class Run:
    """One run of a sweep: its name, the grid's values for it and what it asks the executor for."""

    id: str
    parameters: dict[str, Any]  # the grid's values, checked and typed
    resolved: dict[str, Any]  # every override the run gets: the profile's, then the grid's
    resources: dict[str, Any]


@dataclass(frozen=True)
class SweepPlan:
    """Every run of one notebook's grid in one profile, and the folder they go to."""

    project: Project
    notebook: Notebook
    profile: str
    grid: dict[str, list[Any]]
    runs: tuple[Run, ...]
    out: Path

    @property
    def manifest_path(self) -> Path:
        return self.out / MANIFEST

    def manifest(self) -> dict[str, Any]:
        """What the Snakefile reads: paths, the cellrepro version and every run."""
        return {
            "schema": SCHEMA,
            "cellrepro": __version__,
            "project": str(self.project.root),
            "notebook": self.notebook.key,
            "experiment": self.notebook.experiment,
            "source": str(self.notebook.source.resolve()),
            "profile": self.profile,
            "grid": self.grid,
            "runs": {r.id: {"parameters": r.parameters, "resources": r.resources} for r in self.runs},
        }


def default_sweep_dir(project: Project, profile: str, nb: Notebook) -> Path:
    """``_build/sweeps/<profile>/<paper>/<experiment>``: one sweep folder per notebook and profile."""
    return project.root / "_build" / "sweeps" / profile / nb.paper / nb.experiment


def plan_sweep(project: Project, notebook: str, grid: dict[str, list[str]], profile: str = "book",
               out: str | Path | None = None) -> SweepPlan:
    """Check ``grid`` against the notebook and expand it into named runs.

    Args:
        project: the project holding the notebook.
        notebook: ``paper/experiment`` or a path to its ``.md`` source.
        grid: parameter names to their values as text (from :func:`cellrepro.sweep.grid.parse_grid`)
            or already typed.
        profile: ``smoke``, ``book`` or ``paper``: its overrides apply under the grid's values,
            and it chooses the runs' resources.
        out: the sweep folder (default :func:`default_sweep_dir`).

    Raises:
        CellreproError: an unknown notebook, profile or parameter, a value of the wrong type, two
            values that are the same after conversion, or an empty grid. Nothing is written.
    """
    nb = project.notebook(notebook)
    if not grid:
        raise CellreproError("cellrepro sweep: give at least one --grid NAME=V1,V2 or --seeds")
    grid = seeds_as_runs(nb, grid)
    checked: dict[str, list[Any]] = {}
    for name, values in grid.items():
        typed = [apply_overrides(nb.parameters, {name: v}, where=nb.key, source=f"--grid {name}")[name] for v in values]
        seen = [json.dumps(v, sort_keys=True) for v in typed]
        if len(set(seen)) != len(seen):
            raise CellreproError(f"--grid {name}: values {values} repeat a value once converted ({typed})")
        checked[name] = typed
    resources = resources_for(profile, nb.key)
    runs = []
    for params in expand(checked):
        resolved = resolve_overrides(project, nb, profile, params)  # checks the profile's entries too
        runs.append(Run(run_id(nb.key, profile, params), params, resolved, resources))
    folder = Path(out) if out is not None else default_sweep_dir(project, profile, nb)
    return SweepPlan(project, nb, profile, checked, tuple(runs), folder.resolve())


def seeds_as_runs(nb: Notebook, grid: dict[str, list[Any]]) -> dict[str, list[Any]]:
    """``--seeds`` (``seed`` in the grid) for a notebook that takes a list ``seeds`` instead of
    a ``seed``: each value becomes a one-seed list, so every seed is its own run.

    >>> from types import SimpleNamespace as NS
    >>> seeds_as_runs(NS(parameters={"seeds": None}), {"seed": ["0", "1"], "n": ["2"]})
    {'n': ['2'], 'seeds': ['[0]', '[1]']}
    """
    if "seed" in grid and "seed" not in nb.parameters and "seeds" in nb.parameters and "seeds" not in grid:
        grid = {k: v for k, v in grid.items() if k != "seed"} | {"seeds": [f"[{v}]" for v in grid["seed"]]}
    return grid


def resources_for(profile: str, key: str) -> dict[str, Any]:
    """The resources one run of notebook ``key`` asks for in ``profile`` (from ``resources.yml``)."""
    text = importlib_resources.files(__package__).joinpath("resources.yml").read_text(encoding="utf-8")
    table = yaml.safe_load(text)
    if profile not in table:
        raise CellreproError(f"cellrepro/sweep/resources.yml has no entry for profile '{profile}'")
    return {**table[profile].get("default", {}), **table[profile].get(key, {})}


def write_plan(plan: SweepPlan) -> Path:
    """Write the manifest and the parameter files; return the manifest's path.

    Raises:
        CellreproError: the folder already holds a sweep of another notebook or profile (runs of
            different sweeps would mix in one table).
    """
    path = plan.manifest_path
    if path.is_file():
        old = read_manifest(path)
        if (old.get("notebook"), old.get("profile")) != (plan.notebook.key, plan.profile):
            raise CellreproError(
                f"{plan.out} holds a sweep of {old.get('notebook')} in profile {old.get('profile')}; "
                f"sweep {plan.notebook.key} in profile {plan.profile} into another folder (--out)"
            )
    for run in plan.runs:
        content = {
            "project": str(plan.project.root),
            "notebook": plan.notebook.key,
            "profile": plan.profile,
            "parameters": run.parameters,
            "resolved": run.resolved,
        }
        target = plan.out / "params" / f"{run.id}.json"
        if not target.is_file() or json.loads(target.read_text(encoding="utf-8")) != content:
            atomic_write_json(target, content)
            log.debug("parameter file %s written", target)
    atomic_write_json(path, plan.manifest())
    return path


def read_manifest(path: str | Path) -> dict[str, Any]:
    """Read a sweep manifest (``sweep.json``), with a clear error for a missing or broken one."""
    path = Path(path)
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as err:
        raise CellreproError(f"{path}: not a readable sweep manifest ({err})") from err
    if not isinstance(manifest, dict) or "runs" not in manifest:
        raise CellreproError(f"{path}: not a sweep manifest (no 'runs')")
    return manifest
