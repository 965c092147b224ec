"""Drawing helpers shared by the synthetic generators: irregular blobs, domes, textures, light.

Objects are drawn in their bounding box only, so a scene with hundreds of cells costs little
more than its pixels.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage as ndi


@dataclass
class Blob:
    """A filled irregular shape: ``mask`` (local, bool) placed at ``top, left`` of the scene."""

    top: int
    left: int
    mask: np.ndarray

    @property
    def slices(self) -> tuple[slice, slice]:
        h, w = self.mask.shape
        return slice(self.top, self.top + h), slice(self.left, self.left + w)

    def clip(self, shape: tuple[int, int]) -> "Blob | None":
        """The part of the blob inside a scene of ``shape`` (None if nothing is inside)."""
        t0, l0 = max(self.top, 0), max(self.left, 0)
        h, w = self.mask.shape
        t1, l1 = min(self.top + h, shape[0]), min(self.left + w, shape[1])
        if t1 <= t0 or l1 <= l0:
            return None
        local = self.mask[t0 - self.top:t1 - self.top, l0 - self.left:l1 - self.left]
        return Blob(t0, l0, local) if local.any() else None

    def paint(self, canvas: np.ndarray, value) -> None:
        """Write ``value`` (scalar or local array) where the blob is, in place."""
        region = canvas[self.slices]
        if np.ndim(value) == 0:
            region[self.mask] = value
        else:
            region[self.mask] = np.asarray(value)[self.mask]

    def within(self, other: "Blob") -> "Blob | None":
        """The part of this blob inside ``other`` (in ``other``'s frame), or None."""
        local = np.zeros_like(other.mask)
        dt, dl = self.top - other.top, self.left - other.left
        h, w = self.mask.shape
        t0, l0 = max(dt, 0), max(dl, 0)
        t1, l1 = min(dt + h, local.shape[0]), min(dl + w, local.shape[1])
        if t1 <= t0 or l1 <= l0:
            return None
        local[t0:t1, l0:l1] = self.mask[t0 - dt:t1 - dt, l0 - dl:l1 - dl]
        local &= other.mask
        return Blob(other.top, other.left, local) if local.any() else None

    def full(self, shape: tuple[int, int]) -> np.ndarray:
        out = np.zeros(shape, bool)
        out[self.slices] = self.mask
        return out


def blob(center: tuple[float, float], radius: float, rng: np.random.Generator, irregularity: float = 0.12,
         aspect: float = 1.0, angle: float | None = None, harmonics: int = 5) -> Blob:
    """An irregular, optionally elongated, star-convex blob.

    The boundary radius is ``radius * (1 + sum_k a_k cos(k theta + phi_k))`` with random
    ``a_k ~ irregularity / k``, stretched by ``aspect`` along ``angle``.
    """
    angle = rng.uniform(0, np.pi) if angle is None else angle
    amps = rng.normal(0, irregularity, harmonics) / np.arange(1, harmonics + 1)
    phases = rng.uniform(0, 2 * np.pi, harmonics)
    reach = int(np.ceil(radius * max(aspect, 1.0) * (1 + np.abs(amps).sum()))) + 2
    cy, cx = center
    top, left = int(np.floor(cy)) - reach, int(np.floor(cx)) - reach
    yy, xx = np.mgrid[top:top + 2 * reach + 1, left:left + 2 * reach + 1].astype(np.float32)
    dy, dx = yy - cy, xx - cx
    ca, sa = np.cos(angle), np.sin(angle)
    u, v = (dx * ca + dy * sa) / aspect, -dx * sa + dy * ca
    theta = np.arctan2(v, u)
    k = np.arange(1, harmonics + 1)[:, None, None]
    boundary = radius * (1 + (amps[:, None, None] * np.cos(k * theta + phases[:, None, None])).sum(0))
    return Blob(top, left, np.hypot(u, v) <= boundary)


def dome(mask: np.ndarray, power: float = 0.5) -> np.ndarray:
    """A height profile inside ``mask``: 0 at the edge, 1 at the deepest point."""
    if not mask.any():
        return np.zeros(mask.shape, np.float32)
    dist = ndi.distance_transform_edt(np.pad(mask, 1))[1:-1, 1:-1]
    return (dist / dist.max()) ** power


def smooth_noise(shape: tuple[int, ...], sigma: float, rng: np.random.Generator) -> np.ndarray:
    """Gaussian-filtered white noise scaled to unit standard deviation (float32)."""
    field = ndi.gaussian_filter(rng.standard_normal(shape).astype(np.float32), sigma)
    return field / (field.std() + 1e-8)


def illumination(shape: tuple[int, int], rng: np.random.Generator, strength: float = 0.3) -> np.ndarray:
    """An uneven illumination field around 1: a random linear ramp times a vignette."""
    yy, xx = np.mgrid[0:shape[0], 0:shape[1]].astype(np.float32)
    yy, xx = yy / shape[0] - 0.5, xx / shape[1] - 0.5
    a = rng.uniform(-strength, strength, 2)
    c = rng.uniform(-0.2, 0.2, 2)
    ramp = 1 + a[0] * yy + a[1] * xx
    vignette = 1 - strength * ((yy - c[0]) ** 2 + (xx - c[1]) ** 2)
    return (ramp * vignette).astype(np.float32)


def place(rng: np.random.Generator, shape: tuple[int, int], radius: float, taken: np.ndarray | None = None,
          tries: int = 30, margin: float = 0.0) -> tuple[float, float] | None:
    """A random centre inside ``shape`` whose disc of ``radius`` avoids ``taken`` (if given)."""
    for _ in range(tries):
        cy = rng.uniform(-margin * radius, shape[0] + margin * radius)
        cx = rng.uniform(-margin * radius, shape[1] + margin * radius)
        if taken is None:
            return cy, cx
        r = int(max(radius, 1))
        y0, y1 = int(max(cy - r, 0)), int(min(cy + r + 1, shape[0]))
        x0, x1 = int(max(cx - r, 0)), int(min(cx + r + 1, shape[1]))
        if y1 > y0 and x1 > x0 and not taken[y0:y1, x0:x1].any():
            return cy, cx
    return None


def equivalent_diameter(area: np.ndarray | float) -> np.ndarray | float:
    """Diameter of the disc with the given area."""
    return 2.0 * np.sqrt(np.asarray(area, dtype=float) / np.pi)
