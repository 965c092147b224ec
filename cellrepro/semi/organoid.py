"""The organoid thesis's experimental protocol around the three stages (Sec. 3.1, 4.2-4.3).

* :func:`prepare` loads organoid images (synthetic or real), splits them *by image* into a
  pre-training pool, a fine-tuning set and a test set (the thesis split overlapping, rotated
  crops at random, which leaks near-duplicates into the test set), cuts crops, and halves the
  pre-training pool between the global and the local stage (33,680 = 2 x 16,840 in the thesis).
* :func:`pretrain` (:func:`global_pretrain`, then :func:`local_pretrain`) runs the two stages
  on proportions of their halves with k-fold selection; :func:`finetune_and_test` fine-tunes with one loss and scores the test crops
  against the annotation and, when known, the true masks; :func:`supervised` is the baseline.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch

from ..data.tiling import organoid_crops
from ..nets import SplitUNet
from .contrastive import StageConfig, cross_validate, f1_per_image, finetune, global_stage, local_stage, predict


@dataclass
class OrganoidSplit:
    """Crops as (N, 1, c, c) float tensors / (N, 1, c, c) masks; ``true`` and ``large`` are the
    true masks and the true masks of large organoids (synthetic data), else copies of ``masks``."""

    global_images: torch.Tensor
    local_images: torch.Tensor
    local_masks: torch.Tensor
    tune_images: torch.Tensor
    tune_masks: torch.Tensor
    test_images: torch.Tensor
    test_masks: torch.Tensor
    test_true: torch.Tensor
    test_large: torch.Tensor

    def sizes(self) -> dict[str, int]:
        return {"global pool": len(self.global_images), "local pool": len(self.local_images),
                "fine-tune": len(self.tune_images), "test": len(self.test_images)}


def _crops(images, crop: int, overlap: float, rotations: tuple[int, ...], large_radius: float):
    crops = organoid_crops(images, crop=crop, overlap=overlap, rotations=rotations)
    large = []
    by_name = {o.name: o for o in images}
    for name, top, left, deg in crops.origin:
        o = by_name[name]
        if o.labels is None:
            big = o.mask
        else:
            ids, areas = np.unique(o.labels[o.labels > 0], return_counts=True)
            big = np.isin(o.labels, ids[np.sqrt(areas / np.pi) >= large_radius])
        large.append(np.rot90(big[top:top + crop, left:left + crop], deg // 90))
    true = crops.true_masks if crops.true_masks is not None else crops.masks
    t = lambda a: torch.as_tensor(np.ascontiguousarray(a), dtype=torch.float32)[:, None]  # noqa: E731
    return t(crops.images), t(crops.masks), t(true), t(np.array(large, bool) if large else crops.masks)


def prepare(images: list, crop: int = 320, overlap: float = 0.5, split: tuple[float, float] = (0.45, 0.45),
            seed: int = 0, large_radius: float = 30.0) -> OrganoidSplit:
    """Split ``images`` (OrganoidImage) by image and cut crops; see the module docstring."""
    order = np.random.default_rng(seed).permutation(len(images))
    n = len(images)
    n_test = max(1, int(round((1 - split[0] - split[1]) * n)))
    n_pre = max(1, int(round(split[0] * n)))
    n_tune = n - n_test - n_pre
    if n_tune < 1:
        raise ValueError(f"{n} images are too few for a pre-training, fine-tuning and test split (need 3)")
    groups = [order[:n_pre], order[n_pre:n_pre + n_tune], order[n_pre + n_tune:]]
    pre = _crops([images[i] for i in groups[0]], crop, overlap, (90, 180, 270), large_radius)
    tune = _crops([images[i] for i in groups[1]], crop, overlap, (90, 180, 270), large_radius)
    test = _crops([images[i] for i in groups[2]], crop, overlap, (), large_radius)
    half = torch.randperm(len(pre[0]), generator=torch.Generator().manual_seed(seed))
    g_idx, l_idx = half[: len(half) // 2], half[len(half) // 2:]
    return OrganoidSplit(pre[0][g_idx], pre[0][l_idx], pre[1][l_idx], tune[0], tune[1], test[0], test[1],
                         test[2], test[3])


def _subset(n: int, fraction: float, seed: int) -> torch.Tensor:
    k = max(2, int(round(fraction * n)))
    return torch.randperm(n, generator=torch.Generator().manual_seed(seed))[:k]


def global_pretrain(split: OrganoidSplit, fraction: float, cfg: StageConfig, features: tuple[int, ...],
                    folds: int = 2, seed: int = 0, device: str = "auto") -> tuple[SplitUNet, pd.DataFrame]:
    """The global stage on ``fraction`` of its half, k-fold selected: the model and the chosen fold's history."""
    torch.manual_seed(seed)
    model = SplitUNet(features=features)
    g = split.global_images[_subset(len(split.global_images), fraction, seed)]
    model, hist, best = cross_validate(model, [g], folds,
                                       lambda m, tr, va: global_stage(m, tr[0], cfg, va[0], seed, device), seed)
    return model, hist[best]


def local_pretrain(model: SplitUNet, split: OrganoidSplit, fraction: float, cfg: StageConfig, folds: int = 2,
                   frozen: bool = False, seed: int = 0, device: str = "auto") -> tuple[SplitUNet, pd.DataFrame]:
    """The local stage on ``fraction`` of its half, from a copy of ``model``, k-fold selected."""
    idx = _subset(len(split.local_images), fraction, seed + 1)
    tuned, hist, best = cross_validate(
        copy.deepcopy(model), [split.local_images[idx], split.local_masks[idx]], folds,
        lambda m, tr, va: local_stage(m, tr[0], tr[1], cfg, frozen, (va[0], va[1]), seed, device), seed)
    return tuned, hist[best]


def pretrain(split: OrganoidSplit, global_fraction: float, local_fraction: float, global_cfg: StageConfig,
             local_cfg: StageConfig, features: tuple[int, ...], folds: int = 2, frozen: bool = False, seed: int = 0,
             device: str = "auto") -> tuple[SplitUNet, dict[str, pd.DataFrame]]:
    """Both pre-training stages; returns the model and each stage's selected-fold history."""
    model, g_hist = global_pretrain(split, global_fraction, global_cfg, features, folds, seed, device)
    model, l_hist = local_pretrain(model, split, local_fraction, local_cfg, folds, frozen, seed, device)
    return model, {"global": g_hist, "local": l_hist}


def finetune_and_test(model: SplitUNet, split: OrganoidSplit, loss: str, cfg: StageConfig, folds: int = 2,
                      seed: int = 0, device: str = "auto") -> dict:
    """Fine-tune a copy of ``model`` with ``loss`` (k-fold selection) and score the test crops.

    Returns per-image F1 against the annotation (``f1``) and the true masks (``f1_true``), the
    recall of large true organoids (``large_recall``), the histories and the model.
    """
    start = copy.deepcopy(model)
    tuned, hist, best = cross_validate(start, [split.tune_images, split.tune_masks], folds,
                                       lambda m, tr, va: finetune(m, tr[0], tr[1], cfg, loss, (va[0], va[1]), seed, device),
                                       seed)
    probs = predict(tuned, split.test_images)
    large = split.test_large[:, 0].numpy() > 0
    hit = (probs >= 0.5) & large
    return {"f1": f1_per_image(probs, split.test_masks[:, 0].numpy()),
            "f1_true": f1_per_image(probs, split.test_true[:, 0].numpy()),
            "large_recall": float(hit.sum() / max(large.sum(), 1)), "probs": probs, "histories": hist,
            "best_fold": best, "model": tuned}


def supervised(split: OrganoidSplit, loss: str, cfg: StageConfig, features: tuple[int, ...], folds: int = 2,
               seed: int = 0, device: str = "auto") -> dict:
    """The baseline: the same fine-tuning from random initialisation."""
    torch.manual_seed(seed)
    return finetune_and_test(SplitUNet(features=features), split, loss, cfg, folds, seed, device)


def run_grid(split: OrganoidSplit, global_fractions: list[float], local_fractions: list[float], losses: list[str],
             cfgs: tuple[StageConfig, StageConfig, StageConfig], features: tuple[int, ...], folds: int = 2,
             seeds: list[int] = (0,), frozen: bool = False, device: str = "auto") -> pd.DataFrame:
    """The thesis's grid: one global model per (seed, global proportion), one local model per
    local proportion on top of it, fine-tuned with every loss; one row per fine-tuned model with
    the mean and per-image SD of its test F1 (annotation and true masks) and large-organoid recall."""
    g_cfg, l_cfg, f_cfg = cfgs
    rows = []
    for seed in seeds:
        for g in global_fractions:
            g_model, _ = global_pretrain(split, g, g_cfg, features, folds, seed, device)
            for lf in local_fractions:
                model, _ = local_pretrain(g_model, split, lf, l_cfg, folds, frozen, seed, device)
                for loss in losses:
                    r = finetune_and_test(model, split, loss, f_cfg, folds, seed, device)
                    rows.append({"seed": seed, "global_fraction": g, "local_fraction": lf, "loss": loss,
                                 "frozen": frozen, "f1_mean": float(r["f1"].mean()), "f1_sd": float(r["f1"].std()),
                                 "f1_true_mean": float(r["f1_true"].mean()), "large_recall": r["large_recall"]})
    return pd.DataFrame(rows)


def run_supervised(split: OrganoidSplit, losses: list[str], cfg: StageConfig, features: tuple[int, ...],
                   folds: int = 2, seeds: list[int] = (0,), device: str = "auto") -> pd.DataFrame:
    """The supervised baseline for every (seed, loss), in the rows of :func:`run_grid`."""
    rows = []
    for seed in seeds:
        for loss in losses:
            r = supervised(split, loss, cfg, features, folds, seed, device)
            rows.append({"seed": seed, "loss": loss, "f1_mean": float(r["f1"].mean()), "f1_sd": float(r["f1"].std()),
                         "f1_true_mean": float(r["f1_true"].mean()), "large_recall": r["large_recall"]})
    return pd.DataFrame(rows)


def proportion_slopes(results: pd.DataFrame) -> pd.DataFrame:
    """Per seed, the least-squares slope of F1 against the global and against the local proportion
    (F1 averaged over the losses and over the other proportion first)."""
    rows = {}
    for seed, part in results.groupby("seed"):
        out = {}
        for axis in ("global", "local"):
            curve = part.groupby(f"{axis}_fraction")["f1_mean"].mean()
            out[axis] = float(np.polyfit(curve.index.to_numpy(float), curve.to_numpy(), 1)[0]) if len(curve) > 1 \
                else float("nan")
        rows[seed] = out
    return pd.DataFrame(rows).T
