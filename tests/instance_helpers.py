"""Helpers shared by the instance-representation tests (flows, CDNet)."""

import numpy as np


def best_ious(truth: np.ndarray, pred: np.ndarray) -> dict[int, float]:
    """For each true label, the IoU with the predicted label that overlaps it most."""
    out = {}
    for t in np.unique(truth[truth > 0]):
        inside = pred[truth == t]
        p = np.bincount(inside[inside > 0]).argmax() if (inside > 0).any() else 0
        inter = np.count_nonzero((truth == t) & (pred == p)) if p else 0
        out[int(t)] = inter / np.count_nonzero((truth == t) | (pred == p)) if p else 0.0
    return out
