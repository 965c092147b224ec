"""The papers' own numbers, "this run vs the paper" tables, verdicts, figure style and glue.

``cellrepro/reported/<paper>.csv`` holds every numeric result table of the five papers,
one value a row: ``paper, table, row, column, value, note``. Transcriptions of tables whose
layout the text extraction collapsed say so in ``note`` (see the claims register).

In a notebook::

    from cellrepro import report
    ours = {("SEU-Net (4-head), cytoplasm", "F1"): 0.91}
    report.compare(ours, paper="brightfield", table="5.1")   # paper | this run | difference
    report.glue("f1_4head", 0.91)                            # {glue:text}`f1_4head:.3f`

Verdicts (one call per claim the notebook judges, then one table of them all)::

    effect = report.paired_effect(f1_pre - f1_sup)           # per-seed paired differences
    report.record_verdict("organoid-C3", effect, report.verdict(effect),
                          metric="F1 (test images)", threshold="CI > 0", paper_effect=0.008)
    report.verdict_table()                                    # the last expression of a cell
"""

from __future__ import annotations

import functools
import math
import os
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


# --- verdicts -------------------------------------------------------------------------------

PROFILE_ENV = "CELLREPRO_PROFILE"  # set by the runner to the profile a notebook executes in
VERDICTS = ("holds", "fails", "inconclusive", "shape holds, optimum shifted")
NOT_JUDGED = "not judged in the smoke profile"
_SESSION: dict[str, dict[str, Any]] = {}  # this kernel's verdicts, in the order recorded


def current_profile() -> str | None:
    """The profile the notebook runs in (``$CELLREPRO_PROFILE``), None outside ``cellrepro run``."""
    return os.environ.get(PROFILE_ENV) or None


def _number(value: Any) -> float | int | None:
    """A JSON-safe number: NumPy/torch scalars to Python, NaN to None."""
    if value is None:
        return None
    value = value.item() if hasattr(value, "item") else value
    if isinstance(value, float) and math.isnan(value):
        return None
    return value


def record_verdict(claim: str, effect: Mapping[str, Any] | float | None, verdict: str, *, metric: str,
                   threshold: str | float | None = None, paper_effect: float | str | None = None,
                   over: str = "seeds", digits: int = 3, note: str = "") -> dict[str, Any]:
    """Record this run's verdict on one claim of the claims register, for the book's claims page.

    Call it once per claim the notebook judges (a later call for the same claim replaces the
    earlier one), then show them all with :func:`verdict_table`. The verdict is stored in the
    run record under the metric key ``verdict/<claim>`` through
    :func:`cellrepro.record.log_metrics`; the book's "Claims and verdicts" page and each
    chapter's status line are generated from those records. It is also glued (not shown) as
    ``verdict-<claim>`` for the narrative: ``{glue:text}`verdict-organoid-C3```.

    In the ``smoke`` profile (``$CELLREPRO_PROFILE`` set by the runner) the entry is still
    recorded, marked ``profile: smoke``, but every display says "not judged in the smoke
    profile" and the claims page ignores it: smoke numbers only prove that the code runs.

    Args:
        claim: a claim id of the register, e.g. ``"organoid-C3"`` (see :func:`cellrepro.claims.claims`).
        effect: the effect this run measured: the dict of :func:`paired_effect` (``mean``, ``low``,
            ``high``, ``n``), a plain number for a statistic without an interval (a median AUC,
            a deterministic toy), or None where the verdict rests on no single number.
        verdict: ``"holds"``, ``"fails"``, ``"inconclusive"`` or ``"shape holds, optimum shifted"``
            (e.g. from :func:`verdict`), decided by the register's rule, fixed before running.
        metric: what the effect measures, with its unit and units of analysis, e.g.
            ``"F1, pre-trained - supervised (test images)"``.
        threshold: the rule that decides the verdict, e.g. ``"CI > 0"``, ``"|CI| within ±0.01"``,
            or the number the effect must clear.
        paper_effect: the paper's own effect for the same comparison (number or short text).
        over: the independent units of the interval (``"seeds"``, ``"images"``, ``"stacks"``).
        digits: decimals to show (match what the paper reports).
        note: anything a reader needs to weigh the verdict (a deviation, a confound).

    Returns:
        The stored entry (``claim``, ``verdict``, ``metric``, ``effect``, ``low``, ``high``, ``n``,
        ``over``, ``threshold``, ``paper_effect``, ``digits``, ``note``, ``profile``) plus ``shown``:
        the verdict, or "not judged in the smoke profile".

    Raises:
        CellreproError: an unknown claim id or verdict word.

    Example:
        >>> e = record_verdict("spheroid-C1", {"mean": 0.01, "low": 0.004, "high": 0.016, "n": 3},
        ...                    "holds", metric="SSIM to the truth, SBS(k=8) - all slices")
        >>> e["verdict"], e["effect"], e["n"]
        ('holds', 0.01, 3)
    """
    from .claims import VERDICT_KEY
    from .claims import claim as find_claim

    find_claim(claim)  # refuses an unknown id with the paper's ids listed
    if verdict not in VERDICTS:
        raise CellreproError(f"verdict for {claim} must be one of {', '.join(VERDICTS)}; got {verdict!r}")
    if isinstance(effect, Mapping):
        mean, low, high, n = (effect.get(k) for k in ("mean", "low", "high", "n"))
    else:
        mean, low, high, n = effect, None, None, None
    profile = current_profile()
    entry = {"claim": claim, "verdict": verdict, "metric": metric, "effect": _number(mean), "low": _number(low),
             "high": _number(high), "n": _number(n), "over": over, "threshold": _number(threshold),
             "paper_effect": _number(paper_effect), "digits": int(digits), "note": note, "profile": profile}
    log_metrics(**{VERDICT_KEY + claim: entry})
    shown = NOT_JUDGED if profile == "smoke" else verdict
    _SESSION[claim] = entry
    try:
        from myst_nb import glue as _glue

        _glue(f"verdict-{claim}", shown, display=False)
    except ImportError:  # outside a notebook toolchain: nothing to glue into
        pass
    return {**entry, "shown": shown}


def effect_text(entry: Mapping[str, Any]) -> tuple[str, str]:
    """``(effect, interval)`` of a verdict entry as text; never "nan".

    >>> effect_text({"effect": 0.0123, "low": None, "high": None, "n": 1, "over": "seeds", "digits": 3})
    ('+0.012', 'no interval: n = 1 < 2 seeds')
    >>> effect_text({"effect": 0.77, "low": None, "high": None, "n": None, "digits": 2})
    ('0.77', 'no interval: a single statistic')
    """
    from .tables import fmt_interval, fmt_number

    digits = int(entry.get("digits") or 3)
    low, high = entry.get("low"), entry.get("high")
    single = low is None and high is None and entry.get("n") is None
    effect = fmt_number(entry.get("effect"), digits, signed=not single)
    if single:
        interval = "no interval: a single statistic" if entry.get("effect") is not None else "no interval: no single effect"
    else:
        interval = fmt_interval(float("nan") if low is None else low, float("nan") if high is None else high,
                                n=entry.get("n"), digits=digits, over=entry.get("over") or "seeds")
    return effect, interval


def verdict_rows(entries: list[Mapping[str, Any]], smoke: bool = False) -> pd.DataFrame:
    """The verdict table's cells as strings (the claims page uses the same columns)."""
    from .claims import claim as find_claim
    from .tables import fmt_number

    rows = []
    for e in entries:
        effect, interval = effect_text(e)
        paper = e.get("paper_effect")
        paper_text = fmt_number(paper, int(e.get("digits") or 3), signed=True) if isinstance(paper, (int, float)) else (paper or "—")
        n = e.get("n")
        rows.append({
            "claim": f"{e['claim']}: {find_claim(e['claim'])['claim']}",
            "metric": e.get("metric") or "—",
            "paper": paper_text,
            "this run": effect,
            "95% interval": interval + (f" over {n} {e.get('over') or 'seeds'}" if n and not interval.startswith("no") else ""),
            "rule": fmt_number(e.get("threshold"), int(e.get("digits") or 3)) if e.get("threshold") is not None else "—",
            "verdict": NOT_JUDGED if smoke or e.get("profile") == "smoke" else e["verdict"],
            "note": e.get("note") or "",
        })
    return pd.DataFrame(rows, columns=["claim", "metric", "paper", "this run", "95% interval", "rule", "verdict", "note"])


def verdict_table(claims: list[str] | None = None, caption: str | None = None) -> Any:
    """All verdicts this notebook recorded with :func:`record_verdict` (or the listed claims), whole.

    Make it the last expression of a cell. Every row shows the claim, the metric, the paper's
    effect, this run's effect with its 95% interval (or why there is none), the rule and the
    verdict; in the smoke profile the verdict column reads "not judged in the smoke profile".

    Returns:
        A :class:`cellrepro.tables.Table` (HTML with CSS class ``cellrepro-verdicts``).
    """
    from .tables import Table

    wanted = list(_SESSION) if claims is None else list(claims)
    missing = [c for c in wanted if c not in _SESSION]
    if missing:
        raise CellreproError(f"no verdict recorded in this notebook for: {', '.join(missing)}")
    smoke = current_profile() == "smoke"
    frame = verdict_rows([_SESSION[c] for c in wanted], smoke=smoke)
    if caption is None:
        caption = "Verdicts of this run" + (" (smoke profile: the numbers only show that the code runs)" if smoke else "")
    return Table(frame, caption=caption, kind="verdicts")
