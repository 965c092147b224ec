"""The structures every data family returns, whether generated or read from disk.

A generator and the reader of the same family return the same type, so a notebook does not
care whether ``data_root`` is None (synthetic stand-in) or a folder of real data. Arrays are
NumPy; shapes are given as (H, W) for single-channel images.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

SPHEROID_CLASSES = {1: "invasive area", 2: "spheroid core", 3: "single cell"}
MODALITIES = ("brightfield", "fluorescence", "phase contrast", "dic")


class DataError(ValueError):
    """Bad input data; the message names the file and what was expected."""

    def __init__(self, path, expected: str):
        self.path = path
        super().__init__(f"{path}: {expected}")


@dataclass
class ZStack:
    """A DIC z-stack (spheroid paper).

    Attributes:
        name: identifier (file stem).
        stack: (Z, H, W) float32 slices, bottom to top.
        labels: (H, W) int32 instance labels, 0 = background, or None if unlabeled.
        classes: instance id -> class id (1 invasive area, 2 spheroid core, 3 single cell).
        in_focus: (H, W) float32 all-in-focus image (synthetic ground truth), or None.
        depth: (H, W) float32 depth (in slices) at which each pixel is in focus, NaN on the
            background (synthetic ground truth), or None.
    """

    name: str
    stack: np.ndarray
    labels: np.ndarray | None = None
    classes: dict[int, int] = field(default_factory=dict)
    in_focus: np.ndarray | None = None
    depth: np.ndarray | None = None


@dataclass
class CellImage:
    """One microscopy image with instance labels (multimodal and MMCS papers).

    Attributes:
        name: identifier (file stem).
        image: (H, W, 3) uint8 RGB, as in the NeurIPS-CellSeg data.
        labels: (H, W) int32 instance labels, or None for an unlabeled image.
        nucleus: (H, W) float32 nucleus channel in [0, 1] (fluorescence: the blue channel),
            zeros where the modality has none.
        modality: one of :data:`MODALITIES`, or "" when unknown (real data); for evaluation only.
        diameter: typical cell diameter in pixels used to draw the image (synthetic), or NaN.
        masks: (N, H, W) bool instance masks that may overlap (COCO/LIVECell), or None; when
            present, ``labels`` is the same instances flattened, later ones on top.
    """

    name: str
    image: np.ndarray
    labels: np.ndarray | None
    nucleus: np.ndarray
    modality: str = ""
    diameter: float = float("nan")
    masks: np.ndarray | None = None


@dataclass
class Field:
    """A brightfield field set (brightfield thesis).

    Attributes:
        name: identifier.
        phase: (H, W) float32 phase-contrast image (overlapping cells add).
        bf_low, bf_high: (H, W) float32 brightfield images at the lower and higher focal plane.
        fluorescence: (H, W) float32 nucleus fluorescence, or None (unannotated pool).
        amodal: (N, H, W) bool whole-cell masks that may overlap, or None (unannotated pool).
        nuclei: (H, W) int32 nucleus instance labels (nucleus i belongs to cell i), or None.
    """

    name: str
    phase: np.ndarray
    bf_low: np.ndarray
    bf_high: np.ndarray
    fluorescence: np.ndarray | None = None
    amodal: np.ndarray | None = None
    nuclei: np.ndarray | None = None


@dataclass
class OrganoidImage:
    """A large grey organoid image (organoid thesis).

    Attributes:
        name: identifier.
        image: (H, W) float32 in [0, 1].
        mask: (H, W) bool annotation as a user has it (possibly imperfect).
        true_mask: (H, W) bool every organoid (synthetic ground truth), or None.
        labels: (H, W) int32 organoid instances of the true mask, or None.
        dropped: ids (in ``labels``) of the organoids the imperfect mask leaves out.
    """

    name: str
    image: np.ndarray
    mask: np.ndarray | None
    true_mask: np.ndarray | None = None
    labels: np.ndarray | None = None
    dropped: list[int] = field(default_factory=list)
