"""Figures of the MMCS chapter (at most 7.5 in wide, see :func:`cellrepro.report.use_book_style`)."""

from __future__ import annotations

import pandas as pd

from ... import report

WIDTH = 7.5
PHASE_LABELS = {"phase1": "phase 1", "control": "control (w = 0)", "phase2": "phase 2"}


def paired_phases_figure(means: pd.DataFrame):
    """One panel per Table 1 row: mean F1 after phase 1, the w = 0 control and phase 2, a line per seed."""
    m = means.assign(arm=means["phase"].map(PHASE_LABELS))
    order = [PHASE_LABELS[p] for p in ("phase1", "control", "phase2")]
    return report.paired_seeds_figure(m, "dataset", "arm", order, "f1", ylabel="F1 (mean over test images)", width=WIDTH)


def diameter_figure(sweep_means: pd.DataFrame, rho: float | None = None, paper: pd.DataFrame | None = None):
    """Mean F1 against the inference diameter: a thin line per seed, the mean in bold, the paper's Table 4
    (dataset1 rows) dashed, and a vertical line at the mean self-adaptive diameter ``rho``."""
    import matplotlib.pyplot as plt

    swept = sweep_means.dropna(subset=["diameter"])
    fig, ax = plt.subplots(figsize=(WIDTH * 0.62, 3.0), layout="constrained")
    for seed, g in swept.groupby("seed"):
        g = g.sort_values("diameter")
        ax.plot(g["diameter"], g["f1"], "-", color="0.6", lw=0.9, alpha=0.8)
    mean = swept.groupby("diameter")["f1"].mean()
    ax.plot(mean.index, mean.to_numpy(), "o-", color="C0", lw=2, label="this run (mean over seeds)")
    if paper is not None:
        rows = paper[paper["row"].str.startswith("dataset1, diameter")]
        d = rows["row"].str.extract(r"(\d+) px")[0].astype(float)
        ax.plot(d, rows["value"].astype(float), "s--", color="C1", label="paper, Table 4")
    if rho is not None:
        ax.axvline(rho, color="C2", ls=":", label=f"self-adaptive rho = {rho:.1f} px")
    ax.set(xlabel="inference diameter (px)", ylabel="F1 (mean over test images)")
    ax.legend(frameon=False, fontsize=8)
    return fig


__all__ = ["diameter_figure", "paired_phases_figure"]
