"""Overlap probability maps v0-v4 of the brightfield thesis (Sec. 4.3; Sec. 5.4, Fig. 5.2, Table 5.3).

The thesis guides its overlap head with a per-pixel map ``P`` of how likely a pixel is to lie where
cells overlap, built from the annotation (amodal whole-cell masks and nuclei) before training, and
fed to the focal loss (Eq. 4.5 or Eq. 5.1, :mod:`cellrepro.losses.focal`). Table 5.3 compares five
maps. The thesis defines only the last one (v4) with equations; v0-v3 are a sentence each in
Sec. 5.4 and a figure (5.2a-d) we do not have. Each function's docstring says what the thesis says
and what we chose. In short (``c_i`` the nucleus centre of cell ``i``, ``R_i`` the largest distance
from ``c_i`` to a pixel of cell ``i``, overlap = pixels covered by two or more cells):

======  =====================================================  ===========================================
map     thesis (Sec. 5.4 / Sec. 4.3)                           here, on the cells (background 0.1 always)
======  =====================================================  ===========================================
v0      distance from the nucleus centre, bounded to each      ``max`` over the covering cells of
        cell; nucleus and background "very low" (Fig. 5.2a)    ``|x - c_i| / R_i``; nuclei 0.1
v1      v0 without the boundary limit: distances from all      ``min(1, min_i |x - c_i| / R_i)`` over all
        nucleus centres, merged by the maximum (Fig. 5.2b)     cells; nuclei 0.1
v2      probabilities extended near the annotated overlaps     1 on the overlap, falling linearly with the
        (weak overlap labels; Fig. 5.2c)                       distance to it, to 0 at ``scale``
v3      v1 merged with v2 (Fig. 5.2d)                          element-wise ``max(v1, v2)``
v4      border-based distance maps of every cell, max-         ``1 - log(1 + d2) / log(1 + scale)``, d2 the
        reduced, log-scaled, background 0.1 (Eq. 4.3-4.4,      distance to the nearest *other* cell (0 on
        Fig. 5.2e)                                             the overlap, so the overlap is 1); or, read
                                                               inwards (``reading="interior"``), the
                                                               distance from the nearest own border
======  =====================================================  ===========================================

``scale`` (v2, v3, v4) is a distance in pixels; None takes the largest such distance over the
field's cells, so the field's most remote cell pixel gets 0.

A consequence the thesis does not discuss: Eq. 4.5 replaces the label ``y`` by ``y (1 - P)``, so
the map acts only on positive (overlap) pixels; v2, v3 and v4 are 1 there, which turns every
positive into a negative. See :mod:`cellrepro.losses.focal`.

Inputs are a field's truth (:class:`cellrepro.data.types.Field`): ``masks`` an (N, H, W) stack of
whole-cell masks that may overlap, and ``nuclei`` either (H, W) integer labels with label ``k``
the nucleus of ``masks[k - 1]`` (the synthetic family's convention) or an (N, H, W) stack; or,
instead of nuclei, ``centres`` (N, 2) as (row, col). Empty masks are ignored.

>>> import numpy as np
>>> yy, xx = np.mgrid[:9, :15]
>>> cells = np.stack([np.hypot(yy - 4, xx - 5) <= 4, np.hypot(yy - 4, xx - 9) <= 4])
>>> p = overlap_map("v4", cells)
>>> float(p[4, 7]), round(float(p[0, 0]), 6)   # inside the lens of the two discs; background
(1.0, 0.1)
>>> v0, v1 = overlap_map("v0", cells, centres=[(4, 5), (4, 9)]), overlap_map("v1", cells, centres=[(4, 5), (4, 9)])
>>> bool((v1 <= v0).all())   # lifting v0's boundary limit lets other nuclei lower the map, never raise it
True
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from scipy import ndimage as ndi

if TYPE_CHECKING:
    from cellrepro.data.types import Field

VERSIONS = ("v0", "v1", "v2", "v3", "v4")
BACKGROUND = 0.1
"""The value every map takes outside the cells (Sec. 4.3: "set to 0.1")."""


V4_READINGS = ("other-cells", "interior")
"""Two readings of Eq. 4.3-4.4 (v4): the distance to the *other* cells (the default, the one the
published runs used; the overlap is 1) and each cell's *interior* distance from its own border
(Sec. 4.3's "distance transform from its border" read inwards; the overlap is high near the
cells' borders but below 1 inside a wide overlap). See :func:`overlap_map_v4`."""


def overlap_map(version: str | int, masks: np.ndarray, nuclei: np.ndarray | None = None, *,
                centres: np.ndarray | None = None, background: float = BACKGROUND,
                scale: float | None = None, reading: str = "other-cells") -> np.ndarray:
    """The overlap probability map ``version`` ("v0"-"v4", or 0-4) of one field; see the module table.

    Args:
        masks: (N, H, W) whole-cell masks (bool or 0/1), possibly overlapping.
        nuclei: (H, W) int labels (label k belongs to ``masks[k - 1]``) or (N, H, W) masks; v0, v1, v3.
        centres: (N, 2) nucleus centres (row, col), instead of or overriding the nuclei's centroids.
        background: the value outside the cells (and on nuclei in v0, v1).
        scale: distance in pixels at which v2 and v4 reach 0; None = the field's largest. v2, v3, v4.
        reading: v4's reading of Eq. 4.3-4.4, one of :data:`V4_READINGS`.

    Returns:
        (H, W) float32 in [0, 1]. Arguments a version does not use are ignored.
    """
    name = _version(version)
    if name == "v0":
        return overlap_map_v0(masks, nuclei, centres=centres, background=background)
    if name == "v1":
        return overlap_map_v1(masks, nuclei, centres=centres, background=background)
    if name == "v2":
        return overlap_map_v2(masks, background=background, scale=scale)
    if name == "v3":
        return overlap_map_v3(masks, nuclei, centres=centres, background=background, scale=scale)
    return overlap_map_v4(masks, background=background, scale=scale, reading=reading)


def field_overlap_map(field: Field, version: str | int, **kwargs) -> np.ndarray:
    """:func:`overlap_map` of an annotated :class:`~cellrepro.data.types.Field` (its amodal masks and nuclei)."""
    if field.amodal is None:
        raise ValueError(f"field {field.name!r} has no amodal masks (an unannotated pool item?)")
    return overlap_map(version, field.amodal, field.nuclei, **kwargs)


def overlap_map_v0(masks: np.ndarray, nuclei: np.ndarray | None = None, *, centres: np.ndarray | None = None,
                   background: float = BACKGROUND) -> np.ndarray:
    """v0 (Sec. 5.4, Fig. 5.2a): distance from each cell's nucleus centre, bounded to the cell.

    Thesis: "we computed the distances from the nuclei center ... the distance map within the bounded
    space of one cell to indicate the low probability of other cells overlapping the area of the
    nucleus ... set the probability value to be very low for the corresponding [nucleus] pixels and
    the background area". Chosen: inside cell ``i`` the value is ``|x - c_i| / R_i`` (0 at the
    centre, 1 at the cell's farthest pixel); a pixel covered by several cells takes the maximum
    (the merge the thesis uses everywhere else); nucleus pixels and the background get
    ``background`` ("very low" is not given a number; we use the one Sec. 4.3 gives the background).
    Without ``nuclei`` (only ``centres``) no nucleus pixels are lowered. A cell without a nucleus
    uses its own centroid.
    """
    m = _masks(masks)
    low = _background(background)
    c, nucleus = _centres(m, nuclei, centres, "v0")
    out = np.zeros(m.shape[1:])
    for mask, centre in zip(m, c):
        if mask.any():
            rel = _relative_radius(mask, centre)
            out[mask] = np.maximum(out[mask], rel[mask])
    return _finish(out, m.any(0), low, nucleus)


def overlap_map_v1(masks: np.ndarray, nuclei: np.ndarray | None = None, *, centres: np.ndarray | None = None,
                   background: float = BACKGROUND) -> np.ndarray:
    """v1 (Sec. 5.4, Fig. 5.2b): v0 with the cell boundary limit removed.

    Thesis: "we removed the boundary limit and extended the influence of cells to one another. The
    computed distance maps to every sample point from all nucleus centers were merged using the
    overall maximum probability value". Chosen: every nucleus centre acts on every pixel of every
    cell with the proximity ``1 - min(1, |x - c_i| / R_i)`` (v0's per-cell scale, now unbounded);
    these are merged by their maximum and the map is its complement, ``min(1, min_i |x - c_i| / R_i)``:
    low near any nucleus, high far from all. (Merging the *distances* by their maximum would give
    each pixel its distance to the farthest nucleus, which says nothing about overlaps.) Nuclei
    and background as in v0. Hence ``v1 <= v0`` on every cell pixel.
    """
    m = _masks(masks)
    low = _background(background)
    c, nucleus = _centres(m, nuclei, centres, "v1")
    nearest = np.full(m.shape[1:], np.inf)
    for mask, centre in zip(m, c):
        if mask.any():
            nearest = np.minimum(nearest, _relative_radius(mask, centre))
    return _finish(np.minimum(nearest, 1.0), m.any(0), low, nucleus)


def overlap_map_v2(masks: np.ndarray, *, background: float = BACKGROUND, scale: float | None = None) -> np.ndarray:
    """v2 (Sec. 5.4, Fig. 5.2c): the annotated overlaps, extended to the pixels near them.

    Thesis: "extending probabilities near the annotated overlap regions to introduce relaxation
    constraints over the loss function, considering weak overlap annotations". Chosen: 1 on the
    overlap (pixels covered by two or more cells), then ``1 - d / scale`` on the other cell pixels,
    ``d`` their Euclidean distance to the nearest overlap pixel (scipy's exact EDT), clipped at 0;
    ``scale`` None = the largest ``d`` over the cells. A field without overlaps is 0 on its cells.
    """
    m = _masks(masks)
    low = _background(background)
    scale = _scale(scale)
    fg, overlap = m.any(0), m.sum(0) >= 2
    if not overlap.any():
        return _finish(np.zeros(m.shape[1:]), fg, low)
    d = ndi.distance_transform_edt(~overlap)
    return _finish(_linear(d, _extent(d, fg, scale)), fg, low)


def overlap_map_v3(masks: np.ndarray, nuclei: np.ndarray | None = None, *, centres: np.ndarray | None = None,
                   background: float = BACKGROUND, scale: float | None = None) -> np.ndarray:
    """v3 (Sec. 5.4, Fig. 5.2d): the nuclei-based map merged with the overlap-aware one.

    Thesis: "we merge the nuclei-based with the overlap-aware distance map approaches". Chosen: the
    nuclei-based map is v1 (the later one), the merge is the element-wise maximum (the thesis's merge
    throughout), so the overlap is 1 and a nucleus next to an overlap takes v2's value.
    """
    v1 = overlap_map_v1(masks, nuclei, centres=centres, background=background)
    return np.maximum(v1, overlap_map_v2(masks, background=background, scale=scale))


def overlap_map_v4(masks: np.ndarray, *, background: float = BACKGROUND, scale: float | None = None,
                   reading: str = "other-cells") -> np.ndarray:
    """v4 (Sec. 4.3, Eq. 4.3-4.4, Fig. 4.6, Fig. 5.2e): border-based, max-reduced, log-scaled.

    Thesis: for every cell mask ``m_i`` "we compute the distance transform from its border", a field
    ``d_i`` that "accounts for the contribution of m_i th cell to every other pixel"; the fields are
    combined by an element-wise max (Eq. 4.4, ``P = max_i d_i``); log scaling then gives "a more steep
    descent toward local centers" so that P is "much higher in regions where cells are closer"; the
    background is 0.1; Sec. 5.4 adds "considering cell borders over cell centers and including
    overlap awareness".

    Chosen: ``d_i`` is the Euclidean distance from a pixel to cell ``i`` (scipy's EDT of the
    complement of ``m_i``: 0 on the cell, growing from its border outwards), and each cell's
    contribution is the proximity ``1 - log(1 + d_i) / log(1 + scale)``, clipped at 0. Eq. 4.4's max
    is taken over the cells *other than the pixel's own*: with its own cell included every cell pixel
    would be 1. The max of a decreasing function is that function of the smallest distance, so the
    map is ``1 - log(1 + d2) / log(1 + scale)`` with ``d2`` the second-smallest ``d_i``: the distance
    to the nearest other cell on a pixel of one cell, and 0 on a pixel of two or more cells, so the
    annotated overlap is 1 (the "overlap awareness"). Compared with the linear ``1 - d2 / scale`` the
    log form is never higher and falls fastest next to the other cell, so high values stay where
    cells meet. ``scale`` None = the largest finite ``d2`` over the cells; a lone cell is 0.
    Distances are in pixels, so the log's curvature depends on the resolution.

    ``reading="interior"`` reads "the distance transform from its border" inwards, as Sec. 4.3's
    figure of one cell's field suggests just as well: ``d_i`` is a pixel's distance from the border
    of its own cell ``i`` (0 on the border pixels, growing towards the cell's centre; scipy's EDT of
    ``m_i`` minus 1), the contribution ``1 - log(1 + d_i) / log(1 + scale)`` falls steeply from
    the border towards the centre, and Eq. 4.4's max runs over the cells covering the pixel, so
    the map is that of the nearest border among them. Pixels where cells meet or overlap lie near
    borders and are high, but inside a wide overlap the map is below 1: under Eq. 4.5's ``y (1 -
    P)`` such positives keep part of their label instead of all becoming negatives (issue 31's
    second reading). ``scale`` None = the largest ``d_i`` over the cells (the deepest interior
    pixel gets 0).
    """
    if reading not in V4_READINGS:
        raise ValueError(f"reading: expected one of {', '.join(V4_READINGS)}, got {reading!r}")
    m = _masks(masks)
    low = _background(background)
    scale = _scale(scale)
    if reading == "interior":
        depth = np.full(m.shape[1:], np.inf)  # per pixel, the smallest distance to a covering cell's border
        for mask in m:
            if mask.any():
                depth = np.where(mask, np.minimum(depth, ndi.distance_transform_edt(mask) - 1), depth)
        fg = m.any(0)
        return _finish(_logarithmic(np.where(fg, depth, np.inf), _extent(depth, fg, scale)), fg, low)
    first = np.full(m.shape[1:], np.inf)
    second = first.copy()
    for mask in m:
        if mask.any():
            d = ndi.distance_transform_edt(~mask)
            second = np.minimum(second, np.maximum(first, d))
            first = np.minimum(first, d)
    fg = m.any(0)
    return _finish(_logarithmic(second, _extent(second, fg, scale)), fg, low)


# ----------------------------------------------------------------------------------------------------

def _version(version) -> str:
    if isinstance(version, (int, np.integer)) and not isinstance(version, bool) and 0 <= version < len(VERSIONS):
        return VERSIONS[int(version)]
    if isinstance(version, str) and version.lower() in VERSIONS:
        return version.lower()
    raise ValueError(f"version: expected one of {', '.join(VERSIONS)} (or 0-4), got {version!r}")


def _masks(masks) -> np.ndarray:
    arr = np.asarray(masks)
    if arr.ndim != 3 or 0 in arr.shape[1:]:
        raise ValueError(f"masks: expected an (N, H, W) stack of per-cell masks, got shape {arr.shape}")
    if arr.dtype != bool:
        if not np.isin(arr, (0, 1)).all():
            raise ValueError("masks: expected bool or 0/1 values")
        arr = arr.astype(bool)
    return arr


def _background(background) -> float:
    if not (np.isscalar(background) and np.isfinite(background) and 0 <= background <= 1):
        raise ValueError(f"background: expected a number in [0, 1], got {background!r}")
    return float(background)


def _scale(scale) -> float | None:
    if scale is not None and not (np.isscalar(scale) and np.isfinite(scale) and scale > 0):
        raise ValueError(f"scale: expected None or a positive distance in pixels, got {scale!r}")
    return None if scale is None else float(scale)


def _centres(m: np.ndarray, nuclei, centres, version: str) -> tuple[np.ndarray, np.ndarray]:
    """(N, 2) centres and the (H, W) nucleus pixels; a cell without a nucleus uses its centroid."""
    n, h, w = m.shape
    if nuclei is None and centres is None:
        raise ValueError(f"nuclei, centres: {version} needs the nuclei (labels or masks) or their centres")
    nucleus = np.zeros((h, w), bool)
    found = np.full((n, 2), np.nan)
    if nuclei is not None:
        nuc = np.asarray(nuclei)
        if nuc.shape == (h, w):
            if not np.issubdtype(nuc.dtype, np.integer) or (nuc.size and (nuc.min() < 0 or nuc.max() > n)):
                raise ValueError(f"nuclei: expected integer labels 0..{n} (label k is the nucleus of masks[k - 1])")
            present = [k for k in np.unique(nuc) if k > 0]
            for k, com in zip(present, ndi.center_of_mass(nuc > 0, nuc, present)):
                found[k - 1] = com
            nucleus = nuc > 0
        elif nuc.shape == (n, h, w):
            if nuc.dtype != bool and not np.isin(nuc, (0, 1)).all():
                raise ValueError("nuclei: expected bool or 0/1 values in the (N, H, W) stack")
            nuc = nuc.astype(bool)
            for i, s in enumerate(nuc):
                if s.any():
                    found[i] = ndi.center_of_mass(s)
            nucleus = nuc.any(0)
        else:
            raise ValueError(f"nuclei: expected ({h}, {w}) labels or an ({n}, {h}, {w}) stack, got shape {nuc.shape}")
    if centres is not None:
        given = np.asarray(centres, dtype=float)
        if given.shape != (n, 2) or not np.isfinite(given).all():
            raise ValueError(f"centres: expected ({n}, 2) finite (row, col) pairs, one per cell, got {given.shape}")
        found = given
    for i in np.flatnonzero(np.isnan(found).any(1)):
        if m[i].any():
            found[i] = ndi.center_of_mass(m[i])
    return found, nucleus


def _relative_radius(mask: np.ndarray, centre) -> np.ndarray:
    """``|x - c| / R`` over the whole image, R the largest distance from ``c`` to a pixel of ``mask``."""
    h, w = mask.shape
    r = np.hypot(np.arange(h)[:, None] - centre[0], np.arange(w)[None, :] - centre[1])
    extent = r[mask].max()
    if extent == 0:
        return np.where(r > 0, np.inf, 0.0)
    return r / extent


def _extent(d: np.ndarray, fg: np.ndarray, scale: float | None) -> float:
    if scale is not None:
        return scale
    finite = d[fg & np.isfinite(d)]
    return float(finite.max()) if finite.size else 0.0


def _linear(d: np.ndarray, s: float) -> np.ndarray:
    if s <= 0:
        return (d <= 0).astype(float)
    return np.clip(1 - d / s, 0, 1)


def _logarithmic(d: np.ndarray, s: float) -> np.ndarray:
    if s <= 0:
        return (d <= 0).astype(float)
    return np.clip(1 - np.log1p(d) / np.log1p(s), 0, 1)


def _finish(values: np.ndarray, fg: np.ndarray, background: float, low: np.ndarray | None = None) -> np.ndarray:
    out = np.clip(values, 0, 1)
    out[~fg] = background
    if low is not None:
        out[low] = background
    return out.astype(np.float32)
