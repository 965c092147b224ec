"""Semi-supervised contrastive learning for organoid segmentation (Zwijghuizen, Sec. 3.4 and 4.2).

Three stages on one :class:`~cellrepro.nets.SplitUNet`, each an ordinary call of
:func:`cellrepro.engine.train.fit` with its own step function:

1. :func:`global_stage`: encoder + :class:`~cellrepro.nets.GlobalHead`, NT-Xent between two
   augmented views (Eq. 3.1), unlabeled crops.
2. :func:`local_stage`: the whole U-Net + :class:`~cellrepro.nets.LocalHead`, supervised pixel
   contrast (Eq. 3.2-3.5) on labeled crops, the encoder frozen or not.
3. :func:`finetune`: segmentation with BCE + Dice, SSIM + Dice or SSIM-MAE + Dice; the
   supervised baseline is the same call on a fresh network.

:func:`cross_validate` runs a stage on k folds from the same starting weights and keeps the
fold with the lowest *mean validation loss over its evaluations* (the thesis's rule, Sec. 4.2).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import pandas as pd
import torch
from ..losses import finetune_loss, global_contrastive, local_contrastive
from ..losses.contrastive import local_floor
from ..nets import GlobalHead, LocalHead, SplitUNet
from ..engine.train import TensorLoader, adam, fit, release
from .augment import global_augment, local_augment


@dataclass
class StageConfig:
    """Hyper-parameters of one stage (Tables 4.1-4.2 of the thesis give lr, batch, epochs,
    temperature and block size)."""

    epochs: int = 1
    batch: int = 8
    lr: float = 1e-4
    temperature: float = 0.5
    block_size: int = 16
    evals_per_epoch: int = 1
    form: str = "hu"  # local stage: Hu et al.'s pixel contrast, or "literal" Eq. 3.4
    extra: dict = field(default_factory=dict)
    steps: int | None = None  # optimizer updates; None: epochs x (items // batch), as the thesis counts
    val_items: int = 256  # validation crops a pre-training stage scores at each evaluation (VAL_ITEMS)


VAL_ITEMS = StageConfig.val_items
"""Validation crops a pre-training stage evaluates by default (the first ``cfg.val_items`` of its
validation split): the validation loss is a curve to look at and the k-fold rule's criterion, and
evaluating thousands of crops every few updates cost as much as the training itself. Its
augmented views are drawn from ``seed`` at every evaluation (:func:`_mean_loss`), so the points of
a curve differ by the weights alone, and training does not see them
(:func:`cellrepro.engine.train.evaluate` forks the generators)."""


def _loader(arrays: list[torch.Tensor], batch: int, shuffle: bool = True) -> TensorLoader:
    """Batches sampled on the training device (the tensors are moved there once by ``fit``)."""
    return TensorLoader(*arrays, batch_size=batch, shuffle=shuffle, drop_last=shuffle and len(arrays[0]) > batch)


def _steps(n: int, cfg: StageConfig) -> tuple[int, int]:
    """(optimizer updates, updates between evaluations): ``cfg.steps`` when given (a fixed budget,
    so that a larger data proportion means more variety, not more training), else epochs x
    batches per epoch."""
    per_epoch = max(1, n // cfg.batch)
    total = cfg.steps if cfg.steps is not None else cfg.epochs * per_epoch
    every = per_epoch if cfg.steps is None else max(1, total // 5)
    return total, max(1, every // max(cfg.evals_per_epoch, 1))


def _mean_loss(loss_fn: Callable, batches, seed: int = 0) -> float:
    """Mean of ``loss_fn`` over ``batches``, its random augmentations drawn from ``seed``: the same
    views at every evaluation (common random numbers along the curve and across the k folds).
    Called inside :func:`~cellrepro.engine.train.evaluate`, whose forked generators keep the
    seeding from reaching training."""
    torch.manual_seed(seed)
    values = [float(loss_fn(*b)) for b in batches]
    return float(np.mean(values)) if values else float("nan")


def global_stage(model: SplitUNet, images: torch.Tensor, cfg: StageConfig, val_images: torch.Tensor | None = None,
                 seed: int = 0, device: str = "auto", progress: bool = False) -> pd.DataFrame:
    """Stage 1 on (N, 1, H, W) unlabeled crops in [0, 1]; trains ``model``'s encoder in place."""
    head = GlobalHead(model.deep_channels)

    def loss_of(ctx, x):
        x = x.to(ctx.device)
        z1 = ctx.models["head"](ctx.models["unet"].encode(global_augment(x))[-1])
        z2 = ctx.models["head"](ctx.models["unet"].encode(global_augment(x))[-1])
        return global_contrastive(z1, z2, cfg.temperature)

    def step(ctx, batch):
        loss = loss_of(ctx, batch[0])
        ctx.optimize({"nt_xent": loss})
        return {"nt_xent": loss}

    params = list(model.encoder_parameters()) + list(head.parameters())
    steps, every = _steps(len(images), cfg)
    val = _loader([val_images[:cfg.val_items]], cfg.batch, shuffle=False) if val_images is not None else None
    return fit({"unet": model, "head": head}, {"encoder": adam(params, lr=cfg.lr)}, step,
               _loader([images], cfg.batch), max_steps=steps, seed=seed, device=device, progress=progress,
               eval_every=every, eval_fn=(lambda ctx: {"val_loss": _mean_loss(lambda x: loss_of(ctx, x), val, seed)})
               if val is not None else None, desc="global stage")


def freeze_encoder(model: SplitUNet, frozen: bool = True) -> None:
    for p in model.encoder_parameters():
        p.requires_grad_(not frozen)


def local_stage(model: SplitUNet, images: torch.Tensor, masks: torch.Tensor, cfg: StageConfig, frozen: bool = False,
                val: tuple[torch.Tensor, torch.Tensor] | None = None, seed: int = 0, device: str = "auto",
                progress: bool = False) -> pd.DataFrame:
    """Stage 2 on labeled crops; with ``frozen`` the encoder is excluded from optimisation."""
    head = LocalHead(model.decoder_channels)
    freeze_encoder(model, frozen)

    def loss_of(ctx, x, m):
        x, m = x.to(ctx.device), m.to(ctx.device)
        views = torch.cat([local_augment(x), local_augment(x)])
        h = ctx.models["head"](ctx.models["unet"].decode(ctx.models["unet"].encode(views)))
        return local_contrastive(h, torch.cat([m, m]), cfg.temperature, cfg.block_size, form=cfg.form)

    def step(ctx, batch):
        loss = loss_of(ctx, *batch)
        ctx.optimize({"local": loss})
        masks = batch[1]
        floor = local_floor(torch.cat([masks, masks]), cfg.block_size) if cfg.form == "hu" else float("nan")
        return {"local": loss, "local_floor": torch.tensor(floor)}

    params = [p for p in model.parameters() if p.requires_grad] + list(head.parameters())
    steps, every = _steps(len(images), cfg)
    vl = _loader([v[:cfg.val_items] for v in val], cfg.batch, shuffle=False) if val is not None else None
    try:
        return fit({"unet": model, "head": head}, {"local": adam(params, lr=cfg.lr)}, step,
                   _loader([images, masks], cfg.batch), max_steps=steps, seed=seed, device=device,
                   progress=progress, eval_every=every, desc="local stage",
                   eval_fn=(lambda ctx: {"val_loss": _mean_loss(lambda x, m: loss_of(ctx, x, m), vl, seed)}) if vl else None)
    finally:
        freeze_encoder(model, False)


def finetune(model: SplitUNet, images: torch.Tensor, masks: torch.Tensor, cfg: StageConfig, loss: str = "bce_dice",
             val: tuple[torch.Tensor, torch.Tensor] | None = None, seed: int = 0, device: str = "auto",
             progress: bool = False) -> pd.DataFrame:
    """Stage 3 (and the supervised baseline): segmentation without augmentation (Sec. 3.4.3)."""
    loss_fn = finetune_loss(loss)

    def terms_of(ctx, x, m):
        return loss_fn(ctx.models["unet"](x.to(ctx.device)), m.to(ctx.device))

    def step(ctx, batch):
        terms = terms_of(ctx, *batch)
        ctx.optimize(terms)
        return {**terms, "loss": sum(terms.values())}

    steps, every = _steps(len(images), cfg)
    vl = _loader(list(val), cfg.batch, shuffle=False) if val is not None else None
    return fit({"unet": model}, {"unet": adam(model.parameters(), lr=cfg.lr)}, step,
               _loader([images, masks], cfg.batch), max_steps=steps, seed=seed, device=device, progress=progress,
               eval_every=every, desc=f"fine-tune ({loss})",
               eval_fn=(lambda ctx: {"val_loss": _mean_loss(lambda x, m: sum(terms_of(ctx, x, m).values()), vl, seed)})
               if vl else None)


def best_fold(histories: list[pd.DataFrame], column: str = "val_loss") -> int:
    """Index of the fold with the lowest mean validation loss over its evaluations (thesis Sec. 4.2)."""
    means = [float(h[column].dropna().mean()) for h in histories]
    return int(np.nanargmin(means))


def kfold_indices(n: int, folds: int, seed: int = 0, holdout: float = 0.2) -> list[tuple[np.ndarray, np.ndarray]]:
    """(train, validation) index pairs of a shuffled k-fold split; ``folds=1`` is one fixed split
    with ``holdout`` of the items for validation (the budget of k - 1 more trainings spent on
    training longer instead)."""
    if folds < 1 or folds > n or n < 2:
        raise ValueError(f"need 1 <= folds <= items (and 2 items), got folds={folds} for {n} items")
    order = np.random.default_rng(seed).permutation(n)
    if folds == 1:
        k = min(n - 1, max(1, int(round(holdout * n))))
        return [(order[k:], order[:k])]
    parts = np.array_split(order, folds)
    return [(np.concatenate(parts[:i] + parts[i + 1:]), parts[i]) for i in range(folds)]


def cross_validate(model: SplitUNet, arrays: list[torch.Tensor], folds: int,
                   run: Callable[[SplitUNet, list[torch.Tensor], list[torch.Tensor]], pd.DataFrame],
                   seed: int = 0) -> tuple[SplitUNet, list[pd.DataFrame], int]:
    """Run a stage on each fold from ``model``'s current weights; return the best fold's model
    (on the CPU), all histories and the best index. ``run(model, train_arrays, val_arrays)``
    trains in place. Each fold's weights are kept as a CPU copy and its model released from the
    device before the next fold starts."""
    start = copy.deepcopy(model.state_dict())
    states, histories = [], []
    for train_idx, val_idx in kfold_indices(len(arrays[0]), folds, seed):
        m = copy.deepcopy(model)
        m.load_state_dict(start)
        histories.append(run(m, [a[train_idx] for a in arrays], [a[val_idx] for a in arrays]))
        states.append({k: v.detach().cpu().clone() for k, v in m.state_dict().items()})
        release(m)
    best = best_fold(histories)
    chosen = copy.deepcopy(model).cpu()
    chosen.load_state_dict(states[best])
    return chosen, histories, best


@torch.no_grad()
def predict(model: SplitUNet, images: torch.Tensor, batch: int = 16, device: str | None = None) -> np.ndarray:
    """Foreground probabilities (N, H, W) for (N, 1, H, W) images."""
    device = device or next(model.parameters()).device
    was_training = model.training
    model.eval()
    out = [torch.sigmoid(model(images[i:i + batch].to(device))).cpu() for i in range(0, len(images), batch)]
    model.train(was_training)
    return torch.cat(out)[:, 0].float().numpy()
