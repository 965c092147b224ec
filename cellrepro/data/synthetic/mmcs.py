"""Synthetic two-channel cell images for the MMCS chapter (Hu et al., "Advanced Multi-Microscopic
Views Cell Semi-supervised Segmentation").

Stands in for the paper's three sources (Sec. 4.2): the NeurIPS-CellSeg labelled and unlabelled
patches ("dataset1"), the Cellpose and Omnipose training sets ("dataset2", the external labelled
data of Tables 1, 4, 5 and 7), and the data behind the cyto / cyto2 pretrained weights (Table 3),
which cannot be downloaded here. One generator, three ``style`` s:

* ``"dataset1"``: round cells in touching clumps. The cytoplasm channel is *flat* inside a clump
  (each cell's brightness is the clump's, up to a few per cent), so where two cells touch there is
  no edge to see; a nucleus sits inside every cell. Two images in three carry the nucleus channel
  (rendered as green cytoplasm + blue nucleus, "fluorescence"); the rest are grey cytoplasm images
  with no nucleus channel ("phase contrast"), whose network input gets a zero nucleus channel
  (Sec. 3.3). This is what makes the nucleus channel *informative* (mmcs-C4): touching cells are
  separable from the nuclei, barely from the cytoplasm.
* ``"external"``: the Omnipose-like family, elongated cells (aspect 1.8-3.5), smaller, on a darker
  background, with a nucleus channel on half the images: related to dataset1, not the same.
* ``"pretrain"``: a broad family for the cyto/cyto2 analogue (mmcs-C5), round and elongated cells
  over the union of both diameter ranges, inverted contrast on half the images.

Cell diameters vary between images (log-uniform over :data:`STYLES`' range, in pixels, independent
of the image size), so the self-adaptive diameter (Sec. 3.4) and the inference-diameter sweep
(Table 4) have something to adapt to. The drawing diameters run from 26 to 60 px (log-uniform),
but cells in clumps are cut by their neighbours, so a training set's mean ROI diameter (the
self-adaptive diameter) comes out smaller: 30-36 px for 12 images of 192 px (the MMCS Table 4
section glues the value of its run). The paper's best, 40 px, was its own data's.

Written in the NeurIPS-CellSeg layout (``data.make("mmcs", ...)``), read back by
:func:`cellrepro.data.readers.read_cellseg`, which takes the nucleus from the blue channel of the
"fluorescence" images, as for the real challenge data. Held-out test images are another seed.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi
from ...engine.progress import bar as progress_bar

from ..types import CellImage
from ._shapes import blob, illumination, place, smooth_noise

DEFAULTS = {"n_labeled": 24, "n_unlabeled": 72, "size": 192}
"""Book-profile size (the challenge's 1 : 3 labelled to unlabelled ratio)."""

# diameter range (px), aspect range, target coverage, probability of a nucleus channel,
# per-clump brightness range, within-clump per-cell brightness spread
STYLES = {
    "dataset1": ((26, 60), (1.0, 1.4), 0.5, 2 / 3, (0.2, 1.0), 0.04),
    "external": ((18, 36), (1.8, 3.5), 0.4, 0.5, (0.3, 1.0), 0.04),
    "pretrain": ((18, 60), (1.0, 3.0), 0.45, 0.5, (0.2, 1.0), 0.06),
}

NOISE = 16.0
"""Standard deviation of the additive Gaussian noise (grey levels of 255), both channels."""

NO_NUCLEUS = 0.1
"""Fraction of cells whose nucleus does not show (out of the focal plane, unstained)."""


def generate(n_labeled: int = 24, n_unlabeled: int = 72, size: int = 192, seed: int = 0, style: str = "dataset1",
             label_unlabeled: bool = False) -> tuple[list[CellImage], list[CellImage]]:
    """``(labeled, unlabeled)`` images of ``style``, deterministic for ``(seed, style)``.
    ``label_unlabeled``: the unlabelled images keep their labels (the same images otherwise), for
    an oracle that trains on them as if they were labelled."""
    if style not in STYLES:
        raise ValueError(f"style must be one of {sorted(STYLES)}, got {style!r}")
    if size < 64:
        raise ValueError(f"size must be >= 64 px (cells are up to {STYLES[style][0][1]} px across), got {size}")
    salt = sorted(STYLES).index(style)
    out: tuple[list[CellImage], list[CellImage]] = ([], [])
    for part, (count, prefix) in enumerate(((n_labeled, style), (n_unlabeled, f"{style}_unlabeled"))):
        for i in progress_bar(range(count), desc=f"mmcs {style} ({'labeled' if part == 0 else 'unlabeled'})",
                      unit="image", disable=None):
            img = make_image(f"{prefix}_{i:05d}", np.random.default_rng([seed, salt, part, i]), size, style)
            if part == 1 and not label_unlabeled:
                img.labels = None
            out[part].append(img)
    return out


def make_image(name: str, rng: np.random.Generator, size: int, style: str = "dataset1") -> CellImage:
    """One image of ``style`` with its instance labels and nucleus channel (zeros if it has none)."""
    (dmin, dmax), (amin, amax), coverage, p_nucleus, (gmin, gmax), spread = STYLES[style]
    diameter = float(np.exp(rng.uniform(np.log(dmin), np.log(dmax))))
    shape = (size, size)
    cells, nuclei = _clumped_cells(rng, shape, diameter, coverage, (amin, amax))
    labels = np.zeros(shape, np.int32)
    for i, c in enumerate(cells, start=1):  # later cells occlude earlier ones
        labels[c.slices][c.mask] = i
    labels, kept = _drop_slivers(labels, min_area=max(8, int(0.08 * np.pi * diameter ** 2 / 4)))
    clump, _ = ndi.label(labels > 0)
    clump_gain = rng.uniform(gmin, gmax, clump.max() + 1)
    cyto = np.zeros(shape, np.float32)
    nuc = np.zeros(shape, np.float32)
    for new, old in enumerate(kept, start=1):
        region = labels == new
        if not region.any():
            continue
        g = clump_gain[clump[region][0]] * (1 + rng.uniform(-spread, spread))
        cyto[region] = g  # flat: no edge between touching cells of one clump
        n = nuclei[old - 1]
        if n is not None and rng.random() >= NO_NUCLEUS:
            inside = n.full(shape) & region
            nuc[inside] = np.maximum(nuc[inside], rng.uniform(0.3, 1.0))
    has_nucleus = rng.random() < p_nucleus
    inverted = style == "pretrain" and rng.random() < 0.5
    texture = 1 + 0.25 * smooth_noise(shape, 3.0, rng)
    cyto = ndi.gaussian_filter(cyto * texture + _debris(rng, shape, diameter, labels > 0), 1.2)
    background = 18 + 8 * smooth_noise(shape, 16.0, rng)
    light = illumination(shape, rng, 0.2)
    level = 150 if style != "external" else 120
    cyto_img = (background + level * cyto) * light
    if inverted:
        cyto_img = 230 - cyto_img
    if has_nucleus:
        nuc_img = (background * 0.5 + 200 * ndi.gaussian_filter(nuc, 2.0)) * light
        rgb = np.stack([np.zeros(shape, np.float32), cyto_img, nuc_img], -1)
        rgb = rgb + rng.normal(0, NOISE, rgb.shape) * np.array([0, 1, 1])
        modality = "fluorescence"
    else:
        grey = cyto_img + rng.normal(0, NOISE, shape)
        rgb = np.repeat(grey[..., None], 3, -1)
        modality = "phase contrast"
    image = np.clip(rgb, 0, 255).round().astype(np.uint8)
    nucleus = image[..., 2].astype(np.float32) / 255.0 if has_nucleus else np.zeros(shape, np.float32)
    return CellImage(name, image, labels, nucleus, modality, diameter)


def _clumped_cells(rng, shape, diameter, coverage, aspect_range):
    """Cells placed next to earlier ones (clumps of touching cells), each with a nucleus inside."""
    cells, nuclei = [], []
    taken = np.zeros(shape, bool)
    target = coverage * shape[0] * shape[1]
    area = 0.0
    for _ in range(3000):
        if area >= target:
            break
        radius = diameter / 2 * rng.uniform(0.85, 1.15)
        at = None
        if cells and rng.random() < 0.75:  # grow a clump: next to a random earlier cell
            c0 = cells[int(rng.integers(len(cells)))]
            cy, cx = c0.top + c0.mask.shape[0] / 2, c0.left + c0.mask.shape[1] / 2
            a = rng.uniform(0, 2 * np.pi)
            at = (cy + 1.55 * radius * np.sin(a), cx + 1.55 * radius * np.cos(a))
            r = int(radius * 0.6)
            y, x = int(at[0]), int(at[1])
            if not (0 <= y < shape[0] and 0 <= x < shape[1]) or taken[max(y - r, 0):y + r + 1, max(x - r, 0):x + r + 1].any():
                at = None
        if at is None:
            at = place(rng, shape, radius * 0.6, taken, tries=10, margin=0.2)
        if at is None:
            continue
        aspect = rng.uniform(*aspect_range)
        c = blob(at, radius / np.sqrt(aspect), rng, irregularity=0.08, aspect=aspect).clip(shape)
        if c is None:
            continue
        n = blob(at, radius / np.sqrt(aspect) * rng.uniform(0.35, 0.5), rng, irregularity=0.06).within(c)
        cells.append(c)
        nuclei.append(n)
        taken[c.slices] |= ndi.binary_erosion(c.mask, iterations=max(1, int(radius * 0.35)))
        area += c.mask.sum()
    return cells, nuclei


def _debris(rng, shape, diameter, cells):
    """Bright round debris in the cytoplasm channel, off the cells, about a third of a cell across."""
    out = np.zeros(shape, np.float32)
    for _ in range(int(rng.integers(0, 8))):
        at = place(rng, shape, diameter * 0.2, cells, tries=5)
        if at is not None:
            d = blob(at, diameter * rng.uniform(0.12, 0.25), rng, irregularity=0.05).clip(shape)
            if d is not None:
                out[d.slices][d.mask] = rng.uniform(0.3, 0.9)
    return out


def _drop_slivers(labels: np.ndarray, min_area: int) -> tuple[np.ndarray, np.ndarray]:
    """Remove instances left with fewer than ``min_area`` visible pixels; renumber 1..N.

    Returns the new labels and, for each new id ``k`` (1-based), the old id at ``kept[k - 1]``.
    """
    ids, counts = np.unique(labels, return_counts=True)
    kept = ids[(ids > 0) & (counts >= min_area)]
    lut = np.zeros(labels.max() + 1, np.int32)
    lut[kept] = np.arange(1, len(kept) + 1)
    return lut[labels], kept
