"""spheroid-C3, -C5 and -C8, Table 1: DSC against Mask R-CNN on each backbone (C3), against U-Net++
(C5), at strict IoU (C8); units are seeds."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ....publish.decision import Gate, gate

from .table2 import FLOOR_AP75, FLOOR_MAP, dsc_gates, view_gap


UNETPP = "U-Net++"
"""The arm name of Table 1's semantic baseline in :func:`judge_table1`'s rows."""

BACKBONE_ROWS = {"r18": "R50-FPN", "r50": "R50-FPN", "r101": "R101-FPN", "x101_32x4d": "X101-32x4d",
                 "x101_64x4d": "X101-64x4d"}
"""The paper's Table 1 row each backbone stands in: the CPU-sized ResNet-18 sits in the ResNet-50 rows."""


def _table1_arms():
    from ..train import TABLE1_ARMS  # here, not at the top: this module stays free of torch

    return TABLE1_ARMS


def _points(results: pd.DataFrame, arm: str, metric: str, backbone: str | None = None) -> pd.Series:
    rows = results[results["arm"] == arm]
    if backbone is not None:
        rows = rows[rows["backbone"] == backbone]
    return 100 * rows.set_index("seed").sort_index()[metric].astype(float)


def dsc_gains(results: pd.DataFrame, metric: str) -> dict[str, pd.Series]:
    """Per backbone, DSCMask R-CNN minus Mask R-CNN in ``metric`` (points) per seed, and ``pooled``:
    their mean over the backbones run (spheroid-C3's unit: a seed, every backbone of it paired)."""
    (base, _, _), (dsc, _, _) = _table1_arms()
    backbones = [b for b in results["backbone"].unique() if b != "plain"]
    gains = {b: _points(results, dsc, metric, b) - _points(results, base, metric, b) for b in backbones}
    return {**gains, "pooled": sum(gains.values()) / len(gains)}


def _baselines(results: pd.DataFrame) -> dict[str, pd.DataFrame]:
    (base, _, _), _ = _table1_arms()
    rows = results[results["arm"] == base]
    return {b: g.set_index("seed").sort_index() for b, g in rows.groupby("backbone", sort=False)}


def c3_gates(results: pd.DataFrame) -> list[Gate]:
    """spheroid-C3's registered gates: DSC engaged (:func:`dsc_gates`); the phenomenon DSC relies
    on, the SBS (weak) view easier for the detector than the all-slice (strong) view it teaches
    (the baseline's mask mAP on each shared test stack's weak view minus its strong view, averaged
    over seeds; the 95 % interval over stacks above 0, on every backbone); the baseline off the
    floor (mask mAP within [:data:`FLOOR_MAP`, 90] and AP75 >= :data:`FLOOR_AP75` points, the
    lowest backbone)."""
    bases = _baselines(results)
    gaps = [view_gap(b, "weak", "strong")["low"] if _has_views(b) else None for b in bases.values()]
    return [*dsc_gates(results, _table1_arms()),
            gate("phenomenon present (SBS view easier for the detector than the all-slice view), 95% low",
                 None if None in gaps else float(min(gaps)), at_least=np.nextafter(0, 1)),
            gate("reference off floor and ceiling", float(min(100 * b["mask_AP"].mean() for b in bases.values())),
                 within=(FLOOR_MAP, 90.0)),
            gate("reference off floor (AP75)", float(min(100 * b["mask_AP75"].mean() for b in bases.values())),
                 at_least=FLOOR_AP75)]


def c5_gates(results: pd.DataFrame) -> list[Gate]:
    """spheroid-C5's registered gates: DSC engaged; U-Net++ segments (foreground Dice >= 0.5, mean
    over seeds) and its mask AP50 within [10, 95] points."""
    unet = results[results["arm"] == UNETPP]
    return [*dsc_gates(results, _table1_arms()),
            gate("reference engaged (U-Net++ segments)", float(unet["dice"].mean()), at_least=0.5),
            gate("reference off floor and ceiling", float(100 * unet["mask_AP50"].mean()), within=(10.0, 95.0))]


def c8_gates(results: pd.DataFrame) -> list[Gate]:
    """spheroid-C8's registered gates: DSC engaged; a boundary error to ease (the baseline's mask
    AP50 - AP75 >= 10 points) and the baseline's AP75 within [5, 90] (the lowest backbone)."""
    bases = _baselines(results).values()
    return [*dsc_gates(results, _table1_arms()),
            gate("phenomenon present (boundary error exists)",
                 float(min(100 * (b["mask_AP50"] - b["mask_AP75"]).mean() for b in bases)), at_least=10.0),
            gate("reference off floor and ceiling", float(min(100 * b["mask_AP75"].mean() for b in bases)),
                 within=(5.0, 90.0))]


def judge_table1(results: pd.DataFrame, seconds_per_seed: float | None = None) -> dict[str, float | str]:
    """spheroid-C3, -C5 and -C8 from Table 1's rows (:func:`~.train.run_arms` rows for Mask R-CNN and
    DSCMask R-CNN with a ``backbone`` column, and :data:`UNETPP` rows from
    :func:`~.train.evaluate_unetpp`, backbone ``"plain"``), each through
    :func:`~cellrepro.publish.report.judge` with its registered gates; units are seeds.

    * C3: DSC - Mask R-CNN mask mAP (points), the mean over the backbones run; each backbone's own
      reading by :func:`~cellrepro.publish.decision.decide` is in the note (not deciding);
    * C5: DSC (first backbone) - U-Net++ mask AP50 (points); Mask R-CNN - U-Net++ in the note;
    * C8: DSC's gain in mask AP75 minus its gain in AP50 (points), mean over the backbones.

    Returns the values the page states (points): ``c3``, ``c5``, ``c8``, ``box`` (DSC's box mAP
    gain), ``two_stage`` (Mask R-CNN - U-Net++ AP50), each with its interval over seeds as text
    (``<name>_ci``), the registered paper effects ``paper_c3`` and ``paper_c5``, the first
    backbone's baseline ``base_map`` and ``base_ap75`` and ``weak_gap`` (SBS view - all-slice
    view, with ``weak_gap_ci``; the gates take the lowest backbone, the same with one),
    ``unet_dice``, and DSC's activity as its gates read it (``dsc_box_share``,
    ``dsc_loss_share``: the lowest)."""
    from ....publish import report, tables
    from ....publish.claims import registration
    from ....publish.decision import decide
    from ....publish.report import paired_effect

    mask = dsc_gains(results, "mask_AP")
    per_bb = {b: decide(g.to_numpy(), test="superiority", paper_effect=None).verdict
              for b, g in mask.items() if b != "pooled"}
    report.judge("spheroid-C3", mask["pooled"].to_numpy(), gates=c3_gates(results), digits=2,
                 seconds_per_unit=seconds_per_seed,
                 note="per backbone (decide, shown): " + ", ".join(
                     f"{b} {mask[b].mean():+.2f} ({v})" for b, v in per_bb.items()))
    (base, _, _), (dsc, _, _) = _table1_arms()
    first = next(b for b in results["backbone"].unique() if b != "plain")
    unet = _points(results, UNETPP, "mask_AP50")
    c5 = _points(results, dsc, "mask_AP50", first) - unet
    two_stage = paired_effect((_points(results, base, "mask_AP50", first) - unet).to_numpy())
    report.judge("spheroid-C5", c5.to_numpy(), gates=c5_gates(results), digits=2, seconds_per_unit=seconds_per_seed,
                 note=f"Mask R-CNN ({first}) - U-Net++ mask AP50: {tables.fmt_effect(two_stage, 2)} points "
                      f"(the part of the gap that is two-stage vs semantic); U-Net++ instances: connected "
                      f"components per class, score = mean class probability")
    c8 = dsc_gains(results, "mask_AP75")["pooled"] - dsc_gains(results, "mask_AP50")["pooled"]
    report.judge("spheroid-C8", c8.to_numpy(), gates=c8_gates(results), digits=2, seconds_per_unit=seconds_per_seed,
                 note="AP75 stands for the strict-boundary reading; boundary IoU not computed")
    b0 = _baselines(results)[first]
    gap = view_gap(b0, "weak", "strong") if _has_views(b0) else None
    effects = {"c3": mask["pooled"], "c5": c5, "c8": c8, "box": dsc_gains(results, "bbox_AP")["pooled"]}
    out: dict[str, float | str] = {}
    for name, diff in effects.items():
        e = paired_effect(diff.to_numpy())
        out |= {name: e["mean"], f"{name}_ci": tables.fmt_interval(e["low"], e["high"], e["n"], 2)}
    activity = {g.name.rsplit(", ", 1)[-1]: g.value for g in dsc_gates(results, _table1_arms())}
    return {**out, "two_stage": two_stage["mean"],
            "two_stage_ci": tables.fmt_interval(two_stage["low"], two_stage["high"], two_stage["n"], 2),
            "paper_c3": float(registration("spheroid-C3")["paper_effect"]),
            "paper_c5": float(registration("spheroid-C5")["paper_effect"]),
            "base_map": float(100 * b0["mask_AP"].mean()), "base_ap75": float(100 * b0["mask_AP75"].mean()),
            "weak_gap": gap["mean"] if gap else float("nan"),
            "weak_gap_ci": tables.fmt_interval(gap["low"], gap["high"], gap["n"], 1, "stacks") if gap else "not measured",
            "unet_dice": float(results.loc[results["arm"] == UNETPP, "dice"].mean()),
            "dsc_box_share": float(activity["box pixels"]), "dsc_loss_share": float(activity["loss share"])}


def _has_views(base: pd.DataFrame) -> bool:
    return {"weak_mask_AP_images", "strong_mask_AP_images"} <= set(base.columns)


def table1_cells(results: pd.DataFrame) -> dict[tuple[str, str], list[float]]:
    """This run's values in the paper's Table 1 cells (``{(row, column): per-seed values}``) for
    :func:`~cellrepro.publish.report.compare`: each backbone in its :data:`BACKBONE_ROWS` row,
    U-Net++ in the "Ngo TKN [15], R50" row (mask columns only; the paper's U-Net++ reports no boxes)."""
    (base, _, _), (dsc, _, _) = _table1_arms()
    columns = {"bbox_AP": "bbox mAP@[.5:.95]", "bbox_AP50": "bbox AP50", "mask_AP": "mask mAP@[.5:.95]",
               "mask_AP50": "mask AP50"}
    method = {base: "Mask R-CNN", dsc: "DSCMask R-CNN"}
    cells: dict[tuple[str, str], list[float]] = {}
    for (arm, bb), g in results.groupby(["arm", "backbone"], sort=False):
        row = "Ngo TKN [15], R50" if arm == UNETPP else f"{method[arm]}, {BACKBONE_ROWS[bb]}"
        if (row, "mask AP50") in cells:
            raise ValueError(f"two backbones stand in the paper's row {row!r} (r18 sits in the R50 rows): run one of them")
        for col, name in columns.items():
            if arm != UNETPP or col.startswith("mask"):
                cells[row, name] = g.sort_values("seed")[col].tolist()
    return cells
