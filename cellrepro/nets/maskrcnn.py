"""A small Mask R-CNN trained from scratch: the instance-segmentation baseline of the MMCS paper.

He et al., "Mask R-CNN", ICCV 2017: a region-proposal network on a feature pyramid, then per
proposal a box head (class, box refinement) and a 28 x 28 mask head. The MMCS paper's Table 2
compares its network against Mask R-CNN; the brightfield chapter reuses the same baseline.

Built from torchvision's ``MaskRCNN``, with these changes for small cell images on a CPU budget:

* backbone: ResNet-18 + FPN on ResNet stages 2-4 (strides 8, 16, 32) and the extra pool level
  (stride 64), from scratch (no weights can be downloaded here), with ordinary trainable
  BatchNorm (torchvision's default frozen BatchNorm keeps untrained statistics, and training
  then diverges to NaN); the first convolution takes ``in_channels`` (2: cytoplasm, nucleus);
* anchors: one size per pyramid level, ``(8, 16, 32, 64)`` pixels, aspect ratios 0.5, 1 and 2;
* no resizing: torchvision resizes every image to 800 pixels, ours are already at the scale the
  model is trained at (96-pixel crops, 192-pixel test images), so :class:`NoResizeTransform`
  only normalises (mean 0.5, std 0.25 per channel, for inputs in [0, 1]) and batches;
* lighter heads, as the default ones cost most of a training step on a CPU (batch 8 of 96-pixel
  crops, 2 busy cores: ~11 s with torchvision's heads, ~2 s with these): 64 sampled proposals per
  image (torchvision: 512), a 256-wide box head (1024), 64-channel mask convolutions (256) and
  one RoIAlign sample per bin (2; cells ~10-30 pixels across span only 2-4 feature pixels at
  stride 8, so one sample per bin already oversamples them);
* 128 sampled anchors per image, 300 proposals kept (train and test), up to 300 detections.

:func:`build_spheroid_maskrcnn` is the spheroid paper's model (Nguyen et al. 2024, Table 1) on
the same design (one private function assembles both): 1 input channel, 4 classes (background,
invasive area, spheroid core, single cell), the FPN on all four ResNet stages (strides 4-64,
:func:`resnet_fpn`) and the paper's backbones R50, R101, X101-32x4d and X101-64x4d
(:data:`~cellrepro.nets.backbones.BACKBONES`, :mod:`cellrepro.nets.backbones`),
plus ResNet-18 as the reduced variant for a CPU. :func:`load_weights` starts a model from a saved
state dict; :func:`detect` and :func:`paint_detections` are the two halves of
:func:`predict_maskrcnn`.
"""

from __future__ import annotations

import os
from typing import Callable, Mapping, Sequence

import numpy as np
import torch
from torch import nn
from torchvision.models.detection import MaskRCNN
from torchvision.models.detection.anchor_utils import AnchorGenerator
from torchvision.models.detection.backbone_utils import BackboneWithFPN
from torchvision.models.detection.faster_rcnn import FastRCNNPredictor, TwoMLPHead
from torchvision.models.detection.mask_rcnn import MaskRCNNHeads, MaskRCNNPredictor
from torchvision.models.detection.transform import GeneralizedRCNNTransform
from torchvision.ops import MultiScaleRoIAlign

from ..data.crops import CropSampler
from ..data.types import CellImage
from ..engine.train import fit, release, seed_everything
from .backbones import BACKBONES, resnet_fpn  # noqa: F401  (BACKBONES: the names build_spheroid_maskrcnn takes)
from .weights import mismatch, read_state_dict

#: Instances cut by a training crop to fewer pixels than this are not targets.
MIN_CROP_PIXELS = 4


class NoResizeTransform(GeneralizedRCNNTransform):
    """torchvision's detection transform without the resize: normalise and batch only."""

    def resize(self, image, target=None):
        return image, target


def _mask_rcnn(body: BackboneWithFPN, in_channels: int, num_classes: int, anchor_sizes: Sequence[int],
               proposals: int, rois: int, mask_channels: int, box_features: int,
               sampling_ratio: int) -> MaskRCNN:
    """torchvision's ``MaskRCNN`` on ``body`` with the light heads and no resizing (module docstring)."""
    levels = len(body.fpn.inner_blocks) + 1  # the FPN's stages and its max-pooled level
    if len(anchor_sizes) != levels:
        raise ValueError(f"anchor_sizes needs one size per pyramid level ({levels}), got {tuple(anchor_sizes)}")
    if num_classes < 2:
        raise ValueError(f"num_classes counts the background and must be >= 2, got {num_classes}")
    c = body.out_channels
    anchors = AnchorGenerator(tuple((s,) for s in anchor_sizes), ((0.5, 1.0, 2.0),) * len(anchor_sizes))
    names = [str(i) for i in range(levels - 1)]
    box_pool, mask_pool = (MultiScaleRoIAlign(names, size, sampling_ratio) for size in (7, 14))
    mean, std = [0.5] * in_channels, [0.25] * in_channels
    model = MaskRCNN(body, num_classes=None, rpn_anchor_generator=anchors, image_mean=mean, image_std=std,
                     box_roi_pool=box_pool, box_head=TwoMLPHead(c * 7 * 7, box_features),
                     box_predictor=FastRCNNPredictor(box_features, num_classes), mask_roi_pool=mask_pool,
                     mask_head=MaskRCNNHeads(c, (mask_channels,) * 4, dilation=1),
                     mask_predictor=MaskRCNNPredictor(mask_channels, mask_channels, num_classes),
                     rpn_batch_size_per_image=128, box_batch_size_per_image=rois, box_detections_per_img=300,
                     rpn_pre_nms_top_n_train=proposals, rpn_post_nms_top_n_train=proposals,
                     rpn_pre_nms_top_n_test=proposals, rpn_post_nms_top_n_test=proposals)
    model.transform = NoResizeTransform(min_size=800, max_size=1333, image_mean=mean, image_std=std)
    return model


def build_maskrcnn(in_channels: int = 2, backbone: str = "resnet18", anchor_sizes: Sequence[int] = (8, 16, 32, 64),
                   proposals: int = 300, rois: int = 64, mask_channels: int = 64, box_features: int = 256,
                   sampling_ratio: int = 1) -> MaskRCNN:
    """A randomly initialised two-class (background, cell) Mask R-CNN, see the module docstring.

    Args:
        in_channels: input channels (the first convolution is replaced when it is not 3).
        backbone: a torchvision ResNet name (``"resnet18"``, ``"resnet50"``, ...).
        anchor_sizes: anchor side in pixels for each of the four pyramid levels.
        proposals: RPN proposals kept before and after NMS, in training and at test.
        rois: proposals sampled per training image for the box and mask heads (a quarter positive).
        mask_channels: width of the mask head's four 3 x 3 convolutions and its upsampling.
        box_features: width of the box head's two fully connected layers.
        sampling_ratio: RoIAlign samples per bin side.

    ``rois=512, mask_channels=256, box_features=1024, sampling_ratio=2`` is He et al.'s model
    (torchvision's defaults).

    Example (the output masks keep the input size: nothing is resized):

    >>> model = build_maskrcnn(in_channels=2).eval()
    >>> out = model([torch.rand(2, 64, 96)])[0]
    >>> out["masks"].shape[1:]
    torch.Size([1, 64, 96])
    """
    body = resnet_fpn(backbone, in_channels, 256, returned_layers=(2, 3, 4))
    return _mask_rcnn(body, in_channels, 2, anchor_sizes, proposals, rois, mask_channels, box_features,
                      sampling_ratio)


#: He et al.'s (and torchvision's, MMDetection's) head sizes, for ``build_spheroid_maskrcnn(**PAPER_HEADS)``.
PAPER_HEADS = {"rois": 512, "mask_channels": 256, "box_features": 1024, "sampling_ratio": 2}
#: The reduced, CPU-feasible variant of :func:`build_spheroid_maskrcnn`: ResNet-18 and a 64-channel FPN.
REDUCED_VARIANT = {"backbone": "r18", "fpn_channels": 64}


def build_spheroid_maskrcnn(backbone: str = "r50", in_channels: int = 1, num_classes: int = 4,
                            weights: str | os.PathLike | None = None, fpn_channels: int = 256,
                            anchor_sizes: Sequence[int] = (8, 16, 32, 64, 128), proposals: int = 300,
                            rois: int = 64, mask_channels: int = 64, box_features: int = 256,
                            sampling_ratio: int = 1) -> MaskRCNN:
    """The spheroid paper's Mask R-CNN (Nguyen et al. 2024, Sec. 3.2, Table 1): ResNet(-Xt) + FPN.

    Table 1's backbones are ``"r50"``, ``"r101"``, ``"x101_32x4d"`` and ``"x101_64x4d"``
    (:data:`BACKBONES`), with the FPN on all four ResNet stages (strides 4-32) plus the pooled
    level (stride 64), as in the paper's MMDetection "R50-FPN". Differences from the paper: no
    ImageNet weights (random init, trainable BatchNorm: see the module docstring); one input
    channel (the stacked DIC image, not RGB); no resizing; anchors ``(8, ..., 128)`` pixels,
    one size per level, for the synthetic 256-pixel scenes (single cells 6-14 pixels across,
    invasive areas up to ~170) instead of MMDetection's 32-512 for 1333 x 800 inputs; the light
    heads of :func:`build_maskrcnn` by default (``**PAPER_HEADS`` restores He et al.'s).
    ``**REDUCED_VARIANT`` (ResNet-18, 64-channel FPN) is the CPU-feasible reduced variant.

    Args:
        backbone: a key of :data:`BACKBONES` (or a torchvision ResNet name).
        in_channels: input channels.
        num_classes: classes including the background (4: background and the three of
            ``cellrepro.data.SPHEROID_CLASSES``).
        weights: path of a state dict of this very model (``torch.save(model.state_dict(), ...)``)
            to start from; None: random initialisation. See :func:`load_weights`.
        fpn_channels: channels of every pyramid level.
        anchor_sizes: anchor side in pixels for each of the five pyramid levels.
        proposals, rois, mask_channels, box_features, sampling_ratio: as in :func:`build_maskrcnn`.

    >>> model = build_spheroid_maskrcnn(**REDUCED_VARIANT).eval()
    >>> out = model([torch.rand(1, 64, 64)])[0]
    >>> out["masks"].shape[1:], model.roi_heads.box_predictor.cls_score.out_features
    (torch.Size([1, 64, 64]), 4)
    """
    body = resnet_fpn(backbone, in_channels, fpn_channels, returned_layers=(1, 2, 3, 4))
    model = _mask_rcnn(body, in_channels, num_classes, anchor_sizes, proposals, rois, mask_channels, box_features,
                       sampling_ratio)
    if weights is not None:
        load_weights(model, weights)
    return model


def load_weights(model: nn.Module, path: str | os.PathLike) -> nn.Module:
    """Load the state dict saved at ``path`` into ``model`` (in place; returns ``model``).

    It must have exactly the model's keys and shapes (:func:`~cellrepro.nets.weights.read_state_dict`
    reads it); otherwise ``FileNotFoundError`` or ``ValueError`` names the file and the keys that are
    missing, unexpected or of another shape.
    """
    state = read_state_dict(path)
    own = model.state_dict()
    missing, unexpected, reshaped = mismatch(own, state)
    if missing or unexpected or reshaped:
        def few(keys: list[str], n: int = 5) -> str:
            return ", ".join(keys[:n]) + (f" and {len(keys) - n} more" if len(keys) > n else "")

        reshaped = [f"{k} (saved {tuple(state[k].shape)}, model {tuple(own[k].shape)})" for k in reshaped]
        problems = [f"{len(missing)} missing keys ({few(missing)})" if missing else "",
                    f"{len(unexpected)} unexpected keys ({few(unexpected)})" if unexpected else "",
                    f"{len(reshaped)} keys of another shape ({few(reshaped, 3)})" if reshaped else ""]
        raise ValueError(f"weights: {path} does not fit this model: " + "; ".join(p for p in problems if p))
    model.load_state_dict(state)
    return model


def _targets(labels: torch.Tensor, min_pixels: int = 1, classes: Mapping[int, int] | None = None
             ) -> dict[str, torch.Tensor]:
    """:func:`instance_targets` of an (H, W) integer tensor, on its device."""
    h, w = labels.shape
    ids = torch.unique(labels)
    ids = ids[ids > 0]
    masks = labels[None] == ids[:, None, None]
    big = masks.flatten(1).sum(1) >= min_pixels
    masks, ids = masks[big], ids[big]
    rows, cols = masks.any(2), masks.any(1)  # (N, H), (N, W)
    ys, xs = torch.arange(h, device=labels.device), torch.arange(w, device=labels.device)
    boxes = torch.stack([torch.where(cols, xs, w).amin(1), torch.where(rows, ys, h).amin(1),
                         torch.where(cols, xs, -1).amax(1) + 1, torch.where(rows, ys, -1).amax(1) + 1], 1)
    if classes is None:
        cls = torch.ones(len(masks), dtype=torch.int64, device=labels.device)
    else:
        unknown = [int(i) for i in ids if int(i) not in classes]
        if unknown:
            raise ValueError(f"classes has no class for instance ids {unknown[:5]} of labels")
        cls = torch.tensor([int(classes[int(i)]) for i in ids], dtype=torch.int64, device=labels.device)
    return {"boxes": boxes.float().reshape(-1, 4), "masks": masks.to(torch.uint8), "labels": cls}


def instance_targets(labels: np.ndarray, classes: Mapping[int, int] | None = None) -> dict[str, torch.Tensor]:
    """torchvision's detection target of an (H, W) instance label image (0 = background).

    Returns ``boxes`` (N, 4) float32 ``x0, y0, x1, y1`` with ``x1``, ``y1`` exclusive, ``labels``
    (N,) int64 (``classes[id]``, all ones when ``classes`` is None) and ``masks`` (N, H, W)
    uint8, one per id present, in increasing id order.

    >>> lab = np.zeros((4, 5), int); lab[1:3, 2:5] = 7
    >>> instance_targets(lab)["boxes"].tolist(), instance_targets(lab, {7: 3})["labels"].tolist()
    ([[2.0, 1.0, 5.0, 3.0]], [3])
    """
    labels = np.asarray(labels)
    if labels.ndim != 2:
        raise ValueError(f"labels must be (H, W), got shape {labels.shape}")
    return _targets(torch.from_numpy(labels.astype(np.int64)), classes=classes)


def train_maskrcnn(images: Sequence[CellImage], to_tensor: Callable[[CellImage], torch.Tensor], steps: int,
                   batch: int, crop: int, seed: int, lr: float = 0.01, device: str = "auto", progress: bool = False,
                   in_channels: int = 2, backbone: str = "resnet18") -> MaskRCNN:
    """Train :func:`build_maskrcnn` on random ``crop`` x ``crop`` crops (flipped at random) of
    labelled ``images``; ``to_tensor`` gives an image's (``in_channels``, H, W) input in [0, 1].

    SGD (momentum 0.9, weight decay 1e-4) at ``lr`` after a linear warm-up over the first tenth
    of the steps (at most 100), gradients clipped to norm 10, fp32 on every device (bf16 would
    round box coordinates to about a pixel). Each crop's instances are relabelled; those cut to
    fewer than :data:`MIN_CROP_PIXELS` pixels are dropped, and a crop without any is a valid
    (all background) sample. Returns the model on the CPU in eval mode, with ``train_history``.
    """
    if not images:
        raise ValueError("images is empty: need at least one labelled image to train on")
    unlabelled = [im.name for im in images if im.labels is None]
    if unlabelled:
        raise ValueError(f"images must be labelled; {unlabelled[:3]} have no labels")
    labels = [(torch.from_numpy(np.asarray(im.labels).astype(np.int64))[None],) for im in images]
    sampler = CropSampler(None, images, crop, flips=True, to_tensor=to_tensor, targets=labels)
    got = sampler.images[0].shape[0]
    if got != in_channels:
        raise ValueError(f"to_tensor gives {got} channels, in_channels is {in_channels}")
    seed_everything(seed)
    model = build_maskrcnn(in_channels, backbone)
    opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9, weight_decay=1e-4)
    warmup = min(100, max(1, steps // 10))
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min(1.0, (s + 1) / warmup))

    def step(ctx, b):
        x, lab = sampler.to(ctx.device).sample(b[0])
        targets = [_targets(t[0], MIN_CROP_PIXELS) for t in lab]
        losses = ctx.models["net"](list(x), targets)
        total = ctx.optimize(losses)
        return {**{k: v.detach() for k, v in losses.items()}, "loss": total.detach()}

    history = fit({"net": model}, {"net": opt}, step, sampler.loader(batch), max_steps=steps,
                  schedulers={"net": sched}, clip_grad=10.0, seed=seed, device=device, precision="32-true",
                  progress=progress, desc="mask r-cnn")
    release(model)
    model.train_history = history
    return model.eval()


def detect(model: MaskRCNN, x: torch.Tensor, device: str | torch.device | None = None) -> dict[str, torch.Tensor]:
    """The eval-mode detections of one (C, H, W) input in [0, 1]: torchvision's output dict
    (``boxes``, ``labels``, ``scores``, ``masks`` (N, 1, H, W) probabilities). ``device``: where
    to run (the model is moved there; default: where it is)."""
    if x.ndim != 3:
        raise ValueError(f"x must be one (C, H, W) image, got shape {tuple(x.shape)}")
    if device is not None:
        model.to(device)
    model.eval()
    with torch.no_grad():
        return model([x.to(device=next(model.parameters()).device, dtype=torch.float32)])[0]


def paint_detections(scores: torch.Tensor, masks: torch.Tensor, score_threshold: float = 0.5,
                     mask_threshold: float = 0.5, min_pixels: int = 8) -> tuple[np.ndarray, np.ndarray]:
    """Disjoint instance labels from overlapping detections (scores (N,), masks (N, 1, H, W)).

    Detections scoring at least ``score_threshold`` are kept, their masks binarised at
    ``mask_threshold`` and painted so that a higher-scoring instance wins where masks overlap;
    instances left with fewer than ``min_pixels`` pixels are dropped and the rest numbered
    1..N by decreasing score.

    Returns:
        (H, W) int32 labels and (N,) int64 ``source``: label ``k`` is detection ``source[k - 1]``.
    """
    keep = torch.nonzero(scores >= score_threshold).flatten()
    keep = keep[torch.argsort(scores[keep], descending=True)]
    binary = masks[keep, 0] >= mask_threshold
    if not len(binary):
        return np.zeros(tuple(masks.shape[-2:]), np.int32), np.zeros(0, np.int64)
    # each pixel goes to the first (best-scoring) mask that covers it; argmax returns the first maximum
    winner = torch.where(binary.any(0), binary.to(torch.uint8).argmax(0) + 1, 0).cpu().numpy()
    counts = np.bincount(winner.ravel(), minlength=len(binary) + 1)
    kept = np.flatnonzero(counts >= min_pixels)
    kept = kept[kept > 0]
    lut = np.zeros(len(counts), np.int32)
    lut[kept] = np.arange(1, len(kept) + 1, dtype=np.int32)
    return lut[winner], keep.cpu().numpy()[kept - 1]


def predict_maskrcnn(model: MaskRCNN, x: torch.Tensor, score_threshold: float = 0.5, mask_threshold: float = 0.5,
                     device: str | torch.device | None = None, min_pixels: int = 8) -> np.ndarray:
    """(H, W) int32 instance labels 0..N of one (C, H, W) input in [0, 1]: :func:`detect`, then
    :func:`paint_detections` (higher scores on top, small leftovers dropped, numbered by
    decreasing score)."""
    out = detect(model, x, device)
    return paint_detections(out["scores"], out["masks"], score_threshold, mask_threshold, min_pixels)[0]


__all__ = ["BACKBONES", "MIN_CROP_PIXELS", "NoResizeTransform", "PAPER_HEADS", "REDUCED_VARIANT",
           "build_maskrcnn", "build_spheroid_maskrcnn", "detect", "instance_targets", "load_weights",
           "paint_detections", "predict_maskrcnn", "resnet_fpn", "train_maskrcnn"]
