"""Synthetic organoid images, the stand-in for the organoid thesis's UMCG data.

Stands in for: ten Zeiss CZI files of intestinal organoids, about 3830 x 2900 pixels, five
time points over 96 h (Zwijghuizen, Sec. 3.1), with binary organoid masks that do not always
include every organoid (Sec. 5.3 attributes the frozen-encoder result to masks that leave out
large organoids).

What it carries, each a reason a threshold alone fails:

* organoids of very different sizes (radius log-uniform over more than a decade), a share of
  them *touching or clustered* (placed against an earlier one);
* four appearances: textured with a dark rim; a cystic *lumen without a dark rim* (a bright
  interior as light as the background, inside a thin wall); *defocused* (blurred, soft edge);
  and faint (*low contrast* to the background);
* debris: small dark specks, fibres, and organoid-sized dark clumps without texture;
* uneven illumination and noise;
* an exact true mask and instance labels, and an *imperfect annotation*: a share of organoids
  (mostly large ones) left out, and *coarse outlines* (each kept organoid's outline smoothed
  and shifted by up to a few pixels), as a user's annotation would be. Chapters train on the
  annotation and score against the truth.

"Large" has one definition, :func:`is_large`: an equivalent radius of at least
:data:`LARGE_RADIUS` pixels at a 1024-pixel-wide image (scaled with the width).

Images are cut into crops by :func:`cellrepro.data.tiling.organoid_crops`.
Where it differs: organoids are star-convex blobs; there is no time series.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi
from ...engine.progress import bar as progress_bar

from ..types import OrganoidImage
from ._shapes import blob, dome, illumination, place, smooth_noise

DEFAULTS = {"n": 12, "size": 1024}
"""Default size: 12 images of 768 x 1024 (``size`` is the width; the height is 3/4 of it)."""

LARGE_RADIUS = 60.0
"""Equivalent radius (pixels at a 1024-pixel-wide image) from which an organoid is "large"."""

APPEARANCES = ("rim", "lumen", "defocused", "faint")


def large_radius(width: int) -> float:
    """:data:`LARGE_RADIUS` scaled to an image ``width`` pixels wide."""
    return LARGE_RADIUS * width / 1024


def is_large(labels: np.ndarray, width: int | None = None) -> np.ndarray:
    """Mask of the organoids in ``labels`` whose equivalent radius is at least :func:`large_radius`."""
    width = labels.shape[1] if width is None else width
    ids, areas = np.unique(labels[labels > 0], return_counts=True)
    return np.isin(labels, ids[np.sqrt(areas / np.pi) >= large_radius(width)])


def generate(n: int = 12, size: int = 1024, seed: int = 0, drop_large: float = 0.3, drop_any: float = 0.03,
             coarse: float = 2.0, cluster: float = 0.35, contrast: float = 1.0) -> list[OrganoidImage]:
    """``n`` images of ``size * 3 // 4`` x ``size`` with true masks and imperfect annotations.

    Args:
        n, size, seed: how many images, their width, and the seed (deterministic).
        drop_large: probability that a large organoid (:func:`is_large`) is missing from the annotation.
        drop_any: probability that any other organoid is missing.
        coarse: outline coarseness of the annotation, in pixels at a 1024-pixel-wide image
            (0: exact outlines).
        cluster: share of organoids placed touching an earlier one.
        contrast: scales the organoid-to-background contrast (1: the default mix; lower is harder).
    """
    return [make_image(f"organoids_{i:03d}", np.random.default_rng([seed, i]), (size * 3 // 4, size),
                       drop_large, drop_any, coarse, cluster, contrast)
            for i in progress_bar(range(n), desc="organoid", unit="image", disable=None)]


def _centre(rng: np.random.Generator, shape: tuple[int, int], radius: float, taken: np.ndarray,
            placed: list[tuple[float, float, float]], cluster: float) -> tuple[float, float] | None:
    """A free centre, or with probability ``cluster`` one touching an organoid placed before."""
    if placed and rng.random() < cluster:
        for _ in range(10):
            cy, cx, r = placed[int(rng.integers(len(placed)))]
            angle = rng.uniform(0, 2 * np.pi)
            dist = (r + radius) * rng.uniform(0.9, 1.02)
            y, x = cy + dist * np.sin(angle), cx + dist * np.cos(angle)
            if 0 <= y < shape[0] and 0 <= x < shape[1]:
                return y, x
    return place(rng, shape, radius * 1.05, taken, tries=25)


def _appearance(kind: str, mask: np.ndarray, fine: np.ndarray, coarse_tex: np.ndarray, level: float,
                rng: np.random.Generator, scale: float) -> np.ndarray:
    """Intensity of one organoid in its bounding box (background ~0.72 before illumination)."""
    h = dome(mask, 1.0)
    if kind == "lumen":  # cyst: thin darker wall, interior as bright as the background, no dark rim
        wall = np.clip(1 - h * rng.uniform(5, 9), 0, 1)
        return 0.70 + 0.04 * fine - (0.72 - level) * 0.6 * wall + 0.02 * rng.standard_normal()
    rim = np.clip(1 - h * 4, 0, 1) if kind == "rim" else 0.3 * np.clip(1 - h * 4, 0, 1)
    value = level + 0.10 * fine + 0.06 * coarse_tex - 0.2 * rim
    if kind == "defocused":
        value = ndi.gaussian_filter(np.where(mask, value, 0.72), rng.uniform(2.5, 5) * scale)
    return value


def make_image(name: str, rng: np.random.Generator, shape: tuple[int, int], drop_large: float, drop_any: float,
               coarse: float = 2.0, cluster: float = 0.35, contrast: float = 1.0) -> OrganoidImage:
    scale = shape[1] / 1024
    labels = np.zeros(shape, np.int32)
    background = 0.72 + 0.03 * smooth_noise(shape, 30 * scale, rng)
    image = background.copy()
    taken = np.zeros(shape, bool)
    placed: list[tuple[float, float, float]] = []
    dropped: list[int] = []
    count = max(6, int(rng.integers(50, 90) * scale ** 2))
    radii = np.maximum(np.sort(np.exp(rng.uniform(np.log(5), np.log(110), count)))[::-1] * scale, 3.0)
    fine = smooth_noise(shape, 1.5 * scale, rng)
    coarse_tex = smooth_noise(shape, 6 * scale, rng)
    next_id = 1
    for radius in radii:
        at = _centre(rng, shape, radius, taken, placed, cluster)
        if at is None:
            continue
        org = blob(at, radius, rng, irregularity=0.15 if radius > 30 * scale else 0.08,
                   aspect=rng.uniform(1.0, 1.4)).clip(shape)
        if org is None or org.mask.sum() < 20:
            continue
        kind = rng.choice(APPEARANCES, p=[0.4, 0.2, 0.2, 0.2]) if radius > 12 * scale else \
            rng.choice(APPEARANCES, p=[0.5, 0.0, 0.25, 0.25])
        gap = rng.uniform(0.12, 0.35) if kind != "faint" else rng.uniform(0.05, 0.1)
        level = 0.72 - gap * contrast
        org.paint(image, _appearance(kind, org.mask, fine[org.slices], coarse_tex[org.slices], level, rng, scale))
        org.paint(labels, next_id)
        taken[org.slices] |= org.mask
        placed.append((at[0], at[1], radius))
        next_id += 1
    for i, radius in zip(range(1, next_id), [np.sqrt((labels == i).sum() / np.pi) for i in range(1, next_id)]):
        if radius == 0:
            continue
        if rng.random() < (drop_large if radius >= LARGE_RADIUS * scale else drop_any):
            dropped.append(i)
    _debris(image, labels > 0, rng, scale, contrast)
    image = ndi.gaussian_filter(image, 0.8 * scale) * illumination(shape, rng, 0.45)
    image = np.clip(image + rng.uniform(0.01, 0.035) * rng.standard_normal(shape), 0, 1)
    # quantised to 16-bit levels, as a CZI stores it, so writing and reading back is exact
    image = np.round(image * 65535).astype(np.uint16).astype(np.float32) / np.float32(65535)
    organoid = labels > 0
    mask = annotate(labels, dropped, coarse * scale, rng)
    return OrganoidImage(name, image, mask, organoid, labels, dropped)


def _debris(image: np.ndarray, organoid: np.ndarray, rng: np.random.Generator, scale: float, contrast: float) -> None:
    """Dark specks and fibres, and organoid-sized dark clumps without texture, off the organoids."""
    shape = image.shape
    for k in range(max(3, int(rng.integers(40, 90) * scale ** 2))):
        clump = k % 6 == 0
        radius = (rng.uniform(4, 12) if clump else rng.uniform(1.5, 5)) * scale
        at = place(rng, shape, radius, organoid, tries=5)
        if at is None:
            continue
        speck = blob(at, radius, rng, irregularity=0.3, aspect=rng.uniform(1, 1.5) if clump else rng.uniform(1, 4))
        speck = speck.clip(shape)
        if speck is None:
            continue
        speck.mask &= ~organoid[speck.slices]
        depth = rng.uniform(0.12, 0.3) * contrast if clump else rng.uniform(0.2, 0.45)
        region = image[speck.slices]
        region[speck.mask] -= depth


def annotate(labels: np.ndarray, dropped: list[int], coarse: float, rng: np.random.Generator) -> np.ndarray:
    """An annotator's mask: every organoid of ``labels`` except ``dropped``, each outline smoothed
    with a Gaussian of ``coarse`` pixels and cut at a random level (grown or shrunk by up to about
    ``coarse`` pixels). ``coarse=0`` gives the exact mask of the kept organoids."""
    keep = (labels > 0) & ~np.isin(labels, dropped)
    if coarse <= 0:
        return keep
    out = np.zeros(labels.shape, bool)
    for i, sl in enumerate(ndi.find_objects(labels), start=1):
        if sl is None or i in dropped:
            continue
        pad = int(np.ceil(3 * coarse)) + 1
        box = tuple(slice(max(s.start - pad, 0), min(s.stop + pad, n)) for s, n in zip(sl, labels.shape))
        smooth = ndi.gaussian_filter((labels[box] == i).astype(np.float32), coarse)
        out[box] |= smooth > rng.uniform(0.3, 0.7)
    return out
