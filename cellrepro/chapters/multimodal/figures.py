"""Figures of the multimodal chapter (at most 7.5 in wide, see :func:`cellrepro.publish.report.use_book_style`)."""

from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd

WIDTH = 7.5


def routing_figure(features: np.ndarray, truth: Sequence[str], cm: pd.DataFrame):
    """Left: the 6 HSV statistics of each test image projected on their first two principal
    components, coloured by true modality. Right: the routing confusion matrix (counts)."""
    import matplotlib.pyplot as plt
    from sklearn.decomposition import PCA

    x = np.asarray(features, float)
    z = PCA(2).fit_transform((x - x.mean(0)) / (x.std(0) + 1e-12))
    fig, (a, b) = plt.subplots(1, 2, figsize=(WIDTH, 3.4), gridspec_kw={"width_ratios": [1, 1.1]},
                             layout="constrained")
    truth = np.asarray(truth)
    for name, marker in zip(dict.fromkeys(truth), "osD^v"):
        sel = truth == name
        a.scatter(z[sel, 0], z[sel, 1], s=14, marker=marker, alpha=0.7, label=name)
    a.set(xlabel="PC 1 of the HSV statistics", ylabel="PC 2", title="Test images by true modality")
    a.legend(frameon=False)
    m = cm.to_numpy()
    b.imshow(m, cmap="Blues")
    for (i, j), v in np.ndenumerate(m):
        b.text(j, i, str(v), ha="center", va="center", color="white" if v > m.max() / 2 else "black", fontsize=9)
    b.set_xticks(range(m.shape[1]), [str(c) for c in cm.columns], rotation=30, ha="right")
    b.set_yticks(range(m.shape[0]), [str(r) for r in cm.index])
    b.set(xlabel="routed to", ylabel="true modality", title="Routing confusion (all runs)")
    return fig


def paired_arms_figure(means: pd.DataFrame, arms: Sequence[str], metric: str = "mF1"):
    """One panel per Table 3 column: ``metric`` of each arm (x, in the order of ``arms``), one line
    per seed joining that seed's arms (:func:`cellrepro.publish.report.paired_seeds_figure`)."""
    from ...publish import report

    return report.paired_seeds_figure(means, "column", "arm", list(arms), metric, width=WIDTH)
