"""Figures and the loss toy of the organoid chapter (thesis Figs. 3.3, 3.5, 5.1-5.9)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch

from ...publish.report import framed

WIDTH = 7.5
"""Widest figure, inches: at the book's 150 dpi it is scaled to the text column and keeps the
style's 9-10 pt text at >= 8 pt as rendered (see :func:`cellrepro.publish.report.rendered_font_pt`)."""


def axes_grid(rows: int, cols: int, size: float = 2.2):
    """A grid of framed image panels without ticks (:func:`framed`), at most :data:`WIDTH` wide
    (figure, axes)."""
    import matplotlib.pyplot as plt

    size = min(size, WIDTH / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(cols * size, rows * size + 0.3), squeeze=False, layout="constrained")
    for ax in axes.flat:
        framed(ax)
    return fig, axes


def augmentation_examples(images: torch.Tensor, n: int = 3, seed: int = 0):
    """Fig. 3.3: crops and two random augmentation sequences of each (global stage)."""
    from ...semi.augment import global_augment

    torch.manual_seed(seed)
    fig, axes = axes_grid(n, 3)
    for r in range(n):
        x = images[r:r + 1]
        for c, (img, title) in enumerate(((x, "crop"), (global_augment(x), "view 1"), (global_augment(x), "view 2"))):
            axes[r, c].imshow(img[0, 0].numpy(), cmap="gray", vmin=0, vmax=1)
            axes[r, c].set_title(title)
    return fig


def pair_examples(image: torch.Tensor, mask: torch.Tensor, seed: int = 0):
    """Fig. 3.5 / 3.7: a positive pair (two organoid pixels) and a negative pair (organoid, background)."""
    rng = np.random.default_rng(seed)
    m = mask[0].numpy() > 0
    fg, bg = np.argwhere(m), np.argwhere(~m)
    fig, axes = axes_grid(1, 2, 3.0)
    if len(fg) < 2 or len(bg) < 1:
        return fig
    a, p = fg[rng.choice(len(fg), 2, replace=False)]
    nb = bg[rng.integers(len(bg))]
    for ax, (other, colour, title) in zip(axes[0], ((p, "lime", "positive pair"), (nb, "red", "negative pair"))):
        ax.imshow(image[0].numpy(), cmap="gray", vmin=0, vmax=1)
        ax.contour(m, levels=[0.5], colors="yellow", linewidths=0.6)
        ax.plot([a[1], other[1]], [a[0], other[0]], "-o", color=colour, ms=4, lw=1)
        ax.set_title(title)
    return fig


def predictions(images: torch.Tensor, masks: torch.Tensor, probs: dict[str, np.ndarray], index: list[int],
                true: torch.Tensor | None = None):
    """Figs. 5.7 / 5.9: test crops, their annotation (and true mask) and each model's prediction."""
    extra = 1 if true is not None else 0
    fig, axes = axes_grid(len(index), 2 + extra + len(probs))
    for r, i in enumerate(index):
        cols = [(images[i, 0].numpy(), "image"), (masks[i, 0].numpy(), "annotation")]
        if true is not None:
            cols.append((true[i, 0].numpy(), "true mask"))
        cols += [(p[i] >= 0.5, name) for name, p in probs.items()]
        for c, (img, title) in enumerate(cols):
            axes[r, c].imshow(img, cmap="gray", vmin=0, vmax=1)
            axes[r, c].set_title(title, fontsize=9)
    return fig


def curves(histories: dict[str, pd.DataFrame]):
    """Training and validation losses of each stage against the step."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(histories), figsize=(WIDTH, 2.8), layout="constrained", squeeze=False)
    for ax, (name, h) in zip(axes[0], histories.items()):
        train = [c for c in h.columns if c not in ("step", "epoch", "val_loss") and not c.startswith("lr/")]
        ax.plot(h["step"], h[train[-1]], lw=1, label=f"train ({train[-1]})")
        if "val_loss" in h:
            v = h.dropna(subset=["val_loss"])
            ax.plot(v["step"], v["val_loss"], "o-", ms=3, label="validation")
        ax.set_title(name)
        ax.set_xlabel("step")
        ax.legend()
    return fig


def proportion_panels(seeds: pd.DataFrame, vary: str, fixed: str, supervised: pd.Series):
    """Figs. 5.1-5.6: test F1 against the proportion ``vary`` for each value of ``fixed``: the mean
    over seeds with the seeds' range (the thesis draws a per-crop SD), the supervised mean as a line.

    ``seeds`` has one row per (seed, global_fraction, local_fraction) with column ``f1``;
    ``supervised`` the supervised F1 per seed."""
    import matplotlib.pyplot as plt

    levels = sorted(seeds[fixed].unique())
    fig, axes = plt.subplots(1, len(levels), figsize=(min(WIDTH, 3.5 * len(levels)), 3.0), layout="constrained",
                             squeeze=False, sharey=True)
    for ax, level in zip(axes[0], levels):
        part = seeds[seeds[fixed] == level].groupby(vary)["f1"].agg(["mean", "min", "max"])
        x = part.index.to_numpy(float) * 100
        ax.plot(x, part["mean"], "o-", color="C3", ms=4, label="pre-trained (mean of seeds)")
        ax.fill_between(x, part["min"], part["max"], color="C3", alpha=0.2, lw=0, label="range over seeds")
        ax.axhline(supervised.mean(), color="C0", lw=1, label="supervised (mean of seeds)")
        ax.set_title(f"{fixed.split('_')[0]} stage {level:.0%}")
        ax.set_xlabel(f"{vary.split('_')[0]} stage data (%)")
    axes[0, 0].set_ylabel("test F1 (true masks)")
    axes[0, -1].legend(loc="lower right")
    return fig


def toy_masks(size: int = 320, radius: int = 100, seed: int = 0, n_wrong: int | None = None) -> dict[str, np.ndarray]:
    """Fig. 5.8: a circle, a smaller circle and the circle with random black pixels, the last two
    with the same number of wrong pixels: the ring between the circles, 4 pixels wide, or, with
    ``n_wrong``, the ring whose pixel count comes closest to it (the claims register's
    reconstruction of the thesis's BCE 1.009: torch's BCE on hard masks is 100 x wrong / pixels,
    so about 1,033 wrong pixels of 320 x 320)."""
    yy, xx = np.mgrid[0:size, 0:size]
    r = np.hypot(yy - size / 2 + 0.5, xx - size / 2 + 0.5)
    circle = r <= radius
    if n_wrong is None:
        smaller = r <= radius - 4
    else:
        radii, counts = np.unique(r[circle], return_counts=True)  # rings of equal radius, innermost first
        dropped = np.cumsum(counts[::-1])  # pixels outside each ring, dropping rings from the outside in
        k = int(np.argmin(np.abs(dropped - n_wrong)))
        smaller = circle & (r < radii[::-1][k])
    wrong = int((circle & ~smaller).sum())
    holes = circle.copy()
    inside = np.flatnonzero(smaller)
    holes.ravel()[np.random.default_rng(seed).choice(inside, wrong, replace=False)] = False
    return {"circle": circle, "smaller circle": smaller, "circle with black pixels": holes}


def toy_losses(masks: dict[str, np.ndarray]) -> pd.DataFrame:
    """BCE (torch ``BCELoss`` on hard masks, log clamped at -100) and SSIM loss (1 - SSIM) of each
    mask against the circle, and the number of wrong pixels."""
    from monai.losses import SSIMLoss

    target = torch.as_tensor(masks["circle"], dtype=torch.float32)[None, None]
    rows = []
    for name, m in masks.items():
        pred = torch.as_tensor(m, dtype=torch.float32)[None, None]
        rows.append({"image": name, "wrong pixels": int((m != masks["circle"]).sum()),
                     "BCE": float(torch.nn.BCELoss()(pred, target)),
                     "SSIM loss": float(SSIMLoss(spatial_dims=2, data_range=1.0)(pred, target))})
    return pd.DataFrame(rows).set_index("image")


def toy_study(size: int, radius: int, seed: int, n_wrong: int, placements: int):
    """Fig. 5.8 at the register's reconstruction (``n_wrong`` wrong pixels) beside the 4-pixel ring.

    Returns (the reconstruction's three masks as a figure, the losses of both toys per image
    beside the thesis's printed values, the values the page states: ``toy_wrong``, ``toy_bce``,
    and the SSIM-loss gap of the circle with black pixels over the smaller circle, mean and least
    over ``placements`` placements of the black pixels: ``toy_gap``, ``toy_gap_min``)."""
    from ...publish.report import reported

    toys = {"thesis (reconstructed)": toy_masks(size, radius, seed, n_wrong=n_wrong),
            "4-pixel ring": toy_masks(size, radius, seed)}
    fig, axes = axes_grid(1, 3, 2.4)
    for ax, (name, m) in zip(axes[0], toys["thesis (reconstructed)"].items()):
        ax.imshow(m, cmap="gray")
        ax.set_title(name)
    paper = reported("organoid", "Fig. 5.8").pivot(index="row", columns="column", values="value")
    toy = pd.concat({k: toy_losses(m) for k, m in toys.items()}, names=["toy", "image"])
    gaps = []
    for s in range(placements):
        t = toy_losses(toy_masks(size, radius, s, n_wrong=n_wrong))
        gaps.append(t.loc["circle with black pixels", "SSIM loss"] - t.loc["smaller circle", "SSIM loss"])
    rec = toy.loc["thesis (reconstructed)"]
    values = {"toy_gap": float(np.mean(gaps)), "toy_gap_min": float(np.min(gaps)),
              "toy_bce": float(rec.loc["smaller circle", "BCE"]), "toy_wrong": int(rec.loc["smaller circle", "wrong pixels"])}
    return fig, toy.join(paper.add_prefix("paper: "), on="image"), values
