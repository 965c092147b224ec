"""The organoid thesis's training protocol around the three stages (Sec. 4.2-4.3), as this book runs it.

* Global stage: one encoder per (seed, data proportion), trained on the proportion's *images* of
  the global pool (:meth:`~.split.OrganoidSplit.global_pool`) for a fixed number of updates, so a
  larger proportion adds variety, not training time (the thesis trains fixed epochs, which
  conflates the two). With ``folds`` > 1 the thesis's k-fold rule keeps the fold with the lowest
  mean validation loss (Sec. 4.2.1); ``folds=1`` (the book profile) is one fixed split, the k - 1
  saved trainings spent on updates instead.
* Local stage: from a kept global encoder, one model per (local proportion, frozen or not)
  (Sec. 4.2.2, 5.3), again on whole images of the local pool.
* Fine-tuning: each kept model once per loss, *without* folds, on the seed's labelled fine-tuning
  crops, the same crops and the same batch order for every arm of the seed (Sec. 4.3). The
  supervised baseline is the same fine-tuning from the seed's random initialisation.

The checks read off these stages (probes, engagement gates, the global stage under other
settings), the classical reference and the training curves are in :mod:`.diagnostics`.

Every stage is a function of (:class:`Data`, seed, :class:`Settings`, its own arguments) whose
result goes through :func:`cellrepro.engine.cache.shared`: the four organoid notebooks share an
encoder of the same seed and proportion instead of pre-training it four times, and a re-run with
unchanged code serves it from the cache.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, replace
from typing import Any, Mapping

import numpy as np
import pandas as pd
import torch

from ...engine.cache import cold_seconds, shared
from ... import CellreproError
from ...engine.train import release, resolve_accelerator
from ...nets import SplitUNet
from ...semi.contrastive import StageConfig, cross_validate, finetune, global_stage, local_stage, predict
from .evaluate import score
from .split import OrganoidSplit, load_images, prepare


@dataclass(frozen=True)
class Data:
    """One seed's data, as numbers: which images, how many, how cut (hashable: a cache key)."""

    dataset: str = "organoid"
    data_root: str | None = None
    n_global: int = 20
    n_local: int = 10
    n_tune: int = 4
    n_test: int = 20
    size: int = 256
    crop: int = 32
    n_labelled: int | None = 256


@dataclass(frozen=True)
class Settings:
    """Everything a stage needs besides the data."""

    features: tuple[int, ...]
    global_cfg: StageConfig
    local_cfg: StageConfig
    finetune_cfg: StageConfig
    folds: int = 1
    device: str = "auto"

    def torch_device(self) -> torch.device:
        kind, devices = resolve_accelerator(self.device)
        index = devices[0] if isinstance(devices, list) else None
        return torch.device(kind, index) if index is not None else torch.device(kind)


#: The notebook parameters :func:`configure` reads (the organoid notebooks' parameters cells).
PARAMETERS = ("dataset", "data_root", "n_global", "n_local", "n_tune", "n_test", "image_size", "crop", "n_labelled",
              "features", "global_epochs", "global_batch", "global_lr", "global_temperature", "global_steps",
              "local_epochs", "local_batch", "local_lr", "local_temperature", "block_size", "local_form", "local_steps",
              "finetune_epochs", "finetune_batch", "finetune_lr", "finetune_steps", "folds", "val_crops", "device")


def configure(parameters: Mapping[str, Any]) -> tuple[Data, Settings]:
    """(:class:`Data`, :class:`Settings`) from an organoid notebook's parameters (a mapping with
    the names of :data:`PARAMETERS`, e.g. the notebook's ``globals()``).

    >>> from cellrepro import CellreproError
    >>> try:
    ...     configure({"dataset": "organoid"})
    ... except CellreproError as e:
    ...     print(str(e)[:60])
    organoid parameters missing: data_root, n_global, n_local, n
    """
    missing = [k for k in PARAMETERS if k not in parameters]
    if missing:
        raise CellreproError(f"organoid parameters missing: {', '.join(missing)} (the organoid notebooks' "
                             "parameters cells name them all)")
    p = parameters
    data = Data(p["dataset"], p["data_root"], p["n_global"], p["n_local"], p["n_tune"], p["n_test"], p["image_size"],
                p["crop"], p["n_labelled"])
    settings = Settings(
        tuple(p["features"]),
        StageConfig(p["global_epochs"], p["global_batch"], p["global_lr"], p["global_temperature"], steps=p["global_steps"],
                    val_items=p["val_crops"]),
        StageConfig(p["local_epochs"], p["local_batch"], p["local_lr"], p["local_temperature"], p["block_size"],
                    form=p["local_form"], steps=p["local_steps"], val_items=p["val_crops"]),
        StageConfig(p["finetune_epochs"], p["finetune_batch"], p["finetune_lr"], steps=p["finetune_steps"]),
        p["folds"], p["device"])
    return data, settings


def seconds_per_seed(seeds: list[int]) -> float:
    """What one seed of this process's training costs from an empty cache: the compute seconds of
    every cached stage it used (:func:`cellrepro.engine.cache.cold_seconds`: pre-training,
    fine-tuning and scoring the test crops), per seed. A run served from the cache is fast; this is
    what ``judge`` needs to say what more seeds would cost. The probes and figures outside the
    cache are not in it (seconds, against minutes of training per seed)."""
    return cold_seconds() / max(1, len(seeds))


@functools.lru_cache(maxsize=2)
def seed_data(data: Data, seed: int) -> tuple[OrganoidSplit, list, list]:
    """(split, training images, test images) of ``seed``: the test images are the same for every seed."""
    n_train = data.n_global + data.n_local + data.n_tune
    train, test = load_images(data.dataset, data.data_root, n_train, data.n_test, data.size, seed)
    return prepare(train, test, data.crop, seed, data.n_global, data.n_local, data.n_labelled), train, test


def random_model(settings: Settings, seed: int) -> SplitUNet:
    """The seed's initial weights: the start of every pre-training and of the supervised baseline."""
    torch.manual_seed(seed)
    return SplitUNet(features=settings.features)


def _state(model: SplitUNet) -> dict[str, torch.Tensor]:
    return {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}


def _global(data: Data, seed: int, settings: Settings, fraction: float) -> dict:
    sp = seed_data(data, seed)[0]
    crops, images = sp.global_pool(fraction)
    model, hist, best = cross_validate(
        random_model(settings, seed), [crops], settings.folds,
        lambda m, tr, va: global_stage(m, tr[0], settings.global_cfg, va[0], seed, settings.device), seed)
    return {"state": _state(model), "history": hist[best], "images": images, "crops": len(crops)}


def _local(data: Data, seed: int, settings: Settings, global_fraction: float, local_fraction: float,
           frozen: bool) -> dict:
    sp = seed_data(data, seed)[0]
    # global_fraction 0: the local stage from the seed's random weights (no global stage), the control
    # that says whether the global stage reaches the fine-tuned model at all
    start = model_from(data, seed, settings, ("global", global_fraction) if global_fraction else ("random",))
    encoder = {id(p) for p in start.encoder_parameters()}
    before = {n: p.detach().clone() for n, p in start.named_parameters() if id(p) in encoder}
    images, masks, n_images = sp.local_pool(local_fraction)
    model, hist, best = cross_validate(
        start, [images, masks], settings.folds,
        lambda m, tr, va: local_stage(m, tr[0], tr[1], settings.local_cfg, frozen, (va[0], va[1]), seed,
                                      settings.device), seed)
    after = dict(model.named_parameters())
    change = max(float((after[n].detach().cpu() - w).abs().max()) for n, w in before.items())
    norm = float(torch.sqrt(sum((w ** 2).sum() for w in before.values())))
    moved = float(torch.sqrt(sum(((after[n].detach().cpu() - w) ** 2).sum() for n, w in before.items())))
    return {"state": _state(model), "history": hist[best], "images": n_images, "crops": len(images),
            "encoder_max_change": change, "encoder_relative_change": moved / max(norm, 1e-12)}


_global_encoder = shared(_global)
_local_model = shared(_local)


def global_encoder(data: Data, seed: int, settings: Settings, fraction: float) -> dict:
    """The global stage of (data, seed, settings, proportion), computed once: ``state`` (the whole
    network's weights; only the encoder trained), ``history``, ``images`` and ``crops`` used. Cached
    on the settings it reads (features, ``global_cfg``, folds, device): a notebook with other local
    or fine-tuning settings shares the encoder."""
    return _global_encoder(data, seed, replace(settings, local_cfg=None, finetune_cfg=None), fraction)


def local_model(data: Data, seed: int, settings: Settings, global_fraction: float, local_fraction: float,
                frozen: bool) -> dict:
    """The local stage on top of :func:`global_encoder`, computed once: ``state``, ``history``,
    ``images``, ``crops``, and how far the encoder moved (``encoder_max_change``,
    ``encoder_relative_change``). Cached without the fine-tuning settings, which it does not read."""
    return _local_model(data, seed, replace(settings, finetune_cfg=None), global_fraction, local_fraction, frozen)


def model_from(data: Data, seed: int, settings: Settings, start: tuple) -> SplitUNet:
    """A network with the weights ``start`` names: ``("random",)``, ``("global", g)`` or
    ``("local", g, l, frozen)`` (``g = 0``: the local stage from random weights, no global stage)."""
    model = random_model(settings, seed)
    if start[0] == "global":
        model.load_state_dict(global_encoder(data, seed, settings, start[1])["state"])
    elif start[0] == "local":
        model.load_state_dict(local_model(data, seed, settings, *start[1:])["state"])
    elif start[0] != "random":
        raise ValueError(f"unknown start {start!r}: ('random',), ('global', g) or ('local', g, l, frozen)")
    return model


def _finetuned(data: Data, seed: int, settings: Settings, start: tuple, loss: str, keep_probs: bool = False,
               shape: bool = False, local_labels: float = 0.0) -> dict:
    sp = seed_data(data, seed)[0]
    model = model_from(data, seed, settings, start)
    images, masks = sp.tune_images, sp.tune_masks
    if local_labels:  # a supervised control with the local pool's labels too (organoid-C2's positive control)
        extra_images, extra_masks, _ = sp.local_pool(local_labels)
        images, masks = torch.cat([images, extra_images]), torch.cat([masks, extra_masks])
    torch.manual_seed(seed)  # the same batch order for every arm of the seed (common random numbers)
    hist = finetune(model, images, masks, settings.finetune_cfg, loss, None, seed, settings.device)
    probs = predict(model, sp.test.images, device=settings.torch_device())
    out = {"scores": score(probs, sp.test, shape=shape), "history": hist}
    if keep_probs:
        out["probs"] = probs
    release(model)
    return out


finetuned = shared(_finetuned)
"""Fine-tune the network ``start`` names with ``loss`` and score the test crops (computed once):
``scores`` (one row per test crop, :func:`~.evaluate.score`; with ``shape`` the shape metrics),
``history`` and with ``keep_probs`` the test probabilities. ``local_labels`` adds that share of the
local pool's labelled crops to the fine-tuning crops (a supervised control, not the thesis's)."""


def loss_fall(history: pd.DataFrame, column: str, share: float = 0.1, floor: str | None = None) -> float:
    """How much a stage's training loss fell: 1 - (mean of the last ``share`` of updates) / (mean
    of the first ``share``); 0.3 means the loss ended 30 % below where it started. With ``floor``
    (a logged column: the lowest value the loss could take on each batch), the share of the way
    from the start to the floor that the loss went instead: the local loss cannot fall below
    ``log |P|`` (:func:`cellrepro.losses.contrastive.local_floor`), so its plain fall is small even
    when it trains well.

    >>> round(loss_fall(pd.DataFrame({"l": np.linspace(2.0, 1.0, 100)}), "l"), 3)
    0.465
    >>> round(loss_fall(pd.DataFrame({"l": np.linspace(2.0, 1.5, 100), "f": 1.0}), "l", floor="f"), 3)
    0.465
    """
    values = history[column].dropna().to_numpy(float)
    k = max(1, int(round(share * len(values))))
    if len(values) < 2:
        return float("nan")
    first, last = values[:k].mean(), values[-k:].mean()
    if floor is not None and floor in history and history[floor].notna().any():
        bottom = float(history[floor].dropna().mean())
        return float((first - last) / (first - bottom)) if first > bottom else float("nan")
    return float(1 - last / first)


def tagged(scores: pd.DataFrame, **tags) -> pd.DataFrame:
    """``scores`` with constant columns ``tags`` in front (seed, arm, proportions, loss, ...)."""
    out = scores.copy()
    for i, (k, v) in enumerate(tags.items()):
        out.insert(i, k, v)
    return out


def seeds_progress(seeds: list[int]):
    """The seeds, with a progress bar where one is wanted (:func:`cellrepro.engine.progress.bar`)."""
    from ...engine.progress import bar as progress_bar

    return progress_bar(seeds, desc="seeds", unit="seed", disable=None)


@dataclass
class Results:
    """What :func:`run` measured: every test crop's scores (``seed``, ``arm``, ``loss`` in front),
    per seed and pre-training stage the diagnostics the gates read (``stages``), and the first
    seed's test probabilities per arm (``probs``, for figures)."""

    scores: pd.DataFrame
    stages: pd.DataFrame
    probs: dict[str, np.ndarray]

    def per_seed(self) -> pd.DataFrame:
        """Test images averaged within each seed, arm and loss (:func:`~.evaluate.per_seed`)."""
        from .evaluate import per_image, per_seed

        return per_seed(per_image(self.scores, by=["seed", "arm", "loss"]), by=["arm", "loss"])

    def per_image(self) -> pd.DataFrame:
        from .evaluate import per_image

        return per_image(self.scores, by=["seed", "arm", "loss"])


def stage_rows(data: Data, seed: int, settings: Settings, start: tuple) -> list[dict]:
    """Diagnostics of the pre-training stages behind ``start``: updates, loss fall, images, crops
    (and for a local stage how far the encoder moved)."""
    rows = []
    if start[0] in ("global", "local") and start[1]:
        g = global_encoder(data, seed, settings, start[1])
        rows.append({"seed": seed, "stage": "global", "global_fraction": start[1], "updates": len(g["history"]["nt_xent"].dropna()),
                     "loss_fall": loss_fall(g["history"], "nt_xent"), "images": g["images"], "crops": g["crops"]})
    if start[0] == "local":
        loc = local_model(data, seed, settings, *start[1:])
        rows.append({"seed": seed, "stage": "local", "global_fraction": start[1], "local_fraction": start[2],
                     "frozen": start[3], "updates": len(loc["history"]["local"].dropna()),
                     "loss_fall": loss_fall(loc["history"], "local", floor="local_floor"), "images": loc["images"], "crops": loc["crops"],
                     "encoder_max_change": loc["encoder_max_change"],
                     "encoder_relative_change": loc["encoder_relative_change"]})
    return rows


def run(data: Data, settings: Settings, seeds: list[int], arms: dict[str, tuple], losses: tuple[str, ...] = ("bce_dice",),
        shape: bool = False, keep_probs: bool = False) -> Results:
    """Fine-tune every arm (a name and the start :func:`model_from` takes, or ``("random+labels", l)``:
    the supervised baseline with the local pool's labelled crops added) with every loss, for every
    seed, and score the test crops; pre-training is shared through the cache."""
    scores, stages, probs = [], [], {}
    for seed in seeds_progress(seeds):
        for name, start in arms.items():
            extra = 0.0
            if start[0] == "random+labels":  # ("random+labels", local share): supervised with more labels
                start, extra = ("random",), start[1]
            stages += [{"arm": name, **r} for r in stage_rows(data, seed, settings, start)]
            for loss in losses:
                keep = keep_probs and seed == seeds[0]
                r = finetuned(data, seed, settings, start, loss, keep_probs=keep, shape=shape, local_labels=extra)
                scores.append(tagged(r["scores"], seed=seed, arm=name, loss=loss))
                if keep:
                    probs[name if len(losses) == 1 else f"{name}, {loss}"] = r["probs"]
    return Results(pd.concat(scores, ignore_index=True), pd.DataFrame(stages), probs)

