"""Synthetic training fields by copy-paste (brightfield thesis, Sec. 4.4.1; C6-C9).

The thesis builds new annotated samples by pasting cells cut from its annotated images into empty
fields, in the phase-contrast domain, where overlapping cells add (optical thickness sums), then
translates the phase image to brightfield with pix2pix (Sec. 4.4.2, :mod:`.pix2pix`). Pasting directly
in brightfield, which is not additive, made its model segment "fake overlaps" (C6); that variant is
here too, for comparison.

:func:`paste_fields` follows Sec. 4.4.1:

* the source cells are annotated cells that overlap no other cell ("a group of N non-overlapping cells
  instance masks"), cut out with their nucleus;
* each gets a random resize, rotation and elastic deformation (MONAI ``Rand2DElasticd``: image planes
  bilinear, masks nearest), and a random position;
* it is added to an initially empty phase field (``P' += p_i``) with its edge faded by a Gaussian blur of
  the mask (the thesis: sigma 20 px on 1080 px images; ``edge_sigma`` here, default scaled to the
  field), and its mask joins ``M'`` as a new instance;
* a cell is pasted only if its overlap ratio with the cells already there, ``|m_i and union| / |m_i|``,
  is at most ``max_overlap`` (the thesis: 0 <= p <= 0.2); otherwise another position is tried.

Our choices, where the thesis is silent: the number of cells per field (the source fields' range); the
empty field gets the sources' background noise (SD measured outside the cells), so that pasted and
unpasted regions look alike; the transform ranges in :class:`PasteSettings`.

``mode="brightfield"`` pastes the brightfield planes instead, blended over a flat background by the
faded mask (the top cell hides what is below it, as copy-paste in an image domain does), with the
same masks: the rejected variant of C6.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Sequence

import numpy as np
from scipy import ndimage as ndi

from ...data.synthetic.brightfield import Optics, render
from ...data.types import Field

MODES = ("phase", "brightfield")


@dataclass(frozen=True)
class PasteSettings:
    """Copy-paste parameters.

    Attributes:
        cells: range of cells per synthetic field (inclusive).
        max_overlap: the largest overlap ratio of a pasted cell with those already pasted (thesis 0.2).
        edge_sigma: Gaussian blur of the edge fade in px (None: the thesis's 20 px per 1024 px of field).
        scale: range of the random resize factor.
        rotate: rotate by a uniform random angle.
        elastic_spacing, elastic_magnitude: control-point spacing (px) and displacement range of the
            elastic deformation (MONAI ``Rand2DElasticd``).
        tries: positions tried per cell before it is given up.
    """

    cells: tuple[int, int] = (8, 16)
    max_overlap: float = 0.2
    edge_sigma: float | None = None
    scale: tuple[float, float] = (0.8, 1.2)
    rotate: bool = True
    elastic_spacing: float = 16.0
    elastic_magnitude: tuple[float, float] = (0.0, 2.0)
    tries: int = 30

    def __post_init__(self):
        if not 0 <= self.max_overlap <= 1:
            raise ValueError(f"PasteSettings.max_overlap must be in [0, 1], got {self.max_overlap!r}")
        if not (1 <= self.cells[0] <= self.cells[1]):
            raise ValueError(f"PasteSettings.cells must be (low, high) with 1 <= low <= high, got {self.cells!r}")


@dataclass
class SourceCell:
    """One annotated cell that overlaps no other, cut out of its field (local crops, same shape)."""

    field: str
    mask: np.ndarray
    nucleus: np.ndarray
    phase: np.ndarray
    bf_low: np.ndarray
    bf_high: np.ndarray


def cell_bank(fields: Sequence[Field], margin: int = 4) -> list[SourceCell]:
    """The cells of annotated ``fields`` that overlap no other cell, each cropped to its box plus ``margin``."""
    bank = []
    for f in fields:
        if f.amodal is None or f.nuclei is None:
            raise ValueError(f"field {f.name!r} has no annotation; only annotated fields give cells to paste")
        count = f.amodal.sum(0)
        for i, m in enumerate(f.amodal):
            if not m.any() or (count[m] > 1).any():
                continue
            ys, xs = np.nonzero(m)
            box = (slice(max(ys.min() - margin, 0), ys.max() + margin + 1),
                   slice(max(xs.min() - margin, 0), xs.max() + margin + 1))
            bank.append(SourceCell(f.name, m[box].copy(), (f.nuclei[box] == i + 1) & m[box],
                                   *(np.asarray(getattr(f, k)[box], np.float32) for k in ("phase", "bf_low", "bf_high"))))
    if not bank:
        raise ValueError("no cell overlaps no other cell in these fields: nothing to paste")
    return bank


def background_stats(fields: Sequence[Field], sigma: float = 3.0) -> dict[str, tuple[float, float]]:
    """Median level and pixel-noise SD of each plane outside every cell, pooled over ``fields``.

    The noise SD is that of the plane minus its Gaussian-smoothed self (``sigma`` px), so slow changes
    of the light do not count as noise (white noise of SD s leaves about 0.97 s at sigma 3)."""
    out = {}
    for key in ("phase", "bf_low", "bf_high"):
        levels, noise = [], []
        for f in fields:
            plane = np.asarray(getattr(f, key), np.float32)
            outside = ~f.amodal.any(0)
            levels.append(plane[outside])
            noise.append((plane - ndi.gaussian_filter(plane, sigma))[outside])
        out[key] = (float(np.median(np.concatenate(levels))), float(np.concatenate(noise).std()))
    return out


def overlap_ratio(mask: np.ndarray, taken: np.ndarray) -> float:
    """``|mask and taken| / |mask|``, the thesis's overlap ratio p of a pasted cell (0 for an empty mask).

    >>> m = np.zeros((4, 4), bool); m[:2] = True
    >>> t = np.zeros((4, 4), bool); t[1:, :2] = True
    >>> overlap_ratio(m, t)
    0.25
    """
    area = int(mask.sum())
    return float((mask & taken).sum() / area) if area else 0.0


def _transform(cell: SourceCell, settings: PasteSettings, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """The cell's planes and masks after one random resize, rotation and elastic deformation."""
    from monai.transforms import Rand2DElasticd

    h, w = cell.mask.shape
    side = int(np.ceil(np.hypot(h, w) * settings.scale[1])) + 4
    pad = ((side - h) // 2, side - h - (side - h) // 2), ((side - w) // 2, side - w - (side - w) // 2)
    planes = np.stack([np.pad(cell.phase, pad, mode="edge"), np.pad(cell.bf_low, pad, mode="edge"),
                       np.pad(cell.bf_high, pad, mode="edge")])
    masks = np.stack([np.pad(cell.mask, pad), np.pad(cell.nucleus, pad)]).astype(np.float32)
    zoom = float(rng.uniform(*settings.scale))
    elastic = Rand2DElasticd(keys=["planes", "masks"], spacing=settings.elastic_spacing,
                             magnitude_range=settings.elastic_magnitude, prob=1.0,
                             rotate_range=np.pi if settings.rotate else None, scale_range=None,
                             mode=("bilinear", "nearest"), padding_mode="border")
    elastic.set_random_state(int(rng.integers(2 ** 31)))
    out = elastic({"planes": planes, "masks": masks})
    planes, masks = np.asarray(out["planes"]), np.asarray(out["masks"]) > 0.5
    if zoom != 1.0:  # resize after the warp (the warp's own scale_range would keep the canvas size)
        planes = ndi.zoom(planes, (1, zoom, zoom), order=1)
        masks = ndi.zoom(masks.astype(np.uint8), (1, zoom, zoom), order=0).astype(bool)
    return {"phase": planes[0], "bf_low": planes[1], "bf_high": planes[2], "mask": masks[0],
            "nucleus": masks[1] & masks[0]}


def paste_field(bank: Sequence[SourceCell], size: int, rng: np.random.Generator, settings: PasteSettings = PasteSettings(),
                background: dict[str, tuple[float, float]] | None = None, mode: str = "phase",
                name: str = "paste") -> Field:
    """One synthetic field of side ``size`` from ``bank`` (see the module docstring).

    ``mode="phase"``: the phase image is the pasted sum and ``bf_low``/``bf_high`` are None until a
    translator fills them (:func:`translate_exact` or :mod:`.pix2pix`); ``mode="brightfield"``: the
    brightfield planes are blended directly and ``phase`` is the pasted sum (for reference).
    ``background``: :func:`background_stats` of the sources (None: zero-valued, noise-free planes).
    """
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    if not bank:
        raise ValueError("bank is empty: build it with cell_bank(fields)")
    sigma = settings.edge_sigma if settings.edge_sigma is not None else 20.0 * size / 1024
    background = background or {k: (0.0, 0.0) for k in ("phase", "bf_low", "bf_high")}
    shape = (size, size)
    planes = {k: np.full(shape, background[k][0], np.float32) for k in ("phase", "bf_low", "bf_high")}
    for k in planes:
        planes[k] += background[k][1] * rng.standard_normal(shape).astype(np.float32)
    masks, nuclei = [], np.zeros(shape, np.int32)
    taken = np.zeros(shape, bool)
    for _ in range(int(rng.integers(settings.cells[0], settings.cells[1] + 1))):
        cell = _transform(bank[int(rng.integers(len(bank)))], settings, rng)
        h, w = cell["mask"].shape
        if not cell["mask"].any() or h > size or w > size:
            continue
        for _try in range(settings.tries):
            top, left = int(rng.integers(0, size - h + 1)), int(rng.integers(0, size - w + 1))
            box = slice(top, top + h), slice(left, left + w)
            if overlap_ratio(cell["mask"], taken[box]) <= settings.max_overlap:
                break
        else:
            continue
        fade = np.clip(ndi.gaussian_filter(cell["mask"].astype(np.float32), sigma), 0, 1) if sigma > 0 \
            else cell["mask"].astype(np.float32)
        planes["phase"][box] += fade * (cell["phase"] - background["phase"][0])
        if mode == "brightfield":
            for k in ("bf_low", "bf_high"):
                planes[k][box] = planes[k][box] * (1 - fade) + cell[k] * fade
        full = np.zeros(shape, bool)
        full[box] = cell["mask"]
        masks.append(full)
        nuclei[box][cell["nucleus"]] = len(masks)
        taken |= full
    amodal = np.array(masks, bool) if masks else np.zeros((0, *shape), bool)
    if mode == "phase":
        return Field(name, planes["phase"], None, None, None, amodal, nuclei)
    return Field(name, planes["phase"], planes["bf_low"], planes["bf_high"], None, amodal, nuclei)


def paste_fields(sources: Sequence[Field], n: int, size: int, seed: int, settings: PasteSettings = PasteSettings(),
                 mode: str = "phase") -> list[Field]:
    """``n`` synthetic fields (:func:`paste_field`) from the non-overlapping cells of annotated ``sources``."""
    bank = cell_bank(sources)
    background = background_stats(sources)
    rng = np.random.default_rng([seed, 7])
    return [paste_field(bank, size, rng, settings, background, mode, name=f"paste_{mode}_{i:04d}") for i in range(n)]


def translate_exact(fields: Sequence[Field], seed: int, optics: Optics = Optics()) -> list[Field]:
    """The brightfield planes of pasted phase fields rendered by the synthetic family's own optics
    (:func:`cellrepro.data.synthetic.brightfield.render`, the pasted phase taken as optical thickness):
    the translator that knows the optics. Not a perfect one on real fields: their phase image is
    already smoothed and noisy, so rendering from it blurs twice and passes the phase noise through
    the defocus Laplacian, and a classifier tells its planes from real ones
    (:func:`.fidelity.two_sample_test`: accuracy 0.82 on 8 fields of 64 px). ``optics`` sets how it
    renders; ``Optics(noise=0, light=0)`` gives the noise- and light-free planes a pixel loss
    converges to (a texture-only control for realism measures)."""
    out = []
    for i, f in enumerate(fields):
        scale = f.phase.shape[0] / 256
        _, low, high = render(np.clip(f.phase, 0, None), np.random.default_rng([seed, 8, i]), scale, optics)
        out.append(replace(f, bf_low=np.asarray(low, np.float32), bf_high=np.asarray(high, np.float32)))
    return out


def paste_agreement(direct: Sequence[Field], additive: Sequence[Field], seed: int) -> float:
    """How far pasting in brightfield departs from the additive optics *away from overlaps*, in units
    of how far a fresh render departs: the mean ``|direct - additive|`` over the single-cell pixels
    (by the amodal masks, pooled over the fields and both planes) divided by the mean
    ``|again - additive|`` there, ``again`` the same pasted phase rendered by :func:`translate_exact`
    with another noise and light draw (``seed + 1``). ``direct`` and ``additive`` are the same cells
    at the same places (:func:`paste_fields` in its two modes, the phase paste rendered by
    :func:`translate_exact`). About 1: the two pastes differ away from overlaps no more than two
    renders of one field, so a difference in what a model learns from them comes from the overlaps,
    where one adds and the other hides (claim C6); well above 1: they differ everywhere (seams,
    background, light), and a comparison of the two does not isolate the overlaps (a design referee)."""
    if len(direct) != len(additive):
        raise ValueError(f"{len(direct)} directly pasted fields for {len(additive)} additive ones")
    again = translate_exact(additive, seed + 1)
    num, den = [], []
    for d, a, g in zip(direct, additive, again):
        if a.amodal is None:
            raise ValueError(f"field {a.name!r} has no masks: the paste agreement needs annotated fields")
        single = a.amodal.sum(0) == 1
        for key in ("bf_low", "bf_high"):
            ref = np.asarray(getattr(a, key), np.float64)[single]
            num.append(np.abs(np.asarray(getattr(d, key), np.float64)[single] - ref))
            den.append(np.abs(np.asarray(getattr(g, key), np.float64)[single] - ref))
    den_mean = float(np.concatenate(den).mean()) if den else 0.0
    return float(np.concatenate(num).mean()) / den_mean if den_mean > 0 else float("nan")


__all__ = ["MODES", "PasteSettings", "SourceCell", "background_stats", "cell_bank", "overlap_ratio", "paste_agreement", "paste_field",
           "paste_fields", "translate_exact"]
