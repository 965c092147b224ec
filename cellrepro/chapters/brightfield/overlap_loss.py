"""Table 5.3 of the brightfield thesis: overlap probability maps in the focal loss (Sec. 4.3, 5.4).

Sec. 5.4 trains "both cytoplasm and overlap decoders in parallel" (a 2-head SE-U-Net), the cytoplasm
head with BCE (Eq. 4.1) and the overlap head with a focal loss reweighted by a map ``P``
(:mod:`.overlap`: v0-v4), thresholds only the overlap head at 0.3 and scores it on pooled pixels.
Issue 31 scores it threshold-free first (pixel average precision, ``ap``), F1 at 0.3 beside: the
maps move the operating point, so F1 at a fixed threshold mixes calibration with discrimination.

**Weak labels.** The maps exist because the thesis's overlap annotation is weak (hand-drawn amodal
polygons). The synthetic fields' overlaps are exact, so every arm but the positive control trains on
:func:`~cellrepro.data.synthetic.brightfield.weak_overlaps` of its fields (drawn once per seed, the
same for every arm: ``Streams(seed).numpy("weak-overlaps")``), and the maps are built from the weak
annotation, as the thesis builds them from its own; the test fields keep the exact truth. The
``"exact labels"`` arm (no map, exact overlaps) is the positive control: if it does not beat the
weak-label no-map arm, weak labels cost nothing here and no map can be expected to recover it.

**Two readings, each made coherent.** Eq. 4.5 as printed replaces the label by ``y (1 - P)``; v4 as
the project first read Eq. 4.3-4.4 (the distance to the *other* cells, ``reading="other-cells"``) is 1
on every overlap, so the printed form would remove every overlap label and the head could learn
nothing. Two readings keep the thesis's equations consistent with its results, and both are run:

- **prose** (:data:`READINGS` ``"prose"``): v4 over the other cells, and Eq. 4.5 as the prose
  describes it, ``1 - P`` relaxing the penalty for predicting an overlap where one is likely
  (the negative term, ``"negative"``); the published runs' reading;
- **printed**: Eq. 4.5 exactly as printed (``"label"``) with v4 read as Sec. 4.3's per-cell interior
  distance map (``reading="interior"``: low at the cell's border, rising inwards), under which
  ``y (1 - P)`` keeps most of each overlap's label.

Eq. 5.1 (the whole loss times ``P``, ``"loss"``) is run with each reading's v4; claim C5 (it brings
"no significant improvement") is judged under each (:mod:`.claims`). Focal alpha and gamma are Lin et
al.'s 0.25 and 2 (the thesis gives none). v0-v3 remain arms a user may name (:data:`ARMS`); the book
runs :data:`BOOK_ARMS`.
"""

from __future__ import annotations

from typing import Callable, Mapping, NamedTuple, Sequence

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

from ...data.synthetic.brightfield import semantic_maps, weak_overlaps
from ...data.types import Field
from ...engine.streams import Streams
from ...losses.focal import OverlapFocalLoss
from ...metrics.semantic import pixel_ap
from . import train as bt
from .overlap import field_overlap_map

HEADS = ("cytoplasm", "overlap")
THRESHOLD = 0.3
"""The overlap head's threshold at inference (Sec. 5.4)."""
READING = "negative"
"""How the prose reading (and the v0-v3 arms) read Eq. 4.5 (see the module docstring)."""


class Arm(NamedTuple):
    """One overlap-loss arm: ``map`` (a version of :mod:`.overlap` or None), the focal ``reweight`` of
    :class:`~cellrepro.losses.focal.OverlapFocalLoss`, v4's ``reading`` (:data:`.overlap.V4_READINGS`)
    and whether the arm trains on the ``exact`` overlaps (the positive control) or the weak ones."""

    map: str | None
    reweight: str
    reading: str = "other-cells"
    exact: bool = False


NONE, EXACT = "none", "none, exact labels"
V4, EQ51 = "v4", "v4, Eq. 5.1"
PRINTED, PRINTED_EQ51 = "v4 interior, Eq. 4.5 as printed", "v4 interior, Eq. 5.1"
ARMS = {NONE: Arm(None, "label"), EXACT: Arm(None, "label", exact=True),
        **{f"v{i}": Arm(f"v{i}", READING) for i in range(4)},
        V4: Arm("v4", READING), EQ51: Arm("v4", "loss"),
        PRINTED: Arm("v4", "label", "interior"), PRINTED_EQ51: Arm("v4", "loss", "interior")}
"""Every arm a run may name."""
BOOK_ARMS = (NONE, EXACT, V4, EQ51, PRINTED, PRINTED_EQ51)
"""The arms the book runs (issue 31: fewer arms, more seeds; v0-v3 dropped)."""
READINGS = {"prose": (V4, EQ51), "printed": (PRINTED, PRINTED_EQ51)}
"""Reading -> (its Eq. 4.5 arm, its Eq. 5.1 arm)."""
PAPER_ROWS = {NONE: "SEU-Net, overlaps", **{f"v{i}": f"SEU-Net + attn. map (v{i}), overlaps" for i in range(5)}}
METRICS = {"accuracy": "accuracy", "precision": "precision", "recall": "recall", "f1": "F1", "iou": "IoU"}
WEAK = {"missing": 0.5, "coarse": 3}
"""Default weakening of the training overlaps (:func:`~cellrepro.data.synthetic.brightfield.weak_overlaps`)."""


def maps(fields: Sequence[Field], version: str | None, reading: str = "other-cells") -> list[dict[str, np.ndarray]]:
    """Per field ``{"P": map}``: :func:`.overlap.field_overlap_map` of ``version`` (v4 in ``reading``),
    or zeros for no map."""
    kwargs = {"reading": reading} if version == "v4" else {}
    return [{"P": np.zeros(f.amodal.shape[1:], np.float32) if version is None
             else field_overlap_map(f, version, **kwargs).astype(np.float32)} for f in fields]


def weaken(fields: Sequence[Field], seed: int, missing: float = WEAK["missing"], coarse: int = WEAK["coarse"]
           ) -> list[Field]:
    """``fields`` with weak overlap annotation (:func:`~cellrepro.data.synthetic.brightfield.weak_overlaps`),
    drawn from the seed's own stream so every arm of a seed sees the same weak labels."""
    rng = Streams(seed).numpy("weak-overlaps")
    return [weak_overlaps(f, rng, missing, coarse) for f in fields]


def label_agreement(weak: Sequence[Field], exact: Sequence[Field]) -> dict[str, float]:
    """How weak the weak overlap labels are, pooled over the fields: ``dice`` with the exact ones
    and ``kept``, the share of exact overlap pixels they still mark (both 1: not weakened)."""
    w = np.concatenate([semantic_maps(f.amodal, f.nuclei)["overlap"].ravel() for f in weak])
    e = np.concatenate([semantic_maps(f.amodal, f.nuclei)["overlap"].ravel() for f in exact])
    total = int(w.sum() + e.sum())
    return {"dice": float(2 * (w & e).sum() / total) if total else float("nan"),
            "kept": float((w & e).sum() / e.sum()) if e.any() else float("nan")}


REFERENCE = {EXACT: NONE, V4: NONE, EQ51: V4, PRINTED: NONE, PRINTED_EQ51: PRINTED,
             **{f"v{i}": NONE for i in range(4)}}
"""Arm -> the arm it is compared with (its ``shift`` column: how much the treatment moved the predictions)."""


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
             arms: Sequence[str] = BOOK_ARMS, threshold: float = THRESHOLD,
             weak: Mapping[str, float] | None = WEAK) -> tuple[pd.DataFrame, dict[str, list[dict]]]:
    """Train and score every arm of one seed.

    ``weak`` (``missing``, ``coarse``) weakens the training overlaps (:func:`weaken`) for every arm
    but :data:`EXACT`; None trains every arm on the fields as given (a user's annotation, already
    as weak as it is).

    Returns one row per arm with ``seed``, ``arm``, ``map``, ``reweight``, ``reading``, ``labels``
    (weak / exact), the overlap head's pooled ``ap``, its AP over the pixels inside true cells
    (``ap_cells``: the overlaps' ranking among the cell pixels, where background cannot weigh in) and
    ``accuracy``, ``precision``, ``recall``, ``f1``, ``iou`` at ``threshold``, the cytoplasm head's F1
    at ``settings.threshold`` (``cytoplasm_f1``), against the arm's :data:`REFERENCE` arm (when that
    arm ran first) ``shift`` (share of test pixels whose thresholded overlap differs) and
    ``rank_shift`` (:func:`ranking_shift`), and ``label_dice`` and ``label_kept``
    (:func:`label_agreement` of the training labels); and each arm's test probabilities."""
    unknown = [a for a in arms if a not in ARMS]
    if unknown:
        raise ValueError(f"unknown arm {unknown[0]!r}; arms are {list(ARMS)}")
    weak_fields = list(train_fields) if weak is None else weaken(train_fields, seed, **weak)
    agreement = {False: label_agreement(weak_fields, train_fields), True: {"dice": 1.0, "kept": 1.0}}
    truth = [semantic_maps(f.amodal, f.nuclei)["overlap"] for f in tests]
    cells = [f.amodal.any(0) for f in tests]
    rows, probs, cache = [], {}, {}
    for arm in arms:
        spec = ARMS[arm]
        fields = list(train_fields) if spec.exact else weak_fields
        key = (spec.map, spec.reading, spec.exact)
        if key not in cache:
            cache[key] = maps(fields, spec.map, spec.reading)
        net = bt.train_seunet(fields, HEADS, settings, seed, loss=overlap_loss(spec.reweight, settings.weights),
                              extra=cache[key])
        probs[arm] = bt.predict(net, tests, settings)
        scores = bt.pooled_scores(probs[arm], tests, "overlap", threshold)
        cyto = bt.pooled_scores(probs[arm], tests, "cytoplasm", settings.threshold)["f1"]
        ref = REFERENCE.get(arm)
        shift = prediction_shift(probs[ref], probs[arm], threshold) if ref in probs else float("nan")
        rank = ranking_shift(probs[ref], probs[arm], truth) if ref in probs else float("nan")
        labels = agreement[spec.exact or weak is None]
        rows.append({"seed": seed, "arm": arm, "map": spec.map or "none", "reweight": spec.reweight,
                     "reading": spec.reading if spec.map == "v4" else "", "labels": "exact" if spec.exact else "weak",
                     "ap": scores["ap"], "ap_cells": pixel_ap([p["overlap"][c] for p, c in zip(probs[arm], cells)],
                                                              [t[c] for t, c in zip(truth, cells)]),
                     **{k: scores[k] for k in METRICS}, "cytoplasm_f1": cyto, "shift": shift, "rank_shift": rank,
                     "label_dice": labels["dice"], "label_kept": labels["kept"]})
    return pd.DataFrame(rows), probs


def run_seeds(seeds: Sequence[int], train_fields: Callable[[int], Sequence[Field]] | Sequence[Field],
              tests: Sequence[Field], settings: bt.Settings, arms: Sequence[str] = BOOK_ARMS,
              threshold: float = THRESHOLD, weak: Mapping[str, float] | None = WEAK, workers: int | str = "auto"
              ) -> tuple[pd.DataFrame, dict[str, list[dict]], float]:
    """:func:`seed_run` for every seed, side by side on the CPU's cores (:func:`.train.run_seeds`)."""
    return bt.run_seeds(seed_run, seeds, train_fields, tests, settings, workers,
                        arms=arms, threshold=threshold, weak=weak)


def ranking_shift(a: Sequence[Mapping[str, np.ndarray]], b: Sequence[Mapping[str, np.ndarray]],
                  truth: Sequence[np.ndarray], head: str = "overlap") -> float:
    """Share of the ``k`` highest-ranked pixels (pooled over the fields; ``k`` = the true overlap
    pixels) that differ between two arms' ``head`` probabilities: how much a treatment changed the
    *ranking* that AP scores, whatever it did to the calibration (a loss that only shifts every
    probability changes thresholded predictions but no ranking; 0 then).

    >>> t = [np.array([[1, 0], [0, 0]])]
    >>> p, q = [{"overlap": np.array([[0.9, 0.1], [0.2, 0.3]])}], [{"overlap": np.array([[0.1, 0.9], [0.2, 0.3]])}]
    >>> ranking_shift(p, p, t), ranking_shift(p, q, t)
    (0.0, 1.0)
    """
    if not len(a) == len(b) == len(truth):
        raise ValueError(f"{len(a)} and {len(b)} predictions for {len(truth)} truth maps")
    k = int(sum(np.count_nonzero(t) for t in truth))
    if k == 0:
        return float("nan")
    top = [set(np.argpartition(-np.concatenate([x[head].ravel() for x in arm]), k - 1)[:k].tolist()) for arm in (a, b)]
    return float(1 - len(top[0] & top[1]) / k)


def prediction_shift(a: Sequence[Mapping[str, np.ndarray]], b: Sequence[Mapping[str, np.ndarray]],
                     threshold: float = THRESHOLD, head: str = "overlap") -> float:
    """Share of pixels (pooled over the fields) whose thresholded ``head`` differs between two arms'
    predictions: 0 when a treatment left the model's output unchanged.

    >>> p = [{"overlap": np.array([[0.1, 0.5], [0.9, 0.2]])}]
    >>> q = [{"overlap": np.array([[0.4, 0.5], [0.9, 0.2]])}]
    >>> prediction_shift(p, q)
    0.25
    """
    if len(a) != len(b):
        raise ValueError(f"{len(a)} predictions against {len(b)}")
    changed = sum(int(((x[head] >= threshold) != (y[head] >= threshold)).sum()) for x, y in zip(a, b))
    return float(changed / sum(x[head].size for x in a))


def paper_cells(rows: pd.DataFrame) -> dict[tuple[str, str], list[float]]:
    """The arms Table 5.3 has, per seed, keyed as it names its cells (for :func:`cellrepro.publish.report.compare`)."""
    sel = rows[rows["arm"].isin(list(PAPER_ROWS))].sort_values("seed")
    return {(PAPER_ROWS[arm], theirs): part[ours].tolist()
            for arm, part in sel.groupby("arm") for ours, theirs in METRICS.items()}


__all__ = ["ARMS", "Arm", "BOOK_ARMS", "EQ51", "EXACT", "HEADS", "METRICS", "NONE", "PAPER_ROWS", "PRINTED",
           "PRINTED_EQ51", "READING", "READINGS", "REFERENCE", "THRESHOLD", "V4", "WEAK", "label_agreement", "maps",
           "overlap_loss", "paper_cells", "prediction_shift", "ranking_shift", "run_seeds", "seed_run", "weaken"]
