"""Figures of the MMCS chapter (at most 7.5 in wide, see :func:`cellrepro.publish.report.use_book_style`)."""

from __future__ import annotations

import pandas as pd

from ...publish import report

WIDTH = 7.5
PHASE_LABELS = {"phase1": "phase 1", "control": "control (w = 0)", "phase2": "phase 2"}


def paired_phases_figure(means: pd.DataFrame):
    """One panel per Table 1 row: mean F1 after phase 1, the w = 0 control and phase 2, a line per seed."""
    m = means.assign(arm=means["phase"].map(PHASE_LABELS))
    order = [PHASE_LABELS[p] for p in ("phase1", "control", "phase2")]
    return report.paired_seeds_figure(m, "dataset", "arm", order, "f1", ylabel="F1 (mean over test images)", width=WIDTH)


def seed_curves(ax, means: pd.DataFrame, x: str, value: str = "f1") -> None:
    """``value`` against ``x`` on ``ax``: a thin grey line per seed and the mean over seeds in bold."""
    for _, g in means.groupby("seed"):
        g = g.sort_values(x)
        ax.plot(g[x], g[value], "-", color="0.6", lw=0.9, alpha=0.8)
    mean = means.groupby(x)[value].mean()
    ax.plot(mean.index, mean.to_numpy(), "o-", color="C0", lw=2, label="this run (mean over seeds)")


def diameter_figure(sweep_means: pd.DataFrame, rho: float | None = None, paper: pd.DataFrame | None = None):
    """Mean F1 against the inference diameter: a thin line per seed, the mean in bold, the paper's Table 4
    (dataset1 rows) dashed, and a vertical line at the mean self-adaptive diameter ``rho``."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(WIDTH * 0.62, 3.0), layout="constrained")
    seed_curves(ax, sweep_means.dropna(subset=["diameter"]), "diameter")
    if paper is not None:
        rows = paper[paper["row"].str.startswith("dataset1, diameter")]
        d = rows["row"].str.extract(r"(\d+) px")[0].astype(float)
        ax.plot(d, rows["value"].astype(float), "s--", color="C1", label="paper, Table 4")
    if rho is not None:
        ax.axvline(rho, color="C2", ls=":", label=f"self-adaptive rho = {rho:.1f} px")
    ax.set(xlabel="inference diameter (px)", ylabel="F1 (mean over test images)")
    ax.legend(frameon=False, fontsize=8)
    return fig


def weight_figure(means: pd.DataFrame, columns: dict[str, str], paper: pd.DataFrame | None = None):
    """One panel per label regime (``columns``: dataset -> the paper's Table 5 column): mean F1 against
    ``w``, a thin line per seed, the mean in bold, the paper's column dashed on a right-hand axis of its
    own (its data differ: only the shape compares)."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(columns), figsize=(WIDTH, 2.9), layout="constrained", squeeze=False)
    for ax, (ds, column) in zip(axes[0], columns.items()):
        seed_curves(ax, means[means["dataset"] == ds], "w")
        ax.set(title=ds, xlabel="w")
        if paper is not None:
            rows = paper[paper["column"] == column]
            right = ax.twinx()
            right.plot(rows["row"].str.slice(2).astype(float), rows["value"].astype(float), "s--", color="C1",
                       label="paper, Table 5")
            right.tick_params(axis="y", colors="C1", labelsize=8)
    axes[0, 0].set_ylabel("F1 (mean over test images)")
    handles = [h for a in fig.axes for h in a.get_legend_handles_labels()[0]]
    fig.legend(handles=handles[:1] + handles[-1:], loc="outside lower center", ncol=2, frameon=False, fontsize=8)
    return fig


def schedule_figure(curves: pd.DataFrame, arm: str = "arm", value: str = "test_f1",
                    marks: dict[str, float] | None = None):
    """``value`` against ``epoch`` (the paper's unit) per level of ``arm`` (a panel each): a thin line per
    seed, the mean in bold; ``marks`` (arm -> epoch) draws a dotted line where that arm's rate starts halving."""
    import matplotlib.pyplot as plt

    arms = list(dict.fromkeys(curves[arm]))
    fig, axes = plt.subplots(1, len(arms), figsize=(WIDTH, 2.9), sharey=True, layout="constrained", squeeze=False)
    for ax, level in zip(axes[0], arms):
        seed_curves(ax, curves[curves[arm] == level], "epoch", value)
        if marks and marks.get(level) is not None:
            ax.axvline(marks[level], color="C2", ls=":", label="halving starts")
        ax.set_title(str(level), fontsize=9)
        ax.set_xlabel("epoch (paper's unit)")
    axes[0, 0].set_ylabel("F1 (mean over test images)")
    axes[0, 0].legend(frameon=False, fontsize=8)
    return fig


__all__ = ["diameter_figure", "paired_phases_figure", "schedule_figure", "seed_curves", "weight_figure"]
