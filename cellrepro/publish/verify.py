"""Re-run a published section from its record and compare its metrics: is the number what its commit gives?

DESIGN promises that a run is deterministic on a CPU for a given seed; a published number must then
be what its recorded commit gives, to the digit. :func:`verify` checks one section: it refuses a
record made from uncommitted changes (no one can check that code out) or from a commit whose
sources differ from the checkout's (a later commit that only adds published outputs is the same
code; otherwise check that commit out first), re-runs the notebook in a temporary folder with the
record's profile and overrides, and lists every logged number that differs (verdict entries
included: their effects and intervals are numbers too). ``cellrepro verify NOTEBOOK`` is the
command.
"""

from __future__ import annotations

import math
import tempfile
from pathlib import Path
from typing import Any, Iterator

from .. import CellreproError
from .project import Project
from .record import git_state, read_record, sources_changed_since, uncommitted_sources

#: Metric keys that describe the run, not its result.
NOT_RESULTS = ("device",)


def _leaves(value: Any, prefix: str) -> Iterator[tuple[str, Any]]:
    if isinstance(value, dict):
        for k, v in value.items():
            yield from _leaves(v, f"{prefix}/{k}" if prefix else str(k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from _leaves(v, f"{prefix}[{i}]")
    else:
        yield prefix, value


def differences(published: dict[str, Any], rerun: dict[str, Any], tolerance: float = 0.0) -> list[dict[str, Any]]:
    """Every logged value of ``published`` that ``rerun`` does not give back (numbers within ``tolerance``).

    >>> differences({"f1": 0.8227, "n": 3, "why": "x"}, {"f1": 0.8236, "n": 3, "why": "x"})
    [{'key': 'f1', 'published': 0.8227, 'rerun': 0.8236}]
    """
    a, b = dict(_leaves(published, "")), dict(_leaves(rerun, ""))
    out = []
    for key in sorted(set(a) | set(b)):
        if key.split("/")[0] in NOT_RESULTS:
            continue
        x, y = a.get(key), b.get(key)
        numbers = isinstance(x, (int, float)) and isinstance(y, (int, float)) and not isinstance(x, bool)
        same = (math.isclose(x, y, rel_tol=0.0, abs_tol=tolerance) if numbers else x == y)
        if not same:
            out.append({"key": key, "published": x, "rerun": y})
    return out


def verify(project: Project, name: str, *, tolerance: float = 0.0, progress: bool = False) -> dict[str, Any]:
    """Re-run the published section ``name`` as its record says and compare what it logs.

    Returns:
        ``{"notebook", "commit", "record", "wall_time_s", "same_cpu_isa", "differences"}``: an
        empty ``differences`` means every number came back. Runs are bit-reproducible on one kind
        of CPU only (:func:`cellrepro.publish.record.cpu_isa`): with ``same_cpu_isa`` False, small
        differences say that the instruction sets differ, not that the code does; None: the record
        predates the flags.

    Raises:
        CellreproError: no published record; a record from uncommitted changes; a checkout at
            another commit, or with uncommitted sources (the files are named).
    """
    from .runner import run_notebook

    nb = project.notebook(name)
    path = project.book_dir / nb.paper / f"{nb.experiment}.record.json"
    if not path.is_file():
        raise CellreproError(f"{nb.key}: no published record ({path})")
    rec = read_record(path)
    git = rec.get("git") or {}
    if git.get("dirty") or not git.get("commit"):
        raise CellreproError(f"{nb.key}: its record ({path}) was made from uncommitted changes at commit "
                             f"{str(git.get('commit'))[:10]}: the code that made its numbers cannot be checked out, "
                             "so there is nothing to verify it against; republish it from a clean checkout")
    here = git_state(project.root)
    moved = sources_changed_since(project.root, git["commit"])
    if moved is None:
        raise CellreproError(f"{nb.key}: published at commit {git['commit'][:10]}, which this clone does not have")
    if moved:
        raise CellreproError(f"{nb.key}: published at commit {git['commit'][:10]}; since then {len(moved)} files "
                             f"changed ({', '.join(moved[:8])}{' ...' if len(moved) > 8 else ''}): run "
                             f"'git checkout {git['commit'][:10]}' first")
    changed = uncommitted_sources(project.root)
    if changed:
        raise CellreproError(f"{nb.key}: this checkout differs from commit {git['commit'][:10]}: {', '.join(changed)}")
    with tempfile.TemporaryDirectory(prefix="cellrepro-verify-") as tmp:
        result = run_notebook(project, nb.key, profile=rec["profile"], parameters=rec.get("overrides") or {},
                              out_dir=Path(tmp), git=here, progress=progress)
    recorded_isa = rec.get("cpu_isa")
    return {"notebook": nb.key, "commit": git["commit"], "record": str(path),
            "wall_time_s": result.record.get("wall_time_s"),
            "same_cpu_isa": None if recorded_isa is None else recorded_isa == result.record.get("cpu_isa"),
            "differences": differences(rec.get("metrics") or {}, result.record.get("metrics") or {}, tolerance)}
