"""The papers' own numbers, "this run vs the paper" tables, and glue for the narrative.

``cellrepro/reported/<paper>.csv`` holds every numeric result table of the five papers,
one value a row: ``paper, table, row, column, value, note``. Transcriptions of tables whose
layout the text extraction collapsed say so in ``note`` (see the claims register).

In a notebook::

    from cellrepro import report
    ours = {("SEU-Net (4-head), cytoplasm", "F1"): 0.91}
    report.compare(ours, paper="brightfield", table="5.1")   # paper | this run | difference
    report.glue("f1_4head", 0.91)                            # {glue:text}`f1_4head:.3f`
"""

from __future__ import annotations

import functools
from importlib import resources
from typing import Any, Mapping

import pandas as pd

from . import PAPERS, CellreproError
from .record import log_metrics

COLUMNS = ["paper", "table", "row", "column", "value", "note"]


@functools.lru_cache(maxsize=None)
def _load(paper: str) -> pd.DataFrame:
    if paper not in PAPERS:
        raise CellreproError(f"unknown paper '{paper}'; papers are {', '.join(PAPERS)}")
    with resources.files("cellrepro").joinpath("reported", f"{paper}.csv").open("r", encoding="utf-8") as fh:
        df = pd.read_csv(fh, dtype={"table": str, "row": str, "column": str, "note": str}, keep_default_na=False)
    if list(df.columns) != COLUMNS:
        raise CellreproError(f"reported/{paper}.csv: expected columns {COLUMNS}, found {list(df.columns)}")
    df["value"] = df["value"].astype(float)
    return df


def reported(paper: str, table: str | None = None) -> pd.DataFrame:
    """The numbers ``paper`` reports (one table, or all), as a long DataFrame (a copy).

    Raises:
        CellreproError: unknown paper or table (the message lists the tables).
    """
    df = _load(paper)
    if table is None:
        return df.copy()
    sub = df[df["table"] == str(table)]
    if sub.empty:
        raise CellreproError(f"{paper} has no table '{table}'; tables: {', '.join(dict.fromkeys(df['table']))}")
    return sub.reset_index(drop=True).copy()


def reported_value(paper: str, table: str, row: str, column: str) -> float:
    """One number the paper reports (for a verdict's "paper's effect" column)."""
    sub = reported(paper, table)
    hit = sub[(sub["row"] == row) & (sub["column"] == column)]
    if hit.empty:
        raise CellreproError(f"{paper} table {table} has no cell ({row!r}, {column!r})")
    return float(hit["value"].iloc[0])


def compare(ours: Mapping[tuple[str, str], float] | pd.DataFrame, paper: str, table: str) -> pd.DataFrame:
    """Side by side: the paper's value, this run's, and the difference (this run - paper).

    Args:
        ours: this run's values keyed by ``(row, column)`` as the paper's table names them,
            or a DataFrame with ``row``, ``column`` and ``value`` columns.
        paper: paper slug.
        table: table label as in the CSV (``"1"``, ``"5.2a"``).

    Returns:
        A DataFrame indexed by (row, column) with columns ``paper``, ``this run``,
        ``difference`` and ``note``; cells this run did not produce are NaN ("not run").

    Raises:
        CellreproError: a key of ``ours`` is not a cell of the paper's table (a typo would
            otherwise print a row with no paper value and go unnoticed).
    """
    ref = reported(paper, table)
    if isinstance(ours, pd.DataFrame):
        ours = {(r, c): v for r, c, v in ours[["row", "column", "value"]].itertuples(index=False)}
    cells = set(zip(ref["row"], ref["column"]))
    unknown = [k for k in ours if tuple(k) not in cells]
    if unknown:
        rows = ", ".join(dict.fromkeys(ref["row"]))
        cols = ", ".join(dict.fromkeys(ref["column"]))
        raise CellreproError(
            f"{paper} table {table} has no cell {unknown[0]!r}. Rows: {rows}. Columns: {cols}."
        )
    out = ref.set_index(["row", "column"])[["value", "note"]].rename(columns={"value": "paper"})
    out.insert(1, "this run", [float(ours[k]) if k in ours else float("nan") for k in out.index])
    out.insert(2, "difference", out["this run"] - out["paper"])
    out.attrs.update(paper=paper, table=table)
    return out


def use_book_style() -> None:
    """Matplotlib defaults for the book: compact figures at screen resolution, readable fonts.

    Keeps executed notebooks small (their PNGs are committed) without losing legibility.
    """
    import matplotlib as mpl

    mpl.rcParams.update({"figure.dpi": 72, "savefig.dpi": 72, "font.size": 9, "axes.titlesize": 9,
                         "figure.constrained_layout.use": True})


def style(df: pd.DataFrame, digits: int = 3) -> Any:
    """A Styler of a :func:`compare` table for the book: fixed digits, "not run" for NaN."""
    fmt = {c: f"{{:.{digits}f}}" for c in ("paper", "this run", "difference") if c in df.columns}
    caption = f"{df.attrs.get('paper', '')} Table {df.attrs.get('table', '')}: paper vs this run"
    return df.style.format(fmt, na_rep="not run").set_caption(caption)


def glue(name: str, value: Any, display: bool = False) -> Any:
    """Glue a number for the narrative and log it in the run record.

    NumPy and torch scalars are converted to Python floats or ints first: MyST-NB's glue
    formatting (``{glue:text}`name:.3f```) fails on NumPy 2 scalars.
    """
    from myst_nb import glue as _glue

    plain = value.item() if hasattr(value, "item") else value
    log_metrics(**{name: plain})
    _glue(name, plain, display=display)
    return plain


def paired_effect(deltas: Any, confidence: float = 0.95) -> dict[str, float]:
    """Mean of paired differences with a t-interval (the claims register's protocol).

    Returns ``mean``, ``low``, ``high``, ``n`` and ``sd``; the interval is NaN for n < 2.
    """
    import numpy as np
    from scipy import stats

    d = np.asarray(deltas, float)
    d = d[np.isfinite(d)]
    n = int(d.size)
    mean = float(d.mean()) if n else float("nan")
    if n < 2:
        return {"mean": mean, "low": float("nan"), "high": float("nan"), "n": n, "sd": float("nan")}
    sd = float(d.std(ddof=1))
    half = float(stats.t.ppf(0.5 + confidence / 2, n - 1) * sd / np.sqrt(n))
    return {"mean": mean, "low": mean - half, "high": mean + half, "n": n, "sd": sd}


def verdict(effect: dict[str, float], expected_sign: int = 1, margin: float | None = None) -> str:
    """holds / fails / inconclusive for a directional claim, or for a null claim with ``margin``.

    Directional: *holds* if the interval excludes 0 on the expected side, *fails* if it
    excludes 0 on the other side. Null (``margin`` given): *holds* if the interval lies inside
    +-margin, *fails* if it lies entirely outside it.
    """
    lo, hi = effect["low"], effect["high"]
    if not (lo == lo and hi == hi):  # NaN: too few pairs
        return "inconclusive"
    if margin is not None:
        if -margin <= lo and hi <= margin:
            return "holds"
        return "fails" if lo > margin or hi < -margin else "inconclusive"
    if expected_sign * lo > 0 and expected_sign * hi > 0:
        return "holds"
    if expected_sign * lo < 0 and expected_sign * hi < 0:
        return "fails"
    return "inconclusive"
