"""CDNet targets and post-processing: label image <-> (3-class mask, direction classes, point map).

He et al., "CDNet: Centripetal Direction Network for Nuclear Instance Segmentation", ICCV 2021,
which the multimodal paper (Wang et al., NeurIPS 2022 CellSeg) uses for its fluorescence branch
(Sec. 2.5, Fig. 3; trained by Eq. 2-5, see :mod:`cellrepro.semi.cps`).

Targets (:func:`cdnet_targets`):

* ``mask``: 0 background, 1 interior, 2 boundary, where the boundary is every instance pixel with a
  4-neighbour of another label, background or a touching instance (``find_boundaries(mode="inner")``):
  touching instances are parted by two boundary pixels and the mask never leaves the instances
  (Fig. 3b of the multimodal paper: background, boundaries, interiors).
* ``direction``: 0 background; ``k = 1..8`` when the centre of the pixel's instance lies at angle
  ``(k - 1) * 45`` degrees, counter-clockwise from +x with up the screen at 90 degrees (1 right,
  3 up, 5 left, 7 down). The straight line from pixel to centre, quantised to the nearest of 8
  angles (CDNet takes the gradient of the Euclidean distance to the centre: the same line). The
  centre pixel itself is class 1 (``atan2(0, 0) = 0``).
* ``point``: ``exp(-d^2 / (2 sigma^2))`` of the distance ``d`` to the nearest centre, sigma = 2 as
  CDNet. A Gaussian, not a disc: a smooth regression target for the MSE with one maximum per
  cell for :func:`skimage.feature.peak_local_max` (a disc is a plateau). Peak 1 (CDNet scales by
  255 / (2 pi sigma^2)) so that neither the loss weight nor the decoding threshold depend on sigma.

Centres are :func:`cellrepro.instances.flows.instance_centres` (the instance pixel closest to the
median; always inside the instance), shared with the Cellpose flows.

:func:`direction_difference` is CDNet's direction difference map as the authors' code computes it
(honglianghe/CDNet, ``data_prepare/getDirectionDiffMap.py``): the smallest cosine between a pixel's
direction and its 8 neighbours', rounded to -1, 0 or 1 (one class apart, 45 degrees, counts as
agreement), background and outside the image being zero vectors. We return ``(1 - min) / 2`` in
{0, 0.5, 1} (the authors rescale each image by its own range). It is high on both sides of the edge
shared by touching instances (directions opposite), along the edge against the background, and
around each centre (directions converge), which decoding therefore ignores.

:func:`cdnet_decode` is CDNet's post-processing with two changes, both stated where they are made:
seeds may be split at point-map peaks, and seeds grow along the predicted directions (then a marker
watershed) instead of by a fixed disk dilation.
"""

from __future__ import annotations

from typing import Mapping

import numpy as np
import torch
from scipy import ndimage as ndi
from skimage.feature import peak_local_max
from skimage.segmentation import find_boundaries, watershed

from cellrepro.metrics.instance import relabel

from .flows import OFFSETS, _check_masks, fill_holes_and_remove_small, instance_centres

#: Direction classes: 8 centripetal directions plus background (class 0).
DIRECTION_CLASSES = 9
#: Mask classes: background, interior, boundary.
MASK_CLASSES = 3
#: Unit vector (dy, dx) in array axes (row down, column right) of each direction class; class 0 is zero.
DIRECTION_VECTORS = np.vstack([np.zeros((1, 2)), np.stack(
    [-np.sin(np.arange(8) * np.pi / 4), np.cos(np.arange(8) * np.pi / 4)], 1)]).round(12)
_STEPS = np.rint(DIRECTION_VECTORS).astype(np.int64)  # the 8-neighbour offset each class points at
# rounded cosine between classes i and j (0 when either is background), as CDNet's DDM rounds it
_COS = np.zeros((DIRECTION_CLASSES, DIRECTION_CLASSES))
_COS[1:, 1:] = np.round(DIRECTION_VECTORS[1:] @ DIRECTION_VECTORS[1:].T)


def direction_classes(labels: np.ndarray) -> np.ndarray:
    """Centripetal direction class (0 background, 1..8) of every pixel of an (H, W) label image.

    >>> m = np.zeros((5, 5), int); m[:, :] = 1  # one 5 x 5 instance, centre (2, 2)
    >>> d = direction_classes(m)
    >>> int(d[2, 0]), int(d[0, 2]), int(d[2, 4]), int(d[4, 2]), int(d[4, 4])  # right, down, left, up, up-left
    (1, 7, 5, 3, 4)
    """
    labels = _check_masks(labels)
    ids, centres = instance_centres(labels)
    out = np.zeros(labels.shape, np.int64)
    if len(ids) == 0:
        return out
    cy = np.zeros(int(ids[-1]) + 1)
    cx = np.zeros(int(ids[-1]) + 1)
    cy[ids], cx[ids] = centres[:, 0], centres[:, 1]
    ys, xs = np.nonzero(labels)
    lab = labels[ys, xs]
    angle = np.arctan2(ys - cy[lab], cx[lab] - xs)  # up the screen is +y: rows grow downwards
    out[ys, xs] = np.round(angle / (np.pi / 4)).astype(np.int64) % 8 + 1
    return out


def three_class_mask(labels: np.ndarray) -> np.ndarray:
    """(H, W) uint8: 0 background, 1 interior, 2 boundary (instance pixels with a 4-neighbour of another label).

    >>> m = np.zeros((5, 8), int); m[1:4, 1:4] = 1; m[1:4, 4:7] = 2  # two touching 3 x 3 squares
    >>> three_class_mask(m)[2].tolist()  # the shared edge is boundary on both sides
    [0, 2, 1, 2, 2, 1, 2, 0]

    The image's own border is not a boundary: a cell cut by the frame goes on beyond it.
    """
    labels = _check_masks(labels)
    out = (labels > 0).astype(np.uint8)
    out[find_boundaries(labels, connectivity=1, mode="inner") & (labels > 0)] = 2
    return out


def three_class_decode(probs, min_seed: int = 3, min_size: int = 10) -> np.ndarray:
    """Instances from (3, H, W) background / interior / boundary probabilities.

    Seeds are the 8-connected components of the interior class (at least ``min_seed`` pixels), grown
    over the foreground (interior or boundary) by a marker watershed on ``-p(interior)``; foreground
    no seed reaches is an instance of its own (as :func:`cdnet_decode` does), holes filled, instances
    under ``min_size`` pixels dropped. The decoding of the multimodal chapter's VGG U-Net and of the
    MMCS chapter's semantic baselines (neither paper gives one).

    Example (two touching squares from their perfect 3-class mask come back as two instances):

    >>> from cellrepro.instances.cdnet import three_class_mask
    >>> m = np.zeros((12, 22), int); m[1:11, 1:11] = 4; m[1:11, 11:21] = 9
    >>> out = three_class_decode(np.eye(3)[three_class_mask(m)].transpose(2, 0, 1))
    >>> int(out.max()), bool((out[m == 4] == out[5, 5]).all()), bool((out[m == 9] == out[5, 15]).all())
    (2, True, True)
    """
    p = probs.detach().cpu().numpy() if isinstance(probs, torch.Tensor) else np.asarray(probs, float)
    if p.ndim != 3 or p.shape[0] != 3:
        raise ValueError(f"probs must have shape (3, H, W) (background, interior, boundary), got {p.shape}")
    classes = p.argmax(0)
    seeds = interior_seeds(classes, min_seed)
    foreground = classes > 0
    out = watershed(-p[1], seeds, mask=foreground, connectivity=2)
    rest = foreground & (out == 0)
    if rest.any():
        extra, _ = ndi.label(rest, structure=np.ones((3, 3), bool))
        out[rest] = extra[rest] + out.max()
    return fill_holes_and_remove_small(relabel(out), min_size).astype(np.int32)


def point_map(labels: np.ndarray, sigma: float = 2.0) -> np.ndarray:
    """(H, W) float32 Gaussian of the distance to the nearest instance centre, 1 at each centre."""
    labels = _check_masks(labels)
    if not sigma > 0:
        raise ValueError(f"sigma must be > 0 (the Gaussian's width in pixels), got {sigma}")
    _, centres = instance_centres(labels)
    if len(centres) == 0:
        return np.zeros(labels.shape, np.float32)
    seeds = np.ones(labels.shape, bool)
    seeds[centres[:, 0], centres[:, 1]] = False
    d = ndi.distance_transform_edt(seeds)
    return np.exp(-(d ** 2) / (2.0 * sigma ** 2)).astype(np.float32)


def cdnet_targets(labels: np.ndarray, sigma: float = 2.0) -> dict[str, np.ndarray]:
    """The three CDNet targets of an (H, W) label image (any label values, touching allowed).

    Returns:
        ``{"mask": (H, W) int64 in {0, 1, 2}, "direction": (H, W) int64 in 0..8,
        "point": (H, W) float32 in [0, 1]}``.
    """
    labels = _check_masks(labels)
    return {"mask": three_class_mask(labels).astype(np.int64), "direction": direction_classes(labels),
            "point": point_map(labels, sigma)}


def stack_targets(labels, sigma: float = 2.0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Targets of N label images as tensors: mask (N, H, W) int64, direction (N, H, W) int64, point
    (N, 1, H, W) float32, in the order :class:`cellrepro.semi.cps.SemiBatches` batches expect."""
    maps = [cdnet_targets(m, sigma) for m in labels]
    if not maps:
        raise ValueError("labels must hold at least one (H, W) label image")
    return (torch.from_numpy(np.stack([t["mask"] for t in maps])),
            torch.from_numpy(np.stack([t["direction"] for t in maps])),
            torch.from_numpy(np.stack([t["point"] for t in maps]))[:, None])


def direction_difference(direction: np.ndarray) -> np.ndarray:
    """CDNet's direction difference map of an (H, W) direction-class map: (H, W) float32 in {0, 0.5, 1}.

    ``(1 - min_q round(cos(p, q))) / 2`` over the 8 neighbours ``q`` of each pixel ``p``; 0 on background.

    >>> d = np.array([[1, 1, 5, 5]])  # two instances pointing away from each other: opposite at the edge
    >>> direction_difference(d).tolist()  # beyond the image counts as background (cos 0)
    [[0.5, 1.0, 1.0, 0.5]]
    """
    direction = np.asarray(direction)
    if direction.ndim != 2 or not np.issubdtype(direction.dtype, np.integer):
        raise ValueError(f"direction must be an (H, W) integer map of classes 0..8, got shape "
                         f"{direction.shape} and dtype {direction.dtype}")
    if direction.size and (direction.min() < 0 or direction.max() >= DIRECTION_CLASSES):
        raise ValueError(f"direction classes must lie in 0..{DIRECTION_CLASSES - 1}, got "
                         f"{direction.min()}..{direction.max()}")
    h, w = direction.shape
    padded = np.pad(direction, 1)
    low = np.ones((h, w))
    for dy, dx in OFFSETS:
        low = np.minimum(low, _COS[direction, padded[1 + dy:1 + dy + h, 1 + dx:1 + dx + w]])
    out = (1.0 - low) / 2.0
    out[direction == 0] = 0.0
    return out.astype(np.float32)


def _array(x, name: str, shape: str) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        x = x.detach().to("cpu", torch.float32 if x.is_floating_point() else x.dtype).numpy()
    x = np.asarray(x)
    if not (np.issubdtype(x.dtype, np.number) or x.dtype == bool):
        raise ValueError(f"{name} must be a numeric array {shape}, got dtype {x.dtype}")
    return x


def _inputs(mask_probs, direction, point) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    probs = _array(mask_probs, "mask_probs", "(3, H, W)").astype(np.float64)
    if probs.ndim != 3 or probs.shape[0] != MASK_CLASSES:
        raise ValueError(f"mask_probs must have shape (3, H, W) (background, interior, boundary), got {probs.shape}")
    if probs.size and (probs.min() < -1e-3 or probs.max() > 1 + 1e-3):
        raise ValueError("mask_probs must be probabilities in [0, 1] (the softmax of the mask logits), "
                         f"got values in [{probs.min():.3g}, {probs.max():.3g}]")
    shape = probs.shape[1:]
    d = _array(direction, "direction", "(9, H, W) or (H, W)")
    if d.ndim == 3 and d.shape[0] == DIRECTION_CLASSES:
        d = d.argmax(0)
    elif not (d.ndim == 2 and np.issubdtype(d.dtype, np.integer)):
        raise ValueError(f"direction must be (9, H, W) logits or probabilities, or an (H, W) integer "
                         f"class map, got shape {d.shape} and dtype {d.dtype}")
    p = _array(point, "point", "(H, W) or (1, H, W)").astype(np.float64)
    p = p[0] if p.ndim == 3 and p.shape[0] == 1 else p
    if d.shape != shape or p.shape != shape:
        raise ValueError(f"direction and point must cover the mask's {shape} pixels, got {d.shape} and {p.shape}")
    return probs, d.astype(np.int64), p


def refine_mask(mask_probs, direction, point, point_threshold: float = 0.2) -> np.ndarray:
    """CDNet's mask refinement: (H, W) classes 0/1/2 after the direction difference boosts boundaries.

    Outside the centre regions (``point >= point_threshold``, dilated by one pixel) ``e = 2 DD``
    raises the boundary probability to ``(p_b + e / 2)(1 + e)`` (the authors' code), then each
    pixel takes the most probable class (boundary on a tie). Any DD > 0 there makes the pixel boundary.

    Args:
        mask_probs: (3, H, W) probabilities; direction: (9, H, W) logits or (H, W) classes;
        point: (H, W) or (1, H, W) point map; point_threshold: in the point map's units (targets peak at 1).
    """
    probs, d, p = _inputs(mask_probs, direction, point)
    centre = ndi.binary_dilation(p >= point_threshold)
    boost = 2.0 * direction_difference(d) * ~centre
    probs = probs.copy()
    probs[2] = (probs[2] + 0.5 * boost) * (1.0 + boost)
    return 2 - probs[::-1].argmax(0)  # a tie goes to the later class (one-hot inputs tie at DD = 0.5)


def interior_seeds(classes: np.ndarray, min_seed: int = 3) -> np.ndarray:
    """Seeds of a 3-class map (0 background, 1 interior, 2 boundary): its 8-connected interior
    components, those smaller than ``min_seed`` pixels dropped (label image, 0 elsewhere)."""
    seeds, n = ndi.label(classes == 1, structure=np.ones((3, 3), bool))
    if n:
        small = np.bincount(seeds.ravel(), minlength=n + 1) < min_seed
        small[0] = False
        seeds[small[seeds]] = 0
    return seeds


def cdnet_decode(mask_probs, direction, point, *, point_threshold: float = 0.2, point_seeds: bool = True,
                 min_distance: int = 3, min_seed: int = 3, min_size: int = 10) -> np.ndarray:
    """Instances from CDNet outputs of one image: refine, seed, grow.

    1. :func:`refine_mask`. 2. Seeds: 8-connected components of the interior class with at least
    ``min_seed`` pixels (CDNet labels the interiors; two instances' interiors never touch, even
    diagonally). With ``point_seeds`` a component holding two or more point-map peaks
    (``peak_local_max``, ``min_distance`` apart, ``>= point_threshold``) is split between its peaks
    by a watershed of ``-point``: the point branch separates cells whose boundary was missed. This
    is our addition; ``point_seeds=False`` keeps CDNet's seeds. 3. Growth over the foreground
    (interior and boundary), in place of CDNet's fixed disk dilation, so that instances end where
    the predicted foreground does: each pixel steps along its direction class, one 8-neighbour at a
    time, and joins the seed it reaches (the centripetal idea itself; a distance-based growth mixes
    up the pixels of slanted shared edges); pixels whose walk ends elsewhere (background, a loop)
    are flooded from their neighbours by a marker watershed on the distance to the grown seeds;
    foreground no seed reaches is an instance of its own. Holes are filled and instances under
    ``min_size`` pixels dropped. Instances too thin for an interior (under ~3 pixels) have no seed
    and are absorbed by their neighbours, as in CDNet.

    Args:
        mask_probs: (3, H, W) probabilities of background, interior, boundary.
        direction: (9, H, W) direction logits or probabilities, or an (H, W) class map.
        point: (H, W) or (1, H, W) point map (NumPy or torch).

    Returns:
        (H, W) int32 labels 0..N.

    Example (two touching squares from perfect predictions come back as two instances):

    >>> m = np.zeros((12, 22), int); m[1:11, 1:11] = 4; m[1:11, 11:21] = 9
    >>> t = cdnet_targets(m)
    >>> out = cdnet_decode(np.eye(3)[t["mask"]].transpose(2, 0, 1), t["direction"], t["point"])
    >>> int(out.max()), bool((out[m == 4] == out[5, 5]).all()), bool((out[m == 9] == out[5, 15]).all())
    (2, True, True)
    """
    if not point_threshold > 0:
        raise ValueError(f"point_threshold must be > 0 (a point-map value; targets peak at 1), got {point_threshold}")
    if min_distance < 1 or min_seed < 1 or min_size < 0:
        raise ValueError(f"min_distance and min_seed must be >= 1 and min_size >= 0, got "
                         f"{min_distance}, {min_seed}, {min_size}")
    probs, d, p = _inputs(mask_probs, direction, point)
    classes = refine_mask(probs, d, p, point_threshold)
    seeds = interior_seeds(classes, min_seed)
    if point_seeds and seeds.any():
        seeds = _split_at_peaks(seeds, p, point_threshold, min_distance)
    foreground = classes > 0
    out = _follow_directions(seeds, d, foreground)
    out = watershed(ndi.distance_transform_edt(out == 0), out, mask=foreground, connectivity=2)
    rest = foreground & (out == 0)
    if rest.any():
        extra, _ = ndi.label(rest, structure=np.ones((3, 3), bool))
        out[rest] = extra[rest] + out.max()
    return fill_holes_and_remove_small(relabel(out), min_size).astype(np.int32)


def _follow_directions(seeds: np.ndarray, direction: np.ndarray, foreground: np.ndarray) -> np.ndarray:
    """The seed each foreground pixel reaches by stepping to the 8-neighbour its direction class
    points at, until a seed (0 where the walk stops elsewhere: background, a loop, class 0)."""
    h, w = seeds.shape
    yy, xx = np.indices((h, w))
    ty = np.clip(yy + _STEPS[direction, 0], 0, h - 1)
    tx = np.clip(xx + _STEPS[direction, 1], 0, w - 1)
    here = yy * w + xx
    stay = (seeds > 0) | ~foreground | ~foreground[ty, tx] | (direction == 0)
    nxt = np.where(stay, here, ty * w + tx).ravel()
    for _ in range(int(np.ceil(np.log2(h + w))) + 1):  # pointer jumping: 2^k steps after k rounds
        nxt = nxt[nxt]
    return seeds.ravel()[nxt].reshape(h, w) * foreground


def _split_at_peaks(seeds: np.ndarray, point: np.ndarray, threshold: float, min_distance: int) -> np.ndarray:
    """Seeds with each component that holds >= 2 point-map peaks divided among its peaks."""
    # peaks of the whole map, then those inside seeds: a neighbour's centre must not leave a maximum
    # at the edge of this seed
    coords = peak_local_max(point, min_distance=min_distance, threshold_abs=threshold, exclude_border=False)
    peaks = np.zeros(seeds.shape, bool)
    peaks[tuple(coords.T)] = True
    peaks &= seeds > 0
    if np.count_nonzero(peaks) < 2:
        return seeds
    peak_ids, _ = ndi.label(peaks, structure=np.ones((3, 3), bool))  # a flat top is one peak
    pairs = np.unique(np.stack([seeds[peaks], peak_ids[peaks]]), axis=1)
    per_seed = np.bincount(pairs[0], minlength=seeds.max() + 1)
    multi = per_seed[seeds] >= 2
    if not multi.any():
        return seeds
    parts = watershed(-point, np.where(multi, peak_ids, 0), mask=multi)
    out = seeds.copy()
    out[multi] = parts[multi] + seeds.max()
    return relabel(out)


def decode_outputs(outputs: Mapping[str, torch.Tensor], **kwargs) -> list[np.ndarray]:
    """:func:`cdnet_decode` of each image of a batch of network outputs.

    Args:
        outputs: ``{"mask": (B, 3, H, W) logits, "direction": (B, 9, H, W) logits,
            "point": (B, 1, H, W)}``, as :class:`cellrepro.nets.cdnet.CDNet` returns them.
        **kwargs: passed to :func:`cdnet_decode`.
    """
    missing = {"mask", "direction", "point"} - set(outputs)
    if missing:
        raise ValueError(f"outputs must hold 'mask', 'direction' and 'point', missing {sorted(missing)}")
    probs = torch.softmax(outputs["mask"].detach().float(), 1)
    direction = outputs["direction"].detach().argmax(1)
    return [cdnet_decode(probs[i], direction[i].cpu().numpy(), outputs["point"][i], **kwargs)
            for i in range(probs.shape[0])]
