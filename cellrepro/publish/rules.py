"""What the chapters' verdict rules share: the paired difference per seed, the lower end of an
interval, and what a page states of a decision (brightfield and mmcs claims use them)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd


def per_seed(rows: pd.DataFrame, treatment: str, reference: str, column: str, by: str = "arm") -> pd.Series:
    """Per seed, ``column`` of ``treatment`` minus ``reference``, the arms named in column ``by``
    (seeds where both ran)."""
    wide = rows.pivot(index="seed", columns=by, values=column)
    for arm in (treatment, reference):
        if arm not in wide:
            raise ValueError(f"no {'arm' if by == 'arm' else by} {arm!r} in the rows; they are {list(wide.columns)}")
    return (wide[treatment] - wide[reference]).dropna()


def mean_of(rows: pd.DataFrame, arm: str, column: str, by: str = "arm") -> float:
    """Mean over seeds of ``column`` for ``arm`` (NaN where the arm or the column is missing)."""
    if column not in rows:
        return float("nan")
    values = rows.loc[rows[by] == arm, column].astype(float)
    return float(values.mean()) if len(values) else float("nan")


def low(values: np.ndarray) -> float:
    """Lower end of the 95% t-interval of ``values`` over units (NaN for fewer than 2)."""
    from .report import paired_effect

    return paired_effect(values)["low"] if len(values) > 1 else float("nan")


def summary(entry: dict[str, Any], digits: int) -> dict[str, Any]:
    """What a page states of a decision: ``verdict``, ``effect``, ``interval`` (text), ``failed``
    (the failed gates' names, or "none") and ``needed`` (the seeds that would detect the paper's or
    the planning effect, "-" where the decision has none)."""
    from . import tables

    needed = entry.get("n_needed")
    return {"verdict": entry["verdict"], "effect": float(entry["effect"] if "effect" in entry else entry["mean"]),
            "interval": tables.fmt_interval(entry["low"], entry["high"], entry["n"], digits),
            "failed": ", ".join(g["name"] for g in entry["failed_gates"]) or "none",
            "needed": str(needed) if needed is not None else "-"}


def difference(d: dict[str, Any], digits: int = 3) -> str:
    """A comparison shown beside a verdict, without a verdict word: its effect, interval and where
    the interval lies."""
    short = summary(d, digits)
    low, high = d.get("low"), d.get("high")
    where = ("no interval" if low is None or high is None or not np.isfinite([low, high]).all()
             else "interval above 0" if low > 0 else "interval below 0" if high < 0 else "interval includes 0")
    return f"{short['effect']:+.{digits}f} {short['interval']} ({where})"


def text(d: dict[str, Any], digits: int = 3) -> str:
    short = summary(d, digits)
    failed = "" if short["failed"] == "none" else f"; failed: {short['failed']}"
    return f"{short['verdict']} ({short['effect']:+.{digits}f} {short['interval']}{failed})"


__all__ = ["difference", "low", "mean_of", "per_seed", "summary", "text"]
