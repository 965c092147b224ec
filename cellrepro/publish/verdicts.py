"""Verdicts on the claims register's claims: decided by one rule, recorded per run, shown per notebook.

:func:`judge` is how a notebook judges a claim: it reads the claim's registration
(:func:`cellrepro.publish.claims.registration`: test type, the paper's effect, the margin),
decides with :func:`cellrepro.publish.decision.decide` on the per-seed paired differences and the
registered gates, and records the decision with the registration's hash, so a verdict whose
registration changed after its run shows as stale. :func:`record_verdict` (the old protocol: the
notebook passes a verdict word it decided itself) stays for the sections not yet republished.
Both store one claim's verdict in the run record (metric key ``verdict/<claim>``);
:func:`verdict_table` shows a notebook's verdicts whole. Both are
re-exported by :mod:`cellrepro.publish.report`, which is how notebooks call them. The book's claims
page reads the same entries back from the records (:mod:`cellrepro.publish.claims`).
"""

from __future__ import annotations

import math
import os
import re
from typing import Any, Mapping

import pandas as pd

from .. import CellreproError
from .decision import CLASSES, Decision, Gate, as_gates, classify, decide, gate  # noqa: F401 - re-exported: cellrepro.verdicts.decide
from .record import PROTOCOL, _plain, log_metrics

PROFILE_ENV = "CELLREPRO_PROFILE"  # set by the runner to the profile a notebook executes in
OLD_VERDICTS = ("holds", "fails", "inconclusive", "shape holds, optimum shifted")
VERDICTS = tuple(dict.fromkeys((*OLD_VERDICTS, *CLASSES)))
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
                   over: str = "seeds", digits: int = 3, note: str = "",
                   extra: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Record this run's verdict on one claim of the claims register, for the book's claims page.

    Call it once per claim the notebook judges (a later call for the same claim replaces the
    earlier one), then show them all with :func:`verdict_table`. The verdict is stored in the
    run record under the metric key ``verdict/<claim>`` through
    :func:`cellrepro.publish.record.log_metrics`; the book's "Claims and verdicts" page and each
    chapter's status line are generated from those records. It is also glued (not shown) as
    ``verdict-<claim>`` for the narrative: ``{glue:text}`verdict-organoid-C3```.

    In the ``smoke`` profile (``$CELLREPRO_PROFILE`` set by the runner) the entry is still
    recorded, marked ``profile: smoke``, but every display says "not judged in the smoke
    profile" and the claims page ignores it: smoke numbers only prove that the code runs.

    Args:
        claim: a claim id of the register, e.g. ``"organoid-C3"`` (see :func:`cellrepro.publish.claims.claims`).
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
        extra: more fields to store with the entry (:func:`judge` stores the decision's here).

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
             "paper_effect": _number(paper_effect), "digits": int(digits), "note": note, "profile": profile,
             **{k: _plain(v) for k, v in (extra or {}).items()}}
    log_metrics(**{VERDICT_KEY + claim: entry})
    shown = NOT_JUDGED if profile == "smoke" else verdict
    _SESSION[claim] = entry
    try:
        from myst_nb import glue as _glue

        _glue(f"verdict-{claim}", shown, display=False)
    except ImportError:  # outside a notebook toolchain: nothing to glue into
        pass
    return {**entry, "shown": shown}


def _rule_text(reg: Mapping[str, Any]) -> str:
    test, margin = reg["test"], reg.get("margin")
    return {"superiority": "superiority: 95% CI clears 0 on the paper's side",
            "non-inferiority": f"non-inferiority: 95% CI above -{margin}",
            "equivalence": f"equivalence: two one-sided tests within ±{margin}",
            "non-superiority": f"no significant improvement: one-sided upper bound below +{margin}",
            "sweep": "sweep: the paper's setting within one SE of the best"}.get(test, test)


def judge(claim: str, paired: Any, *, gates: Any = (), images: Any = None, seconds_per_unit: float | None = None,
          metric: str | None = None, digits: int = 3, note: str = "") -> dict[str, Any]:
    """Decide ``claim`` by its registration and record the decision in the run record.

    The test type, the paper's effect and the margin come from the claim's registration
    (``registrations.yml``), never from the notebook; the notebook supplies the measurements:
    the per-unit paired differences, the gates' outcomes, optionally per-image differences for
    the bootstrap shown beside the interval and the seconds one more unit costs.

    Args:
        claim: a claim id, e.g. ``"organoid-C6"``.
        paired: one difference per unit (treatment - reference), as :func:`decide` takes it.
        gates: the registered gates' outcomes (:func:`gate`, ``(name, passed)`` pairs, ...). A gate
            the registration names but the notebook does not supply counts as failed ("not measured").
        images, seconds_per_unit: see :func:`cellrepro.publish.decision.decide`.
        metric: what the difference measures; default: the registration's ``metric``.
        digits: decimals to show.
        note: anything a reader needs to weigh the verdict.

    Returns:
        The stored entry (see :func:`record_verdict`) with the decision's fields (``test``, ``sd``,
        ``mde``, ``n_needed``, ``seconds_needed``, ``gates``, ``failed_gates``, ``bootstrap_low``,
        ``bootstrap_high``, ``smaller_than_paper``) and ``registration``: the registration's hash.

    Raises:
        CellreproError: an unknown claim, a registration that is ``descriptive`` or ``untestable``.
    """
    from .claims import registration, registration_hash

    reg = registration(claim)
    if reg["test"] in ("descriptive", "untestable"):
        raise CellreproError(f"{claim} is registered as {reg['test']}: it is shown, not judged")
    given = as_gates(gates)
    names = {g.name for g in given}
    missing = [Gate(name=g["name"], passed=False, value="not measured", rule=str(g.get("rule", "")))
               for g in reg.get("gates") or [] if g["name"] not in names]
    decision = decide(paired, test=reg["test"], paper_effect=reg.get("paper_effect"), margin=reg.get("margin"),
                      gates=[*given, *missing], images=images, seconds_per_unit=seconds_per_unit,
                      planning_effect=reg.get("planning_effect"))
    entry = record_verdict(claim, decision.as_dict(), decision.verdict, metric=metric or reg.get("metric", ""),
                           threshold=_rule_text(reg), paper_effect=reg.get("paper_effect"),
                           over=reg.get("unit", "seeds"), digits=digits, note=note,
                           extra={k: v for k, v in decision.as_dict().items()
                                  if k not in ("verdict", "mean", "low", "high", "n", "paper_effect")}
                           | {"registration": registration_hash(claim), "protocol": PROTOCOL})
    return entry


def record_gate(claim: str, g: Gate) -> Gate:
    """Record one gate's outcome in the run record (``gate/<claim>/<name>``) and return it, so a
    notebook can show and log a gate before :func:`judge` uses it."""
    log_metrics(**{f"gate/{claim}/{g.name}": g.as_dict()})
    return g


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


_NAN_INTERVAL = re.compile(r"\[\s*[+-]?nan,\s*[+-]?nan\s*\]")
_NAN = re.compile(r"(?<![A-Za-z])[+-]?nan(?![A-Za-z])")


def clean_note(note: str) -> str:
    """A verdict's note with every NaN said in words: notebooks format their own intervals into
    notes, and with fewer than two seeds (the smoke profile, or ``-p seeds "[0]"``) those are NaN.

    >>> clean_note("a: +0.010 [+nan, +nan]; b: nan")
    'a: +0.010 (no interval: fewer than 2 seeds); b: —'
    >>> clean_note("financial")
    'financial'
    """
    return _NAN.sub("—", _NAN_INTERVAL.sub("(no interval: fewer than 2 seeds)", note))


def _gate_value(value: Any) -> str:
    """A gate's measured value for a reader: numbers to 3 significant digits.

    >>> _gate_value(-0.0005948479394988215), _gate_value(200), _gate_value("not measured")
    ('-0.000595', '200', 'not measured')
    >>> _gate_value(float("nan")), _gate_value(None)   # never "nan" on a page (one seed: no interval)
    ('not computed', 'not measured')
    """
    if value is None:
        return "not measured"
    if isinstance(value, float) and math.isnan(value):
        return "not computed"
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return str(value)
    return f"{value:.3g}" if isinstance(value, float) else str(value)


def _gate_rule(rule: Any) -> str:
    """A gate's rule for a reader: a strict "> 0" stored as ">= <smallest float>" reads "> 0".

    >>> _gate_rule(">= 4.94066e-324"), _gate_rule("within [0.2, 0.95]"), _gate_rule(None)
    ('> 0', 'within [0.2, 0.95]', 'rule')
    """
    if not rule:
        return "rule"
    text = str(rule)
    if text.startswith(">= "):
        try:
            if 0 < float(text[3:]) < 1e-300:
                return "> 0"
        except ValueError:
            pass
    return text


def gates_text(entry: Mapping[str, Any]) -> str:
    """A verdict entry's gates for a reader: "all N passed", "none registered", or each failed
    gate with its value and rule (what made the verdict "not testable here").

    >>> gates_text({"gates": [{"name": "floor"}], "failed_gates": [{"name": "floor", "value": 0.12, "rule": "within [0.3, 0.9]"}]})
    'failed: floor = 0.12 (within [0.3, 0.9])'
    """
    gates = entry.get("gates")
    if not gates:
        return "none registered"
    failed = entry.get("failed_gates") or []
    if failed:
        return "failed: " + "; ".join(f"{g['name']} = {_gate_value(g.get('value'))} ({_gate_rule(g.get('rule'))})"
                                      for g in failed)
    return f"all {len(gates)} passed"


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
        threshold = e.get("threshold")
        rule = f"threshold {fmt_number(threshold, int(e.get('digits') or 3))}" if isinstance(threshold, (int, float)) \
            else (threshold or "")
        over = f" over {n} {e.get('over') or 'seeds'}" if n and not interval.startswith("no") else ""
        rows.append({
            "claim": f"{e['claim']}: {find_claim(e['claim'])['claim']}",
            "measured (verdict rule)": (e.get("metric") or "—") + (f" ({rule})" if rule else ""),
            "paper": paper_text,
            "this run [95% interval]": f"{effect} {interval}{over}",
            "verdict": NOT_JUDGED if smoke or e.get("profile") == "smoke" else e["verdict"],
            "gates": gates_text(e),
            "note": clean_note(e.get("note") or ""),
        })
    return pd.DataFrame(rows, columns=["claim", "measured (verdict rule)", "paper", "this run [95% interval]", "verdict",
                                       "gates", "note"])


def verdict_table(claims: list[str] | None = None, caption: str | None = None) -> Any:
    """All verdicts this notebook recorded with :func:`record_verdict` (or the listed claims), whole.

    Make it the last expression of a cell. Every row shows the claim, the metric, the paper's
    effect, this run's effect with its 95% interval (or why there is none), the rule, the verdict
    and its gates (each failed one with its value and rule); in the smoke profile the verdict column reads "not judged in the smoke profile".

    Returns:
        A :class:`cellrepro.publish.tables.Table` (HTML with CSS class ``cellrepro-verdicts``).
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
    return Table(frame, caption=caption, kind="verdicts").show()
