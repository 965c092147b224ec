"""The organoid thesis's training protocol around the three stages (Sec. 4.2-4.3).

* Global stage: one model per data proportion, trained with k-fold cross validation; the fold
  with the lowest mean validation loss is kept (Sec. 4.2.1).
* Local stage: from each kept global model, one model per local proportion, again k-fold with
  the same rule (Sec. 4.2.2), the encoder frozen or not (Sec. 5.3).
* Fine-tuning: each kept local model once per loss, *without* folds: 36 pre-trained models x
  3 losses = 108 fine-tuned models (Sec. 4.3). The supervised baseline is the same fine-tuning
  from a random initialisation.

:class:`Pretrainer` caches the global models per proportion and the local models per
(global proportion, local proportion, frozen) for one seed, so ablation arms that share a
pre-training share its weights instead of re-training it.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field

import pandas as pd
import torch

from ...nets import SplitUNet
from ...semi.contrastive import StageConfig, cross_validate, finetune, global_stage, local_stage, predict
from ...engine.train import release, resolve_accelerator
from .evaluate import score
from .split import OrganoidSplit, subset


@dataclass
class Settings:
    """Everything a stage needs besides the data."""

    features: tuple[int, ...]
    global_cfg: StageConfig
    local_cfg: StageConfig
    finetune_cfg: StageConfig
    folds: int = 2
    device: str = "auto"

    def torch_device(self) -> torch.device:
        kind, devices = resolve_accelerator(self.device)
        index = devices[0] if isinstance(devices, list) else None
        return torch.device(kind, index) if index is not None else torch.device(kind)


@dataclass
class Pretrainer:
    """Pre-trained models of one seed, each trained once and cached (on the CPU)."""

    split: OrganoidSplit
    settings: Settings
    seed: int
    histories: dict = field(default_factory=dict)
    _global: dict = field(default_factory=dict)
    _local: dict = field(default_factory=dict)

    def random_model(self) -> SplitUNet:
        torch.manual_seed(self.seed)
        return SplitUNet(features=self.settings.features)

    def global_model(self, fraction: float) -> SplitUNet:
        """The global stage on ``fraction`` of its half (k-fold selected)."""
        if fraction not in self._global:
            s = self.settings
            images = self.split.global_images[subset(len(self.split.global_images), fraction, self.seed)]
            model, hist, best = cross_validate(
                self.random_model(), [images], s.folds,
                lambda m, tr, va: global_stage(m, tr[0], s.global_cfg, va[0], self.seed, s.device), self.seed)
            self._global[fraction] = model
            self.histories[("global", fraction)] = hist[best]
        return self._global[fraction]

    def local_model(self, global_fraction: float, local_fraction: float, frozen: bool = False) -> SplitUNet:
        """The local stage on ``local_fraction`` of its half, from the cached global model."""
        key = (global_fraction, local_fraction, frozen)
        if key not in self._local:
            s, sp = self.settings, self.split
            start = self.global_model(global_fraction)
            idx = subset(len(sp.local_images), local_fraction, self.seed + 1)
            model, hist, best = cross_validate(
                copy.deepcopy(start), [sp.local_images[idx], sp.local_masks[idx]], s.folds,
                lambda m, tr, va: local_stage(m, tr[0], tr[1], s.local_cfg, frozen, (va[0], va[1]), self.seed,
                                              s.device), self.seed)
            self._local[key] = model
            self.histories[("local",) + key] = hist[best]
        return self._local[key]


def finetune_and_test(model: SplitUNet, split: OrganoidSplit, loss: str, settings: Settings, seed: int = 0,
                      keep_probs: bool = False, shape: bool = False) -> dict:
    """Fine-tune a copy of ``model`` once with ``loss`` (no folds, Sec. 4.3) and score the test crops.

    Returns ``scores`` (one row per test crop, see :func:`~.evaluate.score`; with ``shape`` the
    shape metrics too), the history, and with ``keep_probs`` the test probabilities and the
    fine-tuned model.
    """
    torch.manual_seed(seed)
    tuned = copy.deepcopy(model)
    hist = finetune(tuned, split.tune_images, split.tune_masks, settings.finetune_cfg, loss, None, seed,
                    settings.device)
    probs = predict(tuned, split.test.images, device=settings.torch_device())
    out = {"scores": score(probs, split.test, shape=shape), "history": hist}
    if keep_probs:
        out.update(probs=probs, model=tuned.cpu())
    release(tuned)
    return out


def supervised(pre: Pretrainer, loss: str, keep_probs: bool = False) -> dict:
    """The baseline: the same fine-tuning from a random initialisation."""
    return finetune_and_test(pre.random_model(), pre.split, loss, pre.settings, pre.seed, keep_probs)


def tagged(scores: pd.DataFrame, **tags) -> pd.DataFrame:
    """``scores`` with constant columns ``tags`` in front (seed, arm, proportions, loss, ...)."""
    out = scores.copy()
    for i, (k, v) in enumerate(tags.items()):
        out.insert(i, k, v)
    return out


def pretrainers(dataset: str, data_root: str | None, seeds: list[int], n_train: int, n_test: int, size: int,
                crop: int, n_labelled: int | None, settings: Settings, pool_share: float = 0.5):
    """For each seed: its training images and split (the test set is shared), as a
    :class:`Pretrainer`, with the training and test images: ``(pretrainer, train, test)``."""
    from ...engine.progress import bar as progress_bar

    from .split import load_images, prepare

    for seed in progress_bar(seeds, desc="seeds", unit="seed", disable=None):
        train, test = load_images(dataset, data_root, n_train, n_test, size, seed)
        sp = prepare(train, test, crop, seed, pool_share=pool_share, n_labelled=n_labelled)
        yield Pretrainer(sp, settings, seed), train, test
