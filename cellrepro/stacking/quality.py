"""How good a stacked image is against the all-in-focus truth, and how well blur maps find focus.

Used by the stacking chapter to measure what the spheroid paper shows only qualitatively
(Fig. 3, claims spheroid-C1 and -C2 of the claims register).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .fuse import focus_stack
from .select import check_stack, slice_scores


def tenengrad(image: np.ndarray, sigma: float = 1.0) -> float:
    """Focus measure: mean squared Sobel gradient of the Gaussian-smoothed image."""
    from scipy import ndimage as ndi

    g = ndi.gaussian_filter(np.asarray(image, float), sigma)
    return float(np.mean(ndi.sobel(g, 0) ** 2 + ndi.sobel(g, 1) ** 2))


def image_quality(image: np.ndarray, truth: np.ndarray) -> dict[str, float]:
    """SSIM and PSNR against the truth (data range of the truth), and the focus-measure ratio."""
    from skimage.metrics import peak_signal_noise_ratio, structural_similarity

    rng = float(truth.max() - truth.min()) or 1.0
    return {"ssim": float(structural_similarity(truth, image, data_range=rng)),
            "psnr": float(peak_signal_noise_ratio(truth, image, data_range=rng)),
            "focus": tenengrad(image) / tenengrad(truth)}


def k_sweep(stack: np.ndarray, truth: np.ndarray, maps: np.ndarray, ks: list[int] | None = None,
            align_slices: bool = False) -> pd.DataFrame:
    """SBS-Stacking with every k (the top-k slices by Eq. 9-10, fused) against the truth.

    ``k = Z`` is focus stacking of all slices. One row per k with SSIM, PSNR and focus ratio.
    """
    arr = check_stack(stack)
    order = np.argsort(-slice_scores(maps), kind="stable")
    rows = []
    for k in ks or range(1, len(arr) + 1):
        keep = np.sort(order[:k])
        img = arr[keep[0]] if k == 1 else focus_stack(arr[keep], align_slices=align_slices)
        rows.append({"k": k, **image_quality(img, truth)})
    return pd.DataFrame(rows)


def roc_auc(scores: np.ndarray, positive: np.ndarray) -> float:
    """Area under the ROC curve of ``scores`` for the boolean ``positive`` (rank formulation)."""
    from scipy.stats import rankdata

    s = np.asarray(scores, float).ravel()
    p = np.asarray(positive, bool).ravel()
    n_pos, n_neg = int(p.sum()), int((~p).sum())
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    ranks = rankdata(s)
    return float((ranks[p].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))
