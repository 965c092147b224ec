"""Tables 5.1-5.2 of the brightfield thesis: SE-U-Nets with 1 to 4 decoupled heads (Sec. 4.2, 5.3).

Per data seed (:func:`seed_run`) every arm of :data:`ARMS` is trained on that seed's annotated
fields (the thesis: 18 training images) with Eq. 4.2 (:func:`.train.bce_heads_loss`, equal lambdas:
the thesis gives none), and scored on one fixed set of held-out test fields with the thesis's
pooled-pixel metrics at threshold 0.5:

* ``base``: cytoplasm only (Fig. 4.4a); ``2-head``: cytoplasm + nuclei; ``3-head``: cytoplasm, border,
  background (Sec. 5.3: "the 3-headed model, which exploits cytoplasm, cell border, and background");
  ``4-head``: cytoplasm, nuclei, border, background (Eq. 4.2);
* ``U-Net (no SE)``: the base arm without squeeze-and-excitation, the control of claim C19 (the thesis
  cites the Tartu group for "SE beats U-Net" and shows no numbers);
* a classical control with no training (:func:`threshold_baseline`): Otsu's threshold on the
  smoothed defocus contrast and darkness of the two planes, so that a reader sees how far the
  networks are from what a threshold already does.

The thesis's base row of Table 5.2 has nuclei scores although the base model predicts cytoplasm
only (register, brightfield-C3): here arms without a nuclei head have no nuclei row.

Claim C20 (more heads close the cytoplasm gaps near nuclei) is measured by :func:`fragments`:
per true cell, the connected pieces of the cytoplasm prediction inside it, and the share of nucleus
pixels the cytoplasm head leaves out.
"""

from __future__ import annotations

import dataclasses
from typing import Sequence

import numpy as np
import pandas as pd
from scipy import ndimage as ndi

from ...data.synthetic import brightfield as synthetic
from ...data.types import Field
from ...nets.seunet import THESIS_HEADS
from . import train as bt

ARMS = {"base": ("cytoplasm",), "2-head": ("cytoplasm", "nuclei"), "3-head": ("cytoplasm", "border", "background"),
        "4-head": THESIS_HEADS}
"""Arm -> heads, the rows of Tables 5.1-5.2."""
PLAIN = "U-Net (no SE)"
"""The C19 control: the base arm with every SE layer removed."""
OTSU = "Otsu threshold (no training)"
PAPER_ROWS = {"base": "SEU-Net (base)", "2-head": "SEU-Net (2-head)", "3-head": "SEU-Net (3-head)",
              "4-head": "SEU-Net (4-head)"}
METRICS = {"accuracy": "accuracy", "precision": "precision", "recall": "recall", "f1": "F1", "iou": "IoU"}
"""Our metric name -> the thesis's column name."""
TEST_SEED = 10_000
"""Data seed of the held-out test fields (training fields use the run's seeds, far below it)."""


def fields(seed: int, n: int, size: int, overlap: float = 0.35,
           optics: synthetic.Optics = synthetic.Optics()) -> list[Field]:
    """``n`` annotated synthetic fields of side ``size`` drawn with ``seed`` (no unannotated pool),
    rendered with ``optics``."""
    return synthetic.generate(n=n, n_pool=0, size=size, seed=seed, overlap=overlap, optics=optics)[0]


def held_out_fields(n: int, size: int, overlap: float = 0.35, optics: synthetic.Optics = synthetic.Optics()
                    ) -> list[Field]:
    """The held-out test fields (data seed :data:`TEST_SEED`)."""
    return fields(TEST_SEED, n, size, overlap, optics)


def folder_split(root: str, n_test: int) -> tuple[list[Field], list[Field]]:
    """A user's annotated fields (``root/fields/<name>/*.tif``, :func:`cellrepro.data.readers.read_fields`)
    split by name: the last ``n_test`` are the test fields, the rest train (every seed trains on the
    same fields then; only the initialisation and crops change)."""
    from ...data.readers import read_fields

    annotated = sorted(read_fields(root)[0], key=lambda f: f.name)
    if len(annotated) <= n_test:
        raise ValueError(f"{root}: {len(annotated)} annotated fields, need more than n_test = {n_test} "
                         "(the rest are the training fields)")
    return annotated[:-n_test], annotated[-n_test:]


def fragments(prob: np.ndarray, f: Field, threshold: float = 0.5) -> dict[str, float]:
    """Claim C20's counts for one field's cytoplasm probability.

    Returns ``fragments``: mean over true cells of the number of 8-connected pieces the prediction
    makes inside the cell beyond the first (0 for a cell covered in one piece or not at all);
    ``split_cells``: share of cells in more than one piece; ``nucleus_gap``: share of nucleus pixels
    predicted not cytoplasm (the gaps of the thesis's Fig. 4.5); ``cells``: how many cells.

    >>> from cellrepro.data.types import Field
    >>> cell = np.zeros((1, 5, 7), bool); cell[0, 1:4, 1:6] = True
    >>> nuc = np.zeros((5, 7), np.int32); nuc[2, 3] = 1
    >>> pred = cell[0].astype(float); pred[:, 3] = 0          # a gap through the nucleus
    >>> out = fragments(pred, Field("f", *(np.zeros((5, 7)),) * 3, None, cell, nuc))
    >>> out["fragments"], out["split_cells"], out["nucleus_gap"]
    (1.0, 1.0, 1.0)
    """
    if f.amodal is None or f.nuclei is None:
        raise ValueError(f"field {f.name!r} has no annotation; fragments need its cells and nuclei")
    pred = np.asarray(prob) >= threshold
    if pred.shape != f.amodal.shape[1:]:
        raise ValueError(f"prediction shape {pred.shape} differs from field {f.name!r}'s {f.amodal.shape[1:]}")
    eight = np.ones((3, 3), bool)
    pieces = [ndi.label(pred & cell, structure=eight)[1] for cell in f.amodal if cell.any()]
    nuclei = f.nuclei > 0
    return {"fragments": float(np.mean([max(k - 1, 0) for k in pieces])) if pieces else 0.0,
            "split_cells": float(np.mean([k > 1 for k in pieces])) if pieces else 0.0,
            "nucleus_gap": float((nuclei & ~pred).sum() / max(int(nuclei.sum()), 1)),
            "cells": len(pieces)}


def threshold_baseline(f: Field, sigma: float = 3.0) -> np.ndarray:
    """A cytoplasm mask with no training: Otsu's threshold on ``G(|low - high|) + G(1 - mean)``, the
    Gaussian-smoothed (``sigma`` px) defocus contrast and darkness of the two planes."""
    from skimage.filters import threshold_otsu

    low, high = np.asarray(f.bf_low, np.float32), np.asarray(f.bf_high, np.float32)
    score = ndi.gaussian_filter(np.abs(low - high), sigma) + ndi.gaussian_filter(1 - (low + high) / 2, sigma)
    return score > threshold_otsu(score)


def _rows(seed: int, arm: str, probs: Sequence[dict], tests: Sequence[Field], threshold: float) -> list[dict]:
    rows = []
    for target in ("cytoplasm", "nuclei"):
        if target in probs[0]:
            rows.append({"seed": seed, "arm": arm, "target": target,
                         **bt.pooled_scores(probs, tests, target, threshold)})
    parts = pd.DataFrame([fragments(p["cytoplasm"], f, threshold) for p, f in zip(probs, tests)])
    rows[0].update({k: float(np.average(parts[k], weights=parts["cells"])) for k in ("fragments", "split_cells")})
    rows[0]["nucleus_gap"] = float(parts["nucleus_gap"].mean())
    return rows


def seed_run(seed: int, train_fields: Sequence[Field], tests: Sequence[Field], settings: bt.Settings,
             arms: Sequence[str] = (*ARMS, PLAIN)) -> tuple[pd.DataFrame, dict[str, list[dict]]]:
    """Train and score every arm on one seed's fields.

    Returns one row per (arm, target) -- ``seed``, ``arm``, ``target`` (cytoplasm, nuclei), the pooled
    ``accuracy``, ``precision``, ``recall``, ``f1``, ``dice``, ``iou``, and on cytoplasm rows
    ``fragments``, ``split_cells`` (cell-weighted over test fields) and ``nucleus_gap`` (mean over
    fields) -- and each arm's test probabilities (for figures).
    """
    unknown = [a for a in arms if a not in ARMS and a != PLAIN]
    if unknown:
        raise ValueError(f"unknown arm {unknown[0]!r}; arms are {[*ARMS, PLAIN]}")
    rows, probs = [], {}
    for arm in arms:
        heads = ARMS.get(arm, ARMS["base"])
        arm_settings = dataclasses.replace(settings, se=False) if arm == PLAIN else settings
        net = bt.train_seunet(train_fields, heads, arm_settings, seed)
        probs[arm] = bt.predict(net, tests, arm_settings)
        rows += _rows(seed, arm, probs[arm], tests, settings.threshold)
    return pd.DataFrame(rows), probs


def baseline_rows(tests: Sequence[Field]) -> pd.DataFrame:
    """:func:`threshold_baseline`'s cytoplasm row, scored like the arms (deterministic: seed -1)."""
    masks = [{"cytoplasm": threshold_baseline(f).astype(np.float32)} for f in tests]
    return pd.DataFrame(_rows(-1, OTSU, masks, tests, 0.5))


def paper_cells(rows: pd.DataFrame) -> dict[tuple[str, str], list[float]]:
    """Each thesis arm's pooled metrics per seed, keyed as Tables 5.1 (cytoplasm) and 5.2 (nuclei) name
    their cells, for :func:`cellrepro.publish.report.compare` (mean and 95% interval over seeds)."""
    sel = rows[rows["arm"].isin(list(PAPER_ROWS)) & (rows["seed"] >= 0)].sort_values("seed")
    return {(f"{PAPER_ROWS[arm]}, {target}", theirs): part[ours].tolist()
            for (arm, target), part in sel.groupby(["arm", "target"]) for ours, theirs in METRICS.items()}


def per_seed(rows: pd.DataFrame, target: str, value: str) -> pd.DataFrame:
    """``value`` on ``target`` per seed (rows) and arm (columns), for paired contrasts."""
    sel = rows[(rows["target"] == target) & (rows["seed"] >= 0)]
    return sel.pivot(index="seed", columns="arm", values=value)


def contrast(rows: pd.DataFrame, target: str, a: str, b: str, value: str = "f1") -> dict[str, float]:
    """``a - b`` of ``value`` on ``target``, paired over seeds (:func:`cellrepro.publish.report.paired_effect`)."""
    from ...publish import report

    table = per_seed(rows, target, value)
    return report.paired_effect((table[a] - table[b]).to_numpy())


def c2_rule(rows: pd.DataFrame) -> tuple[str, dict[str, float], dict[str, float]]:
    """brightfield-C2: a big jump 1 -> 2 heads *and* a similarly big leap 3 -> 4 (cytoplasm F1).

    Returns ``(verdict, jump 1 -> 2, d)`` with ``d = (4h - 3h) - (2h - base) / 2`` paired over seeds.
    holds if both intervals lie above 0; fails if either lies below 0 (for ``d``: the leap is smaller
    than half the jump, the register's rule, with an interval); otherwise inconclusive.
    """
    from ...publish import report

    f1 = per_seed(rows, "cytoplasm", "f1")
    jump = report.paired_effect((f1["2-head"] - f1["base"]).to_numpy())
    d = report.paired_effect(((f1["4-head"] - f1["3-head"]) - (f1["2-head"] - f1["base"]) / 2).to_numpy())
    first, second = report.verdict(jump), report.verdict(d)
    if first == "fails" or second == "fails":
        return "fails", jump, d
    if first == "holds" and second == "holds":
        return "holds", jump, d
    return "inconclusive", jump, d


def best_within_se(rows: pd.DataFrame, arm: str, target: str = "cytoplasm") -> tuple[bool, str]:
    """Is ``arm``'s mean F1 within one standard error (over seeds) of the best thesis arm's? And the best."""
    f1 = per_seed(rows, target, "f1")[[a for a in PAPER_ROWS if a in per_seed(rows, target, "f1")]]
    best = f1.mean().idxmax()
    se = float(f1[best].std(ddof=1) / np.sqrt(len(f1))) if len(f1) > 1 else float("nan")
    return bool(f1[best].mean() - f1[arm].mean() <= se), best


__all__ = ["ARMS", "METRICS", "OTSU", "PAPER_ROWS", "PLAIN", "TEST_SEED", "baseline_rows", "best_within_se", "c2_rule", "contrast", "fields", "folder_split", "fragments",
           "paper_cells", "per_seed", "seed_run", "held_out_fields", "threshold_baseline"]
