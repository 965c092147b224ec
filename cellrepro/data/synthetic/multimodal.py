"""Synthetic multi-modality cell images, the stand-in for the NeurIPS 2022 CellSeg data.

Stands in for: the NeurIPS 2022 Cell Segmentation Challenge training set (1000 labeled
patches: brightfield 300, fluorescence 300, phase contrast 200, DIC 200, and > 1500
unlabeled images; Ma et al. 2024), used by the multimodal and MMCS papers.

What it carries:

* four modalities with distinct colour statistics (the multimodal paper routes images by
  K-Means on HSV means and variances): stained RGB brightfield, two-channel fluorescence
  (green cytoplasm, blue nucleus), grey phase contrast with bright halos, grey DIC relief;
  phase contrast and DIC are both grey, so K-Means can confuse them, as the paper reports;
* brightfield in two sub-groups: large overlapping cells with separately stained nuclei, and
  small cells among distractor blobs whose stain lies part-way to the cells' colour (the
  paper's Fig. 2);
* the difficulty each branch targets, measured so that a supervised model stays off the
  ceiling (tiny Cellpose, 200 steps, 8 labelled 192 px images, 12 test images: F1 0.81 on phase
  contrast, 0.65 on DIC, 0.86 on large and 0.97 on small brightfield; CDNet 0.89 on
  fluorescence): per-cell brightness from a range (dim cells are the ones missed), touching
  cells in phase contrast and DIC (no halo or relief edge between them), dense blurred
  fluorescent nuclei on an uneven background, and noise per modality (:data:`NOISE`);
* cell diameters that vary between images (the MMCS self-adaptive diameter);
* a nucleus channel where the modality has one (fluorescence), zeros otherwise (MMCS);
* many more unlabeled than labeled images;
* a second fluorescence style (``fluorescence_style="B"``) for the domain-shift test of the
  multimodal paper's Table 4 (multimodal-C11): cytoplasm in the red channel instead of green,
  a dimmer nucleus signal, more blur and an autofluorescent tissue background, as a held-out
  set from another lab would differ. Style "A" is the default and the training style.

The modality is recorded for evaluation only. Where it differs from the real data: one tissue
type per modality, no whole-slide images, no stain variation between labs.
"""

from __future__ import annotations

import numpy as np
from ...engine.progress import bar as progress_bar
from scipy import ndimage as ndi

from ..types import MODALITIES, CellImage
from ._shapes import blob, dome, illumination, place, smooth_noise

DEFAULTS = {"n_labeled": 200, "n_unlabeled": 600, "size": 256}
"""Book-profile size."""

MIX = {"brightfield": 0.3, "fluorescence": 0.3, "phase contrast": 0.2, "dic": 0.2}
"""Modality proportions of the challenge's labeled set (300/300/200/200)."""

FLUORESCENCE_STYLES = ("A", "B")
"""Training style and the shifted style of the domain-shift test."""

# diameter range (pixels at size 256), target cell coverage, whether cells touch and overlap,
# and the range of per-cell brightness (dim cells are the hard ones to find)
STYLES = {
    "brightfield-large": ((40, 80), 0.55, True, (0.45, 1.0)),
    "brightfield-small": ((8, 14), 0.1, False, (0.25, 1.0)),
    "fluorescence": ((8, 18), 0.5, True, (0.25, 1.0)),
    "phase contrast": ((14, 32), 0.45, True, (0.35, 1.0)),
    "dic": ((16, 36), 0.35, True, (0.5, 1.0)),
}

NOISE = {"brightfield": 8.0, "fluorescence": 12.0, "phase contrast": 12.0, "dic": 9.0}
"""Standard deviation of the additive Gaussian noise per modality (grey levels of 255)."""


def generate(n_labeled: int = 200, n_unlabeled: int = 600, size: int = 256, seed: int = 0,
             mix: dict[str, float] | None = None, fluorescence_style: str = "A"
             ) -> tuple[list[CellImage], list[CellImage]]:
    """Labeled and unlabeled images, deterministic for ``seed``; returns ``(labeled, unlabeled)``.

    Unlabeled images are drawn the same way with ``labels=None``. ``fluorescence_style`` "B"
    renders fluorescence images in the shifted style (the cells themselves are the same draw).
    """
    if fluorescence_style not in FLUORESCENCE_STYLES:
        raise ValueError(f"fluorescence_style must be one of {FLUORESCENCE_STYLES}, got {fluorescence_style!r}")
    mix = dict(MIX if mix is None else mix)
    unknown = set(mix) - set(MODALITIES)
    if unknown:
        raise ValueError(f"unknown modality {sorted(unknown)}; modalities are {MODALITIES}")
    names = list(mix)
    probs = np.array([mix[m] for m in names], float)
    probs /= probs.sum()
    out: tuple[list[CellImage], list[CellImage]] = ([], [])
    for part, (count, prefix) in enumerate(((n_labeled, "cell"), (n_unlabeled, "unlabeled"))):
        for i in progress_bar(range(count), desc=f"multimodal ({prefix})", unit="image", disable=None):
            rng = np.random.default_rng([seed, part, i])
            modality = names[rng.choice(len(names), p=probs)]
            img = make_image(f"{prefix}_{i:05d}", rng, size, modality, fluorescence_style)
            if part == 1:
                img.labels = None
            out[part].append(img)
    return out


def make_image(name: str, rng: np.random.Generator, size: int, modality: str,
               fluorescence_style: str = "A") -> CellImage:
    """One image of ``modality`` with its instance labels and nucleus channel."""
    style = modality
    if modality == "brightfield":
        style = "brightfield-large" if rng.random() < 0.5 else "brightfield-small"
    (dmin, dmax), coverage, overlap, (gmin, gmax) = STYLES[style]
    scale = size / 256
    diameter = float(np.exp(rng.uniform(np.log(dmin), np.log(dmax)))) * scale
    shape = (size, size)
    cells, nuclei = _cells(rng, shape, diameter, coverage, overlap)
    gains = rng.uniform(gmin, gmax, len(cells))
    labels = np.zeros(shape, np.int32)
    for i, c in enumerate(cells, start=1):  # later cells occlude earlier ones
        c.paint(labels, i)
    labels = _drop_slivers(labels, min_area=max(8, int(0.05 * np.pi * diameter ** 2 / 4)))
    height = np.zeros(shape, np.float32)
    nuc = np.zeros(shape, np.float32)
    for c, n, g in zip(cells, nuclei, gains):
        height[c.slices] += g * dome(c.mask, 0.6) * c.mask
        if n is not None:
            nuc[n.slices] = np.maximum(nuc[n.slices], g * dome(n.mask, 0.4) * n.mask)
    render = _fluorescence_b if style == "fluorescence" and fluorescence_style == "B" else _RENDER[style]
    image = render(rng, shape, height, nuc, labels > 0, scale)
    image = np.clip(image * illumination(shape, rng, 0.15)[..., None], 0, 255)
    grey = modality in ("phase contrast", "dic")  # grey images: the same noise in R, G and B
    noise = rng.normal(0, NOISE[modality], (*shape, 1) if grey else image.shape)
    image = np.clip(image + noise, 0, 255).round().astype(np.uint8)
    return CellImage(name, image, labels, nucleus_channel(image, modality), modality, diameter)


def nucleus_channel(image: np.ndarray, modality: str) -> np.ndarray:
    """The nucleus channel MMCS feeds its network: blue for fluorescence, zeros otherwise."""
    if modality == "fluorescence":
        return image[..., 2].astype(np.float32) / 255.0
    return np.zeros(image.shape[:2], np.float32)


def _cells(rng, shape, diameter, coverage, overlap):
    cells, nuclei = [], []
    taken = np.zeros(shape, bool)
    target = coverage * shape[0] * shape[1]
    area = 0.0
    for _ in range(2000):
        if area >= target:
            break
        radius = diameter / 2 * rng.uniform(0.8, 1.2)
        at = place(rng, shape, radius * (0.55 if overlap else 1.05), taken, tries=10, margin=0.3)
        if at is None:
            continue
        c = blob(at, radius, rng, irregularity=0.12, aspect=rng.uniform(1.0, 1.5)).clip(shape)
        if c is None:
            continue
        centre = (c.top + c.mask.shape[0] / 2, c.left + c.mask.shape[1] / 2)
        n = blob(centre, radius * rng.uniform(0.3, 0.45), rng, irregularity=0.08).within(c)  # inside its cell
        cells.append(c)
        nuclei.append(n)
        taken[c.slices] |= ndi.binary_erosion(c.mask, iterations=max(1, int(radius * 0.45))) if overlap else c.mask
        area += c.mask.sum()
    return cells, nuclei


def _drop_slivers(labels: np.ndarray, min_area: int) -> np.ndarray:
    """Remove instances left with fewer than ``min_area`` visible pixels; renumber 1..N."""
    ids, counts = np.unique(labels, return_counts=True)
    keep = ids[(ids > 0) & (counts >= min_area)]
    lut = np.zeros(labels.max() + 1, np.int32)
    lut[keep] = np.arange(1, len(keep) + 1)
    return lut[labels]


def _od_to_rgb(od: np.ndarray) -> np.ndarray:
    return 255.0 * np.exp(-od)


def _brightfield_large(rng, shape, height, nuc, fg, scale):
    eosin, hema = np.array([0.10, 0.55, 0.25]), np.array([0.70, 0.75, 0.25])
    od = 0.05 + 0.03 * smooth_noise(shape, 6 * scale, rng)[..., None]
    od = od + height[..., None] * 0.9 * eosin + nuc[..., None] * 1.4 * hema  # overlapping cells add up
    return _od_to_rgb(od)


def _brightfield_small(rng, shape, height, nuc, fg, scale):
    eosin, hema = np.array([0.05, 0.9, 0.6]), np.array([0.9, 0.8, 0.2])
    distract = np.zeros(shape, np.float32)
    for _ in range(int(rng.integers(60, 120) * scale ** 2)):
        at = place(rng, shape, 6 * scale, fg, tries=5)
        if at is not None:
            d = blob(at, rng.uniform(4, 7) * scale, rng, irregularity=0.04).clip(shape)
            if d is not None:
                distract[d.slices] = np.maximum(distract[d.slices], dome(d.mask, 0.5) * d.mask)
    od = 0.08 + 0.03 * smooth_noise(shape, 4 * scale, rng)[..., None]
    tint = eosin + rng.uniform(0.6, 0.95) * (hema - eosin)  # distractors part-way to the cells' colour
    od = od + distract[..., None] * 0.9 * tint + height[..., None] * 1.3 * hema
    return _od_to_rgb(od)


def _fluorescence(rng, shape, height, nuc, fg, scale):
    green = ndi.gaussian_filter(height * rng.uniform(0.6, 1.0), 1.5 * scale) * 200
    blue = ndi.gaussian_filter(nuc, 1.2 * scale) * 230
    background = 10 + 6 * smooth_noise(shape, 12 * scale, rng)
    return np.stack([np.zeros(shape), green + background, blue + 0.5 * background], -1)


def _fluorescence_b(rng, shape, height, nuc, fg, scale):
    """The shifted style: red cytoplasm, dim blurred nuclei, autofluorescent background."""
    tissue = 40 + 25 * smooth_noise(shape, 10 * scale, rng)
    red = ndi.gaussian_filter(height * rng.uniform(0.4, 0.7), 1.8) * 200 + tissue
    blue = ndi.gaussian_filter(nuc, 1.6) * 120 + 0.5 * tissue
    return np.stack([red, 0.3 * tissue, blue], -1)


def _phase(rng, shape, height, nuc, fg, scale):
    smooth = ndi.gaussian_filter(fg.astype(np.float32), 2.5 * scale)
    halo = np.clip(smooth - fg, 0, None)  # bright ring just outside each cell (none between touching cells)
    grey = (120 - rng.uniform(25, 55) * ndi.gaussian_filter(height, 1.0) + rng.uniform(40, 120) * halo
            + 6 * smooth_noise(shape, 8 * scale, rng))
    return np.repeat(grey[..., None], 3, -1)


def _dic(rng, shape, height, nuc, fg, scale):
    gy, gx = np.gradient(ndi.gaussian_filter(height, 1.0))
    grey = 128 + rng.uniform(150, 250) * (gx + gy) / np.sqrt(2) + 6 * smooth_noise(shape, 8 * scale, rng)
    return np.repeat(grey[..., None], 3, -1)


_RENDER = {"brightfield-large": _brightfield_large, "brightfield-small": _brightfield_small,
           "fluorescence": _fluorescence, "phase contrast": _phase, "dic": _dic}
