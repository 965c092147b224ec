"""How good a stacked image is against the all-in-focus truth, and how well blur maps find focus.

Used by the stacking chapter to measure what the spheroid paper shows only qualitatively
(Fig. 3, claims spheroid-C1 and -C2 of the claims register).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .fuse import focus_stack
from .select import check_stack, slice_scores


def gradient_energy(image: np.ndarray, where: np.ndarray, sigma: float = 1.0) -> float:
    """Mean squared Sobel gradient of the Gaussian-smoothed image over the pixels ``where``."""
    from scipy import ndimage as ndi

    g = ndi.gaussian_filter(np.asarray(image, float), sigma)
    return float(np.mean((ndi.sobel(g, 0) ** 2 + ndi.sobel(g, 1) ** 2)[where]))


def tenengrad(image: np.ndarray, sigma: float = 1.0) -> float:
    """Focus measure: mean squared Sobel gradient of the Gaussian-smoothed image (everywhere)."""
    return gradient_energy(image, np.ones(np.shape(image), bool), sigma)


def regions(labels: np.ndarray, margin: int = 2) -> dict[str, np.ndarray]:
    """Where image quality is measured besides the whole image, from instance labels.

    ``"cells"``: the objects grown by ``margin`` pixels (their edges included); ``"contours"``:
    the object boundaries, two pixels wide (``skimage.segmentation.find_boundaries``, thick).
    """
    from scipy import ndimage as ndi
    from skimage.segmentation import find_boundaries

    cells = ndi.binary_dilation(labels > 0, np.ones((3, 3), bool), iterations=margin) if margin else labels > 0
    return {"cells": cells, "contours": find_boundaries(labels, mode="thick")}


def image_quality(image: np.ndarray, truth: np.ndarray, labels: np.ndarray | None = None) -> dict[str, float]:
    """The stacked image against the all-in-focus truth (data range of the truth).

    ``ssim``, ``psnr``: whole image; ``focus``: Tenengrad ratio to the truth's. With ``labels``
    also on the objects (:func:`regions`): ``ssim_cells`` (the mean of the SSIM map there),
    ``psnr_cells``, and ``contour``: gradient energy on the true contours relative to the
    truth's (the claims register's sharpness measure for spheroid-C1; 1 = as sharp as the truth).
    """
    from skimage.metrics import peak_signal_noise_ratio, structural_similarity

    rng = float(truth.max() - truth.min()) or 1.0
    ssim, ssim_map = structural_similarity(truth, image, data_range=rng, full=True)
    with np.errstate(divide="ignore"):  # identical images: PSNR inf
        psnr = float(peak_signal_noise_ratio(truth, image, data_range=rng))
    out = {"ssim": float(ssim), "psnr": psnr, "focus": tenengrad(image) / tenengrad(truth)}
    if labels is not None:
        where = regions(labels)
        mse = float(np.mean((image[where["cells"]] - truth[where["cells"]]) ** 2))
        out |= {"ssim_cells": float(ssim_map[where["cells"]].mean()),
                "psnr_cells": float(10 * np.log10(rng ** 2 / mse)) if mse > 0 else float("inf"),
                "contour": gradient_energy(image, where["contours"]) / gradient_energy(truth, where["contours"])}
    return out


def oracle_order(depth: np.ndarray, slices: int, tolerance: float = 1.0) -> np.ndarray:
    """Slices ranked by how many object pixels they hold in focus (within ``tolerance`` planes of
    their depth), ties by distance to the median depth: the selection a perfect blur map would make."""
    z = np.arange(slices)
    finite = depth[np.isfinite(depth)]
    counts = np.array([(np.abs(zz - finite) <= tolerance).sum() for zz in z])
    centre = float(np.median(finite)) if finite.size else (slices - 1) / 2
    return np.lexsort((np.abs(z - centre), -counts))


def selection_quality(stack: np.ndarray, truth: np.ndarray, orders: dict[str, np.ndarray], ks: list[int],
                      labels: np.ndarray | None = None) -> pd.DataFrame:
    """Stack the top-k slices of each ranking (best first) for every k; one row per (ranking, k).

    ``orders`` maps a name (e.g. ``"HiFST"``, ``"random"``, ``"oracle"``) to slice indices, best
    first. ``k = Z`` is all slices, the same for every ranking. Slices are fused in z order,
    without alignment (the synthetic planes do not move).
    """
    arr = check_stack(stack)
    rows, done = [], {}
    for name, order in orders.items():
        for k in ks:
            keep = tuple(np.sort(np.asarray(order)[:k]))
            if keep not in done:
                img = arr[keep[0]] if k == 1 else focus_stack(arr[list(keep)], align_slices=False)
                done[keep] = image_quality(img, truth, labels)
            rows.append({"selection": name, "k": k, **done[keep]})
    return pd.DataFrame(rows)


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
