"""COCO mask and box AP (AP, AP50, AP75, AP_S, AP_M, AP_L) with pycocotools.

The spheroid paper's Table 1 (fractions) and the brightfield thesis's Tables 5.7-5.11
(percent) are COCO AP. This module does the one part that is easy to get subtly wrong, the
conversion of label images or mask stacks and scores into COCO structures: run-length
encoding in Fortran order, areas from the masks, boxes from the RLE, ``iscrowd = 0``, one
category; then ``COCOeval`` does the rest. pycocotools' progress prints are silenced.
"""

from __future__ import annotations

import contextlib
import io
from typing import Sequence

import numpy as np

STATS = ("AP", "AP50", "AP75", "AP_S", "AP_M", "AP_L")


def _masks(instances: np.ndarray) -> np.ndarray:
    """(N, H, W) bool from a label image or a stack; empty masks dropped."""
    instances = np.asarray(instances)
    if instances.ndim == 2:
        ids = np.unique(instances)
        ids = ids[ids != 0]
        stack = instances[None] == ids[:, None, None] if ids.size else np.zeros((0, *instances.shape), bool)
    else:
        stack = instances.astype(bool)
    return stack[stack.reshape(len(stack), -1).any(1)] if len(stack) else stack


def _encode(mask: np.ndarray) -> dict:
    from pycocotools import mask as mask_utils

    rle = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
    rle["counts"] = rle["counts"].decode("ascii")
    return rle


def to_coco(gts: Sequence[np.ndarray], preds: Sequence[np.ndarray], scores: Sequence[np.ndarray] | None = None
            ) -> tuple[dict, list[dict]]:
    """Ground truth as a COCO dataset dict and predictions as a COCO results list.

    Args:
        gts: per image, a label image (H, W) or a mask stack (N, H, W).
        preds: per image, a label image or a mask stack of predictions.
        scores: per image, one confidence per predicted instance (in the order of the stack,
            or of increasing label id); all 1.0 when None.
    """
    from pycocotools import mask as mask_utils

    if len(gts) != len(preds):
        raise ValueError(f"{len(gts)} ground-truth images but {len(preds)} predictions")
    images, anns, results = [], [], []
    for img_id, (gt, pred) in enumerate(zip(gts, preds), start=1):
        h, w = np.asarray(gt).shape[-2:]
        if np.asarray(pred).shape[-2:] != (h, w):
            raise ValueError(f"image {img_id}: prediction {np.asarray(pred).shape[-2:]} differs from ground truth {(h, w)}")
        images.append({"id": img_id, "height": int(h), "width": int(w)})
        for m in _masks(gt):
            rle = _encode(m)
            anns.append({"id": len(anns) + 1, "image_id": img_id, "category_id": 1, "segmentation": rle,
                         "area": float(m.sum()), "bbox": [float(v) for v in mask_utils.toBbox(rle)], "iscrowd": 0})
        stack = _masks(pred)
        conf = np.ones(len(stack)) if scores is None else np.asarray(scores[img_id - 1], float)
        if len(conf) != len(stack):
            raise ValueError(f"image {img_id}: {len(stack)} predicted instances but {len(conf)} scores")
        for m, s in zip(stack, conf):
            rle = _encode(m)
            results.append({"image_id": img_id, "category_id": 1, "segmentation": rle, "score": float(s),
                            "area": float(m.sum()), "bbox": [float(v) for v in mask_utils.toBbox(rle)]})
    dataset = {"images": images, "annotations": anns, "categories": [{"id": 1, "name": "cell"}]}
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
            iou_type: str = "segm", max_dets: int = 100) -> dict[str, float]:
    """Mask (``iou_type="segm"``) or box (``"bbox"``) AP of predictions against ground truth.

    Example:
        >>> gt = np.zeros((32, 32), int); gt[4:12, 4:12] = 1
        >>> round(coco_ap([gt], [gt])["AP"], 6)
        1.0
    """
    dataset, results = to_coco(gts, preds, scores)
    return coco_eval(dataset, results, iou_type, max_dets)
