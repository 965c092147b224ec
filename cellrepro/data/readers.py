"""Readers for the public on-disk formats, each returning its family's structures.

| format | layout | returns |
|---|---|---|
| ``cellseg`` | ``images/<stem>.<ext>``, ``labels/<stem>_label.tiff``, optional ``unlabeled/``, ``modality.csv`` | ``(labeled, unlabeled)`` lists of :class:`CellImage` |
| ``cellpose`` | ``<stem>_img.png`` with ``<stem>_masks.png`` | list of :class:`CellImage` |
| ``livecell`` | a COCO JSON (polygons or RLE) and its image folder | list of :class:`CellImage` with ``masks`` |
| ``zstack`` | ``stacks/<name>.tif`` (Z, H, W) or ``stacks/<name>/`` of slices; ``labels/<name>_label.tif``, ``labels/<name>_class.tif`` | list of :class:`ZStack` |
| ``organoid`` | ``images/<name>.czi`` (or TIFF/PNG), ``masks/<name>_mask.png`` | list of :class:`OrganoidImage` |
| ``fields`` | ``fields/<name>/{phase,bf_low,bf_high,fluorescence,amodal,nuclei}.tif``, ``pool/<name>/`` | ``(fields, pool)`` lists of :class:`Field` |

Optional ground-truth files that only synthetic sets have (``truth/``) are read when present.
Every problem raises :class:`DataError` naming the file and what was expected.
"""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path

import numpy as np

from .files import check_labels, list_images, read_image
from .synthetic.multimodal import nucleus_channel
from .types import CellImage, DataError, Field, OrganoidImage, ZStack

LABEL_SUFFIXES = ("_label.tiff", "_label.tif", "_label.png")


def _rgb(image: np.ndarray, path: Path) -> np.ndarray:
    """Any grey/RGB(A) image of any integer/float type as (H, W, 3) uint8."""
    if image.ndim == 2:
        image = np.repeat(image[..., None], 3, -1)
    elif image.ndim == 3 and image.shape[-1] == 4:
        image = image[..., :3]
    elif image.ndim == 3 and image.shape[0] in (1, 3) and image.shape[-1] not in (1, 3):
        image = np.moveaxis(image, 0, -1)
        image = np.repeat(image, 3, -1) if image.shape[-1] == 1 else image
    if image.ndim != 3 or image.shape[-1] != 3:
        raise DataError(path, f"expected a grey or RGB image, found shape {image.shape}")
    if image.dtype == np.uint8:
        return image
    image = image.astype(np.float64)
    lo, hi = np.percentile(image, (0.0, 99.9))
    return np.clip((image - lo) / max(hi - lo, 1e-9) * 255, 0, 255).round().astype(np.uint8)


def _find_label(stem: str, folder: Path) -> Path | None:
    for suffix in LABEL_SUFFIXES:
        if (folder / f"{stem}{suffix}").is_file():
            return folder / f"{stem}{suffix}"
    return None


def read_cellseg(root: str | os.PathLike) -> tuple[list[CellImage], list[CellImage]]:
    """A NeurIPS-CellSeg style folder: labeled images, and unlabeled ones if ``unlabeled/`` exists."""
    root = Path(root)
    meta: dict[str, dict[str, str]] = {}
    if (root / "modality.csv").is_file():
        with open(root / "modality.csv", newline="", encoding="utf-8") as fh:
            meta = {row["name"]: row for row in csv.DictReader(fh)}

    def one(path: Path, labels: np.ndarray | None) -> CellImage:
        image = _rgb(read_image(path), path)
        m = meta.get(path.stem, {})
        modality = m.get("modality", "")
        if labels is not None:
            labels = check_labels(labels, _find_label(path.stem, root / "labels"), image.shape[:2])
        return CellImage(path.stem, image, labels, nucleus_channel(image, modality), modality,
                         float(m.get("diameter") or "nan"))

    labeled = []
    for path in list_images(root / "images", "images with instance labels in labels/"):
        label_path = _find_label(path.stem, root / "labels")
        if label_path is None:
            raise DataError(path, f"no label file: expected labels/{path.stem}_label.tiff")
        labeled.append(one(path, read_image(label_path)))
    unlabeled = [one(p, None) for p in list_images(root / "unlabeled", "unlabeled images")] \
        if (root / "unlabeled").is_dir() else []
    return labeled, unlabeled


def read_cellpose(root: str | os.PathLike, nucleus_channel_index: int | None = 0) -> list[CellImage]:
    """A Cellpose-style folder of ``<stem>_img.png`` and ``<stem>_masks.png``.

    Args:
        nucleus_channel_index: RGB channel holding nuclei (the Cellpose data set keeps the
            cytoplasm in green and nuclei in red, channel 0); None for no nucleus channel.
    """
    root = Path(root)
    images = [p for p in list_images(root, "<stem>_img.png files") if p.stem.endswith("_img")]
    if not images:
        raise DataError(root, "no <stem>_img.png files (Cellpose layout)")
    out = []
    for path in images:
        stem = path.stem[: -len("_img")]
        mask_path = next((root / f"{stem}_masks{ext}" for ext in (".png", ".tif", ".tiff")
                          if (root / f"{stem}_masks{ext}").is_file()), None)
        if mask_path is None:
            raise DataError(path, f"no mask file: expected {stem}_masks.png")
        image = _rgb(read_image(path), path)
        labels = check_labels(read_image(mask_path), mask_path, image.shape[:2])
        grey = image[..., 0] == image[..., 1]
        nuc = np.zeros(image.shape[:2], np.float32)
        if nucleus_channel_index is not None and not grey.all():
            nuc = image[..., nucleus_channel_index].astype(np.float32) / 255.0
        out.append(CellImage(stem, image, labels, nuc))
    return out


def read_livecell(annotations: str | os.PathLike, image_dir: str | os.PathLike | None = None) -> list[CellImage]:
    """LIVECell (or any COCO instance-segmentation) annotations with polygons or RLE.

    Args:
        annotations: the COCO JSON file.
        image_dir: folder of the images named in the JSON (default: the JSON's folder, or its
            ``images/`` sub-folder).
    """
    from pycocotools import mask as mask_utils

    annotations = Path(annotations)
    try:
        coco = json.loads(annotations.read_text(encoding="utf-8"))
        images_meta, anns = coco["images"], coco["annotations"]
    except FileNotFoundError as err:
        raise DataError(annotations, "file not found") from err
    except (json.JSONDecodeError, KeyError, TypeError) as err:
        raise DataError(annotations, f"not a COCO annotation file with 'images' and 'annotations' ({err})") from err
    if image_dir is None:
        image_dir = annotations.parent / "images" if (annotations.parent / "images").is_dir() else annotations.parent
    image_dir = Path(image_dir)
    by_image: dict[int, list[dict]] = {}
    for ann in anns:
        by_image.setdefault(ann["image_id"], []).append(ann)
    out = []
    for meta in images_meta:
        path = image_dir / meta["file_name"]
        image = _rgb(read_image(path), path)
        h, w = int(meta["height"]), int(meta["width"])
        if image.shape[:2] != (h, w):
            raise DataError(path, f"image is {image.shape[:2]} but the annotations say {(h, w)}")
        masks = []
        for ann in sorted(by_image.get(meta["id"], []), key=lambda a: a["id"]):
            seg = ann["segmentation"]
            if isinstance(seg, list):  # polygons
                rle = mask_utils.merge(mask_utils.frPyObjects(seg, h, w))
            elif isinstance(seg.get("counts"), list):  # uncompressed RLE
                rle = mask_utils.frPyObjects(seg, h, w)
            else:
                rle = seg
            masks.append(mask_utils.decode(rle).astype(bool))
        stack = np.array(masks, bool) if masks else np.zeros((0, h, w), bool)
        labels = np.zeros((h, w), np.int32)
        for i, m in enumerate(stack, start=1):
            labels[m] = i
        stem = Path(meta["file_name"]).stem
        out.append(CellImage(stem, image, labels, np.zeros((h, w), np.float32), masks=stack))
    return out


def read_zstacks(root: str | os.PathLike) -> list[ZStack]:
    """Z-stacks as multi-page TIFFs or folders of slices under ``stacks/``, labels under ``labels/``."""
    root = Path(root)
    folder = root / "stacks"
    if not folder.is_dir():
        raise DataError(folder, "folder not found (expected z-stacks: <name>.tif or <name>/ of slices)")
    entries = sorted(p for p in folder.iterdir() if not p.name.startswith(".")
                     and (p.is_dir() or p.suffix.lower() in (".tif", ".tiff")))
    if not entries:
        raise DataError(folder, "empty folder: expected z-stacks (<name>.tif or <name>/ of slices)")
    out = []
    for entry in entries:
        name = entry.stem if entry.is_file() else entry.name
        if entry.is_dir():
            slices = list_images(entry, "one image per slice")
            arrays = [read_image(p) for p in slices]
            for p, a in zip(slices, arrays):
                if a.shape != arrays[0].shape:
                    raise DataError(p, f"slice shape {a.shape} differs from the first slice's {arrays[0].shape}")
            stack = np.stack(arrays)
        else:
            stack = read_image(entry)
        if stack.ndim != 3 or stack.shape[0] < 2:
            raise DataError(entry, f"expected a z-stack of at least 2 slices (Z, H, W), found shape {stack.shape}")
        if stack.dtype.kind not in "uif":
            raise DataError(entry, f"expected numeric slices, found {stack.dtype}")
        stack = stack.astype(np.float32)
        labels, classes = None, {}
        label_path = _find_label(name, root / "labels")
        if label_path is not None:
            labels = check_labels(read_image(label_path), label_path, stack.shape[1:])
            class_path = root / "labels" / f"{name}_class.tif"
            if class_path.is_file():
                cls = check_labels(read_image(class_path), class_path, stack.shape[1:])
                ids = np.unique(labels[labels > 0])
                classes = {int(i): int(np.bincount(cls[labels == i]).argmax()) for i in ids}
        truth = root / "truth"
        in_focus = _optional(truth / f"{name}_focus.tif", stack.shape[1:])
        depth = _optional(truth / f"{name}_depth.tif", stack.shape[1:])
        out.append(ZStack(name, stack, labels, classes, in_focus, depth))
    return out


def _optional(path: Path, shape: tuple[int, ...]) -> np.ndarray | None:
    if not path.is_file():
        return None
    array = read_image(path)
    if array.shape != tuple(shape):
        raise DataError(path, f"shape {array.shape} differs from the data's {tuple(shape)}")
    return array


def read_organoids(root: str | os.PathLike) -> list[OrganoidImage]:
    """Organoid images (CZI, TIFF or PNG) under ``images/`` with masks ``masks/<name>_mask.png``."""
    root = Path(root)
    out = []
    for path in list_images(root / "images", "organoid images (.czi, .tif or .png)"):
        raw = read_image(path)
        if raw.ndim == 3:  # several channels: keep the first (transmitted light)
            raw = raw[0] if raw.shape[0] < raw.shape[-1] else raw[..., 0]
        if raw.dtype.kind in "ui":
            image = raw.astype(np.float32) / np.float32(np.iinfo(raw.dtype).max)
        else:
            image = raw.astype(np.float32)
        mask = None
        mask_path = next((root / "masks" / f"{path.stem}_mask{ext}" for ext in (".png", ".tif")
                          if (root / "masks" / f"{path.stem}_mask{ext}").is_file()), None)
        if mask_path is not None:
            mask = check_labels(read_image(mask_path), mask_path, image.shape) > 0
        labels = _optional(root / "truth" / f"{path.stem}_labels.tif", image.shape)
        dropped_path = root / "truth" / f"{path.stem}_dropped.json"
        dropped = json.loads(dropped_path.read_text()) if dropped_path.is_file() else []
        true_mask = labels > 0 if labels is not None else None
        out.append(OrganoidImage(path.stem, image, mask, true_mask,
                                 labels.astype(np.int32) if labels is not None else None, dropped))
    return out


def read_fields(root: str | os.PathLike) -> tuple[list[Field], list[Field]]:
    """Brightfield field sets under ``fields/`` (annotated) and ``pool/`` (unannotated)."""
    root = Path(root)

    def channel(folder: Path, name: str, required: bool = True) -> np.ndarray | None:
        path = folder / f"{name}.tif"
        if not path.is_file():
            if required:
                raise DataError(path, f"missing: a field needs {name}.tif")
            return None
        return read_image(path).astype(np.float32)

    def read(folder: Path, annotated: bool) -> Field:
        phase = channel(folder, "phase")
        images = {"bf_low": channel(folder, "bf_low"), "bf_high": channel(folder, "bf_high")}
        for key, img in images.items():
            if img.shape != phase.shape:
                raise DataError(folder / f"{key}.tif", f"shape {img.shape} differs from phase.tif's {phase.shape}")
        if not annotated:
            return Field(folder.name, phase, images["bf_low"], images["bf_high"])
        amodal_path = folder / "amodal.tif"
        if not amodal_path.is_file():
            raise DataError(amodal_path, "missing: an annotated field needs amodal.tif (N, H, W) cell masks")
        amodal = check_labels(read_image(amodal_path), amodal_path)
        if amodal.size % phase.size:
            raise DataError(amodal_path, f"expected (N, {phase.shape[0]}, {phase.shape[1]}) masks, found {amodal.shape}")
        amodal = amodal.reshape(-1, *phase.shape)
        amodal = amodal[amodal.reshape(len(amodal), -1).any(1)]  # an empty field is stored as one empty mask
        nuclei_path = folder / "nuclei.tif"
        nuclei = check_labels(read_image(nuclei_path), nuclei_path, phase.shape) if nuclei_path.is_file() \
            else np.zeros(phase.shape, np.int32)
        return Field(folder.name, phase, images["bf_low"], images["bf_high"], channel(folder, "fluorescence", False),
                     amodal > 0, nuclei)

    def folders(name: str) -> list[Path]:
        base = root / name
        return sorted(p for p in base.iterdir() if p.is_dir() and not p.name.startswith(".")) if base.is_dir() else []

    fields, pool = folders("fields"), folders("pool")
    if not fields and not pool:
        raise DataError(root, "no field sets: expected fields/<name>/ and/or pool/<name>/ folders of TIFFs")
    return [read(f, True) for f in fields], [read(p, False) for p in pool]
