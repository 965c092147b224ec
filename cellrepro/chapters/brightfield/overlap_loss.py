"""Table 5.3 of the brightfield thesis: overlap probability maps in the focal loss (Sec. 4.3, 5.4).

Sec. 5.4 trains "both cytoplasm and overlap decoders in parallel" (a 2-head SE-U-Net), the cytoplasm
head with BCE (Eq. 4.1) and the overlap head with a focal loss reweighted by a map ``P``
(:mod:`.overlap`: v0-v4), thresholds only the overlap head at 0.3 and scores it on pooled pixels.

Eq. 4.5 can be read two ways (:mod:`cellrepro.losses.focal`): as printed, the label becomes
``y (1 - P)``, which with the maps that are 1 on the annotated overlap (v2, v3, v4) turns every overlap
label into a background label, so the head would learn no overlap at all, and the thesis's own v2-v4
rows (its best) could not have come from it; as the prose describes it, ``1 - P`` relaxes the penalty
for predicting an overlap where one is likely (the negative term). The v0-v4 arms (:data:`ARMS`) use
the prose's reading (``"negative"``); the printed equation is run on v4 beside it, and Eq. 5.1 (the
whole loss times ``P``) on v4 is the arm of claim C5. ``none`` is Lin et al.'s focal loss without a
map. Focal alpha and gamma are Lin et al.'s 0.25 and 2 (the thesis gives none).
"""

from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

from ...data.types import Field
from ...losses.focal import OverlapFocalLoss
from . import train as bt
from .overlap import field_overlap_map

HEADS = ("cytoplasm", "overlap")
THRESHOLD = 0.3
"""The overlap head's threshold at inference (Sec. 5.4)."""
READING = "negative"
"""How the v0-v4 arms read Eq. 4.5 (the prose's reading; see the module docstring)."""
PRINTED = "v4, Eq. 4.5 as printed"
EQ51 = "v4, Eq. 5.1"
ARMS = {"none": (None, "label"), "v0": ("v0", READING), "v1": ("v1", READING), "v2": ("v2", READING),
        "v3": ("v3", READING), "v4": ("v4", READING), PRINTED: ("v4", "label"), EQ51: ("v4", "loss")}
"""Arm -> (map version or None for no map, focal reweighting of :class:`~cellrepro.losses.focal.OverlapFocalLoss`)."""
PAPER_ROWS = {"none": "SEU-Net, overlaps", **{f"v{i}": f"SEU-Net + attn. map (v{i}), overlaps" for i in range(5)}}
METRICS = {"accuracy": "accuracy", "precision": "precision", "recall": "recall", "f1": "F1", "iou": "IoU"}


def maps(fields: Sequence[Field], version: str | None) -> list[dict[str, np.ndarray]]:
    """Per field ``{"P": map}``: :func:`.overlap.field_overlap_map` of ``version``, or zeros for no map."""
    return [{"P": np.zeros(f.amodal.shape[1:], np.float32) if version is None
             else field_overlap_map(f, version).astype(np.float32)} for f in fields]


def overlap_loss(reweight: str, weights: Mapping[str, float] | None = None) -> bt.Loss:
    """BCE on the cytoplasm head plus the reweighted focal loss on the overlap head, whose map is the
    extra target ``"P"`` of :func:`.train.field_targets` (weights: lambda per head, default 1)."""
    focal = OverlapFocalLoss(reweight)
    weights = dict(weights or {})
    cyto, over, p = bt.target_index("cytoplasm"), bt.target_index("overlap"), bt.target_index("P", ["P"])

    def loss(logits: Mapping[str, torch.Tensor], targets: torch.Tensor) -> dict[str, torch.Tensor]:
        return {"cytoplasm": weights.get("cytoplasm", 1.0) * F.binary_cross_entropy_with_logits(
                    logits["cytoplasm"][:, 0].float(), targets[:, cyto]),
                "overlap": weights.get("overlap", 1.0) * focal(logits["overlap"][:, 0], targets[:, over], targets[:, p])}

    return loss


def seed_run(seed: int, train_fields: Sequence[Field], tests: Sequence[Field], settings: bt.Settings,
             arms: Sequence[str] = tuple(ARMS), threshold: float = THRESHOLD
             ) -> tuple[pd.DataFrame, dict[str, list[dict]]]:
    """Train and score every arm of one seed: one row per arm with ``seed``, ``arm``, ``map``,
    ``reweight`` and the overlap head's pooled ``accuracy``, ``precision``, ``recall``, ``f1``, ``iou``
    at ``threshold`` (and the cytoplasm head's F1 as ``cytoplasm_f1`` at 0.5); and each arm's test
    probabilities."""
    unknown = [a for a in arms if a not in ARMS]
    if unknown:
        raise ValueError(f"unknown arm {unknown[0]!r}; arms are {list(ARMS)}")
    rows, probs, cache = [], {}, {}
    for arm in arms:
        version, reweight = ARMS[arm]
        if version not in cache:
            cache[version] = maps(train_fields, version)
        net = bt.train_seunet(train_fields, HEADS, settings, seed, loss=overlap_loss(reweight, settings.weights),
                              extra=cache[version])
        probs[arm] = bt.predict(net, tests, settings)
        scores = bt.pooled_scores(probs[arm], tests, "overlap", threshold)
        cyto = bt.pooled_scores(probs[arm], tests, "cytoplasm", settings.threshold)["f1"]
        rows.append({"seed": seed, "arm": arm, "map": version or "none", "reweight": reweight,
                     **{k: scores[k] for k in METRICS}, "cytoplasm_f1": cyto})
    return pd.DataFrame(rows), probs


def paper_cells(rows: pd.DataFrame) -> dict[tuple[str, str], list[float]]:
    """The arms Table 5.3 has, per seed, keyed as it names its cells (for :func:`cellrepro.publish.report.compare`)."""
    sel = rows[rows["arm"].isin(list(PAPER_ROWS))].sort_values("seed")
    return {(PAPER_ROWS[arm], theirs): part[ours].tolist()
            for arm, part in sel.groupby("arm") for ours, theirs in METRICS.items()}

__all__ = ["ARMS", "EQ51", "HEADS", "METRICS", "PAPER_ROWS", "PRINTED", "READING", "THRESHOLD", "maps",
           "overlap_loss", "paper_cells", "seed_run"]
