"""One decision rule for every claim: paired differences and gates in, one of five verdicts out.

The claims register's protocol (section 1), in code. A claim's registration
(:func:`cellrepro.publish.claims.registration`) fixes the test type, the paper's effect and the
margin before a run; :func:`decide` turns the run's per-unit paired differences (treatment arm
minus reference arm, one number per seed after averaging the test images within the seed) and the
outcome of the registered gates into exactly one of :data:`CLASSES`:

``holds``
    the 95 % interval clears 0 (or the margin) on the paper's side;
``fails``
    the interval lies wholly on the other side;
``smaller than the paper's``
    inconclusive about the sign, but the interval excludes the paper's effect (a holding effect
    that is significantly smaller than the paper's keeps ``holds`` and sets ``smaller_than_paper``);
``underpowered``
    the interval holds both the null value and the paper's effect: the decision carries the
    minimal detectable effect at 80 % power (``mde``), the units that would detect the paper's
    effect or the margin (``n_needed``) and, given the seconds one unit costs, the time that takes;
``not testable here``
    a registered gate failed (the treatment did not engage, the phenomenon is absent from the
    stand-in, the reference arm sits on the floor or the ceiling): no effect is judged, and
    ``failed_gates`` names the gates with their values.

Intervals are Student-t intervals (:func:`scipy.stats.t.interval`); null claims use two one-sided
tests against the margin (:func:`statsmodels.stats.weightstats.ttost_paired`, which is the
``1 - 2 alpha`` interval lying inside ``(-margin, +margin)``); one-sided claims ("no significant
improvement") a one-sided t-test against ``+margin``. The bars differ, as is standard: a
superiority verdict needs one side of a 95 % interval (2.5 % one-sided), a null claim's "holds"
one-sided tests at 5 %. Power (the MDE and the units needed) is that of the t-test each test type
uses, from the noncentral t (:func:`.power.t_power`; statsmodels' ``TTestPower`` fails at df 1-2 there).
A per-image bootstrap interval (:func:`scipy.stats.bootstrap`) is computed beside the seed interval
when per-image differences are given; it is shown, never used to decide (images within a seed are
not independent replicates of the training).

>>> d = decide([0.02, 0.03, 0.025], test="superiority", paper_effect=0.01)
>>> d.verdict, round(d.low, 4), round(d.high, 4), d.n
('holds', 0.0126, 0.0374, 3)
>>> decide([0.02, -0.01, 0.01], test="superiority", paper_effect=0.01).verdict
'underpowered'
>>> decide([0.02, 0.03, 0.025], test="superiority", gates=[("treatment engaged", False)]).verdict
'not testable here'
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any, Iterable, Mapping, Sequence

import numpy as np

from .. import CellreproError
from .power import mde_and_n

TESTS = ("superiority", "non-inferiority", "equivalence", "non-superiority", "sweep", "descriptive")
"""Test types a registration may name (``descriptive``: a number shown, never decided)."""
CLASSES = ("holds", "fails", "smaller than the paper's", "underpowered", "not testable here")
"""The five verdict classes, in the order the book counts them."""
MARGIN_TESTS = ("non-inferiority", "equivalence", "non-superiority")


@dataclass(frozen=True)
class Gate:
    """One registered check that must pass before a claim is judged.

    ``value`` is what the run measured (a number or short text), ``rule`` the registered
    threshold in words, ``passed`` whether the value met it. Build one with :func:`gate`.
    """

    name: str
    passed: bool
    value: float | int | str | None = None
    rule: str = ""

    def as_dict(self) -> dict[str, Any]:
        value = self.value.item() if hasattr(self.value, "item") else self.value
        return {"name": self.name, "passed": bool(self.passed), "value": value, "rule": self.rule}


def gate(name: str, value: float | None, *, at_least: float | None = None, at_most: float | None = None,
         within: tuple[float, float] | None = None) -> Gate:
    """A :class:`Gate` that passes when ``value`` meets the registered threshold.

    A missing, NaN or non-numeric value never passes (a gate that could not be measured did not
    pass). Bounds are inclusive; a strict registered rule ("> 0") takes the next representable
    number (``math.nextafter(0, 1)``).

    >>> gate("pseudo-labels kept", 0, at_least=1).passed
    False
    >>> g = gate("reference F1", 0.97, within=(0.2, 0.95)); g.passed, g.rule
    (False, 'within [0.2, 0.95]')
    """
    bounds = [b for b in (at_least, at_most, within) if b is not None]
    if len(bounds) != 1:
        raise CellreproError(f"gate {name!r}: give exactly one of at_least, at_most, within")
    if within is not None:
        lo, hi = within
        rule = f"within [{lo:g}, {hi:g}]"
    elif at_least is not None:
        lo, hi, rule = at_least, math.inf, ("> 0" if 0 < at_least < 1e-300 else f">= {at_least:g}")
    else:
        lo, hi, rule = -math.inf, at_most, f"<= {at_most:g}"
    number = isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)
    ok = number and math.isfinite(float(value)) and lo <= float(value) <= hi
    return Gate(name=name, passed=bool(ok), value=value, rule=rule)


def as_gates(gates: Iterable[Any]) -> list[Gate]:
    """Gates given as :class:`Gate` s, dicts, ``(name, passed)`` pairs or objects with ``name`` and ``passed``."""
    out = []
    for g in gates:
        if isinstance(g, Gate):
            out.append(g)
        elif isinstance(g, Mapping):
            out.append(Gate(name=str(g["name"]), passed=bool(g["passed"]), value=g.get("value"), rule=g.get("rule", "")))
        elif hasattr(g, "name") and hasattr(g, "passed"):
            out.append(Gate(name=str(g.name), passed=bool(g.passed), value=getattr(g, "value", None),
                            rule=getattr(g, "rule", "")))
        else:
            name, passed = g
            out.append(Gate(name=str(name), passed=bool(passed)))
    return out


@dataclass
class Decision:
    """What :func:`decide` returns; reads like a mapping too (``d["verdict"]``)."""

    verdict: str
    test: str
    mean: float
    low: float | None
    high: float | None
    n: int
    sd: float | None
    mde: float | None
    n_needed: int | None
    paper_effect: float | None = None
    margin: float | None = None
    alpha: float = 0.05
    side: int = 1
    smaller_than_paper: bool = False
    p_value: float | None = None
    gates: list[dict[str, Any]] = field(default_factory=list)
    failed_gates: list[dict[str, Any]] = field(default_factory=list)
    bootstrap_low: float | None = None
    bootstrap_high: float | None = None
    bootstrap_images: int | None = None
    seconds_needed: float | None = None

    def __getitem__(self, key: str) -> Any:
        return getattr(self, key)

    def keys(self) -> list[str]:
        return list(asdict(self))

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _finite(x: float | None) -> float | None:
    return None if x is None or not math.isfinite(x) else float(x)


def _interval(mean: float, sd: float, n: int, confidence: float) -> tuple[float, float]:
    """Two-sided Student-t interval of a mean; a zero SD gives the point itself."""
    from scipy import stats

    if n < 2:
        return math.nan, math.nan
    if sd == 0:
        return mean, mean
    low, high = stats.t.interval(confidence, df=n - 1, loc=mean, scale=sd / math.sqrt(n))
    return float(low), float(high)


def classify(mean: float, sd: float, n: int, *, test: str, paper_effect: float | None = None,
             margin: float | None = None, alpha: float = 0.05, direction: int | None = None,
             p_tost: float | None = None, planning_effect: float | None = None) -> dict[str, Any]:
    """The verdict class that a mean paired difference, its SD and its n imply (no gates).

    This is :func:`decide` on summary statistics; the book uses it to show what a verdict of the
    old protocol implies (its stored mean, interval and n give the SD). For ``equivalence`` the two
    one-sided tests are the ``1 - 2 alpha`` interval lying inside ``(-margin, +margin)``.

    >>> classify(0.01, 0.004, 3, test="superiority", paper_effect=0.05)["verdict"]  # holds, but smaller
    'holds'
    >>> classify(0.0, 0.002, 4, test="equivalence", margin=0.01)["verdict"]
    'holds'
    """
    if test not in TESTS:
        raise CellreproError(f"test must be one of {', '.join(TESTS)}; got {test!r}")
    if test == "descriptive":
        raise CellreproError("a descriptive registration is shown, not decided: record it without decide()")
    if test in MARGIN_TESTS and (margin is None or not margin > 0):
        raise CellreproError(f"a {test} test needs a positive margin (in the metric's unit); got {margin!r}")
    if direction is not None:
        side = 1 if direction >= 0 else -1
    elif test == "superiority" and paper_effect is not None and paper_effect < 0:
        side = -1  # the paper claims a decrease
    else:
        side = 1  # the difference as given, treatment - reference: better is larger (a margin test's
        # paper effect is a small number whose sign is noise, never the claim's direction)
    low, high = _interval(mean, sd, n, 1 - alpha)
    # everything below on the paper's side: positive = the direction the paper claims
    lo, hi = (low, high) if side > 0 else (-high, -low)
    effect = None if paper_effect is None else side * paper_effect
    p_value = None
    verdict = None
    if n < 2:
        verdict = "underpowered"
    elif test == "superiority":
        verdict = "holds" if lo > 0 else "fails" if hi < 0 else None
    elif test == "non-inferiority":
        verdict = "holds" if lo > -margin else "fails" if hi < -margin else None
    elif test == "equivalence":
        lo2, hi2 = _interval(mean, sd, n, 1 - 2 * alpha)
        inside = -margin < lo2 and hi2 < margin
        p_value = p_tost
        verdict = "holds" if inside else "fails" if (lo > margin or hi < -margin) else None
    elif test == "non-superiority":
        from scipy import stats

        if sd > 0:
            p_value = float(stats.t.sf((margin - mean) / (sd / math.sqrt(n)), df=n - 1))
            below = p_value < alpha
        else:
            below = mean < margin
        verdict = "holds" if below else "fails" if lo > margin else None
    elif test == "sweep":  # one-SE rule: the paper's setting within one SE of our best ...
        se = sd / math.sqrt(n)
        within = mean >= -se and (margin is None or lo > -margin)  # ... and, with a margin, not worse by it
        verdict = "holds" if within else "fails" if hi < 0 else None
    smaller = False
    if effect is not None and n >= 2 and test in ("superiority", "non-inferiority"):
        smaller = hi < effect
        if verdict is None and not lo <= effect <= hi:
            verdict = "smaller than the paper's"
    if verdict is None:
        verdict = "underpowered"
    target = (paper_effect if paper_effect is not None else planning_effect) if test == "superiority" \
        else (margin if margin is not None else planning_effect)
    mde, needed = mde_and_n(n, sd, target, test, alpha)
    return {"verdict": verdict, "test": test, "mean": float(mean), "low": _finite(low), "high": _finite(high),
            "n": int(n), "sd": _finite(sd) if n >= 2 else None, "mde": mde, "n_needed": needed,
            "paper_effect": paper_effect, "margin": margin, "alpha": alpha, "side": side,
            "smaller_than_paper": bool(smaller and verdict == "holds"), "p_value": _finite(p_value)}


def _bootstrap(images: Any, alpha: float) -> tuple[float | None, float | None, int | None]:
    """Percentile bootstrap interval of the mean per-image difference (all seeds pooled; fixed stream)."""
    from scipy import stats

    if images is None:
        return None, None, None
    flat = np.concatenate([np.ravel(np.asarray(x, dtype=float)) for x in images]) if isinstance(images, (list, tuple)) \
        else np.ravel(np.asarray(images, dtype=float))
    flat = flat[np.isfinite(flat)]
    if flat.size < 2:
        return None, None, int(flat.size)
    if np.ptp(flat) == 0:
        return float(flat[0]), float(flat[0]), int(flat.size)
    res = stats.bootstrap((flat,), np.mean, confidence_level=1 - alpha, n_resamples=2000, method="percentile",
                          rng=np.random.default_rng(0))
    return float(res.confidence_interval.low), float(res.confidence_interval.high), int(flat.size)


def decide(paired: Sequence[float] | np.ndarray, *, test: str, paper_effect: float | None = None,
           margin: float | None = None, gates: Iterable[Any] = (), alpha: float = 0.05,
           direction: int | None = None, images: Any = None, seconds_per_unit: float | None = None,
           planning_effect: float | None = None) -> Decision:
    """The verdict on one claim, by its registered test, from per-unit paired differences.

    Args:
        paired: one difference per unit (treatment arm minus reference arm; a unit is a seed, a
            data seed or a stack, as registered), images already averaged within the unit.
        test: the registration's test type (:data:`TESTS`, not ``descriptive``).
        paper_effect: the paper's effect in the same unit and sign convention; its sign sets the
            paper's side for superiority and non-inferiority (``direction`` overrides it).
        margin: for ``non-inferiority`` (how much worse still counts as not worse),
            ``equivalence`` (``±margin``) and ``non-superiority`` (an improvement below
            ``+margin`` is "no significant improvement"); in the metric's unit.
        gates: ``(name, passed)`` pairs, :class:`Gate` s (:func:`gate`), dicts or objects with
            ``name`` and ``passed``. Any failed gate makes the verdict ``not testable here``.
        alpha: two-sided level of the interval (one-sided level of each TOST test).
        direction: +1 or -1, the paper's side when it gives no effect.
        images: optional per-image paired differences (a flat array, or one array per unit)
            for the bootstrap interval shown beside the seed interval; never used to decide.
        seconds_per_unit: what one more unit costs (the record's wall time per seed); gives
            ``seconds_needed`` for ``n_needed`` units.
        planning_effect: the smallest effect of interest, for ``n_needed`` where the paper gives no
            effect (superiority) or the test has no margin (a sweep); never used to decide.

    Returns:
        A :class:`Decision`: ``verdict`` (one of :data:`CLASSES`), ``mean``, ``low``, ``high``
        (the 95 % interval), ``n``, ``sd``, ``mde`` (minimal detectable effect at 80 % power),
        ``n_needed`` (units to detect the paper's effect or the margin at the measured SD), the
        gates, the bootstrap interval and ``seconds_needed``.

    Raises:
        CellreproError: an unknown or descriptive test, a margin test without a positive margin,
            no finite difference.

    Example (one-sided null claim "no significant improvement", margin 0.01):

    >>> decide([0.001, -0.002, 0.0, 0.002], test="non-superiority", margin=0.01).verdict
    'holds'
    >>> decide([0.05, 0.06, 0.055], test="non-superiority", margin=0.01).verdict
    'fails'
    """
    x = np.asarray(paired, dtype=float).ravel()
    if x.size == 0 or not np.all(np.isfinite(x)):
        raise CellreproError(f"paired differences must be finite numbers, one per unit; got {list(x)}")
    n = int(x.size)
    mean = float(x.mean())
    sd = float(x.std(ddof=1)) if n > 1 else 0.0
    p_tost = None
    if test == "equivalence" and n > 1 and sd > 0 and margin:
        from statsmodels.stats.weightstats import ttost_paired

        p_tost = float(ttost_paired(x, np.zeros_like(x), -margin, margin)[0])
    out = classify(mean, sd, n, test=test, paper_effect=paper_effect, margin=margin, alpha=alpha,
                   direction=direction, p_tost=p_tost, planning_effect=planning_effect)
    checked = as_gates(gates)
    failed = [g.as_dict() for g in checked if not g.passed]
    if failed:
        out["verdict"] = "not testable here"
        out["smaller_than_paper"] = False
    b_low, b_high, b_n = _bootstrap(images, alpha)
    seconds = None
    if seconds_per_unit is not None and out["n_needed"] is not None:
        seconds = float(seconds_per_unit) * out["n_needed"]
    return Decision(**out, gates=[g.as_dict() for g in checked], failed_gates=failed, bootstrap_low=b_low,
                    bootstrap_high=b_high, bootstrap_images=b_n, seconds_needed=seconds)


