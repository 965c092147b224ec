"""The papers' metrics: semantic per class, instance F1 at IoU (NeurIPS-CellSeg exact or plain), COCO AP.

* :func:`semantic_scores`, :func:`per_class_scores`: accuracy, precision, recall, F1, IoU,
  Dice, pooled over pixels (brightfield thesis) or averaged per image; :func:`pixel_ap`, the
  threshold-free pixel average precision of a probability map.
* :func:`instance_scores`, :func:`evaluate`: one-to-one matching at an IoU threshold; mode
  ``"cellseg"`` is the challenge's official evaluation, ``"plain"`` has no frame removal,
  rounding or tiling. Label images or stacks of overlapping masks.
* :func:`coco_ap`: COCO mask or box AP through pycocotools.
"""

from .coco import STATS, coco_ap, coco_eval, to_coco
from .instance import Overlaps, match, overlaps, relabel, remove_frame_instances
from .scores import MODES, evaluate, instance_scores
from .semantic import confusion, per_class_scores, pixel_ap, scores, semantic_scores

__all__ = ["MODES", "STATS", "Overlaps", "coco_ap", "coco_eval", "confusion", "evaluate", "instance_scores", "match",
           "overlaps", "per_class_scores", "pixel_ap", "relabel", "remove_frame_instances", "scores", "semantic_scores", "to_coco"]
