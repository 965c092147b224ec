"""The U-Net++ baseline of Table 1 (Ngo et al. [15] in the spheroid paper) and its instances.

Nguyen et al. 2024 compare with "Ngo TKN [15]", a U-Net++ (Zhou et al. 2018) semantic
segmentation network, "implemented under similar backbones". This module builds it from MONAI's
``BasicUNetPlusPlus`` with a per-pixel softmax over the 4 classes (background, invasive area,
spheroid core, single cell), and turns its probability maps into scored instances for the COCO
AP of Table 1 (:func:`instances_from_probs`).

Differences and choices (the paper does not say):

* backbones: MONAI's U-Net++ has its own plain convolutional encoder; the ResNet/ResNeXt
  encoders of Table 1's U-Net++ rows are not available in it, so one encoder serves all four
  rows. :data:`SMALL_FEATURES` is the reduced, CPU-feasible width;
* one network for the three classes (Ngo et al. train one model per class and the paper
  compares only the invasive-area model; the COCO AP of Table 1 is over the three classes);
* instances: the connected components (8-connectivity) of each class in the per-pixel argmax,
  scored by the mean probability of that class over the component; a semantic model has no
  instance score of its own, and this one ranks confident components first.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from monai.networks.nets import BasicUNetPlusPlus
from scipy import ndimage as ndi
from skimage.measure import label as connected_components

#: MONAI's default widths (the five encoder levels and the last decoder level).
FEATURES = (32, 32, 64, 128, 256, 32)
#: The reduced variant for a CPU budget.
SMALL_FEATURES = (8, 8, 16, 32, 64, 8)


def build_unetpp(in_channels: int = 1, num_classes: int = 4, features: Sequence[int] = FEATURES,
                 deep_supervision: bool = False) -> BasicUNetPlusPlus:
    """A randomly initialised 2D U-Net++ (MONAI ``BasicUNetPlusPlus``) giving ``num_classes`` logits per pixel.

    Its forward returns a *list* of (B, num_classes, H, W) logits: the full-depth output last,
    and with ``deep_supervision`` the three shallower ones before it. Sides should be multiples of 16.
    """
    if len(features) != 6:
        raise ValueError(f"features needs 6 widths (5 encoder levels, 1 decoder), got {tuple(features)}")
    return BasicUNetPlusPlus(spatial_dims=2, in_channels=in_channels, out_channels=num_classes,
                             features=tuple(features), deep_supervision=deep_supervision)


def unetpp_loss(outputs: Sequence[torch.Tensor] | torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Per-pixel softmax cross entropy against a (B, H, W) class map, averaged over the outputs
    (U-Net++'s deep supervision averages its heads' losses)."""
    outputs = [outputs] if isinstance(outputs, torch.Tensor) else list(outputs)
    return torch.stack([F.cross_entropy(o, target.long()) for o in outputs]).mean()


def unetpp_probs(model: BasicUNetPlusPlus, x: torch.Tensor) -> torch.Tensor:
    """(B, C, H, W) class probabilities (softmax of the full-depth output) of a (B, in, H, W) batch."""
    return torch.softmax(model(x)[-1], dim=1)


def instances_from_probs(probs: np.ndarray | torch.Tensor, min_pixels: int = 1) -> dict[str, np.ndarray]:
    """Scored instances of a (C, H, W) probability map, class 0 the background.

    Each foreground class's connected components (8-connectivity) in the per-pixel argmax are
    its instances (those under ``min_pixels`` dropped); an instance's score is the mean
    probability of its class over its pixels.

    Returns:
        ``masks`` (N, H, W) bool, ``classes`` (N,) int64, ``scores`` (N,) float64: by class,
        then in raster order of the components; ready for :func:`cellrepro.metrics.coco_ap`
        (``preds``, ``scores``, ``pred_classes``).

    >>> p = np.zeros((2, 3, 5)); p[0] = 1                   # background everywhere, but
    >>> p[:, :, 1:3] = np.array([0.2, 0.8])[:, None, None]  # a 3 x 2 block of class 1 at 0.8
    >>> p[:, 0, 4] = 0.4, 0.6                               # and one pixel of it at 0.6
    >>> inst = instances_from_probs(p)
    >>> inst["classes"].tolist(), inst["scores"].round(3).tolist()
    ([1, 1], [0.8, 0.6])
    """
    probs = probs.detach().cpu().numpy() if isinstance(probs, torch.Tensor) else np.asarray(probs)
    if probs.ndim != 3 or probs.shape[0] < 2:
        raise ValueError(f"probs must be (C, H, W) with C >= 2 classes, got shape {probs.shape}")
    winner = probs.argmax(0)
    masks, classes, scores = [], [], []
    for c in range(1, probs.shape[0]):
        comp = connected_components(winner == c, connectivity=2)
        ids = np.arange(1, comp.max() + 1)
        if not ids.size:
            continue
        sizes = np.bincount(comp.ravel(), minlength=ids.size + 1)[1:]
        ids = ids[sizes >= min_pixels]
        masks.extend(comp == i for i in ids)
        classes.extend([c] * len(ids))
        scores.extend(np.atleast_1d(ndi.mean(probs[c], comp, ids)) if ids.size else [])
    shape = probs.shape[1:]
    return {"masks": np.stack(masks) if masks else np.zeros((0, *shape), bool),
            "classes": np.asarray(classes, np.int64), "scores": np.asarray(scores, np.float64)}


__all__ = ["FEATURES", "SMALL_FEATURES", "build_unetpp", "instances_from_probs", "unetpp_loss", "unetpp_probs"]
