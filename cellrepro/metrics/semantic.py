"""Semantic (pixel) metrics per class: accuracy, precision, recall, F1, IoU, Dice.

The brightfield thesis (Tables 5.1-5.6) reports *pooled-pixel* metrics: the confusion counts
of all test images are summed before the ratios are taken (its F1 equals the harmonic mean
of its precision and recall, and IoU = F1 / (2 - F1), to four decimals). ``pooled=True``
computes those; ``pooled=False`` averages per-image values (the multimodal paper's mDice and
the organoid thesis's per-image F1).
"""

from __future__ import annotations

from typing import Iterable

import numpy as np


def confusion(pred: np.ndarray, target: np.ndarray) -> dict[str, int]:
    """Pixel counts of true/false positives/negatives for boolean ``pred`` and ``target``."""
    pred, target = np.asarray(pred, bool), np.asarray(target, bool)
    if pred.shape != target.shape:
        raise ValueError(f"prediction shape {pred.shape} differs from target shape {target.shape}")
    tp = int(np.count_nonzero(pred & target))
    fp = int(np.count_nonzero(pred)) - tp
    fn = int(np.count_nonzero(target)) - tp
    return {"tp": tp, "fp": fp, "fn": fn, "tn": int(pred.size) - tp - fp - fn}


def scores(counts: dict[str, int]) -> dict[str, float]:
    """Accuracy, precision, recall, F1 (= Dice), IoU from confusion counts.

    A ratio whose denominator is zero is 1.0 when nothing was there to find or to get wrong
    (e.g. precision with no positive predictions and no missed pixels), else 0.0.
    """
    tp, fp, fn, tn = counts["tp"], counts["fp"], counts["fn"], counts["tn"]

    def ratio(num: float, den: float, empty: float) -> float:
        return float(num / den) if den else empty

    perfect = 1.0 if fp == 0 and fn == 0 else 0.0
    f1 = ratio(2 * tp, 2 * tp + fp + fn, perfect)
    return {"accuracy": ratio(tp + tn, tp + tn + fp + fn, 1.0), "precision": ratio(tp, tp + fp, perfect),
            "recall": ratio(tp, tp + fn, perfect), "f1": f1, "dice": f1, "iou": ratio(tp, tp + fp + fn, perfect)}


def semantic_scores(preds: Iterable[np.ndarray] | np.ndarray, targets: Iterable[np.ndarray] | np.ndarray,
                    threshold: float = 0.5, pooled: bool = True) -> dict[str, float]:
    """Binary pixel metrics over one image or a set of images.

    Args:
        preds: probabilities (thresholded at ``threshold``, ``>=``) or booleans; one array
            or a sequence of arrays.
        targets: boolean or {0, 1} ground truth, same shapes.
        pooled: sum the confusion counts over images first (thesis convention); otherwise
            average each metric over images.

    Example:
        >>> semantic_scores(np.array([[0.9, 0.2]]), np.array([[1, 1]]))["recall"]
        0.5
    """
    if isinstance(preds, np.ndarray) and isinstance(targets, np.ndarray) and preds.shape == targets.shape \
            and preds.ndim <= 2:
        preds, targets = [preds], [targets]
    per_image = []
    for p, t in zip(preds, targets, strict=True):
        p = np.asarray(p)
        per_image.append(confusion(p >= threshold if p.dtype != bool else p, np.asarray(t) > 0))
    if not per_image:
        raise ValueError("no images to score")
    if pooled:
        return scores({k: sum(c[k] for c in per_image) for k in ("tp", "fp", "fn", "tn")})
    all_scores = [scores(c) for c in per_image]
    return {k: float(np.mean([s[k] for s in all_scores])) for k in all_scores[0]}


def pixel_ap(preds: Iterable[np.ndarray] | np.ndarray, targets: Iterable[np.ndarray] | np.ndarray) -> float:
    """Average precision of per-pixel probabilities over all thresholds, pixels pooled over the
    images (scikit-learn's ``average_precision_score``: precision at each recall step weighted by
    the step, no interpolation).

    A threshold-free score: F1 at a fixed threshold mixes how well a map ranks positives above
    negatives with where its probabilities sit (a loss that shifts the operating point moves F1
    without changing the ranking). A constant map scores the positives' share; NaN when no pixel
    is positive (nothing to find).

    >>> pixel_ap(np.array([[0.9, 0.8, 0.1]]), np.array([[1, 0, 0]]))
    1.0
    >>> round(pixel_ap(np.array([[0.5, 0.5, 0.5, 0.5]]), np.array([[1, 0, 0, 0]])), 2)
    0.25
    """
    from sklearn.metrics import average_precision_score

    if isinstance(preds, np.ndarray) and isinstance(targets, np.ndarray) and preds.shape == targets.shape \
            and preds.ndim <= 2:
        preds, targets = [preds], [targets]
    pairs = [(np.asarray(p, float).ravel(), np.asarray(t).ravel() > 0) for p, t in zip(preds, targets, strict=True)]
    if not pairs:
        raise ValueError("no images to score")
    for i, (p, t) in enumerate(pairs):
        if p.shape != t.shape:
            raise ValueError(f"image {i}: prediction has {p.size} pixels, target {t.size}")
    p, t = np.concatenate([p for p, _ in pairs]), np.concatenate([t for _, t in pairs])
    return float(average_precision_score(t, p)) if t.any() else float("nan")


def per_class_scores(pred: np.ndarray | Iterable[np.ndarray], target: np.ndarray | Iterable[np.ndarray],
                     classes: dict[int, str], pooled: bool = True) -> dict[str, dict[str, float]]:
    """:func:`semantic_scores` for each class of integer class maps (one-vs-rest)."""
    preds = [pred] if isinstance(pred, np.ndarray) else list(pred)
    targets = [target] if isinstance(target, np.ndarray) else list(target)
    return {name: semantic_scores([p == k for p in preds], [t == k for t in targets], pooled=pooled)
            for k, name in classes.items()}
