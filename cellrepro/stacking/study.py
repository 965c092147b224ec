"""The stacking section's measurements (spheroid claims C1 and C2): every selection, every k, per stack.

Per stack: blur maps with both normalisations (:func:`cellrepro.stacking.blur_maps`, one
computation of the layers), slice rankings by their Eq. 9 scores, a random ranking and the
oracle ranking (:func:`oracle_order`), each stacked for every k and scored against the
all-in-focus truth (:func:`selection_quality`); and how well each normalisation's maps find the
in-focus regions (:func:`focus_agreement`). The notebook only calls these and plots.
"""

from __future__ import annotations

import time
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd
from ..engine.progress import bar as progress_bar

from ..data.synthetic.dic_spheroid import in_focus_masks
from ..data.types import ZStack
from .blur import blur_maps
from .quality import oracle_order, roc_auc, selection_quality
from .select import slice_scores

#: Rankings compared, best first: the paper's HiFST maps (normalised per slice), the same maps
#: normalised over the stack (this project's variant), and three controls: random slices, the
#: middle slices (any k central slices: does a selection need the maps at all?) and the oracle.
SELECTIONS = {"slice": "HiFST, per-slice maps (paper)", "stack": "HiFST, stack-normalised maps",
              "random": "random slices (control)", "middle": "middle slices (control)",
              "oracle": "most in-focus slices (oracle)"}


def focus_agreement(sample: ZStack, maps: np.ndarray) -> dict[str, float]:
    """How well one stack's blur maps find focus (claim spheroid-C2).

    ``auc``: ROC-AUC of the map for in-focus against out-of-focus *object* pixels (the claim is
    about cells; the background would turn it into object-versus-background), averaged over the
    slices whose objects have both kinds; ``rho``: Spearman rho of the Eq. 9 slice scores against ``-|z - z_focus|``,
    ``z_focus`` the median object depth (the register's measure); ``rho_count``: against the
    number of object pixels in focus on each slice (a stack whose objects spread over depths has
    no single focal plane); ``varies``: 1 if the map varies on every slice (a constant map ranks
    nothing), else 0.
    """
    from scipy import stats

    objects = sample.labels > 0
    focus = in_focus_masks(sample)[:, objects]
    aucs = [roc_auc(maps[z][objects], focus[z]) for z in range(len(maps)) if focus[z].any() and not focus[z].all()]
    scores = slice_scores(maps)
    z = np.arange(len(maps))
    z_focus = float(np.nanmedian(sample.depth))
    return {"auc": float(np.nanmean(aucs)) if aucs else float("nan"),
            "rho": float(stats.spearmanr(scores, -np.abs(z - z_focus)).statistic),
            "rho_count": float(stats.spearmanr(scores, focus.reshape(len(maps), -1).sum(1)).statistic),
            "varies": float(all(np.ptp(m) > 0 for m in maps))}


def sharpness_auc(sample: ZStack, sigma: float = 1.0) -> float:
    """ROC-AUC of a plain sharpness map (squared Sobel gradient of the Gaussian-smoothed slice,
    smoothed again over ``2 * sigma``) for in-focus against out-of-focus object pixels, averaged
    over the slices whose objects have both kinds (as :func:`focus_agreement`'s ``auc``): the positive control of spheroid-C2 (if this finds focus, the stand-in
    carries focus that a blur map can find)."""
    from scipy import ndimage as ndi

    objects = sample.labels > 0
    focus = in_focus_masks(sample)[:, objects]
    aucs = []
    for z, image in enumerate(sample.stack):
        if focus[z].any() and not focus[z].all():
            g = ndi.gaussian_filter(np.asarray(image, float), sigma)
            energy = ndi.gaussian_filter(ndi.sobel(g, 0) ** 2 + ndi.sobel(g, 1) ** 2, 2 * sigma)
            aucs.append(roc_auc(energy[objects], focus[z]))
    return float(np.mean(aucs)) if aucs else float("nan")


def checks(sample: ZStack, order: np.ndarray, k: int) -> dict[str, float]:
    """What the spheroid-C1/C2 gates read off one stack: ``changed`` (share of cell pixels whose
    finest detail the fusion takes from another slice with the top ``k`` of ``order`` than with
    all slices: did selection change the fusion?), ``sharpness_auc`` (:func:`sharpness_auc`),
    ``best_focus`` (share of object pixels in focus on the slice that holds the most: does focus
    vary within a slice?) and ``slice_focus`` (median share of object pixels in focus over the
    slices the AUC uses, those with both kinds: the AUC's class balance)."""
    from .fuse import fuse
    from .quality import regions

    cells = regions(sample.labels)["cells"]
    keep = np.sort(np.asarray(order)[:k])
    _, top = fuse(sample.stack[keep], sources=True)
    _, every = fuse(sample.stack, sources=True)
    focus = in_focus_masks(sample)[:, sample.labels > 0]
    shares = focus.mean(1) if focus.shape[1] else np.full(len(focus), np.nan)
    used = shares[(shares > 0) & (shares < 1)]
    return {"changed": float((keep[top] != every)[cells].mean()), "sharpness_auc": sharpness_auc(sample),
            "best_focus": float(np.max(shares)), "slice_focus": float(np.median(used)) if used.size else float("nan")}


def measure(samples: Sequence[tuple[int, ZStack]], ks: Sequence[int], progress: bool = True, k_checks: int | None = None,
            **blur_kwargs: Any) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Run every selection at every k on every ``(seed, stack)``.

    Returns ``quality`` (one row per seed, stack, selection, k: the metrics of
    :func:`cellrepro.stacking.quality.image_quality`), ``agreement`` (one row per seed,
    stack, normalisation: :func:`focus_agreement`) and ``per_stack`` (one row per seed and stack:
    :func:`checks` at ``k_checks`` slices of the paper's per-slice ranking; empty without
    ``k_checks``). The random ranking of a stack is drawn from a generator seeded by its seed and
    position, so reruns give the same table.
    """
    quality, agreement, per_stack = [], [], []
    for i, (seed, sample) in enumerate(progress_bar(samples, desc="stacks", unit="stack", disable=not progress)):
        start = time.perf_counter()
        if sample.in_focus is None or sample.depth is None or sample.labels is None:
            raise ValueError(f"{sample.name}: this measurement needs the all-in-focus truth, depth and labels "
                             "of a synthetic stack (or a data_root with truth/ and labels/)")
        maps = blur_maps(sample.stack, ("slice", "stack"), **blur_kwargs)
        slices = len(sample.stack)
        orders = {name: np.argsort(-slice_scores(m), kind="stable") for name, m in maps.items()}
        orders["random"] = np.random.default_rng([seed, i, 7]).permutation(slices)
        orders["middle"] = np.argsort(np.abs(np.arange(slices) - (slices - 1) / 2), kind="stable")
        orders["oracle"] = oracle_order(sample.depth, slices)
        table = selection_quality(sample.stack, sample.in_focus, orders, [k for k in ks if k <= slices], sample.labels)
        quality.append(table.assign(seed=seed, stack=sample.name))
        for name, m in maps.items():
            agreement.append({"seed": seed, "stack": sample.name, "normalisation": name, **focus_agreement(sample, m)})
        if k_checks:
            per_stack.append({"seed": seed, "stack": sample.name, **checks(sample, orders["slice"], k_checks),
                              "seconds": time.perf_counter() - start})
    return pd.concat(quality, ignore_index=True), pd.DataFrame(agreement), pd.DataFrame(per_stack)


def knob_sweep(load: Any, knobs: Sequence[tuple[str, Any, dict]], n: int, seed: int, k: int, slices: int,
               **blur_kwargs: Any) -> pd.DataFrame:
    """What spheroid-C1 and -C2 read, on ``n`` stacks of ``seed`` for each setting of the stand-in:
    ``knobs`` is ``(knob, value, generator keywords)`` and ``load(n=, seed=, **keywords)`` returns
    the stacks. One row per setting (index knob, value): the paired gain in SSIM on the cells of
    the oracle's and the paper's (per-slice maps) top ``k`` over all slices (mean over stacks),
    and the per-slice maps' median AUC for in-focus pixels and median Spearman rho of the slice
    ranking. Descriptive: how much of what C1 and C2 see is the stand-in's setting."""
    rows, done = [], {}
    for knob, value, keywords in knobs:
        key = tuple(sorted(keywords.items(), key=str))
        if key not in done:  # a setting shared by several knobs (the run's own) is measured once
            stacks = load(n=n, seed=seed, **keywords)
            quality, agreement, _ = measure([(seed, s) for s in stacks], [k, slices], progress=False, **blur_kwargs)
            gain = {sel: effects(quality, k, ["ssim_cells"], sel)["ssim_cells"]["mean"] for sel in ("oracle", "slice")}
            maps = agreement[agreement["normalisation"] == "slice"]
            done[key] = {"oracle gain": gain["oracle"], "SBS gain": gain["slice"], "AUC": float(maps["auc"].median()),
                         "rho": float(maps["rho"].median()), "stacks": len(stacks)}
        rows.append({"knob": knob, "value": "none" if value is None else value, **done[key]})
    return pd.DataFrame(rows).set_index(["knob", "value"])


def effect_table(quality: pd.DataFrame, k: int, metrics: Mapping[str, str], names: Mapping[str, str]) -> pd.DataFrame:
    """Paired effect of the top ``k`` of every selection against all slices (:func:`effects`), one
    row per (selection, metric), labelled by ``names`` and ``metrics``."""
    rows = []
    for sel, label in names.items():
        for m, e in effects(quality, k, list(metrics), sel).items():
            rows.append({"selection": label, "metric": metrics[m], "effect": e["mean"], "95% low": e["low"],
                         "95% high": e["high"], "stacks": e["n"]})
    return pd.DataFrame(rows).set_index(["selection", "metric"])


AGREEMENT = {"auc": "ROC-AUC, map vs in-focus pixels", "rho": "Spearman rho, score vs -|z - z_focus|",
             "rho_count": "Spearman rho, score vs in-focus pixels"}
"""The measures of :func:`focus_agreement` the stacking section tabulates."""


def agreement_table(agreement: pd.DataFrame, names: Mapping[str, str]) -> pd.DataFrame:
    """Median over stacks with a bootstrap 95% interval (:func:`median_interval`) of each
    :data:`AGREEMENT` measure, one row per (normalisation, measure), labelled by ``names``."""
    rows = []
    for norm, sub in agreement.groupby("normalisation", sort=False):
        for col, label in AGREEMENT.items():
            e = median_interval(sub[col])
            rows.append({"maps": names.get(norm, norm), "measure": label, "median": e["mean"], "95% low": e["low"],
                         "95% high": e["high"], "stacks": e["n"]})
    return pd.DataFrame(rows).set_index(["maps", "measure"])


def effects(quality: pd.DataFrame, k: int, metrics: Sequence[str], selection: str) -> dict[str, dict[str, float]]:
    """Paired effect of stacking the top ``k`` of ``selection`` against all slices, per metric, over stacks."""
    from ..publish.report import paired_effect

    z = int(quality["k"].max())
    sub = quality[quality["selection"] == selection].set_index(["seed", "stack", "k"])
    return {m: paired_effect(sub[m].xs(k, level="k") - sub[m].xs(z, level="k")) for m in metrics}


def median_interval(values: Sequence[float], confidence: float = 0.95, resamples: int = 10_000,
                    seed: int = 0) -> dict[str, float]:
    """Median with a percentile-bootstrap interval over the independent units (stacks)."""
    v = np.asarray([x for x in values if np.isfinite(x)], float)
    rng = np.random.default_rng(seed)
    boot = np.median(rng.choice(v, (resamples, len(v))), axis=1)
    a = (1 - confidence) / 2
    return {"mean": float(np.median(v)), "low": float(np.quantile(boot, a)), "high": float(np.quantile(boot, 1 - a)),
            "n": len(v)}

