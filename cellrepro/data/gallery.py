"""Figures of each data family with its ground truth, for the data chapter and quick looks.

Each function takes the family's structures and returns a matplotlib ``Figure``; nothing
is saved or shown here.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from .synthetic.brightfield import semantic_maps
from .types import MODALITIES, CellImage, Field, OrganoidImage, ZStack


def _outline(labels: np.ndarray) -> np.ndarray:
    """Pixels on the boundary of any instance (for overlays)."""
    from skimage.segmentation import find_boundaries

    return find_boundaries(labels, mode="inner")


def _overlay(ax, image, labels, cmap="gray", color=(1.0, 0.2, 0.2)):
    ax.imshow(image, cmap=cmap)
    edge = np.zeros((*labels.shape, 4))
    edge[_outline(labels)] = (*color, 1.0)
    ax.imshow(edge)


WIDTH_IN = 7.5  # at 150 dpi the book shows 7.5 inches across its text column with 9 pt text >= 8 pt


def framed(ax) -> None:
    """Turn an axis-less image panel into one with a thin grey frame (no ticks)."""
    from ..publish.report import framed as frame

    ax.set_axis_on()
    frame(ax)


def _figure(rows: int, cols: int, size: float | None = None):
    import matplotlib.pyplot as plt

    size = min(size or 2.6, WIDTH_IN / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(cols * size, rows * size * 1.1), squeeze=False, layout="constrained")
    for ax in axes.flat:
        ax.set_axis_off()
    return fig, axes


def zstack_figure(sample: ZStack, slices: Sequence[int] | None = None):
    """Slices from bottom to top, the all-in-focus truth, and the labels coloured by class."""
    z = sample.stack.shape[0]
    slices = list(slices) if slices is not None else sorted({0, z // 4, z // 2, 3 * z // 4, z - 1})
    panels = len(slices) + (2 if sample.in_focus is not None else 1)
    cols = 4
    fig, axes = _figure(-(-panels // cols), cols)
    flat = axes.ravel()
    for ax, k in zip(flat, slices):
        ax.imshow(sample.stack[k], cmap="gray", vmin=0, vmax=1)
        ax.set_title(f"slice {k}")
    if sample.in_focus is not None:
        flat[len(slices)].imshow(sample.in_focus, cmap="gray", vmin=0, vmax=1)
        flat[len(slices)].set_title("all-in-focus truth")
    if sample.labels is not None:
        classes = np.zeros(sample.labels.shape, int)
        for i, c in sample.classes.items():
            classes[sample.labels == i] = c
        flat[panels - 1].imshow(classes, cmap="viridis", vmin=0, vmax=3, interpolation="nearest")
        flat[panels - 1].set_title("core / invasive / cells")
    return fig


def cells_figure(items: Sequence[CellImage], per_modality: int = 2):
    """Per modality: images with instance outlines, and the nucleus channel where there is one."""
    by_modality = {m: [it for it in items if it.modality == m] for m in MODALITIES}
    by_modality = {m: v for m, v in by_modality.items() if v} or {"": list(items)[: 4 * per_modality]}
    return styles_figure(by_modality, per_style=per_modality if "" not in by_modality else 4 * per_modality)


def styles_figure(sets: dict[str, Sequence[CellImage]], per_style: int = 2):
    """One column per image, ``per_style`` from each named set (e.g. the MMCS family's styles), with
    outlines above (when labelled) and the nucleus channel below; titles name the set (else the image)
    and the typical diameter."""
    chosen = [(name, it) for name, items in sets.items() for it in list(items)[:per_style]]
    cols = min(4, len(chosen))
    fig, axes = _figure(2 * -(-len(chosen) // cols), cols)
    for k, (name, it) in enumerate(chosen):  # each image above its nucleus channel, four per row
        top, bottom = axes[2 * (k // cols), k % cols], axes[2 * (k // cols) + 1, k % cols]
        if it.labels is not None:
            _overlay(top, it.image, it.labels, color=(1.0, 1.0, 0.0))
        else:
            top.imshow(it.image)
        top.set_title(f"{name or it.name}, ~{it.diameter:.0f} px", fontsize=9)
        bottom.imshow(it.nucleus, cmap="gray", vmin=0, vmax=1)
        bottom.set_title("its nucleus channel" if it.nucleus.any() else "nucleus channel: zeros", fontsize=9)
    return fig


def outlines_figure(rows: Sequence[tuple[str, np.ndarray, dict[str, np.ndarray]]]):
    """One row per image: the image with each named label image's outlines in its own panel, e.g. the
    truth beside several methods' predictions. ``rows``: ``(row title, (H, W[, 3]) image, {panel
    title: (H, W) labels})``; the row title heads the row's first panel."""
    cols = max(len(labels) for _, _, labels in rows)
    fig, axes = _figure(len(rows), cols)
    for r, (title, image, labels) in enumerate(rows):
        for c, (name, lab) in enumerate(labels.items()):
            _overlay(axes[r, c], image, lab, color=(1.0, 1.0, 0.0))
            axes[r, c].set_title(f"{title}: {name}" if c == 0 else name, fontsize=8)
    return fig


def field_figure(field: Field):
    """Phase, both brightfield planes, fluorescence, and the derived maps with overlaps."""
    fig, axes = _figure(2, 4)
    for ax, (title, img) in zip(axes[0], (("phase contrast", field.phase), ("brightfield, lower plane", field.bf_low),
                                           ("brightfield, higher plane", field.bf_high),
                                           ("nucleus fluorescence", field.fluorescence))):
        if img is not None:
            ax.imshow(img, cmap="gray")
            ax.set_title(title, fontsize=9)
    if field.amodal is not None:
        maps = semantic_maps(field.amodal, field.nuclei)
        count = field.amodal.sum(0)
        for ax, (title, img, cmap) in zip(axes[1], (("cells per pixel (amodal)", count, "magma"),
                                                    ("nuclei", maps["nuclei"], "gray"),
                                                    ("borders", maps["border"], "gray"),
                                                    ("overlap (>= 2 cells)", maps["overlap"], "gray"))):
            ax.imshow(img, cmap=cmap, interpolation="nearest")
            ax.set_title(title, fontsize=9)
    return fig


def organoid_figure(item: OrganoidImage):
    """The image, its true mask, and the annotation with the organoids it leaves out marked."""
    fig, axes = _figure(1, 3)
    axes[0, 0].imshow(item.image, cmap="gray", vmin=0, vmax=1)
    axes[0, 0].set_title("image")
    if item.true_mask is not None:
        axes[0, 1].imshow(item.true_mask, cmap="gray", vmin=0, vmax=1)
        axes[0, 1].set_title("true mask")
        framed(axes[0, 1])  # a mask that is nearly all white would melt into the page
    if item.mask is not None:
        rgb = np.zeros((*item.mask.shape, 3))
        rgb[item.mask] = 1.0
        if item.true_mask is not None:
            rgb[item.true_mask & ~item.mask] = (1.0, 0.2, 0.2)
        axes[0, 2].imshow(rgb)
        axes[0, 2].set_title("annotation (red: left out)")
    return fig
