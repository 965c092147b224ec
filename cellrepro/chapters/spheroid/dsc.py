"""DSCMask R-CNN: weak-to-strong mask consistency (spheroid paper, Sec. 3.2, Eq. 12-14).

Nguyen et al. 2024 train Mask R-CNN on SBS-stacked images (top-k slices, labelled: the *weak*
view) and add a consistency term on all-slice stacks of the same scenes (the *strong* view):

    L = L_MaskRCNN + lambda * L_u                                              (Eq. 14)
    L_MaskRCNN = L_cls + L_box + L_mask                                        (Eq. 12)
    L_u = 1/B_u sum 1(max(p_w) >= tau) H(p_w, p_s)                             (Eq. 13)

with lambda = 0.1 (Sec. 4.2). How this module reads Eq. 13 (the paper gives no more detail):

* targets ``p_w``: the model's own detections on the weak view, in eval mode and without
  gradient (:func:`weak_detections`): boxes, classes and the 28 x 28 mask probabilities of the
  detected class. Detections scoring below ``score_threshold`` (default 0.5; the paper names no
  score threshold, only the pixel one) are not targets;
* student ``p_s``: mask probabilities for the *same boxes* from the strong view's features,
  with gradient (:func:`student_mask_probs`: backbone -> ``mask_roi_pool`` -> ``mask_head`` ->
  ``mask_predictor``, the channel of the detected class). Both views share one pixel grid,
  so a weak box is also where the object lies in the strong view;
* both are pasted into the image with torchvision's ``paste_masks_in_image`` (differentiable
  for the student), so each pixel counts once whatever the box size;
* the pixels considered are, per detection, those whose centre lies inside its box
  (:func:`box_pixels`): outside, both pasted masks are 0 by construction and would only dilute
  the mean by an amount that depends on the image size. Each detection is its own binary
  problem (the mask head predicts per box), so overlapping boxes count a pixel once per box;
* ``H`` is the binary cross entropy with the soft target ``p_w`` (Eq. 13 has no hat, i.e.
  no argmax; ``hard=True`` gives FixMatch's rounded pseudo-label), and a pixel enters where
  ``max(p_w, 1 - p_w) >= tau`` (the binary form of ``max(p_w)``);
* "1/B_u sum" read literally (a sum over pixels per image) would scale with the image size and
  make lambda meaningless across resolutions, so the sum is averaged over pixels:
  ``normalize="all"`` (default) divides by every pixel considered, the masked ones counting
  zero, which is FixMatch's convention (Sohn et al. 2020, whose Eq. 4 Eq. 13 copies, with
  ``B_u`` counting all unlabelled units, not only the confident ones): the term grows as the
  model grows confident. ``normalize="confident"`` divides by the confident pixels only (the
  mean loss per confident pixel, constant scale from the first step);
* tau: the paper does not give it; :data:`TAU` = 0.95 is FixMatch's (and UniMatch's) value.
"""

from __future__ import annotations

import contextlib

from typing import Mapping, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torchvision.models.detection import MaskRCNN
from torchvision.models.detection.roi_heads import paste_masks_in_image

#: Pixel confidence threshold of Eq. 13 (not given in the paper; FixMatch's value).
TAU = 0.95
#: Weight of the consistency term, Eq. 14 (Sec. 4.2: "fixed lambda = 0.1").
LAMBDA = 0.1
#: Normalisations of Eq. 13's "1/B_u sum", see the module docstring.
NORMALIZE = ("all", "confident")


def consistency_loss(p_weak: torch.Tensor, p_strong: torch.Tensor, tau: float = TAU, normalize: str = "all",
                     considered: torch.Tensor | None = None, hard: bool = False) -> torch.Tensor:
    """Eq. 13 on pixel probabilities: thresholded binary cross entropy of ``p_strong`` against ``p_weak``.

    Args:
        p_weak: target probabilities, any shape; detached (no gradient flows into the target).
        p_strong: student probabilities, the same shape.
        tau: a pixel enters where ``max(p_weak, 1 - p_weak) >= tau``.
        normalize: ``"all"``: divide by the number of pixels considered (masked pixels count as
            zero); ``"confident"``: by the number of confident pixels considered.
        considered: boolean mask of the pixels that take part (default: all).
        hard: use ``p_weak >= 0.5`` as the target instead of ``p_weak``.

    Returns:
        A scalar; 0 (with a graph to ``p_strong``) when no pixel is considered or confident.

    With ``tau = 0.5`` every pixel is confident, and both normalisations give the plain mean
    binary cross entropy:

    >>> pw, ps = torch.tensor([0.9, 0.3, 0.6]), torch.tensor([0.7, 0.4, 0.5])
    >>> bce = F.binary_cross_entropy(ps, pw)
    >>> bool(torch.isclose(consistency_loss(pw, ps, 0.5, "all"), bce))
    True
    >>> bool(torch.isclose(consistency_loss(pw, ps, 0.5, "confident"), bce))
    True
    """
    if normalize not in NORMALIZE:
        raise ValueError(f"normalize must be one of {NORMALIZE}, got {normalize!r}")
    if not 0.5 <= tau <= 1.0:
        raise ValueError(f"tau must lie in [0.5, 1] (max(p, 1 - p) is never below 0.5), got {tau}")
    if p_weak.shape != p_strong.shape:
        raise ValueError(f"p_weak {tuple(p_weak.shape)} and p_strong {tuple(p_strong.shape)} differ in shape")
    p_weak = p_weak.detach()
    if considered is None:
        considered = torch.ones_like(p_weak, dtype=torch.bool)
    elif considered.shape != p_weak.shape:
        raise ValueError(f"considered {tuple(considered.shape)} must have the shape of p_weak {tuple(p_weak.shape)}")
    confident = considered.bool() & (torch.maximum(p_weak, 1 - p_weak) >= tau)
    target = (p_weak >= 0.5).to(p_strong.dtype) if hard else p_weak.to(p_strong.dtype)
    terms = F.binary_cross_entropy(p_strong, target, reduction="none")
    total = torch.where(confident, terms, torch.zeros_like(terms)).sum()
    count = (considered.bool() if normalize == "all" else confident).sum()
    return total / count.clamp(min=1)


def box_pixels(boxes: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """(N, H, W) bool: the pixels whose centre lies inside each ``x0, y0, x1, y1`` box.

    >>> box_pixels(torch.tensor([[0.4, 0.0, 2.6, 1.0]]), (2, 4)).int().tolist()
    [[[1, 1, 1, 0], [0, 0, 0, 0]]]
    """
    h, w = size
    ys = torch.arange(h, device=boxes.device, dtype=boxes.dtype) + 0.5
    xs = torch.arange(w, device=boxes.device, dtype=boxes.dtype) + 0.5
    inside_x = (xs[None] >= boxes[:, 0:1]) & (xs[None] < boxes[:, 2:3])  # (N, W)
    inside_y = (ys[None] >= boxes[:, 1:2]) & (ys[None] < boxes[:, 3:4])  # (N, H)
    return inside_y[:, :, None] & inside_x[:, None, :]


def paste_probabilities(masks: torch.Tensor, boxes: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """(N, H, W) image-sized maps of (N, M, M) box-relative mask probabilities: torchvision's
    ``paste_masks_in_image`` (the step that gives Mask R-CNN's output masks), which is
    differentiable in ``masks``."""
    if len(masks) == 0:
        return masks.new_zeros((0, *size))
    return paste_masks_in_image(masks.reshape(len(masks), 1, *masks.shape[-2:]), boxes, size)[:, 0]


def weak_detections(model: MaskRCNN, images: Sequence[torch.Tensor], score_threshold: float = 0.5
                    ) -> list[dict[str, torch.Tensor]]:
    """The targets of Eq. 13: the model's own detections on the weak view, in eval mode, no gradient.

    Returns per image ``boxes`` (N, 4) in the transformed image's coordinates (the input's with
    :class:`~cellrepro.nets.maskrcnn.NoResizeTransform`), ``labels`` (N,), ``scores`` (N,) and
    ``masks`` (N, 28, 28): the box-relative mask probabilities of the detected class (torchvision's
    ``roi_heads`` output before pasting), keeping detections scoring at least ``score_threshold``.
    The model's train/eval mode is restored.
    """
    was_training, heads = model.training, model.roi_heads
    floor = heads.score_thresh
    model.eval()
    # Boxes scoring below score_threshold are dropped before NMS and the mask head instead of
    # after: NMS only lets a box suppress lower-scoring ones, so the detections kept are the same,
    # and the mask head (most of the cost while an untrained model emits hundreds of weak boxes)
    # runs only on them. roi_heads keeps scores > score_thresh (float32), hence the next float32 below.
    if score_threshold > floor:
        heads.score_thresh = float(np.nextafter(np.float32(score_threshold), np.float32(-np.inf)))
    try:
        with torch.no_grad():
            batch, _ = model.transform(list(images))
            features = model.backbone(batch.tensors)
            proposals, _ = model.rpn(batch, features)
            detections, _ = model.roi_heads(features, proposals, batch.image_sizes)
    finally:
        heads.score_thresh = floor
        model.train(was_training)
    out = []
    for d in detections:
        keep = d["scores"] >= score_threshold
        out.append({"boxes": d["boxes"][keep], "labels": d["labels"][keep], "scores": d["scores"][keep],
                    "masks": d["masks"][keep, 0]})
    return out


@contextlib.contextmanager
def _running_stats_kept(module: torch.nn.Module):
    """BatchNorm layers normalise with the batch's statistics as usual, but their running
    statistics are put back afterwards: the student's pass on the strong view must not move the
    statistics the model is evaluated with, or a DSC arm would differ from its baseline even
    with lambda = 0 (the paper's pretrained backbones keep BatchNorm frozen, MMDetection's
    ``norm_eval``; ours learn from random weights and need running statistics from the weak
    views the baseline sees)."""
    norms = [m for m in module.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)
             and m.track_running_stats and m.training]
    names = ("running_mean", "running_var", "num_batches_tracked")
    kept = [[getattr(m, n) for n in names] for m in norms]
    for m, buffers in zip(norms, kept):  # the pass updates copies (autograd may keep them for backward)
        for n, b in zip(names, buffers):
            setattr(m, n, b.clone())
    try:
        yield
    finally:
        for m, buffers in zip(norms, kept):
            for n, b in zip(names, buffers):
                setattr(m, n, b)


def student_mask_probs(model: MaskRCNN, images: Sequence[torch.Tensor], boxes: Sequence[torch.Tensor],
                       labels: Sequence[torch.Tensor]) -> tuple[list[torch.Tensor], list[tuple[int, int]]]:
    """The student of Eq. 13: mask probabilities (N_i, 28, 28) of class ``labels`` for ``boxes``
    from the features of ``images`` (the strong view), with gradient, in the model's current mode.

    Returns the per-image probabilities and the transformed image sizes (where to paste them).
    """
    batch, _ = model.transform(list(images))
    counts = [len(b) for b in boxes]
    if sum(counts) == 0:
        return [batch.tensors.new_zeros((0, 28, 28)) for _ in boxes], batch.image_sizes
    with _running_stats_kept(model.backbone):
        features = model.backbone(batch.tensors)
    heads = model.roi_heads
    x = heads.mask_predictor(heads.mask_head(heads.mask_roi_pool(features, list(boxes), batch.image_sizes)))
    cls = torch.cat(list(labels))
    probs = x[torch.arange(len(cls), device=x.device), cls].sigmoid()
    return list(probs.split(counts)), batch.image_sizes


def dsc_loss(model: MaskRCNN, strong_images: Sequence[torch.Tensor], detections: Sequence[Mapping[str, torch.Tensor]],
             tau: float = TAU, normalize: str = "all", hard: bool = False, stats: dict | None = None) -> torch.Tensor:
    """L_u of Eq. 13 for a batch: :func:`student_mask_probs` on ``strong_images`` for the boxes of
    ``detections`` (from :func:`weak_detections`), both pasted (:func:`paste_probabilities`), the
    pixels inside each box considered (:func:`box_pixels`), then :func:`consistency_loss` over
    the whole batch. 0 when there is no detection.

    ``stats``, if given, receives how much the term acts (did the treatment engage?):
    ``dsc_detections`` (weak-view detections per image that became targets) and
    ``dsc_confident`` (share of the strong images' pixels that enter Eq. 13: inside a target box
    and confident at ``tau`` for at least one target) and ``dsc_box_share`` (share of the
    (target, pixel) pairs inside the target boxes that enter Eq. 13: the registered spheroid-C6
    gate's "mask pixels with non-zero consistency loss"; 0 when there is no target)."""
    if len(strong_images) != len(detections):
        raise ValueError(f"strong_images has {len(strong_images)} images but detections {len(detections)}")
    student, sizes = student_mask_probs(model, strong_images, [d["boxes"] for d in detections],
                                        [d["labels"] for d in detections])
    weak, strong, considered, active = [], [], [], 0
    for d, p, size in zip(detections, student, sizes):
        w, inside = paste_probabilities(d["masks"], d["boxes"], size), box_pixels(d["boxes"], size)
        active += int((inside & (torch.maximum(w, 1 - w) >= tau)).any(0).sum()) if stats is not None else 0
        weak.append(w.flatten())
        strong.append(paste_probabilities(p, d["boxes"], size).flatten())
        considered.append(inside.flatten())
    weak_all, considered_all = torch.cat(weak), torch.cat(considered)
    if stats is not None:  # image pixels confident in at least one target box; box pixels that enter Eq. 13
        stats["dsc_detections"] = sum(len(d["boxes"]) for d in detections) / max(len(detections), 1)
        stats["dsc_confident"] = active / max(sum(h * w for h, w in sizes), 1)
        entering = considered_all & (torch.maximum(weak_all, 1 - weak_all) >= tau)
        stats["dsc_box_share"] = float(entering.sum()) / max(int(considered_all.sum()), 1)
    return consistency_loss(weak_all, torch.cat(strong), tau, normalize, considered_all, hard)


def dsc_step(model: MaskRCNN, weak_images: Sequence[torch.Tensor], targets: Sequence[Mapping[str, torch.Tensor]],
             strong_images: Sequence[torch.Tensor], tau: float = TAU, lam: float = LAMBDA, normalize: str = "all",
             score_threshold: float = 0.5, hard: bool = False, stats: dict | None = None) -> dict[str, torch.Tensor]:
    """The loss terms of one DSCMask R-CNN training step (Eq. 14); the model is put in train mode.

    Args:
        model: a torchvision ``MaskRCNN`` (e.g. :func:`~cellrepro.nets.maskrcnn.build_spheroid_maskrcnn`).
        weak_images: (C, H, W) SBS-stacked images, the labelled weak view.
        targets: their detection targets (``boxes``, ``labels``, ``masks``), see
            :func:`~cellrepro.nets.maskrcnn.instance_targets`.
        strong_images: (C, H, W) all-slice stacks of the same scenes, on the same pixel grid.
        tau, normalize, hard: as in :func:`consistency_loss`.
        lam: lambda of Eq. 14.
        score_threshold: detections on the weak view scoring below it are not targets.
        stats: filled with how much the consistency term acts, as :func:`dsc_loss` says.

    Returns:
        torchvision's supervised terms (``loss_classifier``, ``loss_box_reg``, ``loss_mask``,
        ``loss_objectness``, ``loss_rpn_box_reg``: Eq. 12) and ``loss_consistency`` =
        ``lam * L_u``; the values sum to Eq. 14's L (``ctx.optimize`` of
        :func:`cellrepro.engine.train.fit` back-propagates that sum).
    """
    if not len(weak_images) == len(targets) == len(strong_images):
        raise ValueError(f"weak_images ({len(weak_images)}), targets ({len(targets)}) and strong_images "
                         f"({len(strong_images)}) must have one entry per scene")
    for i, (w, s) in enumerate(zip(weak_images, strong_images)):
        if w.shape != s.shape:
            raise ValueError(f"scene {i}: the strong view {tuple(s.shape)} must share the weak view's "
                             f"pixel grid {tuple(w.shape)}")
    if lam < 0:
        raise ValueError(f"lam must be >= 0, got {lam}")
    detections = weak_detections(model, weak_images, score_threshold)
    model.train()
    losses = model(list(weak_images), [dict(t) for t in targets])
    losses["loss_consistency"] = lam * dsc_loss(model, strong_images, detections, tau, normalize, hard, stats)
    return losses


__all__ = ["LAMBDA", "NORMALIZE", "TAU", "box_pixels", "consistency_loss", "dsc_loss", "dsc_step",
           "paste_probabilities", "student_mask_probs", "weak_detections"]
