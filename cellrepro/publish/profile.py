"""Profiles: per-notebook papermill parameter overrides, one YAML file per profile.

``smoke`` (CPU, CI, <= 60 s a notebook), ``book`` (the published numbers: <= 15 min a
notebook on 2 CPU cores, <= 3 min on one H100; the notebooks' own defaults, so its entries
are usually empty) and ``paper`` (the papers' own hyper-parameters). A file maps notebook
keys to overrides::

    organoid/pipeline:
      epochs: 1
      n_images: 8

Keys that start with ``_`` are reserved settings, never notebooks. The one there is:
``_gpu_only: [paper/experiment, ...]`` in ``book.yml`` names notebooks whose book run needs a
GPU; ``cellrepro book`` on a machine without one keeps their last published result.
"""

from __future__ import annotations

from typing import Any

import yaml

from .. import CellreproError
from .params import apply_overrides
from .project import PROFILES, Notebook, Project

GPU_ONLY = "_gpu_only"
RESERVED = (GPU_ONLY,)


def _read(project: Project, name: str) -> tuple[dict[str, dict[str, Any]], dict[str, Any]]:
    """(notebook overrides, reserved settings) of profile ``name``'s file."""
    if name not in PROFILES:
        raise CellreproError(f"unknown profile '{name}'; profiles are {', '.join(PROFILES)}")
    path = project.profiles_dir / f"{name}.yml"
    if not path.is_file():
        raise CellreproError(f"profile file {path} is missing")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as err:
        raise CellreproError(f"{path}: not valid YAML ({err})") from err
    if not isinstance(data, dict):
        raise CellreproError(f"{path}: expected a mapping 'paper/experiment: {{parameter: value}}'")
    reserved = {str(k): v for k, v in data.items() if str(k).startswith("_")}
    unknown = sorted(set(reserved) - set(RESERVED))
    if unknown:
        raise CellreproError(f"{path}: unknown reserved key {unknown[0]!r} (reserved keys: {', '.join(RESERVED)})")
    gpu = reserved.get(GPU_ONLY, [])
    if name != "book" and GPU_ONLY in reserved:
        raise CellreproError(f"{path}: {GPU_ONLY} belongs in book.yml (the book profile), not in {name}.yml")
    if not isinstance(gpu, list) or not all(isinstance(k, str) for k in gpu):
        raise CellreproError(f"{path}: {GPU_ONLY} must be a list of notebook keys 'paper/experiment'")
    entries = {k: v for k, v in data.items() if not str(k).startswith("_")}
    if not all(isinstance(v, dict) or v is None for v in entries.values()):
        raise CellreproError(f"{path}: expected a mapping 'paper/experiment: {{parameter: value}}'")
    return {str(k): dict(v or {}) for k, v in entries.items()}, reserved


def load_profile(project: Project, name: str) -> dict[str, dict[str, Any]]:
    """The overrides of profile ``name``, by notebook key (empty dict for an empty file).

    Reserved keys (``_gpu_only``) are read by :func:`gpu_only`, never returned here.

    Raises:
        CellreproError: an unknown profile name, or a file that is not a mapping of
            notebook keys to mappings, or an unknown or malformed reserved key.
    """
    return _read(project, name)[0]


def gpu_only(project: Project) -> list[str]:
    """The notebooks ``book.yml`` marks GPU-only (``_gpu_only: [paper/experiment, ...]``)."""
    return list(_read(project, "book")[1].get(GPU_ONLY, []))


def overrides_for(project: Project, profile: str, nb: Notebook) -> dict[str, Any]:
    """The checked, coerced overrides profile ``profile`` gives notebook ``nb``."""
    raw = load_profile(project, profile).get(nb.key, {})
    return apply_overrides(nb.parameters, raw, where=nb.key, source=f"profile {profile}")


def check_profiles(project: Project) -> list[str]:
    """Problems with the profiles, as messages (empty when all is well).

    Every notebook of the TOC needs an entry in ``smoke`` (possibly empty: ``key: {}``), and
    every override in every profile must name a notebook that exists and one of its
    parameters, with a value of the right type.
    """
    problems: list[str] = []
    notebooks = project.notebooks()
    for name in PROFILES:
        try:
            profile = load_profile(project, name)
        except CellreproError as err:
            problems.append(str(err))
            continue
        for key, overrides in profile.items():
            if key not in notebooks:
                problems.append(f"profile {name}: entry '{key}' names no notebook")
                continue
            try:
                apply_overrides(notebooks[key].parameters, overrides, where=key, source=f"profile {name}")
            except CellreproError as err:
                problems.append(str(err).splitlines()[0])
        if name == "smoke":
            problems += [f"profile smoke: no entry for '{nb.key}'" for nb in project.toc_notebooks() if nb.key not in profile]
        if name == "book":
            problems += [f"profile book: {GPU_ONLY} entry '{key}' names no notebook"
                         for key in gpu_only(project) if key not in notebooks]
    return problems
