"""Scoring the organoid test set: per crop, then per test image, then per seed.

The thesis reports the mean and SD of a per-crop pixel F1 over ~10k test crops (its "SD" is
that per-crop spread, register inconsistency #21). Here every test crop is scored against the
**true** mask (``f1``) and against the annotation (``f1_annotation``); crops are averaged
within their test image first (:func:`per_image`) and images within a seed
(:func:`per_seed`), so intervals are over seeds or, by bootstrap, over test images, never
over overlapping crops of one image.

Shape metrics for the loss question (organoid-C7: "more coherent shapes") are counted on the
binarised prediction of each crop against the true mask: holes per predicted object, spurious
components (predicted objects touching no true organoid), the absolute Euler-number error, and
a boundary F1 with a 2-pixel tolerance.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import ndimage as ndi

from ...metrics import semantic_scores

SHAPE_METRICS = ("holes_per_object", "spurious_components", "euler_error", "boundary_f1")
LOWER_IS_BETTER = {"holes_per_object": True, "spurious_components": True, "euler_error": True, "boundary_f1": False}


def _f1(pred: np.ndarray, target: np.ndarray) -> float:
    """Pixel F1 of one binary prediction (:func:`cellrepro.metrics.semantic_scores`; 1.0 when both are empty)."""
    return semantic_scores(pred, target)["f1"]


def _boundary(mask: np.ndarray) -> np.ndarray:
    return mask & ~ndi.binary_erosion(mask, border_value=1)


def shape_metrics(pred: np.ndarray, true: np.ndarray, tolerance: int = 2) -> dict[str, float]:
    """Coherence of one binary prediction against the true mask (see the module docstring)."""
    from skimage.measure import euler_number

    labels, n = ndi.label(pred)
    holes = int(ndi.label(ndi.binary_fill_holes(pred) & ~pred)[1])
    spurious = 0
    if n:
        touched = np.unique(labels[true & (labels > 0)])
        spurious = n - int((touched > 0).sum())
    bp, bt = _boundary(pred), _boundary(true)
    near_t = ndi.binary_dilation(bt, iterations=tolerance) if bt.any() else bt
    near_p = ndi.binary_dilation(bp, iterations=tolerance) if bp.any() else bp
    precision = float((bp & near_t).sum() / bp.sum()) if bp.any() else float(not bt.any())
    recall = float((bt & near_p).sum() / bt.sum()) if bt.any() else float(not bp.any())
    bf1 = 0.0 if precision + recall == 0 else 2 * precision * recall / (precision + recall)
    return {"holes_per_object": holes / max(n, 1), "spurious_components": float(spurious),
            "euler_error": float(abs(euler_number(pred, connectivity=1) - euler_number(true, connectivity=1))),
            "boundary_f1": bf1}


def score(probs: np.ndarray, test, threshold: float = 0.5, shape: bool = False) -> pd.DataFrame:
    """One row per test crop: ``image``, ``f1`` (true mask), ``f1_annotation``, the true pixels
    of large organoids (``large_pixels``) and how many were predicted (``large_hits``), and with
    ``shape`` the :data:`SHAPE_METRICS`."""
    pred = np.asarray(probs) >= threshold
    true = test.true[:, 0].numpy() > 0
    ann = test.annotation[:, 0].numpy() > 0
    large = test.large[:, 0].numpy() > 0
    rows = []
    for i in range(len(pred)):
        row = {"image": int(test.image[i]), "crop": i, "f1": _f1(pred[i], true[i]),
               "f1_annotation": _f1(pred[i], ann[i]), "large_pixels": int(large[i].sum()),
               "large_hits": int((pred[i] & large[i]).sum())}
        if shape:
            row.update(shape_metrics(pred[i], true[i]))
        rows.append(row)
    return pd.DataFrame(rows)


def per_image(scores: pd.DataFrame, by: list[str] | tuple[str, ...] = ()) -> pd.DataFrame:
    """Crops averaged within each test image (and the groups ``by``); ``large_recall`` pools the
    large-organoid pixels of the image (NaN where the image has none)."""
    keys = [*by, "image"]
    values = [c for c in scores.columns if c not in (*keys, "crop", "large_pixels", "large_hits")
              and pd.api.types.is_numeric_dtype(scores[c])]
    out = scores.groupby(keys, sort=True)[values].mean()
    sums = scores.groupby(keys, sort=True)[["large_hits", "large_pixels"]].sum()
    out["large_recall"] = (sums["large_hits"] / sums["large_pixels"].where(sums["large_pixels"] > 0))
    return out.reset_index()


def per_seed(images: pd.DataFrame, by: list[str] | tuple[str, ...]) -> pd.DataFrame:
    """Per-image values averaged over the test images, per seed and group ``by``."""
    keys = ["seed", *[b for b in by if b != "seed"]]
    values = [c for c in images.columns if c not in (*keys, "image") and pd.api.types.is_numeric_dtype(images[c])]
    return images.groupby(keys, sort=True)[values].mean().reset_index()


def bootstrap_images(images: pd.DataFrame, value: str, arm: str, a, b, n_boot: int = 2000,
                     seed: int = 0, confidence: float = 0.95) -> dict[str, float]:
    """Difference ``a - b`` of the mean ``value`` over test images (averaged over seeds first),
    with a percentile interval from resampling the test images."""
    wide = images.groupby([arm, "image"])[value].mean().unstack(arm)
    d = (wide[a] - wide[b]).dropna().to_numpy()
    rng = np.random.default_rng(seed)
    boots = d[rng.integers(0, len(d), (n_boot, len(d)))].mean(1)
    tail = (1 - confidence) / 2 * 100
    return {"mean": float(d.mean()), "low": float(np.percentile(boots, tail)),
            "high": float(np.percentile(boots, 100 - tail)), "n": int(len(d))}
