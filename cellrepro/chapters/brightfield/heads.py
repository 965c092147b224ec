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

Claim C20 (more heads close the cytoplasm gaps near nuclei) is measured by :func:`fragments`: the
share of nucleus pixels the cytoplasm head leaves out (judged) and, per true cell, the connected
pieces of the cytoplasm prediction inside it (shown). Those gaps exist only where nuclei look like
background in brightfield: the section renders its fields with thin, large nuclei
(:class:`~cellrepro.data.synthetic.brightfield.Optics` ``nucleus``, ``nucleus_size``), and a
registered gate checks that the base model leaves them (:mod:`.claims`, which holds every verdict
rule of the section). Seeds run side by side on the CPU's cores (:func:`run_seeds`).
"""

from __future__ import annotations

import dataclasses
from typing import Sequence

import numpy as np
import pandas as pd
import torch
from scipy import ndimage as ndi

from ...data.synthetic import brightfield as synthetic
from ...data.types import Field
from ...nets.seunet import THESIS_HEADS
from ...data.synthetic.brightfield import semantic_maps
from ...metrics.semantic import pixel_ap
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
BOOK_ARMS = (*ARMS, PLAIN)
"""The arms the book runs."""
RING = 3
"""Width in pixels of the ring of cell pixels around each nucleus that :func:`fragments` compares with."""
ALL_CELL = "every pixel cell (no training)"
CORE = "cell cores (true cells, no training)"
"""Two more no-training baselines, the floors of the registered gates: the cytoplasm F1 of calling
every pixel cell, and the nuclei F1 of each true cell's core (distance to its edge > half the largest)."""
EXCITATION_FIELDS = 4
"""Test fields on which :func:`excitation_sd` is measured."""
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
    predicted not cytoplasm (the gaps of the thesis's Fig. 4.5); ``ring_gap``: the same share on the
    cell pixels of a :data:`RING` px ring just outside the nuclei (a model that misses more cell
    everywhere misses more there too); ``excess_gap``: ``nucleus_gap - ring_gap``, the gap specific
    to nuclei; ``cells``: how many cells.

    >>> from cellrepro.data.types import Field
    >>> cell = np.zeros((1, 5, 7), bool); cell[0, 1:4, 1:6] = True
    >>> nuc = np.zeros((5, 7), np.int32); nuc[2, 3] = 1
    >>> pred = cell[0].astype(float); pred[:, 3] = 0          # a gap through the nucleus
    >>> out = fragments(pred, Field("f", *(np.zeros((5, 7)),) * 3, None, cell, nuc))
    >>> out["fragments"], out["split_cells"], out["nucleus_gap"], round(out["ring_gap"], 3)
    (1.0, 1.0, 1.0, 0.143)
    """
    if f.amodal is None or f.nuclei is None:
        raise ValueError(f"field {f.name!r} has no annotation; fragments need its cells and nuclei")
    pred = np.asarray(prob) >= threshold
    if pred.shape != f.amodal.shape[1:]:
        raise ValueError(f"prediction shape {pred.shape} differs from field {f.name!r}'s {f.amodal.shape[1:]}")
    eight = np.ones((3, 3), bool)
    pieces = [ndi.label(pred & cell, structure=eight)[1] for cell in f.amodal if cell.any()]
    nuclei = f.nuclei > 0
    ring = ndi.binary_dilation(nuclei, iterations=RING) & ~nuclei & f.amodal.any(0)
    gap = float((nuclei & ~pred).sum() / max(int(nuclei.sum()), 1))
    ring_gap = float((ring & ~pred).sum() / max(int(ring.sum()), 1))
    return {"fragments": float(np.mean([max(k - 1, 0) for k in pieces])) if pieces else 0.0,
            "split_cells": float(np.mean([k > 1 for k in pieces])) if pieces else 0.0,
            "nucleus_gap": gap, "ring_gap": ring_gap, "excess_gap": gap - ring_gap, "cells": len(pieces)}


def threshold_baseline(f: Field, sigma: float = 3.0) -> np.ndarray:
    """A cytoplasm mask with no training: Otsu's threshold on ``G(|low - high|) + G(1 - mean)``, the
    Gaussian-smoothed (``sigma`` px) defocus contrast and darkness of the two planes."""
    from skimage.filters import threshold_otsu

    low, high = np.asarray(f.bf_low, np.float32), np.asarray(f.bf_high, np.float32)
    score = ndi.gaussian_filter(np.abs(low - high), sigma) + ndi.gaussian_filter(1 - (low + high) / 2, sigma)
    return score > threshold_otsu(score)


def _rows(seed: int, arm: str, probs: Sequence[dict], tests: Sequence[Field], threshold: float,
          border_width: int = 1) -> list[dict]:
    rows = []
    for target in ("cytoplasm", "nuclei", "border"):
        if target in probs[0]:
            rows.append({"seed": seed, "arm": arm, "target": target,
                         **bt.pooled_scores(probs, tests, target, threshold, border_width=border_width)})
    parts = pd.DataFrame([fragments(p["cytoplasm"], f, threshold) for p, f in zip(probs, tests)])
    rows[0].update({k: float(np.average(parts[k], weights=parts["cells"])) for k in ("fragments", "split_cells")})
    rows[0].update({k: float(parts[k].mean()) for k in ("nucleus_gap", "ring_gap", "excess_gap")})
    masks = [p["cytoplasm"] >= threshold for p in probs]
    truth = [semantic_maps(f.amodal, f.nuclei, border_width) for f in tests]
    filled = [m | t["nuclei"] for m, t in zip(masks, truth)]
    rows[0]["oracle_gain"] = _f1(filled, [t["cytoplasm"] for t in truth]) - _f1(masks, [t["cytoplasm"] for t in truth])
    for row in rows[1:]:  # what the head adds over a prior drawn from the arm's own cytoplasm mask
        prior = [cores(m) if row["target"] == "nuclei" else m & ~ndi.binary_erosion(m, iterations=border_width)
                 for m in masks]
        row["prior_f1"] = _f1(prior, [t[row["target"]] for t in truth])
        row["prior_ap"] = pixel_ap([m.astype(np.float32) for m in prior], [t[row["target"]] for t in truth])
        if row["target"] == "nuclei":
            row["removable_fp"] = removable_fp([p["nuclei"] >= threshold for p in probs], tests, border_width)
    return rows


def _f1(preds: Sequence[np.ndarray], truths: Sequence[np.ndarray]) -> float:
    from ...metrics.semantic import semantic_scores

    return float(semantic_scores([np.asarray(p, np.float32) for p in preds], truths, 0.5, pooled=True)["f1"])


def cores(mask: np.ndarray, share: float = 0.5) -> np.ndarray:
    """Each connected piece's core: its pixels farther than ``share`` x its largest distance from its
    edge. A nuclei prior that needs no nuclei head (nuclei sit in their cell's middle).

    >>> m = np.zeros((7, 7), bool); m[1:6, 1:6] = True
    >>> int(cores(m).sum())
    9
    """
    labels, n = ndi.label(mask)
    dist = ndi.distance_transform_edt(mask)
    out = np.zeros(mask.shape, bool)
    for i, piece in enumerate(ndi.find_objects(labels), start=1):
        d = np.where(labels[piece] == i, dist[piece], 0)
        out[piece] |= d > share * d.max()
    return out


def removable_fp(preds: Sequence[np.ndarray], fields: Sequence[Field], border_width: int) -> float:
    """Claim C3's phenomenon: the share of predicted nucleus pixels that lie outside every true cell or
    on a true cell border (``border_width`` px): the false positives that border and background heads
    could remove. Pooled over the fields."""
    removable, predicted = 0, 0
    for p, f in zip(preds, fields):
        maps = semantic_maps(f.amodal, f.nuclei, border_width)
        removable += int((p & (~maps["cytoplasm"] | maps["border"]) & ~maps["nuclei"]).sum())
        predicted += int(p.sum())
    return removable / predicted if predicted else float("nan")


@torch.no_grad()
def excitation_sd(net: torch.nn.Module, fields: Sequence[Field], settings: bt.Settings) -> float:
    """Claim C19's engagement: how much every SE layer's excitation weights (the sigmoid outputs that
    rescale the channels) vary between inference windows: per layer, the SD over windows of each
    channel's weight, averaged over the channels; then the mean over the layers. An SE layer whose
    weights do not depend on the input is a fixed per-channel scale (a reparametrisation of the next
    convolution, not attention): 0 then. NaN for a net without SE layers."""
    from monai.networks.blocks import ChannelSELayer

    layers = [m for m in net.modules() if isinstance(m, ChannelSELayer)]
    if not layers:
        return float("nan")
    weights: dict[int, list[torch.Tensor]] = {i: [] for i in range(len(layers))}

    def hook(i):
        return lambda module, inputs, out: weights[i].append(out.detach().flatten(1).cpu())

    handles = [layer.fc.register_forward_hook(hook(i)) for i, layer in enumerate(layers)]
    try:
        bt.predict(net, fields, settings)
    finally:
        for h in handles:
            h.remove()
    per_layer = [float(torch.cat(w).std(0).mean()) for w in weights.values() if sum(len(x) for x in w) > 1]
    return float(np.mean(per_layer)) if per_layer else float("nan")


def seed_run(seed: int, train_fields: Sequence[Field], tests: Sequence[Field], settings: bt.Settings,
             arms: Sequence[str] = (*ARMS, PLAIN)) -> tuple[pd.DataFrame, dict[str, list[dict]]]:
    """Train and score every arm on one seed's fields.

    Returns one row per (arm, target) -- ``seed``, ``arm``, ``target`` (cytoplasm, nuclei, border:
    the heads the arm has; the border ``settings.border_width`` px wide), the pooled ``accuracy``,
    ``precision``, ``recall``, ``f1``, ``dice``, ``iou``, ``ap``, and on cytoplasm rows
    ``fragments``, ``split_cells`` (cell-weighted over test fields), ``nucleus_gap`` (mean over
    fields) and ``se_sd`` (:func:`excitation_sd` on the first :data:`EXCITATION_FIELDS` test fields)
    -- and each arm's test probabilities (for figures).
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
        arm_rows = _rows(seed, arm, probs[arm], tests, settings.threshold, settings.border_width)
        arm_rows[0]["se_sd"] = excitation_sd(net, tests[:EXCITATION_FIELDS], arm_settings)
        rows += arm_rows
    return pd.DataFrame(rows), probs


def run_seeds(seeds: Sequence[int], train_fields, tests: Sequence[Field], settings: bt.Settings,
              arms: Sequence[str] = BOOK_ARMS, workers: int | str = "auto") -> tuple[pd.DataFrame, dict, float]:
    """:func:`seed_run` for every seed, side by side on the CPU's cores (:func:`.train.run_seeds`)."""
    return bt.run_seeds(seed_run, seeds, train_fields, tests, settings, workers, arms=arms)


def baseline_rows(tests: Sequence[Field]) -> pd.DataFrame:
    """The no-training baselines, scored like the arms (deterministic: seed -1): :func:`threshold_baseline`
    and :data:`ALL_CELL` on cytoplasm, :data:`CORE` on nuclei (:func:`cores` of the true cells)."""
    otsu = [{"cytoplasm": threshold_baseline(f).astype(np.float32)} for f in tests]
    every = [{"cytoplasm": np.ones(f.amodal.shape[1:], np.float32)} for f in tests]
    core = [cores(f.amodal.any(0)) for f in tests]
    core_row = {"seed": -1, "arm": CORE, "target": "nuclei",
                **bt.pooled_scores([{"nuclei": c.astype(np.float32)} for c in core], tests, "nuclei", 0.5)}
    return pd.DataFrame([_rows(-1, OTSU, otsu, tests, 0.5)[0], _rows(-1, ALL_CELL, every, tests, 0.5)[0], core_row])


def paper_cells(rows: pd.DataFrame) -> dict[tuple[str, str], list[float]]:
    """Each thesis arm's pooled metrics per seed, keyed as Tables 5.1 (cytoplasm) and 5.2 (nuclei) name
    their cells, for :func:`cellrepro.publish.report.compare` (mean and 95% interval over seeds)."""
    sel = rows[rows["arm"].isin(list(PAPER_ROWS)) & (rows["seed"] >= 0)].sort_values("seed")
    return {(f"{PAPER_ROWS[arm]}, {target}", theirs): part[ours].tolist()
            for (arm, target), part in sel.groupby(["arm", "target"]) for ours, theirs in METRICS.items()}


__all__ = ["ALL_CELL", "ARMS", "BOOK_ARMS", "CORE", "EXCITATION_FIELDS", "RING", "cores", "removable_fp", "METRICS", "OTSU", "PAPER_ROWS", "PLAIN", "TEST_SEED", "baseline_rows", "fields", "folder_split", "fragments",
           "excitation_sd", "paper_cells", "run_seeds", "seed_run", "held_out_fields", "threshold_baseline"]
