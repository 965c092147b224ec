"""COCO mask and box AP (AP, AP50, AP75, AP_S, AP_M, AP_L) with pycocotools.

The spheroid paper's Table 1 (fractions) and the brightfield thesis's Tables 5.7-5.11
(percent) are COCO AP. This module does the one part that is easy to get subtly wrong, the
conversion of label images or mask stacks and scores into COCO structures: run-length
encoding in Fortran order, areas from the masks, boxes from the RLE (or given: a detector's own
boxes), ``iscrowd = 0``, one category or one per class (the spheroid paper's three); then
``COCOeval`` does the rest. pycocotools' progress prints are silenced.
"""

from __future__ import annotations

import contextlib
import io
from typing import Mapping, Sequence

import numpy as np

STATS = ("AP", "AP50", "AP75", "AP_S", "AP_M", "AP_L")


def _masks(instances: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(N, H, W) bool from a label image (one per id present, increasing) or a stack, and which
    of the N are non-empty."""
    instances = np.asarray(instances)
    if instances.ndim == 2:
        ids = np.unique(instances)
        ids = ids[ids != 0]
        stack = instances[None] == ids[:, None, None] if ids.size else np.zeros((0, *instances.shape), bool)
    else:
        stack = instances.astype(bool)
    return stack, stack.any((1, 2))


def _align(values, n: int, keep: np.ndarray | None, name: str, img_id: int) -> np.ndarray:
    """Per-instance ``values`` of image ``img_id`` for the ``n`` instances; those of empty masks
    are dropped where ``keep`` says (values may also come without them already)."""
    values = np.asarray(values)
    if keep is None:
        if len(values) != n:
            raise ValueError(f"{name}: image {img_id} has {n} instances but {len(values)} values")
        return values
    if len(values) == n:
        return values[keep]
    if len(values) == keep.sum():
        return values
    raise ValueError(f"{name}: image {img_id} has {n} instances ({int(keep.sum())} non-empty) but {len(values)} values")


def _encode(mask: np.ndarray) -> dict:
    from pycocotools import mask as mask_utils

    rle = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
    rle["counts"] = rle["counts"].decode("ascii")
    return rle


def _categories(categories: Mapping[int, str] | None, classes: list[np.ndarray]) -> dict[int, str]:
    """The category table: ``categories``, else ``{1: "cell"}`` without classes, else every class seen."""
    if categories is None:
        seen = sorted({int(c) for cls in classes for c in cls})
        categories = {c: f"class {c}" for c in seen} if seen else {1: "cell"}
    bad = [c for c in categories if int(c) < 1]
    if bad:
        raise ValueError(f"categories: ids must be >= 1 (0 is the background), got {bad}")
    return {int(k): str(v) for k, v in categories.items()}


def to_coco(gts: Sequence[np.ndarray], preds: Sequence[np.ndarray], scores: Sequence[np.ndarray] | None = None,
            gt_classes: Sequence[np.ndarray] | None = None, pred_classes: Sequence[np.ndarray] | None = None,
            pred_boxes: Sequence[np.ndarray] | None = None, categories: Mapping[int, str] | None = None
            ) -> tuple[dict, list[dict]]:
    """Ground truth as a COCO dataset dict and predictions as a COCO results list.

    Per-instance values (``scores``, classes, boxes) follow the instances: the stack's order
    (values for empty masks may be given or left out) or increasing label id.

    Args:
        gts: per image, a label image (H, W) or a mask stack (N, H, W).
        preds: per image, a label image or a mask stack of predictions.
        scores: per image, one confidence per predicted instance; all 1.0 when None.
        gt_classes, pred_classes: per image, one category id (>= 1) per instance; all 1 when
            None (one category, the single-class convention of the other chapters).
        pred_boxes: per image, (N, 4) ``x0, y0, x1, y1`` boxes of the predicted instances
            (Mask R-CNN's box head: not the masks' bounding boxes); then every prediction is
            kept, also one whose mask is empty (its box still counts). Default: boxes of the masks.
        categories: category id -> name; default ``{1: "cell"}``, or every class id seen.

    Multi-class AP is COCO's: each category is scored on its own, categories without ground
    truth are left out, and AP is the mean over the others.
    """
    from pycocotools import mask as mask_utils

    if len(gts) != len(preds):
        raise ValueError(f"{len(gts)} ground-truth images but {len(preds)} predictions")
    for name, values in (("scores", scores), ("gt_classes", gt_classes), ("pred_classes", pred_classes),
                         ("pred_boxes", pred_boxes)):
        if values is not None and len(values) != len(gts):
            raise ValueError(f"{name}: {len(values)} images, but {len(gts)} ground-truth images")
    cats = _categories(categories, [np.asarray(c) for cls in (gt_classes, pred_classes) if cls is not None
                                    for c in cls])
    images, anns, results = [], [], []
    for img_id, (gt, pred) in enumerate(zip(gts, preds), start=1):
        h, w = np.asarray(gt).shape[-2:]
        if np.asarray(pred).shape[-2:] != (h, w):
            raise ValueError(f"image {img_id}: prediction {np.asarray(pred).shape[-2:]} differs from ground truth {(h, w)}")
        images.append({"id": img_id, "height": int(h), "width": int(w)})
        stack, keep = _masks(gt)
        cls = np.ones(len(stack), int) if gt_classes is None else \
            _align(gt_classes[img_id - 1], len(stack), keep, "gt_classes", img_id)
        for m, c in zip(stack[keep], cls):
            rle = _encode(m)
            anns.append({"id": len(anns) + 1, "image_id": img_id, "category_id": int(c), "segmentation": rle,
                         "area": float(m.sum()), "bbox": [float(v) for v in mask_utils.toBbox(rle)], "iscrowd": 0})
        stack, keep = _masks(pred)
        keep = None if pred_boxes is not None else keep
        kept = stack if keep is None else stack[keep]
        conf = np.ones(len(kept)) if scores is None else _align(scores[img_id - 1], len(stack), keep, "scores", img_id)
        cls = np.ones(len(kept), int) if pred_classes is None else \
            _align(pred_classes[img_id - 1], len(stack), keep, "pred_classes", img_id)
        boxes = None if pred_boxes is None else \
            _align(np.asarray(pred_boxes[img_id - 1], float).reshape(-1, 4), len(stack), None, "pred_boxes", img_id)
        for i, (m, s, c) in enumerate(zip(kept, conf, cls)):
            rle = _encode(m)
            box = mask_utils.toBbox(rle) if boxes is None else [*boxes[i, :2], *(boxes[i, 2:] - boxes[i, :2])]
            results.append({"image_id": img_id, "category_id": int(c), "segmentation": rle, "score": float(s),
                             "area": float(m.sum()), "bbox": [float(v) for v in box]})
    unknown = sorted({a["category_id"] for a in anns + results} - set(cats))
    if unknown:
        raise ValueError(f"gt_classes / pred_classes: class ids {unknown} are not in categories {sorted(cats)}")
    dataset = {"images": images, "annotations": anns, "categories": [{"id": k, "name": v} for k, v in cats.items()]}
    return dataset, results


def coco_eval(dataset: dict, results: list[dict], iou_type: str = "segm", max_dets: int = 100) -> dict[str, float]:
    """Run ``COCOeval`` on COCO structures; AP values as fractions, NaN where COCO gives -1."""
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    with contextlib.redirect_stdout(io.StringIO()):
        coco_gt = COCO()
        coco_gt.dataset = dataset
        coco_gt.createIndex()
        coco_dt = coco_gt.loadRes(results) if results else COCO()
        if not results:  # COCO cannot load an empty result list: no detection scores zero
            return {k: (0.0 if dataset["annotations"] else float("nan")) for k in STATS}
        ev = COCOeval(coco_gt, coco_dt, iou_type)
        ev.params.maxDets = [1, 10, max_dets]
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    return {k: (float(v) if v >= 0 else float("nan")) for k, v in zip(STATS, ev.stats[:6])}


def coco_ap(gts: Sequence[np.ndarray], preds: Sequence[np.ndarray], scores: Sequence[np.ndarray] | None = None,
            iou_type: str = "segm", max_dets: int = 100, gt_classes: Sequence[np.ndarray] | None = None,
            pred_classes: Sequence[np.ndarray] | None = None, pred_boxes: Sequence[np.ndarray] | None = None,
            categories: Mapping[int, str] | None = None) -> dict[str, float]:
    """Mask (``iou_type="segm"``) or box (``"bbox"``) AP of predictions against ground truth.

    Classes, boxes and categories as in :func:`to_coco`; ``pred_boxes`` are used for box AP only
    (mask AP keeps the single-class convention of dropping empty predicted masks).

    Example:
        >>> gt = np.zeros((32, 32), int); gt[4:12, 4:12] = 1
        >>> round(coco_ap([gt], [gt])["AP"], 6)
        1.0
        >>> round(coco_ap([gt], [gt], gt_classes=[[2]], pred_classes=[[3]])["AP"], 6)  # wrong class
        0.0
    """
    if iou_type not in ("segm", "bbox"):
        raise ValueError(f"iou_type must be 'segm' or 'bbox', got {iou_type!r}")
    dataset, results = to_coco(gts, preds, scores, gt_classes, pred_classes,
                               pred_boxes if iou_type == "bbox" else None, categories)
    return coco_eval(dataset, results, iou_type, max_dets)
