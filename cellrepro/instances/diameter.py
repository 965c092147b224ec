"""Cell diameters from instance labels, and rescaling images to a target diameter.

Cellpose (Stringer et al. 2021, Methods "Training") rescales every training image so that its
cells are ``diam_mean`` pixels across (30 for its generalist models), and every test image by
``diam_mean / diameter`` for a user-given ``diameter``. The MMCS paper's *self-adaptive diameter
filter* (Hu et al., Sec. 3.4, Fig. 3) replaces the fixed 30 by the mean diameter of the training
set's ROIs, computed from the label areas and saved with the network; the inference ``diameter``
argument stays (its Table 4 sweeps it).

A ROI's diameter is that of the disc of its area, ``2 sqrt(area / pi)`` (Cellpose's
``diameters``, which takes the median over one image's ROIs). scikit-image's ``regionprops``
gives the same ``equivalent_diameter_area`` but builds a property object per region; one
``bincount`` is enough here.
"""

from __future__ import annotations

from typing import Iterable

import numpy as np
import torch
import torch.nn.functional as F


def roi_diameters(labels) -> np.ndarray:
    """Equivalent diameters ``2 sqrt(area / pi)`` of the instances of one (H, W) label image.

    Example (a disc of radius 10 has area about 314, so diameter about 20):

    >>> yy, xx = np.mgrid[:41, :41]
    >>> m = ((yy - 20) ** 2 + (xx - 20) ** 2 <= 100).astype(np.int32)
    >>> round(float(roi_diameters(m)[0]))
    20
    """
    arr = np.asarray(labels)
    if arr.ndim != 2:
        raise ValueError(f"labels must be an (H, W) label image, got shape {arr.shape}")
    if arr.size and arr.min() < 0:
        raise ValueError("labels must be >= 0 (0 is background)")
    counts = np.bincount(arr.ravel().astype(np.int64))[1:]
    counts = counts[counts > 0]
    return 2.0 * np.sqrt(counts / np.pi)


def image_diameter(labels) -> float:
    """Median ROI diameter of one label image (Cellpose's per-image ``diam``); NaN if it has none."""
    d = roi_diameters(labels)
    return float(np.median(d)) if d.size else float("nan")


def mean_roi_diameter(label_images: Iterable) -> float:
    """The self-adaptive diameter (MMCS Sec. 3.4): the mean equivalent diameter over every ROI of
    every label image of the training set.

    Raises:
        ValueError: no image has an instance.
    """
    d = [roi_diameters(m) for m in label_images]
    d = np.concatenate(d) if d else np.zeros(0)
    if not d.size:
        raise ValueError("no instance in the training labels: the self-adaptive diameter is undefined")
    return float(d.mean())


def resized_shape(shape: tuple[int, int], factor: float) -> tuple[int, int]:
    """``(round(H * factor), round(W * factor))``, at least 1 each."""
    if not factor > 0:
        raise ValueError(f"factor must be > 0, got {factor}")
    return tuple(max(1, int(round(s * factor))) for s in shape)


def rescale_image(image, factor: float | None = None, shape: tuple[int, int] | None = None) -> torch.Tensor:
    """Bilinear resize of a (C, H, W) image by ``factor`` or to ``shape`` (torch, float32).

    Anti-aliased when shrinking (``F.interpolate(..., antialias=True)``), as Cellpose's OpenCV
    ``INTER_LINEAR`` resize is not, so a small diameter does not alias the cytoplasm texture.
    """
    x = image if isinstance(image, torch.Tensor) else torch.as_tensor(np.asarray(image))
    if x.ndim != 3:
        raise ValueError(f"image must have shape (C, H, W), got {tuple(x.shape)}")
    size = shape if shape is not None else resized_shape(tuple(x.shape[-2:]), float(factor))
    if tuple(size) == tuple(x.shape[-2:]):
        return x.float()
    return F.interpolate(x[None].float(), size=tuple(size), mode="bilinear", align_corners=False,
                         antialias=bool(size[0] < x.shape[-2]))[0]


def rescale_labels(labels, factor: float | None = None, shape: tuple[int, int] | None = None) -> np.ndarray:
    """Nearest-neighbour resize of an (H, W) label image by ``factor`` or to ``shape`` (int32).

    Example (doubling keeps the ids and quadruples each area):

    >>> m = np.array([[0, 1], [2, 2]], np.int32)
    >>> r = rescale_labels(m, 2.0)
    >>> r.shape, np.bincount(r.ravel()).tolist()
    ((4, 4), [4, 4, 8])
    """
    arr = np.asarray(labels)
    if arr.ndim != 2:
        raise ValueError(f"labels must be an (H, W) label image, got shape {arr.shape}")
    size = shape if shape is not None else resized_shape(arr.shape, float(factor))
    if tuple(size) == arr.shape:
        return arr.astype(np.int32)
    t = torch.from_numpy(arr.astype(np.int64))[None, None].float()
    return F.interpolate(t, size=tuple(size), mode="nearest-exact")[0, 0].round().numpy().astype(np.int32)


__all__ = ["image_diameter", "mean_roi_diameter", "resized_shape", "rescale_image", "rescale_labels", "roi_diameters"]
