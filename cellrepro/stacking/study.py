"""The stacking section's measurements (spheroid claims C1 and C2): every selection, every k, per stack.

Per stack: blur maps with both normalisations (:func:`cellrepro.stacking.blur_maps`, one
computation of the layers), slice rankings by their Eq. 9 scores, a random ranking and the
oracle ranking (:func:`oracle_order`), each stacked for every k and scored against the
all-in-focus truth (:func:`selection_quality`); and how well each normalisation's maps find the
in-focus regions (:func:`focus_agreement`). The notebook only calls these and plots.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import pandas as pd
from ..engine.progress import bar as progress_bar

from ..data.synthetic.dic_spheroid import in_focus_masks
from ..data.types import ZStack
from .blur import blur_maps
from .quality import oracle_order, roc_auc, selection_quality
from .select import slice_scores

#: Rankings compared, best first: the paper's HiFST maps (normalised per slice), the same maps
#: normalised over the stack (this project's variant), and two controls.
SELECTIONS = {"slice": "HiFST, per-slice maps (paper)", "stack": "HiFST, stack-normalised maps",
              "random": "random slices (control)", "oracle": "most in-focus slices (oracle)"}


def focus_agreement(sample: ZStack, maps: np.ndarray) -> dict[str, float]:
    """How well one stack's blur maps find focus (claim spheroid-C2).

    ``auc``: ROC-AUC of the map for in-focus object pixels, averaged over the slices that have
    both kinds; ``rho``: Spearman rho of the Eq. 9 slice scores against ``-|z - z_focus|``,
    ``z_focus`` the median object depth (the register's measure); ``rho_count``: against the
    number of object pixels in focus on each slice (a stack whose objects spread over depths has
    no single focal plane).
    """
    from scipy import stats

    focus = in_focus_masks(sample)
    aucs = [roc_auc(maps[z], focus[z]) for z in range(len(maps)) if focus[z].any() and not focus[z].all()]
    scores = slice_scores(maps)
    z = np.arange(len(maps))
    z_focus = float(np.nanmedian(sample.depth))
    return {"auc": float(np.nanmean(aucs)) if aucs else float("nan"),
            "rho": float(stats.spearmanr(scores, -np.abs(z - z_focus)).statistic),
            "rho_count": float(stats.spearmanr(scores, focus.reshape(len(maps), -1).sum(1)).statistic)}


def measure(samples: Sequence[tuple[int, ZStack]], ks: Sequence[int], progress: bool = True,
            **blur_kwargs: Any) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Run every selection at every k on every ``(seed, stack)``.

    Returns ``quality`` (one row per seed, stack, selection, k: the metrics of
    :func:`cellrepro.stacking.quality.image_quality`) and ``agreement`` (one row per seed,
    stack, normalisation: :func:`focus_agreement`). The random ranking of a stack is drawn
    from a generator seeded by its seed and position, so reruns give the same table.
    """
    quality, agreement = [], []
    for i, (seed, sample) in enumerate(progress_bar(samples, desc="stacks", unit="stack", disable=not progress)):
        if sample.in_focus is None or sample.depth is None or sample.labels is None:
            raise ValueError(f"{sample.name}: this measurement needs the all-in-focus truth, depth and labels "
                             "of a synthetic stack (or a data_root with truth/ and labels/)")
        maps = blur_maps(sample.stack, ("slice", "stack"), **blur_kwargs)
        slices = len(sample.stack)
        orders = {name: np.argsort(-slice_scores(m), kind="stable") for name, m in maps.items()}
        orders["random"] = np.random.default_rng([seed, i, 7]).permutation(slices)
        orders["oracle"] = oracle_order(sample.depth, slices)
        table = selection_quality(sample.stack, sample.in_focus, orders, [k for k in ks if k <= slices], sample.labels)
        quality.append(table.assign(seed=seed, stack=sample.name))
        for name, m in maps.items():
            agreement.append({"seed": seed, "stack": sample.name, "normalisation": name, **focus_agreement(sample, m)})
    return pd.concat(quality, ignore_index=True), pd.DataFrame(agreement)


def effects(quality: pd.DataFrame, k: int, metrics: Sequence[str], selection: str) -> dict[str, dict[str, float]]:
    """Paired effect of stacking the top ``k`` of ``selection`` against all slices, per metric, over stacks."""
    from ..publish.report import paired_effect

    z = int(quality["k"].max())
    sub = quality[quality["selection"] == selection].set_index(["seed", "stack", "k"])
    return {m: paired_effect(sub[m].xs(k, level="k") - sub[m].xs(z, level="k")) for m in metrics}


def majority(votes: Sequence[str], needed: int = 2) -> str:
    """holds / fails if at least ``needed`` metrics say so (the register's rule for C1), else inconclusive."""
    if list(votes).count("holds") >= needed:
        return "holds"
    if list(votes).count("fails") >= needed:
        return "fails"
    return "inconclusive"


def median_interval(values: Sequence[float], confidence: float = 0.95, resamples: int = 10_000,
                    seed: int = 0) -> dict[str, float]:
    """Median with a percentile-bootstrap interval over the independent units (stacks)."""
    v = np.asarray([x for x in values if np.isfinite(x)], float)
    rng = np.random.default_rng(seed)
    boot = np.median(rng.choice(v, (resamples, len(v))), axis=1)
    a = (1 - confidence) / 2
    return {"mean": float(np.median(v)), "low": float(np.quantile(boot, a)), "high": float(np.quantile(boot, 1 - a)),
            "n": len(v)}


def threshold_verdict(intervals: Sequence[dict[str, float]], threshold: float) -> str:
    """holds if every interval lies at or above ``threshold``, fails if any lies entirely below it,
    inconclusive otherwise (an interval that straddles the threshold)."""
    if any(e["high"] < threshold for e in intervals):
        return "fails"
    if all(e["low"] >= threshold for e in intervals):
        return "holds"
    return "inconclusive"
