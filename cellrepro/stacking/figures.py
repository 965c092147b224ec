"""Figures of the stacking chapter: the spheroid paper's Fig. 3 and the k sweep."""

from __future__ import annotations

import numpy as np
import pandas as pd


def figure3(stack: np.ndarray, maps: np.ndarray, scores: np.ndarray, sbs: np.ndarray, all_slices: np.ndarray,
            crop: tuple[slice, slice] | None = None):
    """The paper's Fig. 3 panels as the maps see the stack: (a) the slice they score lowest (the
    paper's "out-of-focus" slice), (b) one they score in the middle (its "partly in-focus"
    slice), (c) its blur map, (d) overlay, (e, f) SBS-Stacking and a zoom, (g, h) stacking all
    slices and a zoom. Titles name the scores, not the truth: maps that rank badly show it here."""
    import matplotlib.pyplot as plt

    order = np.argsort(scores)
    out_z, part_z = int(order[0]), int(order[len(order) // 2])
    h, w = stack.shape[1:]
    crop = crop or (slice(h // 4, h // 4 + h // 3), slice(w // 4, w // 4 + w // 3))
    fig, axes = plt.subplots(2, 4, figsize=(7.5, 4.4), layout="constrained")  # 7.5 in: 9 pt stays >= 8 pt in the book
    grey = {"cmap": "gray"}
    panels = [(stack[out_z], f"(a) lowest score (z={out_z})", grey), (stack[part_z], f"(b) middle score (z={part_z})", grey),
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


METRICS = (("ssim_cells", "SSIM on cells"), ("psnr_cells", "PSNR on cells (dB)"),
           ("contour", "contour gradient / truth's"))


def k_curves(quality: pd.DataFrame, k_paper: int = 8, metrics=METRICS, labels: dict[str, str] | None = None):
    """Metrics against k, one line per selection (mean and 95% t-interval over stacks), the paper's k marked."""
    import matplotlib.pyplot as plt
    from scipy import stats

    fig, axes = plt.subplots(1, len(metrics), figsize=(7.5, 2.9), layout="constrained")
    z = int(quality["k"].max())
    for ax, (metric, label) in zip(np.atleast_1d(axes), metrics):
        for i, (name, sub) in enumerate(quality.groupby("selection", sort=False)):
            g = sub.groupby("k")[metric]
            mean, sem, n = g.mean(), g.sem(), g.count()
            half = sem * stats.t.ppf(0.975, np.maximum(n - 1, 1))
            ax.plot(mean.index, mean.values, marker="o", ms=3, color=f"C{i}", label=(labels or {}).get(name, name))
            ax.fill_between(mean.index, mean - half, mean + half, alpha=0.2, color=f"C{i}")
        ax.axvline(k_paper, color="gray", ls="--", lw=1)
        ax.set_xlabel("k (slices kept)")
        ax.set_ylabel(label)
        ax.set_xticks(sorted(set(quality["k"])))
    fig.legend(*np.atleast_1d(axes)[0].get_legend_handles_labels(), loc="outside lower center", ncol=2, fontsize=9,
               title=f"dashed: the paper's k = {k_paper}; k = {z}: all slices", title_fontsize=9)
    return fig


def knob_figure(table: pd.DataFrame, k: int):
    """The stand-in's knobs against what spheroid-C1 and -C2 read (:func:`.study.knob_sweep`):
    one column per knob, its settings on the x axis; top, the oracle's and SBS's gain in SSIM on
    the cells (top ``k`` minus all slices); bottom, the per-slice maps' median AUC and rho, with
    the registered 0.8 bar."""
    import matplotlib.pyplot as plt

    knobs = list(dict.fromkeys(table.index.get_level_values("knob")))
    fig, axes = plt.subplots(2, len(knobs), figsize=(7.5, 4.4), layout="constrained", sharey="row", squeeze=False)
    for j, knob in enumerate(knobs):
        sub = table.xs(knob, level="knob")
        x = np.arange(len(sub))
        for row, columns, line in ((0, ("oracle gain", "SBS gain"), 0.0), (1, ("AUC", "rho"), 0.8)):
            ax = axes[row, j]
            for i, col in enumerate(columns):
                ax.plot(x, sub[col].to_numpy(float), marker="o", ms=4, color=f"C{i + 2 * row}", label=col)
            ax.axhline(line, color="gray", lw=1, ls="--" if row else "-")
            ax.set_xticks(x, [str(v) for v in sub.index])
        axes[1, j].set_xlabel(knob)
    axes[0, 0].set_ylabel(f"SSIM on cells, k={k} - all")
    axes[1, 0].set_ylabel("per-slice maps")
    handles = [h for ax in axes[:, 0] for h in ax.get_legend_handles_labels()[0]]
    labels = [lab for ax in axes[:, 0] for lab in ax.get_legend_handles_labels()[1]]
    fig.legend(handles, labels, loc="outside lower center", ncol=4, fontsize=9)
    return fig
