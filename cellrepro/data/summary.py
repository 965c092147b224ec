"""What a data set holds: format detection and the statistics ``cellrepro data show`` prints."""

from __future__ import annotations

import os
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

from . import readers
from .types import CellImage, DataError, Field, OrganoidImage, ZStack

FORMATS = ("cellseg", "cellpose", "livecell", "zstack", "organoid", "fields")


def detect_format(root: str | os.PathLike) -> str:
    """Guess the on-disk format of ``root`` from its layout (see :mod:`cellrepro.data.readers`)."""
    root = Path(root)
    if root.is_file() and root.suffix == ".json":
        return "livecell"
    if not root.is_dir():
        raise DataError(root, "not found: expected a data folder or a COCO .json file")
    if (root / "stacks").is_dir():
        return "zstack"
    if (root / "fields").is_dir() or (root / "pool").is_dir():
        return "fields"
    if (root / "images").is_dir() and (root / "labels").is_dir():
        return "cellseg"
    if (root / "images").is_dir() and ((root / "masks").is_dir() or any(root.glob("images/*.czi"))):
        return "organoid"
    if any(root.glob("*_img.*")):
        return "cellpose"
    if any(root.glob("*.json")):
        return "livecell"
    raise DataError(root, "unrecognised layout; expected one of: " + ", ".join(FORMATS) + " (see `cellrepro data show --help`)")


def read_any(root: str | os.PathLike, fmt: str | None = None) -> list[Any]:
    """Every item of a data set, flattened into one list, whatever its format."""
    fmt = fmt or detect_format(root)
    root = Path(root)
    if fmt == "livecell":
        json_path = root if root.is_file() else sorted(root.glob("*.json"))[0]
        return readers.read_livecell(json_path)
    read = {"cellseg": readers.read_cellseg, "cellpose": readers.read_cellpose, "zstack": readers.read_zstacks,
            "organoid": readers.read_organoids, "fields": readers.read_fields}.get(fmt)
    if read is None:
        raise DataError(root, f"unknown format '{fmt}'; formats are {', '.join(FORMATS)}")
    result = read(root)
    return [*result[0], *result[1]] if isinstance(result, tuple) else list(result)


def _instances(item: Any) -> tuple[int, list[float], float | None]:
    """(instance count, equivalent diameters, overlap fraction or None) of one item."""
    masks = None
    if isinstance(item, Field):
        masks = item.amodal
    elif isinstance(item, CellImage) and item.masks is not None:
        masks = item.masks
    if masks is not None:
        if len(masks) == 0:
            return 0, [], 0.0
        count = masks.sum(0)
        areas = masks.reshape(len(masks), -1).sum(1)
        fg = (count > 0).sum()
        return len(masks), list(2 * np.sqrt(areas / np.pi)), float((count >= 2).sum() / fg) if fg else 0.0
    labels = getattr(item, "labels", None)
    if labels is None and isinstance(item, OrganoidImage) and item.mask is not None:
        from scipy import ndimage as ndi

        labels = ndi.label(item.mask)[0]  # a binary annotation: count connected organoids
    if labels is None:
        return 0, [], None
    ids, areas = np.unique(labels[labels > 0], return_counts=True)
    return len(ids), list(2 * np.sqrt(areas / np.pi)), None


def summarize(root: str | os.PathLike, fmt: str | None = None) -> dict[str, Any]:
    """Counts and statistics of a data set on disk: images, sizes, instances, diameters, overlap, modalities."""
    fmt = fmt or detect_format(root)
    return summarize_items(read_any(root, fmt), fmt, str(root))


def summarize_items(items: list[Any], fmt: str = "", path: str = "") -> dict[str, Any]:
    """:func:`summarize` for items already in memory (any family's structures, mixed lists too)."""
    per_image, diameters, overlaps, shapes, modalities, classes, labeled = [], [], [], Counter(), Counter(), Counter(), 0
    for item in items:
        image = getattr(item, "stack", None)
        image = image if image is not None else getattr(item, "image", None)
        image = image if image is not None else item.phase
        shapes["x".join(map(str, image.shape))] += 1
        n, diam, overlap = _instances(item)
        has_labels = any(getattr(item, k, None) is not None for k in ("labels", "amodal", "mask"))
        labeled += has_labels
        if has_labels:
            per_image.append(n)
            diameters += diam
        if overlap is not None:
            overlaps.append(overlap)
        if isinstance(item, CellImage) and item.modality:
            modalities[item.modality] += 1
        if isinstance(item, ZStack):
            classes.update(item.classes.values())
    out: dict[str, Any] = {
        "path": path, "format": fmt, "n_images": len(items), "n_labeled": labeled,
        "n_instances": int(sum(per_image)), "image_sizes": dict(shapes),
        "instances_per_image": _stats(per_image), "diameter_px": _stats(diameters),
    }
    if overlaps:
        out["overlap_fraction"] = _stats(overlaps)
    if modalities:
        out["modalities"] = dict(sorted(modalities.items()))
    if classes:
        from .types import SPHEROID_CLASSES

        out["classes"] = {SPHEROID_CLASSES.get(k, str(k)): v for k, v in sorted(classes.items())}
    return out


def _stats(values: list[float]) -> dict[str, float]:
    if not values:
        return {"n": 0}
    a = np.asarray(values, float)
    return {"n": int(a.size), "min": round(float(a.min()), 3), "median": round(float(np.median(a)), 3),
            "mean": round(float(a.mean()), 3), "max": round(float(a.max()), 3)}


def format_summary(s: dict[str, Any]) -> str:
    """The summary as aligned text for the terminal."""
    lines = [f"{s['path']}  ({s['format']})",
             f"  images        {s['n_images']} ({s['n_labeled']} labeled)",
             "  sizes         " + ", ".join(f"{k} x{v}" for k, v in s["image_sizes"].items()),
             f"  instances     {s['n_instances']} in total"]
    for key, label in (("instances_per_image", "per image"), ("diameter_px", "diameter px"),
                       ("overlap_fraction", "overlap frac")):
        if key in s and s[key].get("n"):
            st = s[key]
            lines.append(f"  {label:<13} min {st['min']}  median {st['median']}  mean {st['mean']}  max {st['max']}")
    if "modalities" in s:
        lines.append("  modalities    " + ", ".join(f"{k} {v}" for k, v in s["modalities"].items()))
    if "classes" in s:
        lines.append("  classes       " + ", ".join(f"{k} {v}" for k, v in s["classes"].items()))
    return "\n".join(lines)
