"""MMCS training: CPnet with a nucleus channel, the self-adaptive diameter, and the two phases
(Hu et al., "Advanced Multi-Microscopic Views Cell Semi-supervised Segmentation", Sec. 3-4).

* Input (Sec. 3.3): two channels, cytoplasm and nucleus, the nucleus channel zeros where the image has
  none (:func:`mmcs_input`). Cytoplasm is the green channel ``/ 255`` (grey images have R = G = B; the
  two-channel images of the synthetic set and of the challenge carry cytoplasm in green); the nucleus
  is :attr:`CellImage.nucleus`. No per-image percentile stretch: the net starts with BatchNorm.
* Self-adaptive diameter (Sec. 3.4): ``rho`` = mean ROI diameter of the labelled training set
  (:func:`cellrepro.instances.diameter.mean_roi_diameter`), saved on the network as ``diam_mean``;
  every labelled image is resized by ``rho / d_i`` (``d_i`` its median ROI diameter) *before* the
  crops and flips; ``Settings.diameter`` set to a number fixes ``rho`` instead (30: Cellpose's).
  Unlabelled images have no labels to measure: each is resized by ``rho / d`` with ``d`` the median
  diameter of the phase-1 model's masks on it at its own scale (unchanged if it finds none); Cellpose's
  size model would do this job, the paper does not say. At inference (:func:`predict`) the image is
  resized by ``rho / diameter``: ``diameter`` is the argument the paper's Table 4 sweeps; the masks
  are resized back (nearest neighbour).
* Phase 1 (:func:`train_phase1`): labelled images only, the Cellpose loss. Phase 2
  (:func:`train_phase2`): from the phase-1 net, temporal-ensembled pseudo labels on the unlabelled
  images (:mod:`cellrepro.semi.temporal`), refreshed every ``refresh_every`` updates, and the loss of
  Eq. 1, ``(1 - w) L_lab + w L_unlab``; ``w = 0`` skips the unlabelled images and is the control
  that isolates them from the longer training and the schedule. One loop serves both phases, and the
  Table 8 baselines (:mod:`.architectures`: ``Settings.arch`` and ``Settings.head``) in phase 1.
* Optimiser and schedule (Sec. 4.1, Table 10): SGD 0.1, momentum 0.9, weight decay 1e-5, linear
  warm-up, optional halving (:mod:`.schedule`), in optimiser updates. ``batch`` labelled crops per
  update, and in phase 2 as many unlabelled ones (the paper: batch 16, then 32).
"""

from __future__ import annotations

import copy
import dataclasses
import logging
from dataclasses import dataclass
from typing import Callable, Mapping, Sequence

import numpy as np
import pandas as pd
import torch

from ...data.crops import CropSampler
from ...data.types import CellImage
from ...instances.cdnet import three_class_decode
from ...instances.diameter import image_diameter, mean_roi_diameter, rescale_image, rescale_labels
from ...losses.flows import cellpose_loss
from ...losses.segmentation import dice_ce
from ...metrics.scores import instance_scores
from ...nets.cellpose import CellposeNet, outputs_to_masks, padded_output
from ...semi.cps import SemiBatches
from ...semi.temporal import ALPHA, TemporalEnsemble, ensemble_loss, weighted_loss
from ...engine.streams import Streams
from ...engine.train import fit, release, seed_everything
from . import architectures, schedule

log = logging.getLogger(__name__)

CELLPOSE_DIAMETER = 30.0
"""Cellpose's default diameter (its generalist models' ``diam_mean`` and inference default)."""


@dataclass
class Settings:
    """One MMCS training run (defaults: the CPU-sized book setting).

    Attributes:
        steps: optimiser updates of this phase.
        batch: labelled crops per update (phase 2 adds as many unlabelled ones).
        crop: side of the square training crops (a multiple of the net's 2^(levels - 1)).
        lr, warmup, decay_start, halve_every, lr_min: the schedule (:func:`.schedule.lr_at`), in updates;
            ``decay_start`` None keeps the rate fixed after the warm-up.
        features: :class:`CellposeNet` widths (Cellpose's (32, 64, 128, 256)).
        nucleus: feed the nucleus channel (False: zeros, the "no nucleus channel" arm of Table 3).
        diameter: None for the self-adaptive ``rho``; a number fixes it (30: Cellpose's).
        w: weight of the unlabelled loss in Eq. 1 (phase 2).
        alpha: temporal-ensemble momentum.
        refresh_every: updates between ensemble refreshes (phase 2; the paper: every 100 epochs).
        flips: random flips of the crops, targets flipped consistently.
        arch, head: the network and what it predicts (:mod:`.architectures`; Table 8): CPnet on flows
            is MMCS's; ``"semantic"`` trains 3 classes with Dice + cross-entropy (phase 1 only).
        device: ``"auto"``, ``"cpu"``, ``"cuda"`` (:func:`cellrepro.engine.train.fit`).
        progress: tqdm bars.
        streams: draw the labelled crops (positions, flips, batch order) and the unlabelled ones from
            their own streams per (seed, phase, purpose) (:mod:`cellrepro.engine.streams`), so that
            phase 2 and its control, run with one seed, cut the same labelled crops at every update
            whatever else they draw; False (the default, the published sections' setting) draws them
            from torch's global stream.
        labelled_scale: factor on the labelled loss when no unlabelled images are trained on. A
            control for Eq. 1 with weight ``w`` takes ``1 - w``: Eq. 1 scales the labelled loss by
            ``1 - w``, which under SGD scales the labelled step by as much, so ``w = 0`` alone would
            also differ from phase 2 in its effective rate.
    """

    steps: int = 300
    batch: int = 8
    crop: int = 96
    lr: float = schedule.LR
    warmup: int = 10
    decay_start: int | None = None
    halve_every: int = 20
    lr_min: float = schedule.LR_MIN
    features: tuple[int, ...] = (8, 16, 32)
    nucleus: bool = True
    diameter: float | None = None
    w: float = 0.4
    alpha: float = ALPHA
    refresh_every: int = 50
    flips: bool = True
    arch: str = "cpnet"
    head: str = "flows"
    device: str = "auto"
    progress: bool = False
    streams: bool = False
    labelled_scale: float = 1.0

    def __post_init__(self):
        for name in ("steps", "batch", "crop", "refresh_every", "halve_every"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        multiple = 32 if self.arch == "swinunetr" else 2 ** (len(self.features) - 1)
        if self.crop % multiple:
            raise ValueError(f"crop must be a multiple of {multiple} for {self.arch} with features {self.features}, "
                             f"got {self.crop}")
        if not 0.0 <= self.w <= 1.0:
            raise ValueError(f"w must be in [0, 1], got {self.w}")
        if not 0.0 < self.labelled_scale <= 1.0:
            raise ValueError(f"labelled_scale must be in (0, 1], got {self.labelled_scale}")
        if self.labelled_scale != 1.0 and self.w > 0:
            raise ValueError("labelled_scale is for runs without unlabelled images (w = 0); Eq. 1 scales by 1 - w itself")
        if self.diameter is not None and not self.diameter > 0:
            raise ValueError(f"diameter must be > 0 or None (self-adaptive), got {self.diameter}")
        if self.arch not in architectures.ARCHS or self.head not in architectures.HEADS:
            raise ValueError(f"arch must be one of {architectures.ARCHS} and head one of {architectures.HEADS}, "
                             f"got {self.arch!r}, {self.head!r}")


def mmcs_input(image: CellImage, nucleus: bool = True) -> torch.Tensor:
    """(2, H, W) float32: the cytoplasm (green / 255) and the nucleus channel (zeros if absent or not ``nucleus``)."""
    arr = np.asarray(image.image)
    if arr.ndim != 3 or arr.shape[-1] != 3:
        raise ValueError(f"{image.name}: image must be (H, W, 3) RGB, got shape {arr.shape}")
    cyto = torch.from_numpy(arr[..., 1].astype(np.float32) / 255.0)
    nuc = torch.zeros_like(cyto)
    if nucleus and image.nucleus is not None:
        n = np.asarray(image.nucleus, np.float32)
        if n.shape != arr.shape[:2]:
            raise ValueError(f"{image.name}: nucleus channel {n.shape} differs from the image {arr.shape[:2]}")
        nuc = torch.from_numpy(n)
    return torch.stack((cyto, nuc))


def rescaled(image: CellImage, factor: float, min_side: int = 0) -> CellImage:
    """``image`` resized by ``factor`` (bilinear image and nucleus, nearest labels), zero-padded at the
    bottom and right to at least ``min_side`` (so a crop fits)."""
    x = rescale_image(torch.from_numpy(np.asarray(image.image, np.float32)).permute(2, 0, 1), factor)
    h, w = x.shape[-2:]
    pad = (0, max(0, min_side - w), 0, max(0, min_side - h))
    x = torch.nn.functional.pad(x, pad)
    nuc = torch.nn.functional.pad(rescale_image(torch.from_numpy(np.asarray(image.nucleus, np.float32))[None], factor), pad)[0]
    labels = None
    if image.labels is not None:
        labels = np.pad(rescale_labels(image.labels, shape=(h, w)), ((0, pad[3]), (0, pad[1])))
    img = x.permute(1, 2, 0).clamp(0, 255).round().to(torch.uint8).numpy()
    return dataclasses.replace(image, image=img, labels=labels, nucleus=nuc.numpy(), diameter=image.diameter * factor)


def training_diameter(images: Sequence[CellImage], settings: Settings) -> float:
    """``rho``: ``settings.diameter`` if set, else the mean ROI diameter of ``images``' labels."""
    if settings.diameter is not None:
        return float(settings.diameter)
    return mean_roi_diameter(im.labels for im in images)


def _at_rho(image: CellImage, diameter: float, rho: float, crop: int) -> CellImage:
    """``image`` resized so that cells of ``diameter`` become ``rho`` across (unchanged if ``diameter`` is NaN)."""
    return rescaled(image, rho / diameter if np.isfinite(diameter) else 1.0, crop)


def _net_output(net: torch.nn.Module, image: CellImage, nucleus: bool, device=None) -> torch.Tensor:
    return padded_output(net, mmcs_input(image, nucleus), device)


TRUE_DIAMETER = "true"
"""``diameter`` of :func:`predict` and :func:`scores` meaning: the image's own median ROI diameter
(:func:`~cellrepro.instances.diameter.image_diameter` of its labels), the measure training resizes
every labelled image by. A test image then reaches the net exactly as a training image does
(resized by ``rho / d_i``, bilinear), at the net's own ``rho``: no net is scored at another net's
scale, and no test image skips the resampling every training image went through. It reads the
cells' size from the test labels: an oracle of scale, the same for every net compared (Cellpose
estimates it with a size model instead); a page that scores with it says so."""


def inference_factor(net: torch.nn.Module, image: CellImage, diameter: float | str | None) -> float:
    """What :func:`predict` resizes ``image`` by: ``rho / diameter``; 1 for ``diameter`` None (no
    resize); ``rho / d_i`` for :data:`TRUE_DIAMETER` (``d_i`` the image's median ROI diameter: a
    labelled image is needed; 1 if it has no cells, as training does)."""
    rho = float(getattr(net, "diam_mean", CELLPOSE_DIAMETER))
    if diameter is None:
        return 1.0
    if isinstance(diameter, str):
        if diameter != TRUE_DIAMETER:
            raise ValueError(f"diameter must be a number, None (no resize) or {TRUE_DIAMETER!r}, got {diameter!r}")
        if image.labels is None:
            raise ValueError(f"{image.name}: diameter {TRUE_DIAMETER!r} needs the image's labels to measure its cells")
        d = image_diameter(image.labels)
        return rho / d if np.isfinite(d) and d > 0 else 1.0
    if not float(diameter) > 0:
        raise ValueError(f"diameter must be > 0, got {diameter}")
    return rho / float(diameter)


def predict(net: torch.nn.Module, image: CellImage, diameter: float | str | None = None, nucleus: bool | None = None,
            device=None, **flow_kwargs) -> np.ndarray:
    """(H, W) int32 instances of ``image``: resized by ``rho / diameter`` (``diameter`` None: ``rho``,
    no resize; :data:`TRUE_DIAMETER`: the image's own cells measured, as in training), the flows
    followed there, the masks resized back (nearest neighbour).

    ``nucleus`` None uses the net's training setting (``net.nucleus``). A net with ``head ==
    "semantic"`` (Table 8's baselines) is decoded by :func:`three_class_decode` instead of its flows.
    """
    factor = inference_factor(net, image, diameter)
    nucleus = bool(getattr(net, "nucleus", True)) if nucleus is None else nucleus
    small = rescaled(dataclasses.replace(image, labels=None), factor) if factor != 1.0 else image
    out = _net_output(net, small, nucleus, device)
    if getattr(net, "head", "flows") == "semantic":
        masks = three_class_decode(torch.softmax(out, 0))
    else:
        masks = outputs_to_masks(out, **flow_kwargs)
    return rescale_labels(masks, shape=np.asarray(image.image).shape[:2]) if factor != 1.0 else masks


def scores(net: torch.nn.Module, images: Sequence[CellImage], diameter: float | str | None = None,
           threshold: float = 0.5, device=None, **kwargs) -> pd.DataFrame:
    """One row per image: ``image``, ``modality`` and :func:`instance_scores` (F1 at IoU ``threshold``),
    each image predicted at ``diameter`` (see :func:`predict`; :data:`TRUE_DIAMETER` scores every
    net at its own scale)."""
    if not images:
        raise ValueError("images is empty: nothing to score")
    missing = [im.name for im in images if im.labels is None]
    if missing:
        raise ValueError(f"images must be labelled to be scored; {missing[:3]} have no labels")
    return pd.DataFrame([{"image": im.name, "modality": im.modality,
                          **instance_scores(im.labels, predict(net, im, diameter, device=device, **kwargs), threshold)}
                         for im in images])


def _optimiser(net: torch.nn.Module, settings: Settings):
    opt = schedule.sgd(net.parameters(), settings.lr)
    return opt, schedule.scheduler(opt, settings.warmup, settings.decay_start, settings.halve_every, settings.lr_min)


EvalImages = Sequence[CellImage] | Mapping[str, Sequence[CellImage]] | None


def _eval_fn(images: EvalImages, diameter: float | None = None) -> Callable | None:
    """Mean F1 of each named image set (a plain sequence is ``"val"``) as ``<name>_f1``, at ``diameter``."""
    if not images:
        return None
    sets = dict(images) if isinstance(images, Mapping) else {"val": images}
    return lambda ctx: {f"{name}_f1": float(scores(ctx.models["net"], ims, diameter, device=ctx.device)["f1"].mean())
                        for name, ims in sets.items()}


def train_phase1(labelled: Sequence[CellImage], settings: Settings, seed: int, init: CellposeNet | None = None,
                 eval_images: EvalImages = None, eval_every: int = 0, eval_diameter: float | None = None
                 ) -> CellposeNet:
    """Phase 1 (Table 1 "phase1"): a CPnet trained on ``labelled`` alone with the Cellpose loss (or
    Table 8's network and head, ``settings.arch`` and ``settings.head``).

    ``init`` (copied) continues a net, e.g. one pre-trained on another family (Table 3's cyto/cyto2
    analogue); its ``diam_mean`` is replaced by this training set's ``rho``. ``eval_images``: mean F1
    on them every ``eval_every`` updates and after the last, scored at ``eval_diameter`` (None: rho),
    in ``train_history["val_f1"]``; a mapping ``{name: images}`` gives one ``<name>_f1`` column per
    set. Returns the net on the CPU with ``diam_mean``, ``nucleus`` and ``train_history``.
    """
    return _train(labelled, (), settings, seed, init, _eval_fn(eval_images, eval_diameter), eval_every)


def unlabelled_diameters(net: torch.nn.Module, images: Sequence[CellImage], nucleus: bool = True) -> list[float]:
    """Each unlabelled image's median diameter of ``net``'s masks at the image's own scale (NaN where it
    finds none): what phase 2 resizes the image by. Several phase-2 runs from one net can share it."""
    return [image_diameter(predict(net, im, nucleus=nucleus)) for im in images]


def train_phase2(net: CellposeNet, labelled: Sequence[CellImage], unlabelled: Sequence[CellImage], settings: Settings,
                 seed: int, eval_images: EvalImages = None, eval_every: int = 0, eval_diameter: float | None = None,
                 diameters: Sequence[float] | None = None) -> CellposeNet:
    """Phase 2 (Table 1 "phase2"): from ``net`` (copied, its ``diam_mean`` kept), Eq. 1 with temporal-
    ensembled pseudo labels on ``unlabelled`` (see the module docstring). ``w = 0``: labelled only.
    The returned net has ``ensemble_updates`` (refreshes done) besides phase 1's attributes;
    ``eval_images``, ``eval_every`` and ``eval_diameter`` as :func:`train_phase1`. ``diameters``: the
    unlabelled images' :func:`unlabelled_diameters` from ``net`` if already measured.
    """
    if settings.w > 0 and not unlabelled:
        raise ValueError("unlabelled is empty: phase 2 with w > 0 needs unlabelled images")
    if diameters is not None and len(diameters) != len(unlabelled):
        raise ValueError(f"diameters has {len(diameters)} values for {len(unlabelled)} unlabelled images")
    return _train(labelled, unlabelled if settings.w > 0 else (), settings, seed, net,
                  _eval_fn(eval_images, eval_diameter), eval_every, keep_rho=True, unl_diameters=diameters)


def _train(labelled, unlabelled, settings: Settings, seed: int, init, eval_fn, eval_every: int,
           keep_rho: bool = False, unl_diameters: Sequence[float] | None = None) -> CellposeNet:
    if not isinstance(settings, Settings):
        raise ValueError(f"settings must be a Settings, got {type(settings).__name__}")
    if not labelled:
        raise ValueError("labelled is empty: need at least one labelled image")
    if unlabelled and settings.head != "flows":
        raise ValueError("phase 2 (temporal ensembling) needs the flows head; the semantic head trains phase 1 only")
    if init is None:
        seed_everything(seed)
        net = architectures.build(settings.arch, settings.head, 2, settings.features)
    else:
        net = copy.deepcopy(init)
    rho = float(net.diam_mean) if keep_rho else training_diameter(labelled, settings)
    net.diam_mean, net.nucleus = rho, settings.nucleus
    to_tensor = lambda im: mmcs_input(im, settings.nucleus)  # noqa: E731
    lab_images = [_at_rho(im, image_diameter(im.labels), rho, settings.crop) for im in labelled]
    semantic = settings.head == "semantic"
    phase = "phase2" if keep_rho else "phase1"
    stream = (lambda purpose: Streams(seed).torch(f"{phase}/{purpose}")) if settings.streams else (lambda purpose: None)
    lab = CropSampler("vgg_unet" if semantic else "cellpose", lab_images, settings.crop, settings.flips, to_tensor,
                      generator=stream("crops/labelled"))
    supervised = dice_ce() if semantic else cellpose_loss
    unl, ensemble = None, None
    if unlabelled:
        # the phase-1 net's masks give each unlabelled image its diameter
        if unl_diameters is None:
            unl_diameters = unlabelled_diameters(net, unlabelled, settings.nucleus)
        unl_images = [_at_rho(im, d, rho, settings.crop) for im, d in zip(unlabelled, unl_diameters)]
        ensemble = TemporalEnsemble([_net_output(net, im, settings.nucleus) for im in unl_images], settings.alpha)
        unl = CropSampler("cellpose", unl_images, settings.crop, settings.flips, to_tensor,
                          targets=[(z,) for z in ensemble.targets], generator=stream("crops/unlabelled"))
    opt, sched = _optimiser(net, settings)

    def step(ctx, batch):
        x, t = lab.to(ctx.device).sample(batch[0][0] if unl is not None else batch[0])
        model = ctx.models["net"]
        loss_l = supervised(model(x), t)
        if unl is None:
            ctx.optimize({"labelled": settings.labelled_scale * loss_l})
            return {"labelled": loss_l.detach(), "loss": loss_l.detach()}
        if ctx.step and ctx.step % settings.refresh_every == 0 and ensemble.updates < ctx.step // settings.refresh_every:
            ensemble.update([padded_output(model, to_tensor(im), ctx.device) for im in unl_images])
            unl.targets = [(z.to(unl.device),) for z in ensemble.targets]
        xu, zu = unl.to(ctx.device).sample(batch[1][0])
        loss_u = ensemble_loss(model(xu), zu)
        total = weighted_loss(loss_l, loss_u, settings.w)
        ctx.optimize({"total": total})
        return {"labelled": loss_l.detach(), "unlabelled": loss_u.detach(), "loss": total.detach()}

    loader = lab.loader(settings.batch)
    if unl is not None:
        loader = SemiBatches(loader, unl.loader(settings.batch))
    history = fit({"net": net}, {"net": opt}, step, loader, max_steps=settings.steps, schedulers={"net": sched},
                  eval_fn=eval_fn, eval_every=eval_every, seed=seed, device=settings.device,
                  progress=settings.progress, desc="mmcs phase 2" if unl is not None else "mmcs phase 1")
    release(net)
    net.train_history = history
    net.ensemble_updates = ensemble.updates if ensemble is not None else 0
    # the final pseudo labels, at the scale they were trained at, and each image's resize factor
    net.pseudo_labels = [z.cpu() for z in ensemble.targets] if ensemble is not None else []
    net.pseudo_factors = [rho / d if np.isfinite(d) else 1.0 for d in unl_diameters] if ensemble is not None else []
    return net


__all__ = ["CELLPOSE_DIAMETER", "Settings", "mmcs_input", "predict", "rescaled", "scores", "train_phase1",
           "train_phase2", "training_diameter", "unlabelled_diameters"]
