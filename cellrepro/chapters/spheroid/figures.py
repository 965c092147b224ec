"""Figures of the spheroid chapter's training sections: did SSC and DSC engage?"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd


def engagement_figure(results: pd.DataFrame, ssc_tau: float, ssc_arms: Sequence[str], dsc_arms: Sequence[str],
                      aggregate: str = "sum", checkpoints: int = 3):
    """Two panels. Left: every unlabelled sparse image's stability for each SSC arm (one colour
    per seed), with SSC's threshold; images right of it were pseudo-labelled. Right: the share of
    the target boxes' pixels that enter Eq. 13 over the updates of each DSC run (one line per
    seed and DSC arm, 10-update running mean), i.e. how much DSC's consistency term acts. Without
    ``ssc_arms`` the right panel only.
    ``results``: :func:`~.train.run_arms`'s rows (``stabilities``, ``box_share_curve``)."""
    import matplotlib.pyplot as plt

    if not ssc_arms:  # DSC alone (Table 1): the right panel only
        fig, right = plt.subplots(figsize=(4.5, 2.8), layout="constrained")
        _dsc_panel(right, results, dsc_arms)
        return fig
    fig, (left, right) = plt.subplots(1, 2, figsize=(9, 2.8), layout="constrained", width_ratios=(1.2, 1))
    rows = results[results["arm"].isin(ssc_arms)]
    seeds = sorted(rows["seed"].unique())
    for i, name in enumerate(ssc_arms):
        for j, seed in enumerate(seeds):
            sub = rows[(rows["arm"] == name) & (rows["seed"] == seed)]
            for values in sub["stabilities"]:
                y = np.full(len(values), i) + (j - (len(seeds) - 1) / 2) * 0.6 / max(len(seeds), 1)
                left.scatter(values, y, s=8, color=f"C{j % 10}", label=f"seed {seed}" if i == 0 else None)
    top = (checkpoints - 1) if aggregate == "sum" else 1
    left.axvline(ssc_tau, color="gray", ls="--", lw=1)
    left.set(yticks=range(len(ssc_arms)), yticklabels=[a.replace("SBS + ", "") for a in ssc_arms], xlim=(0, top),
             xlabel=f"stability ({aggregate} of the earlier checkpoints' mean IoU with the last)")
    left.legend(fontsize=7, loc="upper left", ncol=2, frameon=False)
    _dsc_panel(right, results, dsc_arms)
    return fig


def _dsc_panel(right, results: pd.DataFrame, dsc_arms: Sequence[str]) -> None:
    for j, name in enumerate(dsc_arms):
        curves = results.loc[results["arm"] == name, "box_share_curve"] if "box_share_curve" in results else []
        for i, curve in enumerate(curves):
            share = pd.Series(curve, index=np.arange(1, len(curve) + 1), dtype=float).dropna()
            right.plot(share.index, share.rolling(10, min_periods=1).mean(), color=f"C{j}", lw=0.8, alpha=0.7,
                       label=name.replace("SBS + ", "") if i == 0 else None)
    right.axhline(0.05, color="gray", ls="--", lw=1)
    right.set(xlabel="update", ylabel="box pixels entering Eq. 13", ylim=(0, 1))
    right.legend(fontsize=7, frameon=False)


def k_sweep_figure(results: pd.DataFrame, ks: Sequence[int], sparse: int, reference: int):
    """Two panels of the k sweep (rows ``k``, ``seed``, ``mask_AP``). Left: mask mAP against k, one
    line per seed, the paper's k dashed. Right: the seed SD at each k, the arms spheroid-C9
    compares in red (sparse) and blue (reference)."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(7.5, 2.8), layout="constrained")
    for seed, g in results.groupby("seed"):
        g = g.sort_values("k")
        axes[0].plot(g["k"], 100 * g["mask_AP"], marker="o", ms=3, alpha=0.7, label=f"seed {seed}")
    axes[0].axvline(reference, color="gray", ls="--", lw=1)
    axes[0].set(xlabel="k (slices stacked)", ylabel="mask mAP (points)", xticks=list(ks))
    axes[0].legend(fontsize=7, ncol=2, frameon=False)
    spread = results.groupby("k")["mask_AP"].std(ddof=1) * 100
    colours = ["C3" if k == sparse else "C0" if k == reference else "0.6" for k in spread.index]
    axes[1].bar([str(k) for k in spread.index], spread.values, color=colours)
    axes[1].set(xlabel="k (slices stacked)", ylabel="SD over seeds (points)")
    return fig


__all__ = ["engagement_figure", "k_sweep_figure"]
