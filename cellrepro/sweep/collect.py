"""One tidy table from every run record of a sweep folder: parameters, seed, metrics, status.

One row per run, one column per variable: ``run``, ``notebook``, ``profile``, ``status``, the
overridden parameters (the grid's first, under their own names), ``seed``, every metric the
run logged (under its own name; ``metric_<name>`` where a parameter has that name), then
``wall_time_s``, ``device``, ``started``, ``commit``, ``error``, ``in_grid`` (the run belongs
to the sweep's current grid; runs of an earlier grid stay on disk and in the table) and
``record`` (the JSON file the row comes from). A failed run has its failed record's row.

A notebook draws an ablation figure from it::

    from cellrepro.sweep import collect
    table = collect("_build/sweeps/paper/organoid/ablation-data")
    ok = table[table.status == "ok"]
    ok.groupby("proportion")["dice"].agg(["mean", "std", "count"])
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from .. import CellreproError
from .._io import atomic_write_text
from ..publish.record import read_record
from .plan import MANIFEST, read_manifest

RESULTS = "results.csv"
TAIL = ("wall_time_s", "device", "started", "commit", "error", "in_grid", "record")


def collect(folder: str | Path) -> Any:
    """The sweep in ``folder`` as a pandas DataFrame (see the module docstring for the columns).

    Raises:
        CellreproError: ``folder`` holds no run (no ``runs/`` and no failed record in ``logs/``).
    """
    import pandas as pd

    folder = Path(folder)
    manifest = read_manifest(folder / MANIFEST) if (folder / MANIFEST).is_file() else {}
    grid_names = list(manifest.get("grid", {}))
    current = list(manifest.get("runs", {}))
    records = _latest_records(folder)
    if not records:
        raise CellreproError(f"{folder}: no run records (expected runs/<run>/*.record.json from cellrepro sweep)")
    rows = [_row(run, path, grid_names, run in current if manifest else None) for run, path in records.items()]
    param_names = grid_names + sorted({n for r in rows for n in r["params"]} - set(grid_names))
    metric_names = list(dict.fromkeys(m for r in rows for m in r["metrics"]))
    reserved = {"run", "notebook", "profile", "status", "seed", *TAIL, *param_names}
    flat = []
    for r in rows:
        row = {k: r[k] for k in ("run", "notebook", "profile", "status")}
        row |= {n: r["params"].get(n) for n in param_names}
        if "seed" not in param_names:
            row["seed"] = r["seed"]
        row |= {(f"metric_{m}" if m in reserved else m): r["metrics"].get(m) for m in metric_names}
        flat.append(row | {k: r[k] for k in TAIL})
    rank = {run: i for i, run in enumerate(current)}
    flat.sort(key=lambda row: (rank.get(row["run"], len(rank)), row["run"]))
    return pd.DataFrame(flat)


def write_results(folder: str | Path, out: str | Path | None = None) -> Path:
    """Write :func:`collect`'s table as CSV (default ``<folder>/results.csv``); return its path.

    Lists and dicts (list-valued metrics) are written as JSON text.
    """
    table = collect(folder)
    for col in table.columns:
        table[col] = table[col].map(lambda v: json.dumps(v) if isinstance(v, (list, dict)) else v)
    path = Path(out) if out is not None else Path(folder) / RESULTS
    return atomic_write_text(path, table.to_csv(index=False))


def _latest_records(folder: Path) -> dict[str, Path]:
    """For each run, the newer of its record and its failed record (the sweep copies those to logs/)."""
    found: dict[str, list[Path]] = {}
    for path in sorted(folder.glob("runs/*/*.json")):
        if path.name.endswith((".record.json", ".failed.json")):
            found.setdefault(path.parent.name, []).append(path)
    for path in sorted(folder.glob("logs/*.failed.json")):
        found.setdefault(path.name[: -len(".failed.json")], []).append(path)
    return {run: max(paths, key=lambda p: p.stat().st_mtime) for run, paths in found.items()}


def _row(run: str, path: Path, grid_names: list[str], in_grid: bool | None) -> dict[str, Any]:
    rec = read_record(path)
    row: dict[str, Any] = {
        "run": run,
        "notebook": rec.get("notebook"),
        "profile": rec.get("profile"),
        "status": rec.get("status"),
        "seed": rec.get("seed"),
    }
    overrides = rec.get("overrides") or {}
    params = rec.get("parameters") or {}
    row["params"] = {name: overrides.get(name, params.get(name)) for name in {*overrides, *grid_names}}
    row["metrics"] = rec.get("metrics") or {}
    row |= {
        "wall_time_s": rec.get("wall_time_s"),
        "device": rec.get("device"),
        "started": rec.get("started"),
        "commit": (rec.get("git") or {}).get("commit"),
        "error": rec.get("error"),
        "in_grid": in_grid,
        "record": str(path),
    }
    return row
