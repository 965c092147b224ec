"""Pair a folder of predictions with a folder of ground truth (``cellrepro eval``).

| format | ground truth | predictions |
|---|---|---|
| ``cellseg`` | ``<stem>_label.tiff`` (in the folder or its ``labels/``) | ``<stem>_label.tiff`` (the challenge's submission naming) |
| ``cellpose`` | ``<stem>_masks.png`` | ``<stem>_masks.png`` or ``<stem>_cp_masks.png`` (Cellpose's output naming) |
| ``coco`` | a COCO annotation JSON | a COCO results JSON (``image_id``, ``segmentation``, ``score``) or annotation JSON |
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Iterator

import numpy as np

from ..data.files import check_labels, read_image
from ..data.types import DataError

FORMATS = ("cellseg", "cellpose", "coco")
_SUFFIXES = {"cellseg": ("_label.tiff", "_label.tif", "_label.png"),
             "cellpose": ("_cp_masks.png", "_cp_masks.tif", "_masks.png", "_masks.tif", "_masks.tiff")}


def _by_stem(folder: Path, fmt: str) -> dict[str, Path]:
    if fmt == "cellseg" and not any(folder.glob("*_label.*")) and (folder / "labels").is_dir():
        folder = folder / "labels"
    if not folder.is_dir():
        raise DataError(folder, "folder not found")
    found: dict[str, Path] = {}
    for path in sorted(folder.iterdir()):
        for suffix in _SUFFIXES[fmt]:
            if path.name.endswith(suffix):
                found.setdefault(path.name[: -len(suffix)], path)
                break
    if not found:
        raise DataError(folder, f"no label files ({' or '.join('*' + s for s in _SUFFIXES[fmt])})")
    return found


def pair_folders(gt: str | os.PathLike, pred: str | os.PathLike, fmt: str = "cellseg"
                 ) -> Iterator[tuple[str, np.ndarray, np.ndarray]]:
    """Yield ``(name, gt_labels, pred_labels)`` for every image, after checking the files pair up.

    Raises:
        DataError: names without a partner (all of them listed), or label images whose shapes
            differ (the prediction file is named).
    """
    if fmt == "coco":
        yield from _pair_coco(Path(gt), Path(pred))
        return
    if fmt not in _SUFFIXES:
        raise DataError(fmt, f"unknown format; formats are {', '.join(FORMATS)}")
    gts, preds = _by_stem(Path(gt), fmt), _by_stem(Path(pred), fmt)
    missing, extra = sorted(set(gts) - set(preds)), sorted(set(preds) - set(gts))
    if missing or extra:
        parts = []
        if missing:
            parts.append(f"no prediction for {len(missing)}: {', '.join(missing[:20])}")
        if extra:
            parts.append(f"no ground truth for {len(extra)}: {', '.join(extra[:20])}")
        raise DataError(pred, "files do not pair up; " + "; ".join(parts))
    for stem in sorted(gts):
        g = check_labels(read_image(gts[stem]), gts[stem])
        p = check_labels(read_image(preds[stem]), preds[stem], g.shape)
        yield stem, g, p


def _pair_coco(gt_json: Path, pred_json: Path) -> Iterator[tuple[str, np.ndarray, np.ndarray]]:
    from pycocotools import mask as mask_utils

    def load(path: Path):
        try:
            return json.loads(path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as err:
            raise DataError(path, f"cannot be read as JSON ({err})") from err

    gt, pred = load(gt_json), load(pred_json)
    if not isinstance(gt, dict) or "images" not in gt or "annotations" not in gt:
        raise DataError(gt_json, "expected a COCO annotation file with 'images' and 'annotations'")
    results = pred["annotations"] if isinstance(pred, dict) else pred
    ids = {im["id"] for im in gt["images"]}
    unknown = sorted({r["image_id"] for r in results} - ids)
    if unknown:
        raise DataError(pred_json, f"predictions for image ids not in the ground truth: {unknown[:20]}")

    def stack(anns, h, w):
        masks = []
        for a in anns:
            seg = a["segmentation"]
            rle = mask_utils.merge(mask_utils.frPyObjects(seg, h, w)) if isinstance(seg, list) else (
                mask_utils.frPyObjects(seg, h, w) if isinstance(seg.get("counts"), list) else seg)
            masks.append(mask_utils.decode(rle).astype(bool))
        return np.array(masks, bool) if masks else np.zeros((0, h, w), bool)

    for im in gt["images"]:
        h, w = int(im["height"]), int(im["width"])
        g = stack([a for a in gt["annotations"] if a["image_id"] == im["id"]], h, w)
        p = stack([r for r in results if r["image_id"] == im["id"]], h, w)
        yield str(im.get("file_name", im["id"])), g, p
