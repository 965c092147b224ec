"""SSC self-training: pick the reliable few-slice stacks by checkpoint agreement (spheroid paper, Sec. 3.3).

Nguyen et al. 2024 adapt ST++ (Yang et al., CVPR 2022): save K checkpoints while training
(at E/3, 2E/3 and E epochs, :func:`checkpoint_epochs`), predict every unlabelled n-slice stacked
image ``u_i^n`` with each, and score its stability

    s_i^n = sum_{j=1}^{K-1} meanIOU(M_ij^n, M_iK^n)          (Sec. 3.3, unnumbered)

then keep ``r_i = {u_i^n | s_i^n > tau}`` with tau = 0.8 for re-training on pseudo-labels.

Choices where the paper is ambiguous:

* aggregate: the paper writes a *sum* over the K - 1 earlier checkpoints, which lies in
  [0, K - 1]; with K = 3 and tau = 0.8 it keeps images whose checkpoints agree only at 40%.
  ST++, where the paragraph comes from, takes the *mean*, which lies in [0, 1] like tau, so
  ``aggregate="mean"`` is the default; ``"sum"`` is the literal formula (equal for K = 2).
* meanIOU: ST++'s ``meanIOU``: the per-class IoU of the two *semantic* maps (instances painted
  into per-pixel class maps, :func:`detection_class_map`), averaged over the classes present in
  either map, background included (``background=True``; ST++ counts it as a class). When no
  class is present in either map (possible only with ``background=False`` and two empty maps)
  the two checkpoints agree on everything, and the score is 1.
* tau is strict (``s > tau``), as written.
* the pseudo-labels are the last checkpoint's predictions (ST++'s), painted into disjoint
  instances like ground truth (:func:`pseudo_targets`).
"""

from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np
import torch

from ...nets.maskrcnn import instance_targets, paint_detections

#: Stability threshold (Sec. 3.3: "We set tau = 0.8 for all of our experiments").
TAU = 0.8
#: Ways of combining the K - 1 checkpoint agreements, see the module docstring.
AGGREGATES = ("mean", "sum")


def checkpoint_epochs(epochs: int, k: int = 3) -> list[int]:
    """The epochs after which the K checkpoints are saved: ``round(j * epochs / k)``, j = 1..k
    (E/3, 2E/3, E for the paper's k = 3).

    >>> checkpoint_epochs(100)
    [33, 67, 100]
    """
    if k < 2:
        raise ValueError(f"k must be >= 2 (the last checkpoint is compared with earlier ones), got {k}")
    if epochs < k:
        raise ValueError(f"epochs must be >= k = {k} to give distinct checkpoints, got {epochs}")
    return [int(np.floor(j * epochs / k + 0.5)) for j in range(1, k + 1)]


def class_map(labels: np.ndarray, classes: Mapping[int, int]) -> np.ndarray:
    """(H, W) int64 per-pixel class map of an instance label image and its ``{id: class}`` (0 background).

    >>> class_map(np.array([[0, 1, 2]]), {1: 3, 2: 1}).tolist()
    [[0, 3, 1]]
    """
    labels = np.asarray(labels)
    missing = sorted(set(np.unique(labels[labels > 0]).tolist()) - set(classes))
    if missing:
        raise ValueError(f"classes has no class for instance ids {missing[:5]} of labels")
    lut = np.zeros(int(labels.max(initial=0)) + 1, np.int64)
    for i, c in classes.items():
        if 0 < int(i) < len(lut):
            lut[int(i)] = int(c)
    return lut[labels]


def _painted(prediction: Mapping[str, torch.Tensor], score_threshold: float, mask_threshold: float,
             min_pixels: int) -> tuple[np.ndarray, dict[int, int]]:
    """Disjoint instance labels of a detection dict and the class of each label."""
    labels, source = paint_detections(prediction["scores"], prediction["masks"], score_threshold, mask_threshold,
                                      min_pixels)
    cls = torch.as_tensor(prediction["labels"]).cpu().numpy()
    return labels, {k + 1: int(cls[s]) for k, s in enumerate(source)}


def detection_class_map(prediction: Mapping[str, torch.Tensor], score_threshold: float = 0.5,
                        mask_threshold: float = 0.5, min_pixels: int = 1) -> np.ndarray:
    """(H, W) class map of a Mask R-CNN output dict (``scores``, ``labels``, ``masks`` (N, 1, H, W)):
    detections scoring >= ``score_threshold``, masks binarised at ``mask_threshold``, higher
    scores painted on top (:func:`~cellrepro.nets.maskrcnn.paint_detections`)."""
    return class_map(*_painted(prediction, score_threshold, mask_threshold, min_pixels))


def mean_iou(a: np.ndarray, b: np.ndarray, background: bool = True) -> float:
    """ST++'s meanIOU of two class maps: the IoU of each class present in either, averaged.

    Args:
        a, b: (H, W) non-negative integer class maps (0 background).
        background: count class 0 as a class (ST++ does).

    Returns:
        The mean IoU; 1.0 when no class is present in either map (both empty, ``background=False``).

    >>> a, b = np.array([[1, 1, 0, 0]]), np.array([[1, 0, 0, 0]])
    >>> mean_iou(a, b), mean_iou(a, b, background=False)  # (2/3 + 1/2) / 2 and 1/2
    (0.5833333333333333, 0.5)
    """
    a, b = np.asarray(a), np.asarray(b)
    if a.shape != b.shape:
        raise ValueError(f"class maps differ in shape: {a.shape} and {b.shape}")
    if a.size and min(a.min(), b.min()) < 0:
        raise ValueError("class maps must be non-negative integers (0 = background)")
    n = int(max(a.max(initial=0), b.max(initial=0))) + 1
    counts = np.bincount(a.ravel().astype(np.int64) * n + b.ravel().astype(np.int64), minlength=n * n).reshape(n, n)
    inter = np.diag(counts)
    union = counts.sum(0) + counts.sum(1) - inter
    present = union > 0
    if not background:
        present[0] = False
    return float(np.mean(inter[present] / union[present])) if present.any() else 1.0


def stability(maps: Sequence[np.ndarray], aggregate: str = "mean", background: bool = True) -> float:
    """s_i of Sec. 3.3: the agreement of each earlier checkpoint's class map with the last one's.

    Args:
        maps: the K >= 2 class maps of one image, in checkpoint order (the last is the reference).
        aggregate: ``"mean"`` (default, ST++) or ``"sum"`` (the paper's formula) over the K - 1
            :func:`mean_iou` values.
        background: passed to :func:`mean_iou`.

    >>> m = np.array([[0, 1], [2, 2]])
    >>> stability([m, m, m]), stability([m, m, m], "sum")
    (1.0, 2.0)
    """
    if aggregate not in AGGREGATES:
        raise ValueError(f"aggregate must be one of {AGGREGATES}, got {aggregate!r}")
    if len(maps) < 2:
        raise ValueError(f"maps needs the class maps of K >= 2 checkpoints, got {len(maps)}")
    ious = [mean_iou(m, maps[-1], background) for m in maps[:-1]]
    return float(np.mean(ious) if aggregate == "mean" else np.sum(ious))


def reliable(scores: Sequence[float] | np.ndarray, tau: float = TAU) -> np.ndarray:
    """Indices of the images with stability ``s > tau`` (strict, Sec. 3.3), most stable first
    (ties in index order).

    >>> reliable([0.8, 0.95, 0.81, 0.5]).tolist()
    [1, 2]
    """
    s = np.asarray(scores, float).ravel()
    if np.isnan(s).any():
        raise ValueError(f"scores must not be NaN (images {np.flatnonzero(np.isnan(s))[:5].tolist()})")
    idx = np.flatnonzero(s > tau)
    return idx[np.argsort(-s[idx], kind="stable")]


def select_reliable(predictions: Sequence[Sequence[Mapping[str, torch.Tensor]]], tau: float = TAU,
                    aggregate: str = "mean", background: bool = True, score_threshold: float = 0.5,
                    mask_threshold: float = 0.5) -> tuple[np.ndarray, np.ndarray]:
    """The SSC selection: ``predictions[j][i]`` is checkpoint j's Mask R-CNN output for unlabelled
    image i (checkpoints in training order). Returns :func:`reliable` indices and every image's
    :func:`stability`."""
    if len(predictions) < 2 or len({len(p) for p in predictions}) != 1:
        raise ValueError(f"predictions needs K >= 2 checkpoints with one output per image each, got "
                         f"{[len(p) for p in predictions]}")
    scores = np.array([stability([detection_class_map(p[i], score_threshold, mask_threshold) for p in predictions],
                                 aggregate, background) for i in range(len(predictions[0]))])
    return reliable(scores, tau), scores


def pseudo_targets(prediction: Mapping[str, torch.Tensor], score_threshold: float = 0.5,
                   mask_threshold: float = 0.5, min_pixels: int = 8) -> dict[str, torch.Tensor]:
    """A re-training target (``boxes``, ``labels``, ``masks``, as
    :func:`~cellrepro.nets.maskrcnn.instance_targets`) from a Mask R-CNN output: disjoint
    instances painted by score (:func:`~cellrepro.nets.maskrcnn.paint_detections`), with tight
    boxes of those masks and the detected classes."""
    return instance_targets(*_painted(prediction, score_threshold, mask_threshold, min_pixels))


__all__ = ["AGGREGATES", "TAU", "checkpoint_epochs", "class_map", "detection_class_map", "mean_iou",
           "pseudo_targets", "reliable", "select_reliable", "stability"]
