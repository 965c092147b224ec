"""Writers for the on-disk formats of :mod:`cellrepro.data.readers` (used by ``cellrepro data make``).

Each writer builds its folder under a temporary name and renames it when complete, so an
interrupted generation leaves nothing half-written; what it writes, the matching reader
reads back exactly.
"""

from __future__ import annotations

import csv
import io
import json
import os
from pathlib import Path

import numpy as np

from .files import atomic_dir, write_czi, write_image
from .types import CellImage, Field, OrganoidImage, ZStack


def write_cellseg(root: str | os.PathLike, labeled: list[CellImage], unlabeled: list[CellImage] = ()) -> Path:
    """NeurIPS-CellSeg layout: images/*.png, labels/*_label.tiff, unlabeled/*.png, modality.csv."""
    with atomic_dir(root) as tmp:
        rows = []
        for item in labeled:
            write_image(tmp / "images" / f"{item.name}.png", item.image)
            write_image(tmp / "labels" / f"{item.name}_label.tiff", item.labels.astype(np.int32))
            rows.append(item)
        for item in unlabeled:
            write_image(tmp / "unlabeled" / f"{item.name}.png", item.image)
            rows.append(item)
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        writer.writerow(["name", "modality", "diameter"])
        writer.writerows([r.name, r.modality, repr(float(r.diameter))] for r in rows)
        (tmp / "modality.csv").write_text(buf.getvalue(), encoding="utf-8")
    return Path(root)


def write_cellpose(root: str | os.PathLike, items: list[CellImage]) -> Path:
    """Cellpose layout: <stem>_img.png and <stem>_masks.png (uint16)."""
    with atomic_dir(root) as tmp:
        for item in items:
            write_image(tmp / f"{item.name}_img.png", item.image)
            write_image(tmp / f"{item.name}_masks.png", item.labels.astype(np.uint16))
    return Path(root)


def write_coco(path: str | os.PathLike, items: list[CellImage], image_dir: str | os.PathLike | None = None) -> Path:
    """COCO instance annotations (compressed RLE) and PNG images (LIVECell-style).

    Overlapping masks are written as they are (``item.masks``), otherwise one mask per label.
    """
    from pycocotools import mask as mask_utils

    path = Path(path)
    image_dir = Path(image_dir) if image_dir is not None else path.parent / "images"
    images, anns = [], []
    for img_id, item in enumerate(items, start=1):
        write_image(image_dir / f"{item.name}.png", item.image)
        h, w = item.image.shape[:2]
        images.append({"id": img_id, "file_name": f"{item.name}.png", "height": h, "width": w})
        masks = item.masks if item.masks is not None else [item.labels == i for i in range(1, item.labels.max() + 1)]
        for m in masks:
            if not m.any():
                continue
            rle = mask_utils.encode(np.asfortranarray(m.astype(np.uint8)))
            bbox = [float(v) for v in mask_utils.toBbox(rle)]
            rle["counts"] = rle["counts"].decode("ascii")
            anns.append({"id": len(anns) + 1, "image_id": img_id, "category_id": 1, "segmentation": rle,
                         "area": float(m.sum()), "bbox": bbox, "iscrowd": 0})
    coco = {"images": images, "annotations": anns, "categories": [{"id": 1, "name": "cell"}]}
    from .._io import atomic_write_text

    atomic_write_text(path, json.dumps(coco))
    return path


def write_zstacks(root: str | os.PathLike, stacks: list[ZStack]) -> Path:
    """stacks/<name>.tif (Z, H, W) float32, labels/<name>_label.tif and _class.tif, truth/."""
    with atomic_dir(root) as tmp:
        for s in stacks:
            write_image(tmp / "stacks" / f"{s.name}.tif", s.stack.astype(np.float32))
            if s.labels is not None:
                write_image(tmp / "labels" / f"{s.name}_label.tif", s.labels.astype(np.int32))
                cls = np.zeros_like(s.labels, np.uint8)
                for i, c in s.classes.items():
                    cls[s.labels == i] = c
                write_image(tmp / "labels" / f"{s.name}_class.tif", cls)
            if s.in_focus is not None:
                write_image(tmp / "truth" / f"{s.name}_focus.tif", s.in_focus.astype(np.float32))
            if s.depth is not None:
                write_image(tmp / "truth" / f"{s.name}_depth.tif", s.depth.astype(np.float32))
    return Path(root)


def write_organoids(root: str | os.PathLike, items: list[OrganoidImage]) -> Path:
    """images/<name>.czi (uint16), masks/<name>_mask.png, truth/<name>_labels.tif and _dropped.json."""
    with atomic_dir(root) as tmp:
        for o in items:
            write_czi(tmp / "images" / f"{o.name}.czi", to_uint16(o.image))
            if o.mask is not None:
                write_image(tmp / "masks" / f"{o.name}_mask.png", o.mask.astype(np.uint8) * 255)
            if o.labels is not None:
                write_image(tmp / "truth" / f"{o.name}_labels.tif", o.labels.astype(np.int32))
                (tmp / "truth" / f"{o.name}_dropped.json").write_text(json.dumps([int(i) for i in o.dropped]))
    return Path(root)


def to_uint16(image: np.ndarray) -> np.ndarray:
    """[0, 1] floats to uint16 (the organoid generator already quantises to these levels)."""
    return np.clip(np.round(image.astype(np.float64) * 65535), 0, 65535).astype(np.uint16)


def write_fields(root: str | os.PathLike, fields: list[Field], pool: list[Field] = ()) -> Path:
    """fields/<name>/{phase,bf_low,bf_high,fluorescence,amodal,nuclei}.tif and pool/<name>/."""
    with atomic_dir(root) as tmp:
        for group, items in (("fields", fields), ("pool", pool)):
            for f in items:
                folder = tmp / group / f.name
                for key in ("phase", "bf_low", "bf_high", "fluorescence"):
                    value = getattr(f, key)
                    if value is not None:
                        write_image(folder / f"{key}.tif", value.astype(np.float32))
                if f.amodal is not None:
                    amodal = f.amodal if len(f.amodal) else np.zeros((1, *f.phase.shape), bool)
                    write_image(folder / "amodal.tif", amodal.astype(np.uint8))
                    write_image(folder / "nuclei.tif", f.nuclei.astype(np.int32))
    return Path(root)
