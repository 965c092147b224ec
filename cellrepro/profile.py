"""Profiles: per-notebook papermill parameter overrides, one YAML file per profile.

``smoke`` (CPU, CI, <= 60 s a notebook), ``book`` (one H100-class GPU, <= 10 min a
notebook; the notebooks' own defaults, so its entries are usually empty) and ``paper``
(the papers' own hyper-parameters). A file maps notebook keys to overrides::

    organoid/pipeline:
      epochs: 1
      n_images: 8
"""

from __future__ import annotations

from typing import Any

import yaml

from . import CellreproError
from .params import apply_overrides
from .project import PROFILES, Notebook, Project


def load_profile(project: Project, name: str) -> dict[str, dict[str, Any]]:
    """The overrides of profile ``name``, by notebook key (empty dict for an empty file).

    Raises:
        CellreproError: an unknown profile name, or a file that is not a mapping of
            notebook keys to mappings.
    """
    if name not in PROFILES:
        raise CellreproError(f"unknown profile '{name}'; profiles are {', '.join(PROFILES)}")
    path = project.profiles_dir / f"{name}.yml"
    if not path.is_file():
        raise CellreproError(f"profile file {path} is missing")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as err:
        raise CellreproError(f"{path}: not valid YAML ({err})") from err
    if not isinstance(data, dict) or not all(isinstance(v, dict) or v is None for v in data.values()):
        raise CellreproError(f"{path}: expected a mapping 'paper/experiment: {{parameter: value}}'")
    return {str(k): dict(v or {}) for k, v in data.items()}


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
    return problems
