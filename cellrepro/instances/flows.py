"""Cellpose-style flows: label image -> flow field, and flow field + cell probability -> label image.

Stringer et al., "Cellpose: a generalist algorithm for cellular segmentation", Nat. Methods 2021
(Methods, "Simulated diffusion" and "Gradient tracking"), used by the multimodal paper (Sec. 2.3,
phase-contrast and DIC branches) and by the MMCS paper's CPnet (Hu et al.).

* :func:`masks_to_flows`: per instance, heat diffuses from the instance centre inside the
  instance only; the flow is the unit gradient of ``log(1 + heat)``; background is zero.
* :func:`flows_to_masks`: every foreground pixel follows the (bilinearly interpolated) flow by
  Euler steps; end points are histogrammed, histogram peaks seed clusters that grow over
  well-visited bins, and each pixel takes the cluster its end point fell into.

Why not the ``cellpose`` package: 4.2.1.1 installs without touching our pins but brings
segment-anything, imagecodecs, fastremap, fill_voids, natsort and roifile along; its
``masks_to_flows_gpu`` fails on non-consecutive labels (``find_objects`` slices are ``None``
for missing labels); its dynamics expect network flows scaled by 5 (``compute_masks`` divides by
5). Measured by ``benchmarks/flows.py --repeat 5 --targets`` (1024^2, 1000 touching cells, CPU,
1 thread): masks <- flows 2.3 s here vs 2.5 s in cellpose (the same integration; both recover
all 1000 cells), masks -> flows 3.6 s here vs 42 s in cellpose, which is also why its flow-error
check (a masks -> flows of the result) took 39 s against 2.6 s without; ours costs 5.3 s.
The algorithm is small, so it is written here on torch and scipy with those traps removed.

Differences from Cellpose 4 on purpose: the centre is the instance pixel closest to the
*median* of the instance's coordinates (Cellpose 2-3; Cellpose 4 uses the mean), the gradient
never reads heat from a touching neighbour (a one-sided difference at the instance border), and
plateau seeds are merged by connected components instead of competing by id.
"""

from __future__ import annotations

import logging

import numpy as np
import torch
import torch.nn.functional as F
from scipy import ndimage as ndi

from cellrepro.metrics.instance import relabel

log = logging.getLogger(__name__)

#: The 8 neighbour offsets (dy, dx) of a pixel.
OFFSETS = ((-1, -1), (-1, 0), (-1, 1), (0, -1), (0, 1), (1, -1), (1, 0), (1, 1))


def _check_masks(masks) -> np.ndarray:
    masks = np.asarray(masks)
    if masks.ndim != 2:
        raise ValueError(f"masks must be a 2-D label image (H, W), got shape {masks.shape}")
    if masks.dtype == bool:
        return masks.astype(np.int64)
    if not np.issubdtype(masks.dtype, np.integer):
        raise ValueError(f"masks must hold integer labels, got dtype {masks.dtype}")
    if masks.size and masks.min() < 0:
        raise ValueError("masks must hold non-negative labels (0 is background)")
    return masks.astype(np.int64, copy=False)


def instance_centres(masks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Labels present in ``masks`` and, for each, the instance pixel closest to its median (y, x).

    The median point of a non-convex instance can lie outside it; the closest pixel inside does
    not. Vectorised over instances with ``scipy.ndimage`` (any label values, e.g. {3, 7, 12}).

    Returns:
        ``(ids, centres)``: ``ids`` (N,) int64, ``centres`` (N, 2) int64 rows (y, x).

    Example (a C shape: its median point is in the gap, the centre is moved onto the C):

    >>> c = np.zeros((7, 7), int); c[1:6, 1:3] = 5; c[1, 1:6] = 5; c[5, 1:6] = 5
    >>> ids, centres = instance_centres(c)
    >>> ids.tolist(), c[tuple(centres[0])] == 5
    ([5], np.True_)
    """
    masks = _check_masks(masks)
    ids = np.flatnonzero(np.bincount(masks.ravel())) if masks.size else np.zeros(0, np.int64)
    ids = ids[ids != 0]
    if len(ids) == 0:
        return ids.astype(np.int64), np.zeros((0, 2), np.int64)
    yy, xx = np.indices(masks.shape)
    my = np.asarray(ndi.median(yy, masks, ids), float)
    mx = np.asarray(ndi.median(xx, masks, ids), float)
    lut_y = np.zeros(int(ids[-1]) + 1)
    lut_x = np.zeros(int(ids[-1]) + 1)
    lut_y[ids], lut_x[ids] = my, mx
    dist = (yy - lut_y[masks]) ** 2 + (xx - lut_x[masks]) ** 2
    # medians are half-integers, so distinct squared distances differ by >= 0.25: a raster-order
    # term below 0.1 breaks ties the same way whatever other labels the image holds
    dist += np.arange(masks.size).reshape(masks.shape) * (0.1 / masks.size)
    centres = np.array(ndi.minimum_position(dist, masks, ids), np.int64).reshape(-1, 2)
    return ids.astype(np.int64), centres


def masks_to_flows(masks, niter: int | None = None, device: str | torch.device = "cpu") -> np.ndarray:
    """Cellpose flows of a label image: the unit gradient of heat diffused from each centre.

    All instances diffuse at once on the full image: each pixel averages itself and those of
    its 8 neighbours that carry the same label (others count as zero, as in Cellpose), and the
    centre pixel gains one unit per step. The flow is the central difference of
    ``log(1 + heat)``, one-sided where a neighbour belongs to another instance or the
    background, normalised to unit length. Single-pixel instances get zero flow.

    Args:
        masks: (H, W) integer labels, 0 background; any label values, touching allowed.
        niter: diffusion steps; default ``2 * max(h + w)`` over instance bounding boxes
            (heat must reach every pixel of the largest instance).
        device: torch device for the diffusion (float64).

    Returns:
        (2, H, W) float32 flows (dy, dx); unit length inside instances, zero on background.

    Example (a disc: right of the centre the flow points left, below it points up):

    >>> yy, xx = np.mgrid[:21, :21]
    >>> disc = ((yy - 10) ** 2 + (xx - 10) ** 2 <= 64).astype(np.int32)
    >>> flows = masks_to_flows(disc)
    >>> bool(np.allclose(flows[:, 10, 15], [0, -1], atol=1e-6)), bool(np.allclose(flows[:, 15, 10], [-1, 0], atol=1e-6))
    (True, True)
    """
    masks = _check_masks(masks)
    h, w = masks.shape
    ids, centres = instance_centres(masks)
    if len(ids) == 0:
        return np.zeros((2, h, w), np.float32)
    if niter is None:
        boxes = [b for b in ndi.find_objects(masks) if b is not None]
        niter = 2 * max((b[0].stop - b[0].start) + (b[1].stop - b[1].start) for b in boxes)
    dev = torch.device(device)
    lab = F.pad(torch.from_numpy(masks).to(dev), (1, 1, 1, 1))
    inner = lab[1:-1, 1:-1]
    fg = inner > 0

    def shifted(t: torch.Tensor, dy: int, dx: int) -> torch.Tensor:
        return t[1 + dy:1 + dy + h, 1 + dx:1 + dx + w]

    same = {o: ((shifted(lab, *o) == inner) & fg).to(torch.float64) for o in OFFSETS}
    heat = torch.zeros((h + 2, w + 2), dtype=torch.float64, device=dev)
    cy = torch.from_numpy(centres[:, 0] + 1).to(dev)
    cx = torch.from_numpy(centres[:, 1] + 1).to(dev)
    for _ in range(int(niter)):
        heat[cy, cx] += 1.0
        acc = heat[1:-1, 1:-1].clone()
        for o in OFFSETS:
            acc.addcmul_(same[o], shifted(heat, *o))
        heat[1:-1, 1:-1] = acc / 9.0
    heat = torch.log1p(heat)
    centre = heat[1:-1, 1:-1]

    def side(o: tuple[int, int]) -> torch.Tensor:  # neighbour's heat, own heat across a border
        return torch.where(same[o] > 0, shifted(heat, *o), centre)

    flow = torch.stack((side((1, 0)) - side((-1, 0)), side((0, 1)) - side((0, -1))))
    norm = torch.sqrt((flow ** 2).sum(0))
    flow = torch.where(norm > 0, flow / norm.clamp_min(1e-300), torch.zeros_like(flow)) * fg
    return flow.to(torch.float32).cpu().numpy()


def _as_field(arr, name: str, ndim: int) -> torch.Tensor:
    if isinstance(arr, torch.Tensor):
        t = arr.detach()
    else:
        a = np.asarray(arr)
        if a.dtype == object or not (np.issubdtype(a.dtype, np.number) or a.dtype == bool):
            raise ValueError(f"{name} must be a real-valued array, got dtype {a.dtype}")
        t = torch.from_numpy(np.ascontiguousarray(a))
    if t.is_complex():
        raise ValueError(f"{name} must be real-valued, got dtype {t.dtype}")
    if t.ndim != ndim:
        want = "(2, H, W)" if ndim == 3 else "(H, W)"
        raise ValueError(f"{name} must have shape {want}, got {tuple(t.shape)}")
    return t


def follow_flows(flows: torch.Tensor, points: torch.Tensor, niter: int = 200) -> torch.Tensor:
    """End points of Euler integration ``p <- p + flow(p)`` for ``niter`` steps.

    The flow is sampled bilinearly by ``torch.nn.functional.grid_sample`` (align_corners=True,
    so pixel centres sit exactly on the grid) and points are clamped to the image.

    Args:
        flows: (2, H, W) float (dy, dx) in pixels per step, zero outside the foreground.
        points: (N, 2) float (y, x) start positions, on the flows' device.
        niter: number of steps.

    Returns:
        (N, 2) float32 end positions (y, x).

    Example (a uniform flow of 0.5 px per step to the right for 4 steps, stopped by the edge):

    >>> f = torch.zeros(2, 3, 8); f[1] = 0.5
    >>> follow_flows(f, torch.tensor([[1.0, 0.0], [1.0, 6.0]]), niter=4).round().tolist()
    [[1.0, 2.0], [1.0, 7.0]]
    """
    _, h, w = flows.shape
    # grid_sample reads (x, y) in [-1, 1]: scale the field and the points once, not every step
    scale = torch.tensor([2.0 / max(w - 1, 1), 2.0 / max(h - 1, 1)], device=flows.device)
    field = (flows.flip(0).to(torch.float32) * scale[:, None, None]).unsqueeze(0)
    pt = (points.flip(1).to(torch.float32) * scale - 1.0).reshape(1, 1, -1, 2).contiguous()
    for _ in range(int(niter)):
        step = F.grid_sample(field, pt, mode="bilinear", padding_mode="border", align_corners=True)
        pt += step[0, :, 0].T.unsqueeze(0).unsqueeze(0)
        pt.clamp_(-1.0, 1.0)
    return ((pt.reshape(-1, 2) + 1.0) / scale).flip(1)


def cluster_end_points(ends: np.ndarray, shape: tuple[int, int], min_seed: int = 10,
                       min_count: int = 3, grow: int = 5) -> np.ndarray:
    """Cluster id (0 = none) of every end point, from a histogram of end points (Cellpose).

    Seeds are bins holding more than ``min_seed`` end points that are the maximum of their
    5 x 5 window; adjacent seed bins are one seed (8-connected components). Seeds grow ``grow``
    times into 8-neighbour bins holding at least ``min_count`` end points. End points in bins no
    cluster reached get 0.

    Args:
        ends: (N, 2) integer (y, x) end positions inside ``shape``.
        shape: (H, W) of the image.

    Returns:
        (N,) int64 cluster ids, consecutive from 1.
    """
    flat = ends[:, 0].astype(np.int64) * shape[1] + ends[:, 1]
    hist = np.bincount(flat, minlength=shape[0] * shape[1]).reshape(shape)
    # end points gather in a few bins: filters evaluated at those bins only, not the whole image
    ys, xs = np.nonzero(hist > min_seed)
    top = _window(hist, ys, xs, 2).max(0, initial=0)
    seeds = np.zeros(shape, bool)
    seeds[ys[hist[ys, xs] == top], xs[hist[ys, xs] == top]] = True
    clusters, _ = ndi.label(seeds, structure=np.ones((3, 3), bool))
    ys, xs = np.nonzero((hist >= min_count) & (clusters == 0))
    for _ in range(grow):  # synchronous 3 x 3 dilation of the cluster ids into allowed bins
        nearby = _window(clusters, ys, xs, 1).max(0, initial=0)
        reached = nearby > 0
        clusters[ys[reached], xs[reached]] = nearby[reached]
        ys, xs = ys[~reached], xs[~reached]
    return clusters.ravel()[flat]


def _window(image: np.ndarray, ys: np.ndarray, xs: np.ndarray, radius: int) -> np.ndarray:
    """Values of ``image`` in the (2 radius + 1)^2 window around each (ys, xs), zero outside,
    shape (window, len(ys)): ``ndi.maximum_filter`` sampled at a few points is its ``max(0)``,
    without filtering the whole image."""
    padded = np.pad(image, radius)
    side = range(2 * radius + 1)
    return np.stack([padded[ys + dy, xs + dx] for dy in side for dx in side]).reshape(len(side) ** 2, len(ys))


def fill_holes_and_remove_small(masks: np.ndarray, min_size: int = 15) -> np.ndarray:
    """Fill each instance's holes (background pixels only), drop instances under ``min_size``
    pixels and relabel 1..N. Holes are filled per bounding box (``find_objects``), since a hole
    fill of the whole foreground would not tell touching instances apart.

    >>> ring = np.zeros((7, 7), int); ring[1:6, 1:6] = 4; ring[3, 3] = 0; ring[0, 0] = 9
    >>> out = fill_holes_and_remove_small(ring, min_size=2)
    >>> int(out[3, 3]), int(out[0, 0]), int(out.max())
    (1, 0, 1)
    """
    masks = masks.copy()
    # an instance's hole is also a hole of the whole foreground: visit only instances next to one
    ys, xs = np.nonzero(ndi.binary_fill_holes(masks > 0) & (masks == 0))
    near = np.unique(_window(masks, ys, xs, 1))
    boxes = ndi.find_objects(masks)
    for i in near:
        if i == 0:
            continue
        crop = masks[boxes[i - 1]]
        crop[ndi.binary_fill_holes(crop == i) & (crop == 0)] = i
    if min_size > 0 and masks.max() > 0:
        small = np.bincount(masks.ravel()) < min_size
        small[0] = False
        masks[small[masks]] = 0
    return relabel(masks)


def flow_errors(masks: np.ndarray, flows: np.ndarray, device: str | torch.device = "cpu") -> np.ndarray:
    """Mean squared difference, per instance 1..N of consecutive ``masks``, between ``flows`` and
    the flows :func:`masks_to_flows` computes from ``masks`` (Cellpose's flow-error check).

    Slow: it re-runs the diffusion on the whole image. Returns (N,) float64.
    """
    err = ((masks_to_flows(masks, device=device) - flows) ** 2).sum(0)
    n = int(masks.max())
    counts = np.bincount(masks.ravel(), minlength=n + 1)[1:]
    sums = np.bincount(masks.ravel(), weights=err.ravel(), minlength=n + 1)[1:]
    return sums / np.maximum(counts, 1)


def flows_to_masks(flows, cellprob, cellprob_threshold: float = 0.0, niter: int = 200,
                   min_size: int = 15, max_size_fraction: float = 0.4,
                   flow_threshold: float | None = None,
                   device: str | torch.device | None = None) -> np.ndarray:
    """Instances from flows and cell probability: Euler integration, then end-point clustering.

    Pixels with ``cellprob > cellprob_threshold`` follow ``flows`` (zeroed outside them) for
    ``niter`` steps (:func:`follow_flows`); their end points are clustered
    (:func:`cluster_end_points`); masks over ``max_size_fraction`` of the image are dropped,
    holes filled, masks under ``min_size`` pixels dropped, labels made consecutive.

    Flows are in pixels per step, unit length as :func:`masks_to_flows` gives them. Networks
    trained the Cellpose way predict 5 x flows: divide their output by 5 first.

    Args:
        flows: (2, H, W) real (dy, dx), NumPy or torch.
        cellprob: (H, W) real cell probability or logit.
        cellprob_threshold: foreground is ``cellprob > cellprob_threshold``.
        niter: Euler steps (200 as Cellpose; enough for radii up to ~150 px at unit speed).
        min_size: smallest mask kept, in pixels.
        max_size_fraction: larger masks are dropped (0.4 as Cellpose; 1 keeps all).
        flow_threshold: if set, masks whose :func:`flow_errors` exceed it are dropped
            (Cellpose's default is 0.4). Off by default: it costs a whole diffusion.
        device: torch device for the integration; default that of ``flows`` if a tensor, else CPU.

    Returns:
        (H, W) int32 labels 0..N.

    Example (round trip: two touching squares labelled 3 and 7 come back exactly, as 1 and 2):

    >>> m = np.zeros((12, 20), np.int32); m[2:10, 2:10] = 3; m[2:10, 10:18] = 7
    >>> out = flows_to_masks(masks_to_flows(m), m > 0, 0.5)
    >>> sorted(np.unique(out[m == 3]).tolist() + np.unique(out[m == 7]).tolist()), int((out[m == 0]).max())
    ([1, 2], 0)
    """
    flows_t = _as_field(flows, "flows", 3)
    if flows_t.shape[0] != 2:
        raise ValueError(f"flows must have shape (2, H, W), got {tuple(flows_t.shape)}")
    prob_t = _as_field(cellprob, "cellprob", 2)
    if tuple(prob_t.shape) != tuple(flows_t.shape[1:]):
        raise ValueError(f"cellprob must have shape {tuple(flows_t.shape[1:])} like flows, "
                         f"got {tuple(prob_t.shape)}")
    if niter < 0 or min_size < 0:
        raise ValueError(f"niter and min_size must be >= 0, got {niter} and {min_size}")
    dev = torch.device(device) if device is not None else flows_t.device
    h, w = prob_t.shape
    fg = (prob_t.to(dev).to(torch.float32) > cellprob_threshold)
    if not bool(fg.any()):
        return np.zeros((h, w), np.int32)
    field = flows_t.to(dev).to(torch.float32) * fg
    ys, xs = torch.nonzero(fg, as_tuple=True)
    ends = follow_flows(field, torch.stack((ys, xs), 1).to(torch.float32), niter)
    ends = torch.round(ends).to(torch.int64)
    ends[:, 0].clamp_(0, h - 1)
    ends[:, 1].clamp_(0, w - 1)
    ids = cluster_end_points(ends.cpu().numpy(), (h, w))
    masks = np.zeros((h, w), np.int64)
    masks[ys.cpu().numpy(), xs.cpu().numpy()] = ids
    if max_size_fraction < 1 and masks.max() > 0:
        big = np.bincount(masks.ravel()) > max_size_fraction * h * w
        big[0] = False
        masks[big[masks]] = 0
    masks = relabel(masks)
    if flow_threshold is not None and masks.max() > 0:
        bad = np.concatenate(([False], flow_errors(masks, flows_t.cpu().numpy(), dev) > flow_threshold))
        log.info("flow-error check drops %d of %d masks", int(bad.sum()), len(bad) - 1)
        masks[bad[masks]] = 0
    return fill_holes_and_remove_small(masks, min_size).astype(np.int32, copy=False)
