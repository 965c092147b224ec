"""The organoid claims' tests, as the claims register states them (Sec. 6, organoid-C1..C11).

Each function takes per-seed values (test images averaged within a seed first, see
:func:`~.evaluate.per_seed`) and returns the effect (``mean``, ``low``, ``high``, ``n`` over
seeds, a t-interval) and the verdict by the register's rule, fixed before any run.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ...publish import report


def paired(seeds: pd.DataFrame, value: str, arm: str, a, b) -> dict[str, float]:
    """``a - b`` of ``value`` per seed (rows of ``seeds`` with ``arm`` equal to a or b), over seeds."""
    wide = seeds.pivot_table(index="seed", columns=arm, values=value, aggfunc="mean")
    return report.paired_effect((wide[a] - wide[b]).to_numpy())


def slopes(seeds: pd.DataFrame, value: str = "f1") -> pd.DataFrame:
    """Per seed, the least-squares slope of ``value`` against the global and the local proportion
    (averaged over the other proportion first), per 50 percentage points (10% -> 60%)."""
    rows = {}
    for seed, part in seeds.groupby("seed"):
        out = {}
        for axis in ("global", "local"):
            curve = part.groupby(f"{axis}_fraction")[value].mean()
            x = curve.index.to_numpy(float)
            out[axis] = float(np.polyfit(x, curve.to_numpy(), 1)[0]) * 0.5 if len(curve) > 1 else float("nan")
        rows[seed] = out
    return pd.DataFrame(rows).T


def c1_global_null(sl: pd.DataFrame, margin: float = 0.01) -> tuple[dict, str]:
    """organoid-C1: more global data does not raise F1: holds if the global slope x 50 pp has
    its CI within +-``margin`` F1."""
    e = report.paired_effect(sl["global"].to_numpy())
    return e, report.verdict(e, margin=margin)


def c2_local(sl: pd.DataFrame, gaps_at_top: dict[float, dict]) -> tuple[dict, str]:
    """organoid-C2: the local slope has CI > 0 *and*, at the largest local proportion,
    pre-trained - supervised has CI > 0 at >= 2/3 of the global levels (the register's 4 of 6)."""
    e = report.paired_effect(sl["local"].to_numpy())
    wins = sum(report.verdict(g) == "holds" for g in gaps_at_top.values())
    need = int(np.ceil(2 * len(gaps_at_top) / 3))
    slope = report.verdict(e)
    if slope == "holds" and wins >= need:
        return e, "holds"
    if slope == "fails":
        return e, "fails"
    return e, "inconclusive"


def c3_local_over_global(sl: pd.DataFrame) -> tuple[dict, str]:
    """organoid-C3: slope_local - slope_global has CI > 0."""
    e = report.paired_effect((sl["local"] - sl["global"]).to_numpy())
    return e, report.verdict(e)


def c9_nonfrozen(seeds: pd.DataFrame, pairs: list[str]) -> tuple[dict, str, dict]:
    """organoid-C9: non-frozen - frozen F1 pooled over the settings has CI > 0 and no pair has CI < 0.

    ``seeds`` has a ``frozen`` column and a ``pair`` column naming the setting (and loss)."""
    per_pair = {p: paired(seeds[seeds["pair"] == p], "f1", "frozen", False, True) for p in pairs}
    pooled = seeds.groupby(["seed", "frozen"])["f1"].mean().reset_index()
    e = paired(pooled, "f1", "frozen", False, True)
    v = report.verdict(e)
    if v == "holds" and any(report.verdict(x) == "fails" for x in per_pair.values()):
        v = "inconclusive"
    return e, v, per_pair


def c10_explanation(seeds: pd.DataFrame) -> tuple[dict, str, dict, dict]:
    """organoid-C10: holds if frozen - non-frozen recall of large true organoids has CI > 0 *and*
    the F1 gap (non-frozen - frozen) shrinks or reverses against the true masks; fails if the gap
    persists against the true masks (CI > 0 and not smaller).

    Returns the recall effect, the verdict, and the gaps against the annotation and the truth."""
    pooled = seeds.groupby(["seed", "frozen"])[["large_recall", "f1", "f1_annotation"]].mean().reset_index()
    recall = paired(pooled, "large_recall", "frozen", True, False)
    gap_ann = paired(pooled, "f1_annotation", "frozen", False, True)
    gap_true = paired(pooled, "f1", "frozen", False, True)
    shrink = report.paired_effect(
        (pooled.pivot(index="seed", columns="frozen", values="f1_annotation").pipe(lambda w: w[False] - w[True])
         - pooled.pivot(index="seed", columns="frozen", values="f1").pipe(lambda w: w[False] - w[True])).to_numpy())
    if report.verdict(recall) == "holds" and report.verdict(shrink) == "holds":
        v = "holds"
    elif report.verdict(gap_true) == "holds" and report.verdict(shrink) != "holds":
        v = "fails"
    else:
        v = "inconclusive"
    return recall, v, gap_ann, {"gap_true": gap_true, "shrink": shrink}


def c5_not_better(gap: dict, margin: float = 0.01) -> str:
    """organoid-C5: more unlabelled data does not make the pre-trained models better than the
    supervised ones. ``gap`` is pre-trained - supervised at the largest global and the smallest
    local proportion (the fewest extra labels). One-sided: holds if the interval lies below
    ``margin``, fails if it lies above it, else inconclusive. The local stage still uses labels,
    so the label budgets are matched only as far as the smallest local proportion allows."""
    if gap["high"] < margin:
        return "holds"
    if gap["low"] > margin:
        return "fails"
    return "inconclusive"


def c7_coherence(seeds: pd.DataFrame, metrics: tuple[str, ...], lower_is_better: dict[str, bool]) -> tuple[dict, str]:
    """organoid-C7: the SSIM variants give more coherent shapes than BCE: holds if they are better
    (mean of the two SSIM losses vs BCE & Dice, paired over seeds) with CI on >= 2 shape metrics;
    fails if BCE is better with CI on >= 2; else inconclusive. Returns each metric's effect, signed
    so that positive means "SSIM variants more coherent", and the verdict."""
    wide = seeds.pivot_table(index="seed", columns="loss", values=list(metrics))
    effects, better, worse = {}, 0, 0
    for m in metrics:
        ssim = (wide[(m, "ssim_dice")] + wide[(m, "ssim_mae_dice")]) / 2
        d = (wide[(m, "bce_dice")] - ssim) if lower_is_better[m] else (ssim - wide[(m, "bce_dice")])
        effects[m] = report.paired_effect(d.to_numpy())
        better += report.verdict(effects[m]) == "holds"
        worse += report.verdict(effects[m]) == "fails"
    verdict = "holds" if better >= 2 else ("fails" if worse >= 2 else "inconclusive")
    return effects, verdict
