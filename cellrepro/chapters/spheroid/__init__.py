"""The spheroid chapter (Nguyen et al. 2024, SBS-Stacking + DSCMask R-CNN + SSC self-training).

:mod:`.dsc` (the weak-to-strong consistency loss of Eq. 13 and a DSCMask R-CNN training
step), :mod:`.ssc` (checkpoint stability and reliable-image selection, Sec. 3.3),
:mod:`.unetpp` (the U-Net++ baseline of Table 1); the models are
:func:`cellrepro.nets.maskrcnn.build_spheroid_maskrcnn`. Here: Table 1's COCO metrics
(:func:`table1_ap`) and the instances of a Mask R-CNN output in the form they take
(:func:`instances_from_detections`; :func:`.unetpp.instances_from_probs` gives the same form).
"""

from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np

from ...data.types import SPHEROID_CLASSES
from ...metrics.coco import coco_ap


def instances_from_detections(prediction: Mapping, mask_threshold: float = 0.5) -> dict[str, np.ndarray]:
    """A torchvision Mask R-CNN output dict as numpy instances: ``masks`` (N, H, W) bool
    (probabilities >= ``mask_threshold``; overlaps kept, as COCO evaluates detections),
    ``classes`` (N,), ``scores`` (N,) and ``boxes`` (N, 4) ``x0, y0, x1, y1``."""
    def numpy(key: str) -> np.ndarray:
        v = prediction[key]
        return v.detach().cpu().numpy() if hasattr(v, "detach") else np.asarray(v)

    masks = numpy("masks")
    return {"masks": masks.reshape(len(masks), *masks.shape[-2:]) >= mask_threshold,
            "classes": numpy("labels").astype(np.int64), "scores": numpy("scores").astype(np.float64),
            "boxes": numpy("boxes").astype(np.float64).reshape(-1, 4)}


def table1_ap(gts: Sequence[np.ndarray], gt_classes: Sequence[np.ndarray],
              instances: Sequence[Mapping[str, np.ndarray]], max_dets: int = 100) -> dict[str, float]:
    """Table 1's columns over the three classes (``SPHEROID_CLASSES``): ``bbox_AP``,
    ``bbox_AP50``, ``bbox_AP75``, ``mask_AP``, ``mask_AP50``, ``mask_AP75`` (fractions; COCO's
    mean over the classes with ground truth).

    Args:
        gts: per image, a label image or a mask stack.
        gt_classes: per image, the class of each of its instances (increasing label id, or stack order).
        instances: per image, the dict of :func:`instances_from_detections` or
            :func:`.unetpp.instances_from_probs` (without ``boxes``, the masks' boxes are scored).
        max_dets: COCO's detections per image.
    """
    if len(instances) != len(gts):
        raise ValueError(f"instances has {len(instances)} images but gts {len(gts)}")
    args = dict(gt_classes=gt_classes, pred_classes=[i["classes"] for i in instances], categories=SPHEROID_CLASSES,
                max_dets=max_dets)
    boxes = [i.get("boxes") for i in instances]
    preds, scores = [i["masks"] for i in instances], [i["scores"] for i in instances]
    out = {}
    for kind, extra in (("bbox", {"pred_boxes": None if any(b is None for b in boxes) else boxes}), ("mask", {})):
        ap = coco_ap(gts, preds, scores, iou_type="bbox" if kind == "bbox" else "segm", **args, **extra)
        out.update({f"{kind}_{k}": ap[k] for k in ("AP", "AP50", "AP75")})
    return out


__all__ = ["instances_from_detections", "table1_ap"]
