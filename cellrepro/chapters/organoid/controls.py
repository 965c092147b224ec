"""Controls of the organoid chapter: a classical pipeline and a linear probe.

* :func:`classical_masks` is the reference a reader would try first (background division,
  threshold, fill holes, area filter). It is not a method of the thesis; it shows where the
  synthetic task sits: a learned model that does not beat it clearly learned nothing a
  threshold could not. Its three parameters are chosen on *training* images against their
  annotation (:func:`tune_classical`), never on the test set.
* :func:`probe_r2` is the positive control of the global stage: a ridge regression from an
  encoder's pooled features to each test crop's organoid fraction, fitted on half of the test
  images and scored on the other half. A pre-trained encoder that does no better than the
  same architecture at random initialisation has not learned anything a linear read-out uses.
"""

from __future__ import annotations

import itertools

import numpy as np
import torch
from scipy import ndimage as ndi
from skimage.filters import threshold_otsu

from .evaluate import _f1


def classical_mask(image: np.ndarray, sigma: float, offset: float, min_area: int) -> np.ndarray:
    """Organoids as the dark regions of ``image`` divided by its background (a Gaussian of
    ``sigma`` pixels): Otsu's threshold shifted by ``offset``, holes filled, objects under
    ``min_area`` pixels removed."""
    flat = image / np.maximum(ndi.gaussian_filter(image, sigma), 1e-6)
    smooth = ndi.gaussian_filter(flat, 1.0)
    fg = smooth < threshold_otsu(smooth) + offset
    fg = ndi.binary_fill_holes(ndi.binary_closing(fg, iterations=2))
    labels, n = ndi.label(fg)
    if n:
        areas = np.bincount(labels.ravel())
        fg = (areas >= min_area)[labels] & (labels > 0)
    return fg


GRID = {"sigma": (16.0, 32.0, 64.0), "offset": (-0.04, -0.02, 0.0, 0.02), "min_area": (20, 60, 150)}


def tune_classical(images: list) -> dict:
    """The :data:`GRID` point with the best mean F1 against the annotation of ``images``."""
    best, best_f1 = None, -1.0
    for sigma, offset, min_area in itertools.product(*GRID.values()):
        f1 = np.mean([_f1(classical_mask(o.image, sigma, offset, min_area), o.mask) for o in images])
        if f1 > best_f1:
            best, best_f1 = {"sigma": sigma, "offset": offset, "min_area": min_area}, f1
    return best


def classical_probs(test_images: list, test, params: dict) -> np.ndarray:
    """The classical masks of the whole test images, cut into the test crops (as 0/1 "probabilities")."""
    masks = {o.name: classical_mask(o.image, **params) for o in test_images}
    c = test.images.shape[-1]
    return np.stack([np.rot90(masks[name][top:top + c, left:left + c], deg // 90)
                     for name, top, left, deg in test.origin]).astype(np.float32)


@torch.no_grad()
def pooled_features(model, images: torch.Tensor, batch: int = 64) -> np.ndarray:
    """Each encoder level's features averaged over space, concatenated (N, sum of channels)."""
    model = model.cpu().eval()
    out = []
    for i in range(0, len(images), batch):
        levels = model.encode(images[i:i + batch])
        out.append(torch.cat([f.mean((2, 3)) for f in levels], 1))
    return torch.cat(out).numpy()


def probe_r2(model, test, ridge: float = 1.0) -> float:
    """R^2 of a ridge read-out of the organoid fraction of each test crop, fitted on the
    even-numbered test images and scored on the odd-numbered ones."""
    x = pooled_features(model, test.images)
    y = test.true.mean((1, 2, 3)).numpy()
    fit_part = test.image % 2 == 0
    mu, sd = x[fit_part].mean(0), x[fit_part].std(0) + 1e-6
    z = (x - mu) / sd
    a = np.c_[z, np.ones(len(z))]
    w = np.linalg.solve(a[fit_part].T @ a[fit_part] + ridge * np.eye(a.shape[1]), a[fit_part].T @ y[fit_part])
    resid = y[~fit_part] - a[~fit_part] @ w
    return float(1 - resid.var() / y[~fit_part].var())
