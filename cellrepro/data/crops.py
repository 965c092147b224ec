"""Random training crops of labelled images, with targets cut and flipped consistently.

Shared by the chapters that train Cellpose-style, U-Net and CDNet models on cell images (multimodal,
MMCS). Targets are computed once per image at full size (flows, 3-class mask, directions and point
map all depend on the whole cell), then each step cuts random crops. MONAI's ``RandSpatialCropd``
and ``RandFlipd`` would crop and flip the arrays, but not transform the targets' *meaning*: a flip
along x must negate a flow's dx and remap a CDNet direction class (``k`` at angle ``(k - 1) 45``
degrees goes to ``180 - a``; along y ``a`` goes to ``-a``); :func:`flip_crop` does both.
"""

from __future__ import annotations

from typing import Callable, Sequence

import numpy as np
import torch

from ..instances.cdnet import cdnet_targets, three_class_mask
from ..losses.flows import flow_targets
from ..engine.tensorloader import TensorLoader
from .types import CellImage

KINDS = ("cellpose", "vgg_unet", "cdnet")
"""Target kinds: Cellpose flows + foreground, 3-class mask, CDNet mask/direction/point."""

# direction class k in 1..8 at angle (k - 1) * 45 degrees (cellrepro.instances.cdnet); class 0 stays
FLIP_X_DIRECTION = torch.tensor([0] + [(4 - k) % 8 + 1 for k in range(8)])  # a -> 180 - a
FLIP_Y_DIRECTION = torch.tensor([0] + [(-k) % 8 + 1 for k in range(8)])  # a -> -a

def targets_for(kind: str, labels: np.ndarray) -> tuple[torch.Tensor, ...]:
    """Full-size targets of one label image, each (C, H, W)."""
    if kind == "cellpose":
        return (flow_targets(labels),)  # dy, dx, foreground
    if kind == "vgg_unet":
        return (torch.from_numpy(three_class_mask(labels).astype(np.int64))[None],)
    t = cdnet_targets(labels)
    return tuple(torch.from_numpy(t[k])[None] for k in ("mask", "direction", "point"))


def flip_crop(kind: str, x: torch.Tensor, targets: list[torch.Tensor], dim: int) -> tuple[torch.Tensor, list]:
    """Flip one crop and its targets along ``dim`` (-1: x, -2: y), keeping the targets consistent."""
    out = [t.flip(dim) for t in targets]
    if kind == "cellpose":  # channel 0 is dy, 1 is dx: the flipped axis's component changes sign
        c = 1 if dim == -1 else 0
        out[0] = torch.cat([out[0][:c], -out[0][c:c + 1], out[0][c + 1:]])
    elif kind == "cdnet":
        lut = (FLIP_X_DIRECTION if dim == -1 else FLIP_Y_DIRECTION).to(out[1].device)
        out[1] = lut[out[1]]
    return x.flip(dim), out


class CropSampler:
    """Random training crops of full-size images and their precomputed targets.

    Args:
        kind: a member of :data:`KINDS` (decides the targets; None: images only).
        images: :class:`CellImage` s (labelled unless ``kind`` is None), or any items ``to_tensor``
            takes when ``kind`` is None (e.g. brightfield :class:`Field` s with their own ``targets``).
        crop: crop side; every image must be at least this large.
        flips: random flips with consistent targets (see the module docstring).
        to_tensor: image -> (C, H, W) float tensor (default :func:`rgb_input`, ``image / 255``).
        targets: per image a tuple of full-size (C, H, W) targets laid out as ``kind``'s (e.g. soft
            pseudo-label flows for ``"cellpose"``), instead of computing them from the labels.
        generator: a CPU ``torch.Generator`` for crop positions, flips and the loader's order
            (e.g. ``Streams(seed).torch("crops")``, :mod:`cellrepro.engine.streams`): paired arms
            then cut the same crops whatever else they draw. None: torch's global generator.

    ``sample(indices)`` returns ``(x, *targets)`` batches: x (B, C, crop, crop); cellpose
    (B, 3, crop, crop) flows + foreground; vgg_unet (B, 1, crop, crop) classes; cdnet mask and
    direction (B, crop, crop) classes and point (B, 1, crop, crop), as :func:`cdnet_loss` takes them.
    """

    def __init__(self, kind: str | None, images: Sequence[CellImage], crop: int, flips: bool = True,
                 to_tensor: Callable[[CellImage], torch.Tensor] | None = None,
                 targets: Sequence[tuple[torch.Tensor, ...]] | None = None,
                 generator: torch.Generator | None = None):
        if not images:
            raise ValueError("images is empty: need at least one image to train on")
        tensors = [(to_tensor or rgb_input)(im) for im in images]
        small = [getattr(im, "name", i) for i, (im, x) in enumerate(zip(images, tensors)) if min(x.shape[-2:]) < crop]
        if small:
            raise ValueError(f"crop {crop} is larger than image(s) {small[:3]} "
                             f"(smallest side {min(min(x.shape[-2:]) for x in tensors)}); lower crop")
        if kind is not None and kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS} or None, got {kind!r}")
        if targets is not None and len(targets) != len(images):
            raise ValueError(f"targets has {len(targets)} entries for {len(images)} images")
        if kind is not None and targets is None:
            unlabelled = [im.name for im in images if im.labels is None]
            if unlabelled:
                raise ValueError(f"images must be labelled; {unlabelled[:3]} have no labels")
        self.kind, self.crop, self.flips = kind, crop, flips
        self.generator = generator
        self.images = tensors
        if targets is not None:
            self.targets = [tuple(t) for t in targets]
        else:
            self.targets = [targets_for(kind, np.asarray(im.labels)) if kind else () for im in images]
        self.device = torch.device("cpu")

    def __len__(self) -> int:
        return len(self.images)

    def to(self, device: torch.device) -> "CropSampler":
        """Move the full-size tensors to ``device`` (once; crops are then cut there)."""
        if torch.device(device) != self.device:
            self.images = [x.to(device) for x in self.images]
            self.targets = [tuple(t.to(device) for t in ts) for ts in self.targets]
            self.device = torch.device(device)
        return self

    def loader(self, batch: int) -> TensorLoader:
        """Shuffled image indices, each image about equally often, ``batch`` per step."""
        reps = -(-batch // len(self))
        return TensorLoader(torch.arange(len(self)).repeat(reps), batch_size=batch, shuffle=True, drop_last=True,
                            generator=self.generator)

    def sample(self, indices: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """Crops of the images at ``indices`` (positions and flips from ``generator``, else torch's global RNG)."""
        xs, ts = [], []
        c = self.crop
        for i in indices.tolist():
            x, targets = self.images[i], self.targets[i]
            h, w = x.shape[-2:]
            g = self.generator
            y0, x0 = (int(v) for v in (torch.randint(h - c + 1, (), generator=g), torch.randint(w - c + 1, (), generator=g)))
            x = x[:, y0:y0 + c, x0:x0 + c]
            targets = [t[:, y0:y0 + c, x0:x0 + c] for t in targets]
            if self.flips:
                for dim in (-1, -2):
                    if torch.rand((), generator=self.generator) < 0.5:
                        x, targets = flip_crop(self.kind, x, targets, dim)
            xs.append(x)
            ts.append(targets)
        out = [torch.stack(xs)] + [torch.stack(t) for t in zip(*ts)]
        if self.kind == "cdnet":  # mask and direction as (B, H, W) class maps
            out[1], out[2] = out[1][:, 0], out[2][:, 0]
        return tuple(out)


def rgb_input(image) -> torch.Tensor:
    """(3, H, W) float32 ``image / 255`` of a :class:`CellImage` or an (H, W, 3) uint8 array."""
    arr = np.asarray(image.image if isinstance(image, CellImage) else image)
    if arr.ndim != 3 or arr.shape[-1] != 3:
        raise ValueError(f"image must be (H, W, 3) RGB, got shape {arr.shape}")
    return torch.from_numpy(arr.astype(np.float32) / 255.0).permute(2, 0, 1).contiguous()


__all__ = ["FLIP_X_DIRECTION", "FLIP_Y_DIRECTION", "KINDS", "CropSampler", "flip_crop", "rgb_input", "targets_for"]
