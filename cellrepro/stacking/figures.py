"""Figures of the stacking chapter: the spheroid paper's Fig. 3 and the k sweep."""

from __future__ import annotations

import numpy as np
import pandas as pd


def figure3(stack: np.ndarray, maps: np.ndarray, scores: np.ndarray, sbs: np.ndarray, all_slices: np.ndarray,
            crop: tuple[slice, slice] | None = None):
    """(a) the least in-focus slice, (b) a partly in-focus slice, (c) its blur map, (d) overlay,
    (e, f) SBS-Stacking and a zoom, (g, h) stacking all slices and a zoom."""
    import matplotlib.pyplot as plt

    order = np.argsort(scores)
    out_z, part_z = int(order[0]), int(order[len(order) // 2])
    h, w = stack.shape[1:]
    crop = crop or (slice(h // 4, h // 4 + h // 3), slice(w // 4, w // 4 + w // 3))
    fig, axes = plt.subplots(2, 4, figsize=(7.5, 4.4), layout="constrained")  # 7.5 in: 9 pt stays >= 8 pt in the book
    grey = {"cmap": "gray"}
    panels = [(stack[out_z], f"(a) out of focus (z={out_z})", grey), (stack[part_z], f"(b) partly in focus (z={part_z})", grey),
              (maps[part_z], "(c) blur map of (b)", {"cmap": "magma"}), (stack[part_z], "(d) map over (b)", grey),
              (sbs, "(e) SBS-Stacking", grey), (sbs[crop], "(f) zoom of (e)", grey),
              (all_slices, "(g) all slices stacked", grey), (all_slices[crop], "(h) zoom of (g)", grey)]
    for ax, (img, title, kw) in zip(axes.flat, panels):
        ax.imshow(img, **kw)
        ax.set_title(title, fontsize=9)
        ax.set_axis_off()
    m = maps[part_z]
    axes[0, 3].imshow((m - m.min()) / (np.ptp(m) or 1), cmap="magma", alpha=0.5)
    for ax in (axes[1, 0], axes[1, 2]):
        r = plt.Rectangle((crop[1].start, crop[0].start), crop[1].stop - crop[1].start, crop[0].stop - crop[0].start,
                          fill=False, edgecolor="yellow", linewidth=1)
        ax.add_patch(r)
    return fig


def k_curves(sweeps: pd.DataFrame, k_paper: int = 8):
    """SSIM, PSNR and focus ratio against k (mean and 95% interval over stacks), the paper's k marked."""
    import matplotlib.pyplot as plt
    from scipy import stats

    fig, axes = plt.subplots(1, 3, figsize=(7.5, 2.7), layout="constrained")
    z = int(sweeps["k"].max())
    for ax, (metric, label) in zip(axes, (("ssim", "SSIM to truth"), ("psnr", "PSNR to truth (dB)"),
                                          ("focus", "focus measure / truth's"))):
        g = sweeps.groupby("k")[metric]
        mean, sem, n = g.mean(), g.sem(), g.count()
        half = sem * stats.t.ppf(0.975, np.maximum(n - 1, 1))
        ax.plot(mean.index, mean.values, marker="o", ms=3)
        ax.fill_between(mean.index, mean - half, mean + half, alpha=0.25)
        ax.axvline(k_paper, color="C3", ls="--", lw=1, label=f"paper's k = {k_paper}")
        ax.axhline(mean.loc[z], color="gray", ls=":", lw=1, label=f"all {z} slices")
        ax.set_xlabel("k (slices kept)")
        ax.set_ylabel(label)
    axes[0].legend(fontsize=9)
    return fig
