"""Tables for the book: whole (never truncated), rounded as the paper rounds, never "nan".

pandas truncates wide or long frames in a notebook ("..."), prints NaN as "nan" and shows 17
digits. :class:`Table` renders every row and column of a frame of already formatted strings,
inside a box that scrolls sideways when the table is wider than the page (CSS class
``cellrepro-table`` in ``book/_static/cellrepro.css``). The helpers here format the cells.

>>> fmt_number(0.12345, 3, signed=True)
'+0.123'
>>> fmt_number(float("nan"), 3)
'—'
>>> fmt_interval(0.01, 0.03, n=3, digits=3)
'[+0.010, +0.030]'
>>> fmt_interval(float("nan"), float("nan"), n=1, digits=3, over="seeds")
'no interval: n = 1 < 2 seeds'
>>> paper_decimals([0.62, 0.628, 0.5])
3
"""

from __future__ import annotations

import html
import math
from typing import Any, Iterable, Mapping

import pandas as pd

MISSING = "—"  # what an empty cell shows (never "nan")
NOT_AVAILABLE = "n/a"  # what a missing number glued into prose shows (never "nan" or "+nan")


def _is_missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def fmt_number(value: Any, digits: int = 3, signed: bool = False) -> str:
    """A number with ``digits`` decimals (``+`` for positives if ``signed``); missing: an em dash."""
    if _is_missing(value):
        return MISSING
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return f"{value:+.{digits}f}" if signed else f"{value:.{digits}f}"
    return str(value)


def fmt_interval(low: Any, high: Any, n: Any = None, digits: int = 3, over: str = "seeds") -> str:
    """A 95% interval ``[low, high]``, or why there is none (never "nan").

    An interval needs at least two independent units (seeds, images); with fewer the text says
    so, and an interval that is missing for another reason says "not computed".
    """
    if _is_missing(low) or _is_missing(high):
        if n is not None and not _is_missing(n) and int(n) < 2:
            return f"no interval: n = {int(n)} < 2 {over}"
        return "no interval: not computed"
    return f"[{low:+.{digits}f}, {high:+.{digits}f}]"


def fmt_effect(effect: Mapping[str, Any], digits: int = 3, over: str = "seeds") -> str:
    """A paired effect (``mean``, ``low``, ``high``, ``n``, as from ``report.paired_effect``) as text.

    >>> fmt_effect({"mean": 0.0123, "low": 0.001, "high": 0.02, "n": 3})
    '+0.012 [+0.001, +0.020]'
    >>> fmt_effect({"mean": 0.0123, "low": float("nan"), "high": float("nan"), "n": 1})
    '+0.012 (no interval: n = 1 < 2 seeds)'
    """
    interval = fmt_interval(effect.get("low"), effect.get("high"), effect.get("n"), digits, over)
    if interval.startswith("no interval"):
        interval = f"({interval})"
    return f"{fmt_number(effect.get('mean'), digits, signed=True)} {interval}"


def paper_decimals(values: Iterable[Any], default: int = 3, most: int = 4) -> int:
    """Decimals the paper prints, guessed from its values: the most any of them needs (capped).

    Trailing zeros are lost in floats (0.620 reads as 0.62), so the largest count over a
    table is used, which is the paper's precision whenever one value has no trailing zero.
    """
    best = -1
    for v in values:
        if _is_missing(v) or not isinstance(v, (int, float)):
            continue
        for d in range(most + 1):
            if abs(round(v, d) - v) < 1e-9:
                break
        best = max(best, d)
    return default if best < 0 else best


class Table:
    """A table shown whole in a notebook and in the book: HTML in a scrolling box, full text.

    Args:
        frame: the cells, ideally already formatted as strings (see :func:`fmt_number`);
            missing cells show as an em dash.
        caption: shown above the table.
        kind: an extra CSS class ``cellrepro-<kind>`` (``verdicts``, ``compare``) so styles
            and the book's tests can find the table.
        index: show the frame's index as the first column(s).
    """

    def __init__(self, frame: pd.DataFrame, caption: str | None = None, kind: str = "table", index: bool = False):
        self.frame = frame
        self.caption = caption
        self.kind = kind
        self.index = index

    def to_html(self) -> str:
        frame = self.frame.astype(object).where(self.frame.notna(), MISSING)
        table = frame.to_html(index=self.index, escape=True, border=0, na_rep=MISSING,
                              classes=["cellrepro-data", f"cellrepro-{self.kind}"])
        cap = f'<p class="cellrepro-caption">{html.escape(self.caption)}</p>' if self.caption else ""
        return f'<div class="cellrepro-table cellrepro-{self.kind}-box">{cap}{table}</div>'

    def _repr_html_(self) -> str:
        return self.to_html()

    def show(self) -> "Table":
        """Display the table now when running in a notebook kernel (once; later displays of the
        same object, e.g. as the cell's last expression, add nothing), and return it.

        The report helpers call this, so a table built inside an ``if`` or a loop, or not on a
        cell's last line, reaches the page instead of being computed and silently dropped.
        """
        try:
            from IPython import get_ipython
        except ImportError:
            return self
        shell = get_ipython()
        if shell is not None and getattr(shell, "kernel", None) is not None:
            self._ipython_display_()
        return self

    def _ipython_display_(self) -> None:
        if getattr(self, "_shown", False):
            return
        from IPython.display import display

        display({"text/html": self.to_html(), "text/plain": self.to_string()}, raw=True)
        self._shown = True

    def to_string(self) -> str:
        frame = self.frame.astype(object).where(self.frame.notna(), MISSING)
        with pd.option_context("display.max_rows", None, "display.max_columns", None, "display.width", 10_000,
                               "display.max_colwidth", None):
            text = frame.to_string(index=self.index)
        return (self.caption + "\n" + text) if self.caption else text

    def __repr__(self) -> str:
        return self.to_string()


def fmt_glue_text(text: str, fmt_spec: str = "") -> str:
    """A glued value as ``{glue:text}`name:spec``` pastes it, with a missing number as "n/a".

    MyST-NB formats the glued ``text/plain`` with Python's ``format``, so a NaN (an interval of
    one seed, as a smoke run has) reads "nan" or "+nan" in a sentence. This is MyST-NB's own
    formatting (``myst_nb.core.variables.format_plain_text``) except that NaN, None and +-inf
    read :data:`NOT_AVAILABLE`; :func:`install_glue_text` makes the book build use it.

    >>> fmt_glue_text("nan", "+.3f"), fmt_glue_text("None", ".2f"), fmt_glue_text("0.01234", "+.3f")
    ('n/a', 'n/a', '+0.012')
    >>> fmt_glue_text("'a word'", "s"), fmt_glue_text("3", "")
    ('a word', '3')
    """
    from myst_nb.core.variables import format_plain_text

    original = getattr(format_plain_text, "__wrapped__", format_plain_text)
    if text.strip() in ("nan", "-nan", "NaN", "None", "inf", "-inf", "<NA>", "NaT"):
        return NOT_AVAILABLE
    return original(text, fmt_spec)


def install_glue_text() -> None:
    """Make MyST-NB's ``{glue:text}`` role (and its cross-page form) paste :func:`fmt_glue_text`.

    Call once from a Sphinx extension's ``setup``; calling it again changes nothing. Outside a
    book build nothing uses the role, so nothing else is affected.
    """
    import functools

    from myst_nb.core import variables
    from myst_nb.ext.glue import crossref, roles

    if getattr(variables.format_plain_text, "__wrapped__", None) is not None:
        return

    @functools.wraps(variables.format_plain_text)
    def format_plain_text(text: str, fmt_spec: str) -> str:
        return fmt_glue_text(text, fmt_spec)

    for module in (variables, roles, crossref):
        module.format_plain_text = format_plain_text
