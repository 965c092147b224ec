"""The papers' own numbers, "this run vs the paper" tables, verdicts, figure style and glue.

``cellrepro/reported/<paper>.csv`` holds every numeric result table of the five papers,
one value a row: ``paper, table, row, column, value, note, transcription``. ``note`` is for the
reader and shows beside the value in the book (what the paper's value means, an inconsistency
of the paper); ``transcription`` is for developers and never shows: how the value was read off
the PDF (a layout the text extraction collapsed, characters it misread; see the claims
register).

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
from importlib import resources
from typing import Any, Mapping

import pandas as pd

from .. import PAPERS, CellreproError
from .record import log_metrics
from .verdicts import (NOT_JUDGED, PROFILE_ENV, VERDICTS, current_profile, decide, effect_text, gate,  # noqa: F401
                       judge, record_gate, record_verdict, verdict_rows, verdict_table)  # the notebooks' API

COLUMNS = ["paper", "table", "row", "column", "value", "note", "transcription"]


@functools.lru_cache(maxsize=None)
def _load(paper: str) -> pd.DataFrame:
    if paper not in PAPERS:
        raise CellreproError(f"unknown paper '{paper}'; papers are {', '.join(PAPERS)}")
    with resources.files("cellrepro").joinpath("reported", f"{paper}.csv").open("r", encoding="utf-8") as fh:
        df = pd.read_csv(fh, dtype={"table": str, "row": str, "column": str, "note": str, "transcription": str},
                         keep_default_na=False)
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


# The range each reported table's metric cannot leave, for clipping "this run"'s interval
# (:func:`paired_effect`'s ``bounds``): keyed (paper, table, column), (paper, table) or (paper,),
# the most specific key first. Tables not listed (settings, losses) are not clipped.
RANGES: dict[tuple[str, ...], tuple[float, float]] = {
    ("spheroid", "1"): (0.0, 1.0),  # box and mask AP as fractions
    ("spheroid", "2"): (0.0, 100.0),  # mask mAP in percent
    ("multimodal", "3"): (0.0, 1.0),  # mDice, mPrecision, mRecall, mF1, mInstDice
    ("multimodal", "4"): (0.0, 1.0),  # median F1
    ("mmcs",): (0.0, 1.0),  # F1 in every table
    **{("brightfield", f"5.{i}"): (0.0, 1.0) for i in range(1, 7)},  # accuracy, precision, recall, F1, IoU
    **{("brightfield", f"5.{i}"): (0.0, 100.0) for i in range(7, 12)},  # COCO AP in percent
    **{("organoid", t, "F1 mean"): (0.0, 1.0) for t in ("5.1", "5.2a", "5.2b")},
    **{("organoid", t, "F1 sd"): (0.0, float("inf")) for t in ("5.1", "5.2a", "5.2b")},
}


def metric_range(paper: str, table: str, column: str) -> tuple[float, float] | None:
    """The range of a reported cell's metric (:data:`RANGES`), or None where none is known.

    >>> metric_range("spheroid", "1", "mask AP50"), metric_range("organoid", "4.1", "epochs")
    ((0.0, 1.0), None)
    """
    for key in ((paper, str(table), column), (paper, str(table)), (paper,)):
        if key in RANGES:
            return RANGES[key]
    return None


def compare(ours: Mapping[tuple[str, str], float] | pd.DataFrame, paper: str, table: str,
            bounds: tuple[float, float] | None = None) -> pd.DataFrame:
    """Side by side: the paper's value, this run's, and the difference (this run - paper).

    Args:
        ours: this run's values keyed by ``(row, column)`` as the paper's table names them,
            or a DataFrame with ``row``, ``column`` and ``value`` columns. A value may be a
            sequence of per-seed values: "this run" is then their mean, and a "95% interval"
            column (t-interval over seeds, :func:`paired_effect`) follows it.
        paper: paper slug.
        table: table label as in the CSV (``"1"``, ``"5.2a"``).
        bounds: the range the metric cannot leave, for every cell; by default each cell's
            :func:`metric_range`. An interval reaching past it is clipped to it, and its cell
            says so ("[+0.4523, +1.0000] clipped to [0, 1]").

    Returns:
        A DataFrame indexed by (row, column) with columns ``paper``, ``this run``, (``95%
        interval``), ``difference`` and ``note``; cells this run did not produce are NaN ("not run").
        ``note`` is the reader's note on the paper's value; how the value was transcribed
        (``transcription`` in the CSV) is left out.

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
    import numpy as np

    from .tables import fmt_interval

    out = ref.set_index(["row", "column"])[["value", "note"]].rename(columns={"value": "paper"})
    seeds = {k: np.asarray(v, float) for k, v in ours.items() if np.ndim(v) > 0}
    mean = {k: float(seeds[k].mean()) if k in seeds else float(v) for k, v in ours.items()}
    out.insert(1, "this run", [mean.get(k, float("nan")) for k in out.index])
    at = 2
    if seeds:
        ranges = {k: bounds if bounds is not None else metric_range(paper, table, k[1]) for k in seeds}
        effects = {k: paired_effect(v, bounds=ranges[k]) for k, v in seeds.items()}

        def interval(k: tuple[str, str]) -> str:
            e = effects[k]
            text = fmt_interval(e["low"], e["high"], e["n"], 4)
            if e.get("clipped"):
                lo, hi = ranges[k]
                text += f" clipped to [{lo:g}, {hi:g}]"
            return text

        out.insert(2, "95% interval", [interval(k) if k in effects else "" for k in out.index])
        at = 3
    out.insert(at, "difference", out["this run"] - out["paper"])
    out.attrs.update(paper=paper, table=table)
    return out


COLUMN_PX = 680  # width of the book's text column in a 1280 px window (sphinx-book-theme), CSS pixels
BOOK_DPI = 150


def framed(ax, colour: str = "0.45", width: float = 0.6) -> None:
    """An image panel without ticks but with a thin grey frame.

    Without a frame a mask that is nearly all white (a large organoid, a crop the annotation
    covers) melts into the white page and the panel looks missing; with one it reads as a mask.
    """
    ax.set_xticks([])
    ax.set_yticks([])
    for spine in ax.spines.values():
        spine.set_visible(True)
        spine.set_edgecolor(colour)
        spine.set_linewidth(width)


def use_book_style() -> None:
    """Matplotlib defaults for the book: 150 dpi, and fonts that stay >= 8 pt at the rendered size.

    A figure wider than the text column (:data:`COLUMN_PX`) is scaled down to fit, and its
    fonts with it; at 150 dpi a figure up to 7.5 inches wide keeps 9 pt text at >= 8 pt on the
    page (see :func:`rendered_font_pt`). Figure helpers should stay within that width.
    """
    import matplotlib as mpl

    mpl.rcParams.update({"figure.dpi": BOOK_DPI, "savefig.dpi": BOOK_DPI, "figure.figsize": (7.5, 3.6),
                         "font.size": 10, "axes.titlesize": 10, "axes.labelsize": 10, "xtick.labelsize": 9,
                         "ytick.labelsize": 9, "legend.fontsize": 9, "figure.titlesize": 11,
                         "figure.constrained_layout.use": True})


def rendered_font_pt(fig: Any, column_px: int = COLUMN_PX) -> float:
    """The smallest font of ``fig`` in points as the book shows it (scaled to the text column).

    The PNG is ``width_in * dpi`` pixels and is shown at that many CSS pixels, or scaled down to
    ``column_px`` if wider; a CSS point is 4/3 CSS pixels.

    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> import matplotlib.pyplot as plt
    >>> fig = plt.figure(figsize=(16, 2), dpi=150); _ = fig.text(0.5, 0.5, "x", fontsize=9)
    >>> round(rendered_font_pt(fig, column_px=720), 2)   # 9 pt * 720 / (16 * 150) * 150 / 96
    4.22
    >>> plt.close(fig)
    """
    import matplotlib as mpl

    dpi = float(mpl.rcParams["savefig.dpi"]) if mpl.rcParams["savefig.dpi"] != "figure" else fig.dpi
    width_px = fig.get_figwidth() * dpi
    scale = min(1.0, column_px / width_px)
    sizes = [t.get_fontsize() for t in fig.findobj(mpl.text.Text) if t.get_text().strip() and t.get_visible()]
    return float(min(sizes, default=float("inf")) * dpi / 96 * scale)


def glue_figure(name: str, fig: Any) -> None:
    """Glue a figure for a captioned ``{glue:figure}`` and keep it out of the cell's output.

    The caption, number and alt text live in the markdown beside it::

        ```{glue:figure} fig-zstack
        :name: fig-data-zstack
        :alt: Five slices of a synthetic DIC z-stack, top to bottom, with the focused objects outlined.

        **Synthetic z-stack.** Slices 0, 4, 7, 10, 14 ... Stands in for Fig. 3a of the paper.
        ```

    Sphinx numbers the figure ("Fig. 2") and ``{numref}`fig-data-zstack``` refers to it.
    """
    import matplotlib.pyplot as plt
    from myst_nb import glue as _glue

    _glue(name, fig, display=False)
    plt.close(fig)


def paired_seeds_figure(means: pd.DataFrame, panel: str, arm: str, arms: list[str] | tuple[str, ...], value: str,
                        ylabel: str | None = None, width: float = 7.5) -> Any:
    """One panel per level of ``panel``; in each, ``value`` of every arm (x, in the order of ``arms``)
    with one line per ``seed`` joining that seed's arms: the paired differences a verdict uses, drawn.

    ``means`` has one row per (seed, panel level, arm), e.g. per-seed means over test images.
    """
    import matplotlib.pyplot as plt

    panels = list(dict.fromkeys(means[panel]))
    fig, axes = plt.subplots(1, len(panels), figsize=(width, 2.9), sharey=True, layout="constrained", squeeze=False)
    for ax, level in zip(axes[0], panels):
        sub = means[means[panel] == level]
        present = [a for a in arms if a in set(sub[arm])]
        for seed, g in sub.groupby("seed"):
            y = g.set_index(arm).reindex(present)[value]
            ax.plot(range(len(present)), y.to_numpy(), "o-", alpha=0.7, label=f"seed {seed}")
        ax.set_xticks(range(len(present)), [str(a).replace(", ", ",\n") for a in present], fontsize=8)
        ax.set_xlim(-0.4, len(present) - 0.6)
        ax.set_title(str(level))
    axes[0, 0].set_ylabel(ylabel or f"{value} (mean over test images)")
    axes[0, -1].legend(frameon=False, fontsize=8)
    return fig


def style(df: pd.DataFrame, digits: int | None = None, caption: str | None = None) -> Any:
    """A :func:`compare` table (or several concatenated) for the book, whole and rounded as the paper.

    Every row and column is shown (no "..."), numbers get the decimals the paper prints
    (guessed from its values unless ``digits`` is given), the difference is signed, and a cell
    this run did not produce reads "not run". Wide tables scroll inside their box.

    Returns:
        A :class:`cellrepro.publish.tables.Table` (CSS class ``cellrepro-compare``), already
        displayed when called in a notebook kernel (:meth:`~cellrepro.publish.tables.Table.show`),
        so a table inside an ``if`` reaches the page too.

    >>> t = style(compare({("Mask R-CNN, R50-FPN", "mask AP50"): 0.91234}, "spheroid", "1"))
    >>> row = t.frame[(t.frame["row"] == "Mask R-CNN, R50-FPN") & (t.frame["column"] == "mask AP50")].iloc[0]
    >>> row["paper"], row["this run"], row["difference"]
    ('0.918', '0.912', '-0.006')
    """
    from .tables import Table, fmt_number, paper_decimals

    flat = df.reset_index()
    flat.columns = ["table" if str(c).startswith("level_") else str(c) for c in flat.columns]
    groups = flat["table"] if "table" in flat.columns else pd.Series(0, index=flat.index)
    if digits is not None:
        places = pd.Series(digits, index=flat.index)
    elif "paper" in flat.columns:  # per concatenated table: Table 1 in fractions, Table 2 in percent
        places = flat.groupby(groups)["paper"].transform(lambda v: paper_decimals(v.tolist()))
    else:
        places = pd.Series(3, index=flat.index)
    for col in ("paper", "this run"):
        if col in flat.columns:
            flat[col] = [fmt_number(v, int(d)) if v == v else "not run" for v, d in zip(flat[col], places)]
    if "difference" in flat.columns:
        flat["difference"] = [fmt_number(v, int(d), signed=True) for v, d in zip(flat["difference"], places)]
    if caption is None and df.attrs.get("paper"):
        caption = f"{df.attrs['paper']} Table {df.attrs.get('table', '')}: the paper's values beside this run's"
    return Table(flat, caption=caption, kind="compare").show()


def table(frame: pd.DataFrame, digits: int | Mapping[str, int] = 3, caption: str | None = None,
          index: bool = True) -> Any:
    """Any results frame for the book, whole: floats rounded to ``digits`` (per column if a dict),
    whole numbers without decimals ("12", not "12.0"), missing cells as an em dash, wide tables
    scrolling in their box. In a notebook kernel the table is displayed at once
    (:meth:`~cellrepro.publish.tables.Table.show`), wherever the call stands in its cell.

    >>> table(pd.DataFrame({"n": [3.0], "mean": [0.12345]}), digits=3).to_string().split()
    ['n', 'mean', '0', '3', '0.123']
    """
    from .tables import Table, fmt_number

    def cell(v: Any, d: int) -> Any:
        if isinstance(v, float) and v == v and v.is_integer():
            return f"{v:.0f}"
        return fmt_number(v, d) if isinstance(v, float) else v

    out = frame.copy()
    for col in out.columns:
        d = digits.get(str(col), 3) if isinstance(digits, Mapping) else digits
        out[col] = [cell(v.item() if hasattr(v, "item") else v, d) for v in out[col]]
    return Table(out, caption=caption, kind="results", index=index).show()


def glue(name: str, value: Any, display: bool = False) -> None:
    """Glue a number for the narrative and log it in the run record; nothing shows in the cell.

    NumPy and torch scalars are converted to Python floats or ints first: MyST-NB's glue
    formatting (``{glue:text}`name:.3f```) fails on NumPy 2 scalars. Returns None, so a glue
    call as a cell's last line leaves no stray output box ("12") on the page. A NaN (an interval
    from one seed) is glued and logged as NaN; the book pastes it as "n/a", not "+nan"
    (:func:`cellrepro.publish.tables.install_glue_text`).
    """
    from myst_nb import glue as _glue

    plain = value.item() if hasattr(value, "item") else value
    log_metrics(**{name: plain})
    _glue(name, plain, display=display)


def paired_effect(deltas: Any, confidence: float = 0.95,
                  bounds: tuple[float, float] | None = None) -> dict[str, float]:
    """Mean of paired differences with a t-interval (the claims register's protocol).

    Returns ``mean``, ``low``, ``high``, ``n`` and ``sd``; the interval is NaN for n < 2.

    ``bounds=(lo, hi)``: the range the quantity cannot leave (``(0, 1)`` for a mean AP, F1 or
    Dice as a fraction, ``(0, 100)`` in percent, ``(-1, 1)`` for a difference of two fractions).
    A t-interval is symmetric about the mean, so with few seeds and a mean near a bound it reaches
    past it ("AP50 in [0.45, 1.07]"), which no value can. The interval is then clipped to the
    range, and ``clipped`` (added only when ``bounds`` is given) says whether it was. Clipping
    was chosen over an interval on a transformed scale (logit, arcsine): the true mean lies in
    the range, so intersecting an interval with the range never drops it and the coverage is
    unchanged, while the mean and the interval's other end stay exactly as they were; a
    transformed scale would change every interval, needs per-unit counts for a proper binomial
    interval and breaks on values of exactly 0 or 1. A page that shows a clipped interval says
    so (:func:`compare` writes "clipped to [0, 1]" in the cell).

    >>> e = paired_effect([0.8, 0.9, 1.0], bounds=(0, 1))
    >>> round(e["low"], 3), e["high"], e["clipped"]
    (0.652, 1.0, True)
    """
    import numpy as np
    from scipy import stats

    d = np.asarray(deltas, float)
    d = d[np.isfinite(d)]
    n = int(d.size)
    mean = float(d.mean()) if n else float("nan")
    clipped = {} if bounds is None else {"clipped": False}
    if n < 2:
        return {"mean": mean, "low": float("nan"), "high": float("nan"), "n": n, "sd": float("nan"), **clipped}
    sd = float(d.std(ddof=1))
    half = float(stats.t.ppf(0.5 + confidence / 2, n - 1) * sd / np.sqrt(n))
    low, high = mean - half, mean + half
    if bounds is not None:
        lo, hi = float(bounds[0]), float(bounds[1])
        clipped["clipped"] = bool(low < lo or high > hi)
        low, high = max(low, lo), min(high, hi)
    return {"mean": mean, "low": low, "high": high, "n": n, "sd": sd, **clipped}


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
