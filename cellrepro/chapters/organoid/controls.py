"""Controls of the organoid chapter: a classical pipeline and a linear probe.

* :func:`classical_masks` is the reference a reader would try first (background division,
  threshold, fill holes, area filter). It is not a method of the thesis; it shows where the
  synthetic task sits: a learned model that does not beat it clearly learned nothing a
  threshold could not. Its three parameters are chosen on *training* images against their
  annotation (:func:`tune_classical`), never on the test set.
* :func:`probe_r2` is the positive control of the global stage and the measure of organoid-C11:
  a ridge regression from an encoder's pooled features to the size and shape of each test
  crop's organoids (:data:`PROBE_TARGETS`, which no stage trains), fitted on half of the test
  images and scored on the other half. A pre-trained encoder that does no better than the
  same architecture at random initialisation has not learned anything a linear read-out uses.
* :func:`linear_cka` says how far the local stage moved the encoder's representation away from
  the global stage's (shown beside C11; a frozen encoder's is 1 by construction).
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


PROBE_TARGETS = ("mean_area", "eccentricity")
"""What the probes read out of each test crop: the log mean area of its true organoids (size) and
their mean eccentricity (shape), each beyond what the crop's organoid fraction says. Neither pre-training stage is trained on either: the global stage
sees no labels, and the local stage contrasts organoid pixels with background pixels, which
names each pixel's class but not the size or shape of the organoid it belongs to."""


def crop_targets(test) -> dict[str, np.ndarray]:
    """Per test crop: ``mean_area`` (log of the mean pixel area of the true organoids in the crop,
    each cut at the crop's border) and ``eccentricity`` (their mean eccentricity), each as its
    residual after a straight-line fit on ``fraction`` (organoid pixels / crop pixels; log mean area
    alone correlates about 0.9 with it), and ``fraction`` itself, shown beside: the fraction is what
    the local stage's labels carry, so only what size and shape add to it is a target the local
    stage does not train."""
    from skimage.measure import label, regionprops

    area, ecc = [], []
    for m in test.true[:, 0].numpy() > 0.5:
        regions = regionprops(label(m))
        area.append(np.log(np.mean([r.area for r in regions])) if regions else 0.0)
        ecc.append(float(np.mean([r.eccentricity for r in regions])) if regions else 0.0)
    fraction = test.true.mean((1, 2, 3)).numpy()
    return {"mean_area": _residual(np.array(area), fraction), "eccentricity": _residual(np.array(ecc), fraction),
            "fraction": fraction}


def _residual(y: np.ndarray, x: np.ndarray) -> np.ndarray:
    """``y`` minus its least-squares line on ``x``: what of ``y`` the organoid fraction does not carry."""
    a = np.c_[x, np.ones_like(x)]
    return y - a @ np.linalg.lstsq(a, y, rcond=None)[0]


def probe_r2(model, test, targets: tuple[str, ...] = PROBE_TARGETS, features: np.ndarray | None = None) -> float:
    """Held-out R^2 of a linear read-out of ``targets`` from an encoder's pooled features, averaged
    over the targets: ridge regression (``sklearn.linear_model.RidgeCV``, its penalty chosen by
    leave-one-out on the fitting half) on standardised features, fitted on the even-numbered test
    images and scored on the odd-numbered ones.

    Choosing the penalty on the fitting half keeps a random encoder's many features from
    overfitting into a negative R^2 (the earlier fixed penalty gave -0.2 to -0.4), so the
    difference between two encoders measures what they encode, not how badly they overfit.
    """
    from sklearn.linear_model import RidgeCV
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    x = pooled_features(model, test.images) if features is None else features
    values = crop_targets(test)
    fit_part = test.image % 2 == 0
    scores = []
    for name in targets:
        y = values[name]
        reg = make_pipeline(StandardScaler(), RidgeCV(alphas=np.logspace(-2, 5, 15)))
        reg.fit(x[fit_part], y[fit_part])
        scores.append(float(reg.score(x[~fit_part], y[~fit_part])))
    return float(np.mean(scores))


def linear_cka(x: np.ndarray, y: np.ndarray) -> float:
    """Linear centred kernel alignment of two representations of the same items (rows):
    ``||Y'X||_F^2 / (||X'X||_F ||Y'Y||_F)`` on column-centred X and Y (Kornblith et al., 2019).
    1 for representations equal up to rotation and isotropic scaling, near 0 for unrelated ones.

    >>> rng = np.random.default_rng(0); x = rng.normal(size=(200, 8))
    >>> q, _ = np.linalg.qr(rng.normal(size=(8, 8)))
    >>> round(linear_cka(x, 3 * x @ q), 6), linear_cka(x, rng.normal(size=(200, 8))) < 0.2
    (1.0, True)
    """
    x = x - x.mean(0)
    y = y - y.mean(0)
    return float(np.linalg.norm(y.T @ x) ** 2 / (np.linalg.norm(x.T @ x) * np.linalg.norm(y.T @ y)))
