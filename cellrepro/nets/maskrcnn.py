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
"""

from __future__ import annotations

from typing import Callable, Sequence

import numpy as np
import torch
from torch import nn
from torchvision.models.detection import MaskRCNN
from torchvision.models.detection.anchor_utils import AnchorGenerator
from torchvision.models.detection.backbone_utils import resnet_fpn_backbone
from torchvision.models.detection.faster_rcnn import FastRCNNPredictor, TwoMLPHead
from torchvision.models.detection.mask_rcnn import MaskRCNNHeads, MaskRCNNPredictor
from torchvision.models.detection.transform import GeneralizedRCNNTransform
from torchvision.ops import MultiScaleRoIAlign

from ..data.crops import CropSampler
from ..data.types import CellImage
from ..train import fit, release, seed_everything

#: Instances cut by a training crop to fewer pixels than this are not targets.
MIN_CROP_PIXELS = 4


class NoResizeTransform(GeneralizedRCNNTransform):
    """torchvision's detection transform without the resize: normalise and batch only."""

    def resize(self, image, target=None):
        return image, target


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
    if len(anchor_sizes) != 4:
        raise ValueError(f"anchor_sizes needs one size per pyramid level (4), got {tuple(anchor_sizes)}")
    body = resnet_fpn_backbone(backbone_name=backbone, weights=None, trainable_layers=5,
                               returned_layers=[2, 3, 4], norm_layer=nn.BatchNorm2d)
    if in_channels != 3:
        old = body.body.conv1
        conv = nn.Conv2d(in_channels, old.out_channels, old.kernel_size, old.stride, old.padding, bias=False)
        nn.init.kaiming_normal_(conv.weight, mode="fan_out", nonlinearity="relu")  # as torchvision's ResNet
        body.body.conv1 = conv
    c = body.out_channels
    anchors = AnchorGenerator(tuple((s,) for s in anchor_sizes), ((0.5, 1.0, 2.0),) * len(anchor_sizes))
    box_pool, mask_pool = (MultiScaleRoIAlign(["0", "1", "2"], size, sampling_ratio) for size in (7, 14))
    mean, std = [0.5] * in_channels, [0.25] * in_channels
    model = MaskRCNN(body, num_classes=None, rpn_anchor_generator=anchors, image_mean=mean, image_std=std,
                     box_roi_pool=box_pool, box_head=TwoMLPHead(c * 7 * 7, box_features),
                     box_predictor=FastRCNNPredictor(box_features, 2), mask_roi_pool=mask_pool,
                     mask_head=MaskRCNNHeads(c, (mask_channels,) * 4, dilation=1),
                     mask_predictor=MaskRCNNPredictor(mask_channels, mask_channels, 2),
                     rpn_batch_size_per_image=128, box_batch_size_per_image=rois, box_detections_per_img=300,
                     rpn_pre_nms_top_n_train=proposals, rpn_post_nms_top_n_train=proposals,
                     rpn_pre_nms_top_n_test=proposals, rpn_post_nms_top_n_test=proposals)
    model.transform = NoResizeTransform(min_size=800, max_size=1333, image_mean=mean, image_std=std)
    return model


def _targets(labels: torch.Tensor, min_pixels: int = 1) -> dict[str, torch.Tensor]:
    """:func:`instance_targets` of an (H, W) integer tensor, on its device."""
    h, w = labels.shape
    ids = torch.unique(labels)
    masks = labels[None] == ids[ids > 0][:, None, None]
    masks = masks[masks.flatten(1).sum(1) >= min_pixels]
    rows, cols = masks.any(2), masks.any(1)  # (N, H), (N, W)
    ys, xs = torch.arange(h, device=labels.device), torch.arange(w, device=labels.device)
    boxes = torch.stack([torch.where(cols, xs, w).amin(1), torch.where(rows, ys, h).amin(1),
                         torch.where(cols, xs, -1).amax(1) + 1, torch.where(rows, ys, -1).amax(1) + 1], 1)
    return {"boxes": boxes.float().reshape(-1, 4), "masks": masks.to(torch.uint8),
            "labels": torch.ones(len(masks), dtype=torch.int64, device=labels.device)}


def instance_targets(labels: np.ndarray) -> dict[str, torch.Tensor]:
    """torchvision's detection target of an (H, W) instance label image (0 = background).

    Returns ``boxes`` (N, 4) float32 ``x0, y0, x1, y1`` with ``x1``, ``y1`` exclusive, ``labels``
    (N,) int64 ones and ``masks`` (N, H, W) uint8, one per id present, in increasing id order.

    >>> lab = np.zeros((4, 5), int); lab[1:3, 2:5] = 7
    >>> instance_targets(lab)["boxes"].tolist()
    [[2.0, 1.0, 5.0, 3.0]]
    """
    labels = np.asarray(labels)
    if labels.ndim != 2:
        raise ValueError(f"labels must be (H, W), got shape {labels.shape}")
    return _targets(torch.from_numpy(labels.astype(np.int64)))


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


def predict_maskrcnn(model: MaskRCNN, x: torch.Tensor, score_threshold: float = 0.5, mask_threshold: float = 0.5,
                     device: str | torch.device | None = None, min_pixels: int = 8) -> np.ndarray:
    """(H, W) int32 instance labels 0..N of one (C, H, W) input in [0, 1].

    Detections scoring at least ``score_threshold`` are kept, their masks binarised at
    ``mask_threshold`` and painted so that a higher-scoring instance wins where masks overlap;
    instances left with fewer than ``min_pixels`` pixels are dropped and the rest numbered
    1..N by decreasing score. ``device``: where to run (the model is moved there; default: where it is).
    """
    if x.ndim != 3:
        raise ValueError(f"x must be one (C, H, W) image, got shape {tuple(x.shape)}")
    if device is not None:
        model.to(device)
    model.eval()
    with torch.no_grad():
        out = model([x.to(device=next(model.parameters()).device, dtype=torch.float32)])[0]
    keep = out["scores"] >= score_threshold
    order = torch.argsort(out["scores"][keep], descending=True)
    masks = out["masks"][keep, 0][order] >= mask_threshold
    if not len(masks):
        return np.zeros(tuple(x.shape[-2:]), np.int32)
    # each pixel goes to the first (best-scoring) mask that covers it; argmax returns the first maximum
    winner = torch.where(masks.any(0), masks.to(torch.uint8).argmax(0) + 1, 0).cpu().numpy()
    counts = np.bincount(winner.ravel(), minlength=len(masks) + 1)
    kept = np.flatnonzero(counts >= min_pixels)
    kept = kept[kept > 0]
    lut = np.zeros(len(counts), np.int32)
    lut[kept] = np.arange(1, len(kept) + 1, dtype=np.int32)
    return lut[winner]


__all__ = ["MIN_CROP_PIXELS", "NoResizeTransform", "build_maskrcnn", "instance_targets", "predict_maskrcnn",
           "train_maskrcnn"]
