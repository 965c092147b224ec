"""Training and inference of the brightfield thesis's SE-U-Nets (Sec. 4.2-4.3, 5.3-5.4).

One loop serves every semantic table of the chapter: a :class:`~cellrepro.nets.SEUNet` with one
decoder per head, trained on random crops of the two brightfield planes (Fig. 4.3) against the
field's exact maps (:func:`cellrepro.data.synthetic.brightfield.semantic_maps`), with a loss that
maps the heads' logits and the crop's targets to named terms (Eq. 4.2 for the heads table,
:func:`bce_heads_loss`; the overlap table adds its focal term, :mod:`.overlap_loss`). Inference
averages sliding windows with MONAI (the thesis: 512 px windows overlapping by 256 px on 1024 px
images; here ``crop`` px windows overlapping by half), and every table is scored on pooled pixels
(:func:`cellrepro.metrics.semantic_scores`, the thesis's convention).

The thesis's schedule (AdamW, learning rate 1e-5, weight decay 1e-5, 1000 epochs of 4 random
512 px crops from 18 images resized to 1024 px, flips, coarse dropout, elastic deformation) is
the ``paper`` profile's; the book profile trains far fewer updates at a larger learning rate
(:class:`Settings`), with flips as the only augmentation (our choice: the synthetic fields are
drawn fresh per seed, and coarse dropout and elastic deformation would cost CPU time for an
effect the thesis does not measure).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Mapping, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from ...data.crops import CropSampler
from ...data.synthetic.brightfield import semantic_maps
from ...data.types import Field
from ...engine.hardware import release, torch_device
from ...engine.streams import Streams
from ...metrics.semantic import pixel_ap, semantic_scores
from ...nets.seunet import HEAD_NAMES, SEUNet
from ...engine.train import fit

TARGETS = HEAD_NAMES
"""The maps every field provides, in this order (:func:`field_targets`)."""


SCHEDULES = ("constant", "cosine")


@dataclass(frozen=True)
class Settings:
    """How one SE-U-Net is trained and applied.

    Attributes:
        steps, batch, crop: optimiser updates, crops per update, crop side (a multiple of
            ``2 ** (len(features) - 1)``); inference windows are ``crop`` px too.
        lr, weight_decay: AdamW's (the thesis: 1e-5 and 1e-5).
        features: SE-U-Net widths per level.
        weights: Eq. 4.2's lambda per head (missing heads: 1.0). The thesis gives no values;
            equal weights are our default.
        se: squeeze-and-excitation layers on (the thesis's SEU-Net) or off (a plain U-Net).
        norm: the convolutions' normalisation (MONAI name). The thesis names none. Instance norm, our
            choice: with batch norm, one seed in three ended with running statistics so far from its
            batches' that the eval-mode net marked nearly every pixel as cell (F1 0.68 against 0.90 with
            batch statistics, 300 updates at 2e-3, 4 crops per batch).
        window_overlap: sliding-window overlap as a fraction of the window (thesis: 256/512).
        threshold: probability threshold of every class (thesis: 0.5).
        schedule: the learning rate over the updates: "constant" (the published runs') or "cosine"
            (``CosineAnnealingLR`` to 0 at the last update).
        average_from: None (off), or the share of the updates after which the weights are
            averaged, every update (``torch.optim.swa_utils.AveragedModel``); the averaged net is
            returned. With the cosine decay it steadies seeds that end in a bad spot (issue 31: one
            2-head seed fell to 0.877 cytoplasm F1).
        border_width: the border target's width in pixels (:func:`semantic_maps`; 1, the default,
            is the published runs' one-pixel outline).
        device, progress: training device ("auto": the GPU if there is one) and progress bars.
    """

    steps: int = 300
    batch: int = 4
    crop: int = 128
    lr: float = 2e-3
    weight_decay: float = 1e-5
    features: tuple[int, ...] = (16, 32, 64, 128)
    weights: Mapping[str, float] = field(default_factory=dict)
    se: bool = True
    norm: str = "instance"
    window_overlap: float = 0.5
    threshold: float = 0.5
    schedule: str = "constant"
    average_from: float | None = None
    border_width: int = 1
    device: str = "auto"
    progress: bool = True

    def __post_init__(self):
        for name in ("steps", "batch", "crop", "border_width"):
            value = getattr(self, name)
            if not isinstance(value, (int, np.integer)) or value < 1:
                raise ValueError(f"Settings.{name} must be a positive integer, got {value!r}")
        if not 0 <= self.window_overlap < 1:
            raise ValueError(f"Settings.window_overlap must be in [0, 1), got {self.window_overlap!r}")
        if self.schedule not in SCHEDULES:
            raise ValueError(f"Settings.schedule must be one of {SCHEDULES}, got {self.schedule!r}")
        if self.average_from is not None and not 0 <= self.average_from < 1:
            raise ValueError(f"Settings.average_from must be None or in [0, 1), got {self.average_from!r}")
        unknown = [h for h in self.weights if h not in HEAD_NAMES]
        if unknown:
            raise ValueError(f"Settings.weights names unknown head {unknown[0]!r}; heads are {HEAD_NAMES}")


def field_input(f: Field) -> torch.Tensor:
    """(2, H, W) float32: the lower and higher brightfield planes, each standardised over the field
    (zero mean, unit SD), the thesis's two-plane input (Fig. 4.3)."""
    planes = []
    for name in ("bf_low", "bf_high"):
        plane = getattr(f, name, None)
        if plane is None or np.ndim(plane) != 2:
            raise ValueError(f"field {getattr(f, 'name', '?')!r}: {name} must be an (H, W) image, got "
                             f"{None if plane is None else np.shape(plane)}")
        plane = np.asarray(plane, np.float32)
        planes.append((plane - plane.mean()) / max(float(plane.std()), 1e-6))
    return torch.from_numpy(np.stack(planes))


def field_targets(f: Field, extra: Mapping[str, np.ndarray] | None = None, border_width: int = 1) -> torch.Tensor:
    """(len(TARGETS) + len(extra), H, W) float32: the field's :data:`TARGETS` maps (0/1; the border
    ``border_width`` pixels wide), then any ``extra`` maps (e.g. an overlap probability map) in the
    order given."""
    if f.amodal is None or f.nuclei is None:
        raise ValueError(f"field {f.name!r} has no annotation (amodal masks and nuclei); it cannot be a training field")
    maps = semantic_maps(f.amodal, f.nuclei, border_width)
    out = [maps[k].astype(np.float32) for k in TARGETS]
    out += [np.asarray(v, np.float32) for v in (extra or {}).values()]
    return torch.from_numpy(np.stack(out))


def target_index(name: str, extra: Sequence[str] = ()) -> int:
    """Channel of ``name`` in :func:`field_targets`' output with ``extra`` maps of these names."""
    names = (*TARGETS, *extra)
    if name not in names:
        raise ValueError(f"no target named {name!r}; targets are {names}")
    return names.index(name)


Loss = Callable[[Mapping[str, torch.Tensor], torch.Tensor], dict[str, torch.Tensor]]
"""``loss(logits by head, targets (B, C, H, W)) -> {term: scalar}``; the terms are summed."""


def bce_heads_loss(heads: Sequence[str], weights: Mapping[str, float] | None = None) -> Loss:
    """Eq. 4.2: ``sum_h lambda_h BCE_h`` over ``heads`` (Eq. 4.1, on logits), one term per head.

    >>> loss = bce_heads_loss(["cytoplasm", "nuclei"], {"nuclei": 0.5})
    >>> t = torch.zeros(1, len(TARGETS), 2, 2); t[:, 0] = 1
    >>> terms = loss({"cytoplasm": torch.zeros(1, 1, 2, 2), "nuclei": torch.zeros(1, 1, 2, 2)}, t)
    >>> {k: round(float(v), 4) for k, v in terms.items()}   # log 2 each, the nuclei term halved
    {'cytoplasm': 0.6931, 'nuclei': 0.3466}
    """
    weights = dict(weights or {})

    def loss(logits: Mapping[str, torch.Tensor], targets: torch.Tensor) -> dict[str, torch.Tensor]:
        return {h: weights.get(h, 1.0) * F.binary_cross_entropy_with_logits(
            logits[h][:, 0].float(), targets[:, target_index(h)]) for h in heads}

    return loss


def train_seunet(fields: Sequence[Field], heads: Sequence[str], settings: Settings, seed: int,
                 loss: Loss | None = None, extra: Sequence[Mapping[str, np.ndarray]] | None = None) -> SEUNet:
    """An SE-U-Net with ``heads`` trained on random ``settings.crop`` crops of ``fields``.

    Args:
        loss: the training loss (default :func:`bce_heads_loss` with ``settings.weights``).
        extra: per field, extra target maps appended after :data:`TARGETS` (and flipped with them).

    Crop positions, flips and the order of the fields come from the seed's own stream
    (``Streams(seed).torch("crops")``): every arm of a seed cuts the same crops, whatever its heads,
    loss or extra targets (paired arms, issue 31).
    The net comes back on the CPU in eval mode, its history as ``net.train_history``.
    """
    if not fields:
        raise ValueError("fields is empty: need at least one annotated field to train on")
    if extra is not None and len(extra) != len(fields):
        raise ValueError(f"extra has {len(extra)} entries for {len(fields)} fields")
    targets = [(field_targets(f, None if extra is None else extra[i], settings.border_width),)
               for i, f in enumerate(fields)]
    sampler = CropSampler(None, fields, settings.crop, flips=True, to_tensor=field_input, targets=targets,
                          generator=Streams(seed).torch("crops"))
    torch.manual_seed(seed)
    net = SEUNet(2, heads, settings.features, se=settings.se, norm=settings.norm)
    if settings.crop % net.size_multiple:
        raise ValueError(f"Settings.crop {settings.crop} must be a multiple of {net.size_multiple} "
                         f"for features {settings.features}")
    loss = loss or bce_heads_loss(heads, settings.weights)
    models: dict[str, torch.nn.Module] = {"net": net}
    if settings.average_from is not None:
        from torch.optim.swa_utils import AveragedModel

        models["average"] = AveragedModel(net, use_buffers=True)
    first_averaged = None if settings.average_from is None else int(settings.average_from * settings.steps) + 1

    def step(ctx, batch):
        x, t = sampler.to(ctx.device).sample(batch[0])
        terms = loss(ctx.models["net"](x), t)
        total = ctx.optimize(terms)
        if first_averaged is not None and ctx.step + 1 >= first_averaged:  # ctx.step + 1: this update's number
            ctx.models["average"].update_parameters(ctx.models["net"])
        return {**terms, "loss": total.detach()}

    optimizer = torch.optim.AdamW(net.parameters(), lr=settings.lr, weight_decay=settings.weight_decay)
    schedulers = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, settings.steps) \
        if settings.schedule == "cosine" else None
    history = fit(models, {"net": optimizer}, step, sampler.loader(settings.batch), max_steps=settings.steps,
                  schedulers=None if schedulers is None else {"net": schedulers}, seed=seed, device=settings.device,
                  progress=settings.progress, desc="SE-U-Net " + "+".join(heads))
    release(net)
    if "average" in models:
        net = models["average"].module.cpu()
    net.eval()
    net.train_history = history
    return net


@torch.no_grad()
def predict(net: SEUNet, fields: Sequence[Field], settings: Settings) -> list[dict[str, np.ndarray]]:
    """Per field ``{head: (H, W) float32 probability}``: sliding ``settings.crop`` windows overlapping by
    ``settings.window_overlap``, averaged (MONAI ``sliding_window_inference``, constant blending)."""
    from monai.inferers import sliding_window_inference

    device = torch_device(settings.device)
    net = net.to(device).eval()
    out = []
    try:
        for f in fields:
            x = field_input(f)[None].to(device)
            logits = sliding_window_inference(x, settings.crop, 4, net, overlap=settings.window_overlap,
                                              mode="constant")
            out.append({h: torch.sigmoid(v[0, 0].float()).cpu().numpy() for h, v in logits.items()})
    finally:
        release(net)
    return out


def pooled_scores(probs: Sequence[Mapping[str, np.ndarray]], fields: Sequence[Field], head: str,
                  threshold: float = 0.5, target: str | None = None, border_width: int = 1) -> dict[str, float]:
    """The thesis's pooled-pixel accuracy, precision, recall, F1 and IoU of ``head`` over ``fields``
    (confusion counts summed over every test image, then the ratios), against the field's
    ``target`` map (default: the map of the head's name; the border ``border_width`` pixels wide,
    as the net was trained), and ``ap``: the threshold-free pixel
    average precision over the same pooled pixels (:func:`cellrepro.metrics.semantic.pixel_ap`;
    issue 31's primary overlap score, F1 at ``threshold`` beside it)."""
    if len(probs) != len(fields):
        raise ValueError(f"{len(probs)} predictions for {len(fields)} fields")
    missing = [i for i, p in enumerate(probs) if head not in p]
    if missing:
        raise ValueError(f"prediction {missing[0]} has no head {head!r}; it has {list(probs[missing[0]])}")
    truth = [semantic_maps(f.amodal, f.nuclei, border_width)[target or head] for f in fields]
    maps = [p[head] for p in probs]
    return {**semantic_scores(maps, truth, threshold, pooled=True), "ap": pixel_ap(maps, truth)}


def _seed_job(item: tuple[int, bool], seed_run: Callable, train_fields, tests, settings: Settings,
              kwargs: Mapping) -> tuple:
    """One seed of :func:`run_seeds`: ``item`` is (seed, whether to return the test probabilities)."""
    seed, keep_probs = item
    fields = train_fields(seed) if callable(train_fields) else train_fields
    rows, probs = seed_run(seed, fields, tests, settings, **kwargs)
    return rows, probs if keep_probs else None


def run_seeds(seed_run: Callable, seeds: Sequence[int], train_fields: Callable[[int], Sequence[Field]] | Sequence[Field],
              tests: Sequence[Field], settings: Settings, workers: int | str = "auto", **kwargs):
    """A section's ``seed_run(seed, train_fields, tests, settings, **kwargs) -> (rows, probs)`` for
    every seed, the seeds spread over the CPU's cores (:func:`cellrepro.engine.parallel.map_units`,
    one thread each; in this process on a GPU).

    ``seed_run`` must be a module-level function and ``train_fields`` a seed's training fields (a
    picklable callable of the seed, e.g. ``functools.partial(heads.fields, n=18, size=256)``) or one
    list every seed trains on. Returns every seed's rows (one DataFrame), the first seed's test
    probabilities (for figures) and the wall-clock seconds per seed (the whole run's time over the
    seeds: what one more seed costs on this machine)."""
    import dataclasses
    import functools
    import time

    import pandas as pd

    from ...engine.parallel import map_units, workers_for

    if not seeds:
        raise ValueError("seeds is empty")
    alone = workers_for(len(seeds), workers, settings.device) == 1
    quiet = dataclasses.replace(settings, progress=settings.progress and alone)
    start = time.perf_counter()
    job = functools.partial(_seed_job, seed_run=seed_run, train_fields=train_fields, tests=tests, settings=quiet,
                            kwargs=kwargs)
    results = map_units(job, [(seed, i == 0) for i, seed in enumerate(seeds)], workers, settings.device)
    seconds = (time.perf_counter() - start) / len(seeds)
    return pd.concat([r for r, _ in results], ignore_index=True), results[0][1], seconds


__all__ = ["Loss", "SCHEDULES", "Settings", "TARGETS", "bce_heads_loss", "field_input", "field_targets", "pooled_scores",
           "predict", "run_seeds", "target_index", "train_seunet"]
