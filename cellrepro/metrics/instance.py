"""Instance matching at an IoU threshold: TP/FP/FN, precision, recall, F1, instance Dice, mean IoU.

Two modes:

* ``"cellseg"``: exactly the NeurIPS 2022 Cell Segmentation Challenge's official evaluation
  (``baseline/compute_metric.py`` of JunMa11/NeurIPS-CellSeg): instances touching a 2-pixel
  frame are removed from both images and the rest relabelled (images under 25 megapixels);
  images of 5000 x 5000 pixels or more are evaluated in zero-padded 2000 x 2000 tiles, each
  with its own frame removal, and the counts summed; an image with no predicted instances
  scores 0 (even when its ground truth is empty); precision, recall and F1 are rounded to 4
  decimals per image before they are averaged. The default for CellSeg-style data.
* ``"plain"``: no frame removal, no tiling, no rounding; an empty prediction of an empty
  ground truth scores 1. For everything else.

Matching is one-to-one. A true positive needs IoU >= threshold; the number of true positives
is the maximum number of such pairs that can be matched at once (the official Hungarian
assignment's objective), and among those matchings the one with the largest summed IoU is
used for the matched-pair statistics.

Overlaps are computed in one pass over the pixels (a run-length compressed sparse
contingency table of label pairs), never per instance pair, so a 10,000 x 10,000 image with
tens of thousands of cells takes seconds. Inputs are label images (H, W) or stacks of
possibly overlapping (amodal) masks (N, H, W).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import sparse
from scipy.optimize import linear_sum_assignment
from scipy.sparse.csgraph import connected_components

CELLSEG_TILED_FROM = 25_000_000  # pixels: 5000 x 5000
CELLSEG_TILE = 2000
CELLSEG_FRAME = 2


@dataclass
class Overlaps:
    """Sparse pairwise overlaps of ``n_gt`` and ``n_pred`` instances (ids 1..n, 0-based here)."""

    gt: np.ndarray  # index of the ground-truth instance of each overlapping pair
    pred: np.ndarray  # index of the predicted instance
    inter: np.ndarray  # pixels in common
    area_gt: np.ndarray  # pixels per ground-truth instance
    area_pred: np.ndarray

    @property
    def iou(self) -> np.ndarray:
        return self.inter / (self.area_gt[self.gt] + self.area_pred[self.pred] - self.inter)

    @property
    def n_gt(self) -> int:
        return len(self.area_gt)

    @property
    def n_pred(self) -> int:
        return len(self.area_pred)


def relabel(labels: np.ndarray) -> np.ndarray:
    """Consecutive ids 1..N in order of the old ids (0 stays background)."""
    if labels.size == 0 or labels.max() <= 0:
        if labels.size and labels.min() < 0:
            raise ValueError("instance labels must be non-negative")
        return np.zeros(labels.shape, np.int32)
    if labels.min() < 0:
        raise ValueError("instance labels must be non-negative")
    top = int(labels.max())
    if top <= 4 * labels.size:  # a histogram is one linear pass; np.unique would sort every pixel
        ids = np.flatnonzero(np.bincount(labels.ravel()))
    else:
        ids = np.unique(labels)
    ids = ids[ids != 0]
    if ids[-1] == len(ids):
        return labels.astype(np.int32, copy=False)
    lut = np.zeros(top + 1, np.int32)
    lut[ids] = np.arange(1, len(ids) + 1, dtype=np.int32)
    return lut[labels]


def remove_frame_instances(instances: np.ndarray, width: int = CELLSEG_FRAME) -> np.ndarray:
    """Drop instances with a pixel in the outer ``width``-pixel frame and relabel (label images)
    or drop those masks (stacks)."""
    if instances.ndim == 3:
        frame = np.ones(instances.shape[1:], bool)
        frame[width:-width, width:-width] = False
        return instances[~(instances & frame).reshape(len(instances), -1).any(1)]
    edge = np.concatenate([instances[:width].ravel(), instances[-width:].ravel(),
                           instances[:, :width].ravel(), instances[:, -width:].ravel()])
    drop = np.unique(edge)
    out = instances.copy()
    if drop.size and drop.max() > 0:
        lut = np.ones(int(instances.max()) + 1, bool)
        lut[drop] = False
        lut[0] = True
        out[~lut[instances]] = 0
    return relabel(out)


def count(instances: np.ndarray) -> int:
    """Number of instances of a relabelled label image or a stack."""
    return len(instances) if instances.ndim == 3 else int(instances.max(initial=0))


def overlaps(gt: np.ndarray, pred: np.ndarray, chunk_rows: int = 1024) -> Overlaps:
    """Pairwise overlaps of two instance sets of the same image.

    Label images (ids must be consecutive, see :func:`relabel`) are scanned once: the pair
    code ``gt * (n_pred + 1) + pred`` of every pixel is run-length compressed row block by row
    block, so work grows with the number of runs, not of pixel pairs. Stacks (N, H, W) use
    a sparse product of the flattened masks.
    """
    if gt.shape[-2:] != pred.shape[-2:]:
        raise ValueError(f"ground truth {gt.shape[-2:]} and prediction {pred.shape[-2:]} differ in size")
    if gt.ndim == 3 or pred.ndim == 3:
        return _overlaps_masks(_as_stack(gt), _as_stack(pred))
    n_gt, n_pred = count(gt), count(pred)
    base = n_pred + 1
    codes, lengths = [], []
    for start in range(0, gt.shape[0], chunk_rows):
        code = gt[start:start + chunk_rows].astype(np.int64).ravel() * base + pred[start:start + chunk_rows].ravel()
        change = np.flatnonzero(code[1:] != code[:-1]) + 1
        starts = np.concatenate(([0], change))
        codes.append(code[starts])
        lengths.append(np.diff(np.concatenate((starts, [code.size]))))
    code = np.concatenate(codes)
    length = np.concatenate(lengths)
    uniq, inverse = np.unique(code, return_inverse=True)
    pixels = np.bincount(inverse, weights=length).astype(np.int64)
    g, p = uniq // base, uniq % base
    area_gt = np.bincount(g, weights=pixels, minlength=n_gt + 1)[1:].astype(np.int64)
    area_pred = np.bincount(p, weights=pixels, minlength=n_pred + 1)[1:].astype(np.int64)
    both = (g > 0) & (p > 0)
    return Overlaps(g[both] - 1, p[both] - 1, pixels[both], area_gt, area_pred)


def _as_stack(instances: np.ndarray) -> np.ndarray:
    if instances.ndim == 3:
        return instances.astype(bool, copy=False)
    n = count(instances)
    return np.stack([instances == i for i in range(1, n + 1)]) if n else np.zeros((0, *instances.shape), bool)


def _overlaps_masks(gt: np.ndarray, pred: np.ndarray) -> Overlaps:
    g = sparse.csr_matrix(gt.reshape(len(gt), -1), dtype=np.int64)
    p = sparse.csr_matrix(pred.reshape(len(pred), -1), dtype=np.int64)
    inter = (g @ p.T).tocoo()
    return Overlaps(inter.row.astype(np.int64), inter.col.astype(np.int64), inter.data.astype(np.int64),
                    np.asarray(g.sum(1)).ravel(), np.asarray(p.sum(1)).ravel())


def match(ov: Overlaps, threshold: float = 0.5) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One-to-one matching of the pairs with IoU >= ``threshold``.

    Returns the matched ground-truth indices, predicted indices and their IoUs. The number of
    matches is maximal; ties are broken by the summed IoU. The candidate graph is split into
    connected components and each is solved by ``scipy.optimize.linear_sum_assignment`` on
    the official cost ``-(iou >= t) - iou / (2 n)``; at thresholds >= 0.5 almost every
    component is a single pair.
    """
    iou = ov.iou
    keep = iou >= threshold
    gi, pj, w = ov.gt[keep], ov.pred[keep], iou[keep]
    if gi.size == 0:
        return gi, pj, w
    ug, g_idx = np.unique(gi, return_inverse=True)
    up, p_idx = np.unique(pj, return_inverse=True)
    graph = sparse.coo_matrix((np.ones(gi.size), (g_idx, len(ug) + p_idx)), shape=(len(ug) + len(up),) * 2)
    _, comp = connected_components(graph, directed=False)
    edge_comp = comp[g_idx]
    sizes = np.bincount(edge_comp)
    single = sizes[edge_comp] == 1
    out_g, out_p, out_w = [gi[single]], [pj[single]], [w[single]]
    for c in np.unique(edge_comp[~single]):
        sel = np.flatnonzero(edge_comp == c)
        rows, r = np.unique(g_idx[sel], return_inverse=True)
        cols, k = np.unique(p_idx[sel], return_inverse=True)
        m = np.zeros((len(rows), len(cols)))
        m[r, k] = w[sel]
        n_min = min(m.shape)
        ri, ci = linear_sum_assignment(-(m >= threshold).astype(float) - m / (2 * n_min))
        ok = m[ri, ci] >= threshold
        out_g.append(ug[rows[ri[ok]]])
        out_p.append(up[cols[ci[ok]]])
        out_w.append(m[ri[ok], ci[ok]])
    return np.concatenate(out_g), np.concatenate(out_p), np.concatenate(out_w)


def image_dice(gt: np.ndarray, pred: np.ndarray) -> float:
    """Foreground Dice of the union of instances (the challenge's per-image "dice" column)."""
    a = gt.any(0) if gt.ndim == 3 else gt > 0
    b = pred.any(0) if pred.ndim == 3 else pred > 0
    na, nb = np.count_nonzero(a), np.count_nonzero(b)
    if na == 0:
        return 1.0 if nb == 0 else 0.0
    return 2.0 * np.count_nonzero(a & b) / (na + nb)
