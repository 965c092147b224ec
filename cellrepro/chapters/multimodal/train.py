"""The multimodal chapter's training: one trainer per branch of Wang et al. (NeurIPS 2022 CellSeg).

* :func:`train_cellpose`: phase contrast, DIC and large-cell brightfield (Sec. 2.3-2.4), a
  :class:`~cellrepro.nets.CellposeNet` with the Cellpose loss (:mod:`cellrepro.losses.flows`);
  :func:`self_train_cellpose` adds the paper's pseudo-label -> train -> fine-tune cycle (Sec. 2.3,
  :func:`cellrepro.semi.selftrain.pseudo_label_cycles`).
* :func:`train_vgg_unet`: small-cell brightfield (Sec. 2.4), a :class:`~cellrepro.nets.vgg_unet.VGGUNet`
  on 3 classes (background, interior, boundary) with ``L = L_dice + L_ce`` (Eq. 1).
* :func:`train_cdnet`: fluorescence, supervised (Sec. 2.5, Eq. 2); :func:`train_cdnet_cps`: two
  CDNets with cross pseudo supervision on labelled + unlabelled images (Eq. 2-5, alpha 0.1).

Every trainer takes ``(images, settings, seed, init=None)`` and returns the trained model on the CPU,
with the :func:`cellrepro.engine.train.fit` history as ``model.train_history`` (a DataFrame, one row per step).
``init`` is copied, never modified. Predicting and scoring are in :mod:`.evaluate`.

Choices the paper leaves open (or that the CPU budget forces), stated once here:

* Input: ``image / 255`` as (3, H, W) float32 (:func:`to_input`); every net starts with a
  normalisation layer, so no per-image percentile stretch (which would also undo the brightness part
  of the domain shift the chapter tests).
* Crops: targets are computed once per image at full size (flows, 3-class mask, directions, point map
  all depend on the whole cell), then each step cuts ``batch`` random ``crop`` x ``crop`` windows
  (image drawn uniformly, position uniform) -- for every net, though the paper trains Cellpose on
  whole images and the others on 512 / 256 patches (Table 2). Images may differ in size; each must be
  at least ``crop`` on both sides.
* Augmentation: random horizontal and vertical flips, each with probability 1/2 per crop, with the
  targets transformed *correctly*: a flip along x negates the flow's dx and maps direction class
  ``k`` (angle ``(k - 1) 45`` degrees) to angle ``180 - a``; along y it negates dy and maps ``a`` to
  ``-a``; masks and point maps just flip. Only the centre pixel of each cell is off: its flow is
  0 / 0 (rounding decides it) and its direction class 1 is a convention (an x-flip makes it 5). The paper uses no augmentation for Cellpose and affine,
  flip, blur and colour jitter for U-Net/CDNet (Sec. 3.2.1); we use flips for all three (``flips``).
* Optimiser: Adam (:func:`cellrepro.engine.train.adam`) at a constant ``lr`` for every net (the paper: Adam
  5e-4 for U-Net/CDNet, SGD 0.01 for Cellpose, "halved by 20 epochs" of 20, i.e. never), no
  validation-based model selection (the last weights are kept).
* CPS: the unlabelled crops get a colour jitter (kornia's ``ColorJiggle``: brightness, contrast and
  saturation 0.2, hue 0.02), the same view for both nets (Sec. 2.5 "color augmentation"); ``batch``
  labelled and ``batch`` unlabelled crops per step; the cross terms on the mask and direction heads
  (:mod:`cellrepro.semi.cps`). The two nets are initialised from one seeded stream, one after the other.
* Self-training: each cycle pseudo-labels every unlabelled image with the current model
  (:func:`.evaluate.predict`), trains ``steps`` on the pseudo-labelled images, then ``steps`` on the
  labelled ones; a cycle therefore costs two trainings, which a fair supervised control must match.
"""

from __future__ import annotations

import copy
import dataclasses
import itertools
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np
import torch

from ...data.crops import KINDS, CropSampler, rgb_input
from ...data.types import CellImage
from ...losses.cdnet import cdnet_loss
from ...losses.flows import cellpose_loss
from ...losses.segmentation import dice_ce
from ...nets.cdnet import CDNet
from ...nets.cellpose import CellposeNet
from ...nets.vgg_unet import VGGUNet
from ...semi.cps import CPS_ALPHA, SemiBatches, cps_step
from ...semi.selftrain import pseudo_label_cycles
from ...engine.streams import Streams
from ...engine.train import adam, fit, release, seed_everything
from .evaluate import predict


@dataclass
class Settings:
    """What one training run uses (defaults: the CPU-sized book setting).

    Measured on 2 CPU cores at crop 128, batch 8 (seconds per step): Cellpose (8, 16, 32) 0.21
    ((16, 32, 64): 0.63), VGG U-Net width 16 0.08, CDNet 0.15, CDNet CPS (two nets, 8 + 8 crops) 0.83.

    Attributes:
        steps: optimiser updates per training (per stage in :func:`self_train_cellpose`).
        batch: crops per step (labelled; CPS adds as many unlabelled).
        lr: Adam's constant learning rate.
        crop: side of the square training crops; a multiple of 16 (VGG U-Net and CDNet pool 4 times).
        cellpose_features: :class:`CellposeNet` widths (Cellpose's own: (32, 64, 128, 256)).
        vgg_width: :class:`VGGUNet` width divisor (1 is the paper's 18.6 M-parameter model).
        cdnet_features: :class:`CDNet`'s six BasicUNet widths (BasicUNet's own: (32, 32, 64, 128, 256, 32)).
        flips: random flips of the training crops (targets transformed accordingly).
        device: ``"auto"``, ``"cpu"``, ``"cuda"``, ... (:func:`cellrepro.engine.train.fit`).
        cycles: pseudo-label cycles of :func:`self_train_cellpose`.
        alpha: weight of the unlabelled term of Eq. 5 (0.1 in the paper).
        progress: tqdm bars from ``fit``.
        streams: draw crop positions, flips and batch order of the supervised trainings from their own
            stream per (seed, model kind) (:mod:`cellrepro.engine.streams`), so that two arms with
            the same seed see the same batches whatever else they draw; False (the published
            sections' setting) draws them from torch's global stream.
    """

    steps: int = 200
    batch: int = 8
    lr: float = 2e-3
    crop: int = 128
    cellpose_features: tuple[int, ...] = (8, 16, 32)
    vgg_width: int = 16
    cdnet_features: tuple[int, ...] = (8, 8, 16, 32, 64, 8)
    flips: bool = True
    device: str = "auto"
    cycles: int = 1
    alpha: float = CPS_ALPHA
    progress: bool = False
    streams: bool = False

    def __post_init__(self):
        for name in ("steps", "batch", "crop", "cycles"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.crop % 16:
            raise ValueError(f"crop must be a multiple of 16 (four 2x poolings), got {self.crop}")
        if not self.lr > 0 or self.alpha < 0:
            raise ValueError(f"lr must be > 0 and alpha >= 0, got {self.lr} and {self.alpha}")


def to_input(image) -> torch.Tensor:
    """(3, H, W) float32 ``image / 255`` of a :class:`CellImage` or an (H, W, 3) uint8 array."""
    return rgb_input(image)


def build(kind: str, settings: Settings) -> torch.nn.Module:
    """A freshly initialised network of ``kind`` at ``settings``' size (3 input channels)."""
    if kind == "cellpose":
        return CellposeNet(in_channels=3, features=settings.cellpose_features)
    if kind == "vgg_unet":
        return VGGUNet(in_channels=3, out_channels=3, width=settings.vgg_width)
    if kind == "cdnet":
        return CDNet(in_channels=3, features=settings.cdnet_features)
    raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")


def _supervised_step(kind: str, sampler: CropSampler) -> Callable:
    unet_loss = dice_ce() if kind == "vgg_unet" else None

    def step(ctx, batch):
        x, *t = sampler.to(ctx.device).sample(batch[0])
        out = ctx.models["net"](x)
        if kind == "cellpose":
            terms = {"cellpose": cellpose_loss(out, t[0])}
        elif kind == "vgg_unet":
            terms = {"dice_ce": unet_loss(out.float(), t[0])}
        else:
            terms = cdnet_loss(out, {"mask": t[0], "direction": t[1], "point": t[2]})
        total = ctx.optimize(terms)
        return {**terms, "loss": total.detach()}

    return step


def _start(kind: str, settings: Settings, seed: int, init) -> torch.nn.Module:
    if init is not None:
        return copy.deepcopy(init)
    seed_everything(seed)
    return build(kind, settings)


def _train(kind: str, images: Sequence[CellImage], settings: Settings, seed: int, init) -> torch.nn.Module:
    if not isinstance(settings, Settings):
        raise ValueError(f"settings must be a Settings, got {type(settings).__name__}")
    if not images:
        raise ValueError("images is empty: need at least one labelled image")
    generator = Streams(seed).torch(f"crops/{kind}") if settings.streams else None
    sampler = CropSampler(kind, images, settings.crop, settings.flips, generator=generator)
    net = _start(kind, settings, seed, init)
    history = fit({"net": net}, {"net": adam(net.parameters(), lr=settings.lr)}, _supervised_step(kind, sampler),
                  sampler.loader(settings.batch), max_steps=settings.steps, seed=seed, device=settings.device,
                  progress=settings.progress, desc=kind)
    release(net)
    net.train_history = history
    return net


def train_cellpose(images: Sequence[CellImage], settings: Settings, seed: int, init=None) -> CellposeNet:
    """A Cellpose-style net trained on labelled ``images`` with the Cellpose loss (Sec. 2.3-2.4).

    Randomly initialised unless ``init`` (the paper starts from LiveCell weights, unavailable here).
    """
    return _train("cellpose", images, settings, seed, init)


def train_vgg_unet(images: Sequence[CellImage], settings: Settings, seed: int, init=None) -> VGGUNet:
    """A VGG16-BN U-Net on the 3-class mask (background, interior, boundary) with ``L_dice + L_ce``
    (Eq. 1; MONAI's ``DiceCELoss``, softmax, one-hot, all three classes). The paper does not say
    what its U-Net predicts; 3 classes let touching cells part (decoding: :func:`.evaluate.predict`)."""
    return _train("vgg_unet", images, settings, seed, init)


def train_cdnet(images: Sequence[CellImage], settings: Settings, seed: int, init=None) -> CDNet:
    """A CDNet trained on labelled ``images`` alone (Eq. 2: :func:`cdnet_loss`, CE + Dice on the mask,
    CE on the directions, MSE on the point map): the supervised arm of Table 3."""
    return _train("cdnet", images, settings, seed, init)


def colour_jitter() -> Callable[[torch.Tensor], torch.Tensor]:
    """The unlabelled images' colour augmentation of Sec. 2.5 (kornia ``ColorJiggle``, p = 1)."""
    from kornia.augmentation import ColorJiggle

    jiggle = ColorJiggle(brightness=0.2, contrast=0.2, saturation=0.2, hue=0.02, p=1.0)
    return lambda x: jiggle(x.clamp(0, 1))


def train_cdnet_cps(labelled: Sequence[CellImage], unlabelled: Sequence[CellImage], settings: Settings, seed: int,
                    init=None, return_both: bool = False):
    """Two CDNets trained by cross pseudo supervision (Sec. 2.5, Eq. 2-5, Fig. 4); returns net A
    (or ``(A, B)`` with ``return_both``). ``init``: None (two fresh nets) or a pair of CDNets (copied).

    Each step: ``batch`` labelled crops (Eq. 2 on both nets) and ``batch`` colour-jittered unlabelled
    crops (Eq. 3-4), ``L^(i) = L_l^(i) + alpha L_u^(i)`` (Eq. 5, ``settings.alpha``), both nets updated.
    """
    if not isinstance(settings, Settings):
        raise ValueError(f"settings must be a Settings, got {type(settings).__name__}")
    if not labelled:
        raise ValueError("labelled is empty: need at least one labelled image")
    if not unlabelled:
        raise ValueError("unlabelled is empty: cross pseudo supervision needs unlabelled images")
    lab = CropSampler("cdnet", labelled, settings.crop, settings.flips)
    unl = CropSampler(None, unlabelled, settings.crop, settings.flips)
    if init is None:
        seed_everything(seed)
        a, b = build("cdnet", settings), build("cdnet", settings)
    elif isinstance(init, (tuple, list)) and len(init) == 2:
        a, b = copy.deepcopy(init[0]), copy.deepcopy(init[1])
    else:
        raise ValueError(f"init must be None or a pair of CDNets, got {type(init).__name__}")
    inner = cps_step(settings.alpha, augment=colour_jitter())

    def step(ctx, batch):
        (il,), (iu,) = batch
        return inner(ctx, (lab.to(ctx.device).sample(il), (unl.to(ctx.device).sample(iu)[0],)))

    history = fit({"a": a, "b": b}, {"a": adam(a.parameters(), lr=settings.lr), "b": adam(b.parameters(), lr=settings.lr)},
                  step, SemiBatches(lab.loader(settings.batch), unl.loader(settings.batch)), max_steps=settings.steps,
                  seed=seed, device=settings.device, progress=settings.progress, desc="cdnet cps")
    release(a, b)
    a.train_history = b.train_history = history
    return (a, b) if return_both else a


def self_train_cellpose(model: CellposeNet, labelled: Sequence[CellImage], unlabelled: Sequence[CellImage],
                        settings: Settings, seed: int) -> CellposeNet:
    """The paper's Cellpose cycle (Sec. 2.3): pseudo-mask the unlabelled images with ``model``, train on
    them, fine-tune on ``labelled``; ``settings.cycles`` times (:func:`pseudo_label_cycles`, which drops
    empty pseudo-masks). ``model`` (the supervised net, our stand-in for the LiveCell-pretrained one)
    is copied, not modified. Each training runs ``settings.steps``; ``train_history`` holds the last,
    ``cycle_summaries`` the :class:`~cellrepro.semi.selftrain.Cycle` s.
    """
    if not labelled:
        raise ValueError("labelled is empty: the fine-tuning step needs labelled images")
    if not unlabelled:
        raise ValueError("unlabelled is empty: there is nothing to pseudo-label")
    stage = itertools.count(1)  # each training gets its own crop stream

    def train(net, pairs):
        images = [dataclasses.replace(im, labels=np.asarray(m, np.int32)) for im, m in pairs]
        return train_cellpose(images, settings, seed + 7919 * next(stage), init=net)

    net, cycles = pseudo_label_cycles(copy.deepcopy(model), [(im, im.labels) for im in labelled], list(unlabelled),
                                      train, lambda net, im: predict(net, "cellpose", im), cycles=settings.cycles)
    net.cycle_summaries = cycles
    return net


def loss_drop(model: torch.nn.Module, column: str = "loss", window: int = 5) -> float:
    """Mean ``column`` over the first ``window`` steps minus over the last ``window`` (> 0: it fell)."""
    h = model.train_history[column]
    return float(h.iloc[:window].mean() - h.iloc[-window:].mean())


__all__ = ["KINDS", "CropSampler", "Settings", "build", "colour_jitter", "loss_drop", "self_train_cellpose",
           "to_input", "train_cdnet", "train_cdnet_cps", "train_cellpose", "train_vgg_unet"]
