"""Power of the paired t-tests behind the verdicts: what a run could detect, and how many units it takes.

Each test type of :mod:`.decision` is planned for the t-test it decides with (:func:`design`): the
minimal detectable effect at 80 % power and the units needed to detect the paper's effect, the margin
or a planning effect (:func:`mde_and_n`, on the noncentral t), the units a registration plans
(:func:`planned_n`, the issue's normal-approximation formula with the t quantile), and the SD a stored
interval implies (:func:`implied_sd`, for verdicts of the old protocol).
"""

from __future__ import annotations

import math

from .. import CellreproError

POWER = 0.8


def design(test: str, alpha: float) -> tuple[float, float, bool]:
    """``(level, power, two_sided)`` of the t-test a test type's power is planned for.

    Superiority, sweeps and non-inferiority: a two-sided test at ``alpha`` (the 95 % interval
    clearing a value), 80 % power. Non-superiority: one one-sided test at ``alpha``, 80 %.
    Equivalence: each of the two one-sided tests at ``alpha`` with 90 % power, so that both reject
    with probability at least 0.8 when the true difference is 0 (a Bonferroni bound on TOST's power;
    conservative by about one unit at n ~ 14).
    """
    if test == "equivalence":
        return alpha, 0.9, False
    if test == "non-superiority":
        return alpha, POWER, False
    return alpha, POWER, True


def t_power(d: float, n: int, *, alpha: float = 0.05, two_sided: bool = True) -> float:
    """Power of the one-sample (paired) t-test at standardised effect ``d`` with ``n`` units.

    From the noncentral t distribution (:data:`scipy.stats.nct`). statsmodels' ``TTestPower``
    computes the same quantity but returns NaN, and its solver 2 or NaN, for effects of 5-12 SD at
    n = 2-3 (df 1-2), exactly where a well-separated effect lands; hence scipy here.

    >>> round(t_power(1.0, 10), 3)  # statsmodels' TTestPower gives 0.803 too
    0.803
    """
    from scipy import stats

    if n < 2:
        return math.nan
    df, nc = n - 1, d * math.sqrt(n)
    crit = float(stats.t.ppf(1 - alpha / 2 if two_sided else 1 - alpha, df))
    upper = float(stats.nct.sf(crit, df, nc))
    lower = float(stats.nct.cdf(-crit, df, nc)) if two_sided else 0.0
    # scipy's nct returns NaN far in a tail: there the upper term is 1 (nc far above crit) and the
    # lower one (rejecting on the wrong side) 0
    upper = upper if math.isfinite(upper) else (1.0 if nc > crit else 0.0)
    lower = lower if math.isfinite(lower) else 0.0
    return min(upper + lower, 1.0)


def mde_and_n(n: int, sd: float, target: float | None, test: str, alpha: float,
           n_max: int = 100_000) -> tuple[float | None, int | None]:
    """``(mde, n_needed)``: the effect detectable with 80 % power at this n and SD, and the least n
    that detects ``target`` (the paper's effect, the margin or a planning effect) at this SD."""
    from scipy import optimize

    level, power, two_sided = design(test, alpha)
    mde = None
    if n >= 2 and sd > 0:
        d = optimize.brentq(lambda d: t_power(d, n, alpha=level, two_sided=two_sided) - power, 1e-9, 100.0)
        mde = d * sd
    elif n >= 2:
        mde = 0.0
    needed = None
    if target and sd > 0 and n >= 2:
        d = abs(target) / sd

        def enough(m: int) -> bool:
            return t_power(d, m, alpha=level, two_sided=two_sided) >= power

        hi = 2
        while not enough(hi) and hi < n_max:  # power grows with n: double, then bisect
            hi *= 2
        if enough(hi):
            lo = hi // 2 if hi > 2 else 1
            while hi - lo > 1:
                mid = (lo + hi) // 2
                lo, hi = (lo, mid) if enough(mid) else (mid, hi)
            needed = hi
    return (mde if mde is None or math.isfinite(mde) else None), needed


def implied_sd(low: float, high: float, n: int, alpha: float = 0.05) -> float:
    """The SD of the paired differences that a stored ``1 - alpha`` t-interval over ``n`` units implies.

    >>> round(implied_sd(-0.01, 0.03, 3), 5)  # half-width 0.02 = t(0.975, 2) * SD / sqrt(3)
    0.00805
    """
    from scipy import stats

    return (high - low) / 2 * math.sqrt(n) / float(stats.t.ppf(1 - alpha / 2, n - 1))


def planned_n(sd: float, effect: float, cap: int | None = None, *, test: str = "superiority",
              alpha: float = 0.05) -> int:
    """The units a registration plans: ``n = ((t(q, n - 1) + z(power)) * sd / effect)^2``, at least 3.

    ``q`` and the power follow the test (:func:`design`): a two-sided test at ``alpha``
    (``q = 1 - alpha/2``, 80 %) for superiority, non-inferiority and sweeps; one-sided
    (``q = 1 - alpha``) for non-superiority (80 %) and for each of equivalence's two tests (90 %).
    Iterated from n = 3 until it repeats (a two-value cycle takes the larger n), then capped by
    ``cap`` (what the budget affords). This is the issue's normal-approximation formula with the t
    quantile for small n; :func:`.decision.decide`'s ``n_needed`` solves the noncentral t exactly.

    >>> planned_n(0.00942, 0.008)  # organoid-C6: 3 -> 37 -> 12 -> 13
    13
    >>> planned_n(0.00942, 0.008, cap=6)
    6
    """
    from scipy import stats

    if not (sd > 0 and effect):
        raise CellreproError(f"planned_n needs a positive SD and a non-zero effect; got sd={sd!r}, effect={effect!r}")
    level, power, two_sided = design(test, alpha)
    q = 1 - level / 2 if two_sided else 1 - level
    z = float(stats.norm.ppf(power))
    n, seen = 3, [3]
    while True:
        new = max(3, math.ceil(((float(stats.t.ppf(q, n - 1)) + z) * sd / abs(effect)) ** 2))
        if new == n:
            break
        if new in seen:
            n = max(seen[seen.index(new):])
            break
        seen.append(new)
        n = new
    return n if cap is None else max(3, min(n, int(cap)))
