"""Sliding-window crops (organoid thesis, Sec. 3.1) and window positions for tiled inference."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .types import OrganoidImage


def window_starts(length: int, crop: int, stride: int) -> list[int]:
    """Start offsets of windows of ``crop`` every ``stride`` covering ``length``; the last one
    is aligned to the end so no pixel is left out (a single window if ``length <= crop``)."""
    if crop <= 0 or stride <= 0:
        raise ValueError(f"crop and stride must be positive, got crop={crop}, stride={stride}")
    if length <= crop:
        return [0]
    starts = list(range(0, length - crop + 1, stride))
    if starts[-1] != length - crop:
        starts.append(length - crop)
    return starts


@dataclass
class Crops:
    """Crops of organoid images: arrays of shape (N, crop, crop) and where each came from."""

    images: np.ndarray
    masks: np.ndarray
    true_masks: np.ndarray | None
    origin: list[tuple[str, int, int, int]] = field(default_factory=list)  # (name, top, left, degrees)

    def __len__(self) -> int:
        return len(self.images)


def organoid_crops(images: list[OrganoidImage], crop: int = 320, overlap: float = 0.5, min_fraction: float = 0.03,
                   rotations: tuple[int, ...] = (90, 180, 270), by: str = "mask") -> Crops:
    """Cut images into overlapping crops, drop near-empty ones, add rotated copies.

    Args:
        crop: side of the square crops (320 in the thesis).
        overlap: fraction of a crop shared with its neighbour (stride = crop * (1 - overlap)).
        min_fraction: crops whose mask covers less than this are dropped (3%).
        rotations: extra copies rotated by these multiples of 90 degrees.
        by: which mask chooses the crops: ``"mask"`` (the annotation, what the thesis and a
            user have) or ``"true_mask"`` (test crops of synthetic data, so that crops over
            organoids the annotation omits are kept).
    """
    if by not in ("mask", "true_mask"):
        raise ValueError(f"by must be 'mask' or 'true_mask', got {by!r}")
    if not 0 <= overlap < 1:
        raise ValueError(f"overlap must be in [0, 1), got {overlap}")
    stride = max(1, int(round(crop * (1 - overlap))))
    out_img, out_mask, out_true, origin = [], [], [], []
    for item in images:
        h, w = item.image.shape
        if h < crop or w < crop:
            raise ValueError(f"{item.name}: image {h}x{w} is smaller than the crop size {crop}")
        for top in window_starts(h, crop, stride):
            for left in window_starts(w, crop, stride):
                win = (slice(top, top + crop), slice(left, left + crop))
                m = item.mask[win]
                t = item.true_mask[win] if item.true_mask is not None else None
                chooser = t if by == "true_mask" and t is not None else m
                if chooser.mean() < min_fraction:
                    continue
                for deg in (0, *rotations):
                    k = deg // 90
                    out_img.append(np.rot90(item.image[win], k))
                    out_mask.append(np.rot90(m, k))
                    if t is not None:
                        out_true.append(np.rot90(t, k))
                    origin.append((item.name, top, left, deg))
    empty = np.zeros((0, crop, crop), np.float32)
    return Crops(
        np.ascontiguousarray(out_img, np.float32) if out_img else empty,
        np.ascontiguousarray(out_mask, bool) if out_mask else empty.astype(bool),
        np.ascontiguousarray(out_true, bool) if out_true and len(out_true) == len(out_img) else None,
        origin,
    )
