"""Per-image instance scores and their summary over a set of images (see :mod:`.instance`)."""

from __future__ import annotations

from typing import Iterable

import numpy as np
import pandas as pd

from .instance import (CELLSEG_TILE, CELLSEG_TILED_FROM, count, image_dice, match, overlaps, relabel,
                       remove_frame_instances)

MODES = ("cellseg", "plain")


def _counts(gt: np.ndarray, pred: np.ndarray, threshold: float) -> tuple[int, int, int, list[float]]:
    ov = overlaps(gt, pred)
    _, _, ious = match(ov, threshold)
    return ov.n_gt, ov.n_pred, len(ious), list(ious)


def _prepare(instances: np.ndarray) -> np.ndarray:
    instances = np.asarray(instances)
    if instances.ndim == 3:
        return instances.astype(bool)
    if instances.dtype.kind not in "iub":
        raise ValueError(f"instance labels must be integers, found {instances.dtype}")
    return relabel(instances)


def instance_scores(gt: np.ndarray, pred: np.ndarray, threshold: float = 0.5, mode: str = "plain") -> dict[str, float]:
    """Scores of one image: counts, precision, recall, F1, foreground Dice, instance Dice, mean IoU.

    Args:
        gt, pred: label images (H, W) with any integer ids, or stacks (N, H, W) of possibly
            overlapping masks.
        threshold: IoU a match needs (>=).
        mode: ``"cellseg"`` (the challenge's official evaluation) or ``"plain"``; see
            :mod:`cellrepro.metrics.instance`.

    Returns:
        ``n_true, n_pred, tp, fp, fn, precision, recall, f1, dice`` (foreground Dice),
        ``inst_dice`` (mean Dice of the matched pairs; this project's definition of the
        multimodal paper's undefined "mInstDice") and ``mean_iou`` (mean IoU of the matched
        pairs); the last two are NaN without matches.
    """
    if mode not in MODES:
        raise ValueError(f"unknown mode '{mode}'; modes are {', '.join(MODES)}")
    gt, pred = _prepare(gt), _prepare(pred)
    if gt.shape[-2:] != pred.shape[-2:]:
        raise ValueError(f"ground truth {gt.shape[-2:]} and prediction {pred.shape[-2:]} differ in size")
    dice = image_dice(gt, pred)
    ious: list[float] = []
    if mode == "plain":
        n_true, n_pred, tp, ious = _counts(gt, pred, threshold)
    else:
        n_true = n_pred = tp = 0
        for g, p in _cellseg_tiles(gt, pred):
            g, p = remove_frame_instances(g), remove_frame_instances(p)
            nt, npred = count(g), count(p)
            n_true, n_pred = n_true + nt, n_pred + npred
            if npred > 0:  # the official code scores a tile without predictions as tp = 0
                _, _, t, tile_ious = _counts(g, p, threshold)
                tp += t
                ious += tile_ious
    fp, fn = n_pred - tp, n_true - tp
    if mode == "cellseg":
        precision = recall = f1 = 0.0
        if tp > 0:
            precision, recall = tp / n_pred, tp / n_true
            f1 = 2 * precision * recall / (precision + recall)
        precision, recall, f1, dice = (round(float(v), 4) for v in (precision, recall, f1, dice))
    else:
        empty = 1.0 if n_true == 0 and n_pred == 0 else 0.0
        precision = tp / n_pred if n_pred else empty
        recall = tp / n_true if n_true else empty
        f1 = 2 * tp / (2 * tp + fp + fn) if (2 * tp + fp + fn) else empty
    iou = np.asarray(ious, float)
    return {"n_true": int(n_true), "n_pred": int(n_pred), "tp": int(tp), "fp": int(fp), "fn": int(fn),
            "precision": float(precision), "recall": float(recall), "f1": float(f1), "dice": float(dice),
            "inst_dice": float(np.mean(2 * iou / (1 + iou))) if iou.size else float("nan"),
            "mean_iou": float(iou.mean()) if iou.size else float("nan")}


def _cellseg_tiles(gt: np.ndarray, pred: np.ndarray):
    """The whole image below 25 megapixels, else zero-padded 2000 x 2000 tiles (official)."""
    h, w = gt.shape[-2:]
    if h * w < CELLSEG_TILED_FROM:
        yield gt, pred
        return
    if gt.ndim == 3 or pred.ndim == 3:
        raise ValueError("tiled (>= 5000 x 5000) evaluation takes label images, not mask stacks")
    nh, nw = -(-h // CELLSEG_TILE), -(-w // CELLSEG_TILE)
    pad = ((0, nh * CELLSEG_TILE - h), (0, nw * CELLSEG_TILE - w))
    gt, pred = np.pad(gt, pad), np.pad(pred, pad)
    for i in range(nh):
        for j in range(nw):
            win = (slice(i * CELLSEG_TILE, (i + 1) * CELLSEG_TILE), slice(j * CELLSEG_TILE, (j + 1) * CELLSEG_TILE))
            yield relabel(gt[win]), relabel(pred[win])


def evaluate(pairs: Iterable[tuple[str, np.ndarray, np.ndarray]], threshold: float = 0.5,
             mode: str = "plain") -> tuple[pd.DataFrame, dict[str, float]]:
    """Score ``(name, gt, pred)`` pairs: a per-image table and a summary.

    The summary holds the mean and median of precision, recall, F1 and Dice over images (the
    challenge reports the mean and median F1), the means of instance Dice and matched IoU
    over the images that have matches, and the pooled counts.
    """
    rows = [{"name": name, **instance_scores(gt, pred, threshold, mode)} for name, gt, pred in pairs]
    table = pd.DataFrame(rows)
    if table.empty:
        raise ValueError("no images to evaluate")
    summary: dict[str, float] = {"n_images": len(table), "threshold": threshold}
    for key in ("precision", "recall", "f1", "dice"):
        summary[f"mean_{key}"] = float(table[key].mean())
        summary[f"median_{key}"] = float(table[key].median())
    for key in ("inst_dice", "mean_iou"):
        summary[f"mean_{key}"] = float(table[key].mean()) if table[key].notna().any() else float("nan")
    for key in ("n_true", "n_pred", "tp", "fp", "fn"):
        summary[key] = int(table[key].sum())
    return table, summary
