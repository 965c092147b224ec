"""Synthetic organoid images, the stand-in for the organoid thesis's UMCG data.

Stands in for: ten Zeiss CZI files of intestinal organoids, about 3830 x 2900 pixels, five
time points over 96 h (Zwijghuizen, Sec. 3.1), with binary organoid masks that do not always
include every organoid (Sec. 5.3 attributes the frozen-encoder result to masks that leave out
large organoids).

What it carries:

* organoids of very different sizes (radius drawn log-uniformly over more than a decade),
  with textured interiors, a darker rim and a lumen in the larger ones;
* debris: small dark specks and fibres that are not organoids;
* uneven illumination and noise;
* an exact true mask and instance labels, and an *imperfect* mask in which a chosen share of
  organoids (by default mostly large ones) is left out, as a user's annotation would be.
  Both are kept, so a chapter can score against either.

Images are cut into crops by :func:`cellrepro.data.tiling.organoid_crops` (sliding window
with overlap, crops under 3% organoid pixels dropped, 90/180/270 degree rotations added).
Where it differs: organoids are star-convex blobs; there is no time series.
"""

from __future__ import annotations

import numpy as np
from tqdm import tqdm
from scipy import ndimage as ndi

from ..types import OrganoidImage
from ._shapes import blob, dome, illumination, place, smooth_noise

DEFAULTS = {"n": 12, "size": 1024}
"""Book-profile size: 12 images of 768 x 1024 (``size`` is the width; the height is 3/4 of it).
About 1100 crops of 128 at 50% overlap, 4400 with rotations."""


def generate(n: int = 12, size: int = 1024, seed: int = 0, drop_large: float = 0.3,
             drop_any: float = 0.03, large_radius: float = 60.0) -> list[OrganoidImage]:
    """``n`` images of ``size * 3 // 4`` x ``size`` with true and imperfect masks, deterministic for ``seed``.

    Args:
        drop_large: probability that an organoid with radius >= ``large_radius`` (pixels, at
            a 1024-pixel-wide image) is missing from the imperfect mask.
        drop_any: probability that any other organoid is missing.
    """
    return [make_image(f"organoids_{i:03d}", np.random.default_rng([seed, i]), (size * 3 // 4, size),
                       drop_large, drop_any, large_radius)
            for i in tqdm(range(n), desc="organoid", unit="image", disable=None)]


def make_image(name: str, rng: np.random.Generator, shape: tuple[int, int], drop_large: float, drop_any: float,
               large_radius: float) -> OrganoidImage:
    scale = shape[1] / 1024
    labels = np.zeros(shape, np.int32)
    texture = np.zeros(shape, np.float32)
    taken = np.zeros(shape, bool)
    dropped: list[int] = []
    count = max(4, int(rng.integers(12, 30) * scale ** 2))
    radii = np.sort(np.exp(rng.uniform(np.log(6), np.log(110), count)))[::-1] * scale  # big ones first
    radii = np.maximum(radii, 3.0)
    fine = smooth_noise(shape, 1.5 * scale, rng)
    coarse = smooth_noise(shape, 6 * scale, rng)
    next_id = 1
    for radius in radii:
        at = place(rng, shape, radius * 1.05, taken, tries=25)
        if at is None:
            continue
        org = blob(at, radius, rng, irregularity=0.15 if radius > 30 * scale else 0.08,
                   aspect=rng.uniform(1.0, 1.4)).clip(shape)
        if org is None or org.mask.sum() < 20:
            continue
        h = dome(org.mask, 1.0)
        rim = np.clip(1 - h * 4, 0, 1)  # dark rim near the boundary
        lumen = (h > 0.6) if radius > 35 * scale else np.zeros_like(org.mask)
        local = 0.35 + 0.12 * fine[org.slices] + 0.08 * coarse[org.slices] - 0.25 * rim + 0.25 * lumen
        org.paint(texture, local)
        org.paint(labels, next_id)
        taken[org.slices] |= ndi.binary_dilation(org.mask, iterations=2)
        if rng.random() < (drop_large if radius >= large_radius * scale else drop_any):
            dropped.append(next_id)
        next_id += 1
    organoid = labels > 0
    debris = np.zeros(shape, np.float32)
    for _ in range(max(3, int(rng.integers(30, 80) * scale ** 2))):
        at = place(rng, shape, 3 * scale, taken, tries=5)
        if at is None:
            continue
        speck = blob(at, rng.uniform(1.5, 5) * scale, rng, irregularity=0.3, aspect=rng.uniform(1, 4)).clip(shape)
        if speck is not None:
            speck.paint(debris, rng.uniform(0.2, 0.45))
    background = 0.72 + 0.03 * smooth_noise(shape, 30 * scale, rng)
    image = np.where(organoid, texture + 0.1, background) - debris
    image = ndi.gaussian_filter(image, 0.8 * scale) * illumination(shape, rng, 0.35)
    image = np.clip(image + 0.02 * rng.standard_normal(shape), 0, 1)
    # quantised to 16-bit levels, as a CZI stores it, so writing and reading back is exact
    image = np.round(image * 65535).astype(np.uint16).astype(np.float32) / np.float32(65535)
    mask = organoid & ~np.isin(labels, dropped)
    return OrganoidImage(name, image, mask, organoid, labels, dropped)
