"""Tables 5.1-5.2's verdict rules: the decoupled heads (brightfield-C1, C2, C3, C19, C20)."""

from __future__ import annotations

import math
from typing import Any

import pandas as pd

from ....publish.decision import Gate, gate
from ..heads import PLAIN as PLAIN_ARM
from ....publish.rules import low, summary

NUCLEUS_GAP = 0.05
"""The base model must leave at least this share of nucleus pixels out of its cytoplasm (issue 31)."""
REMOVABLE_FP = 0.02
"""C3's phenomenon: at least this share of the 2-head model's nucleus pixels lie outside cells or on borders."""
SE_SD = 0.01
"""SE layers engaged if their excitation weights vary between inference windows by at least this SD."""
PAPER = {"brightfield-C1": 0.0221, "brightfield-C2": 0.01025, "brightfield-C3": 0.0202, "brightfield-C19": 0.01,
         "brightfield-C20": 0.0221}
"""The effect each ceiling leaves room for (the paper's, or the planning effect; C20's reference is C1's)."""


def _value(rows: pd.DataFrame, arm: str, target: str, column: str) -> float:
    sel = rows[(rows["arm"] == arm) & (rows["target"] == target)][column].astype(float)
    return float(sel.mean()) if len(sel) else float("nan")


def heads_paired(rows: pd.DataFrame, target: str, column: str = "f1") -> pd.DataFrame:
    """``column`` on ``target`` per seed (rows) and arm (columns); the no-training baselines left out."""
    sel = rows[(rows["target"] == target) & (rows["seed"] >= 0)]
    return sel.pivot(index="seed", columns="arm", values=column)


def floors(rows: pd.DataFrame) -> dict[str, float]:
    """The F1 a reference must beat to be off the floor, from the no-training baselines of
    :func:`..heads.baseline_rows`: cytoplasm, the larger of calling every pixel cell and Otsu's
    threshold; nuclei, the cores of the true cells."""
    from ..heads import ALL_CELL, CORE, OTSU

    return {"cytoplasm": max(_value(rows, ALL_CELL, "cytoplasm", "f1"), _value(rows, OTSU, "cytoplasm", "f1")),
            "nuclei": _value(rows, CORE, "nuclei", "f1")}


def heads_gates(rows: pd.DataFrame, claim: str) -> list[Gate]:
    """The registered gates of ``claim`` (brightfield-C1, C2, C3, C19 or C20), as a design referee
    asked (issue 31): every gate must be one a trivial predictor or the generator alone cannot pass.

    - *phenomenon present (oracle)* (C1): filling the base model's cytoplasm with the true nuclei
      raises its F1 by at least the thesis's +0.0221 (mean over seeds): else the gaps cannot carry a
      thesis-sized effect;
    - *phenomenon present (nucleus gap)* (C20): the base model leaves >= :data:`NUCLEUS_GAP` of the
      nucleus pixels out of its cytoplasm;
    - *phenomenon present (the jump exists)*, *(border and background heads help)* (C2): the lower
      ends of the 95% intervals of 2-head - base and 3-head - base cytoplasm F1 above 0 (without
      the second, the 3 -> 4 step adds the same nuclei effect as the 1 -> 2 jump and d > 0 follows);
    - *phenomenon present (removable nucleus false positives)* (C3): >= :data:`REMOVABLE_FP` of the
      2-head model's nucleus pixels lie outside cells or on borders (what border and background
      heads could remove);
    - *treatment engaged (nuclei head learns)*, *(border head learns)*: the 4-head model's head
      beats the prior drawn from its own cytoplasm mask (cores; the inner ring) in pixel AP
      (threshold-free: a rare target's head may rank it well yet sit below 0.5; C3: the border head
      only, the nuclei head being in both arms);
    - *treatment engaged* (C19): the base SE-U-Net's excitations vary between windows by >=
      :data:`SE_SD`;
    - *reference off floor and ceiling*: the reference's F1 above the no-training floor
      (:func:`floors`) and at most 1 - 2 x the effect of :data:`PAPER` (room for the effect).
    """
    learns = {t: gate(f"treatment engaged ({t} head learns)",
                      _value(rows, "4-head", t, "ap") - _value(rows, "4-head", t, "prior_ap"),
                      at_least=math.nextafter(0, 1)) for t in ("nuclei", "border")}
    arm, target = {"brightfield-C1": ("base", "cytoplasm"), "brightfield-C2": ("3-head", "cytoplasm"),
                   "brightfield-C3": ("2-head", "nuclei"), "brightfield-C19": (PLAIN_ARM, "cytoplasm"),
                   "brightfield-C20": ("base", "cytoplasm")}[claim]
    floor = gate("reference off floor and ceiling", _value(rows, arm, target, "f1"),
                 within=(round(floors(rows)[target], 3), round(1 - 2 * PAPER[claim], 4)))
    f1 = heads_paired(rows, "cytoplasm")
    if claim == "brightfield-C1":
        oracle = gate("phenomenon present (oracle)", _value(rows, "base", "cytoplasm", "oracle_gain"),
                      at_least=PAPER[claim])
        return [oracle, *learns.values(), floor]
    if claim == "brightfield-C20":
        gap = gate("phenomenon present (nucleus gap)", _value(rows, "base", "cytoplasm", "nucleus_gap"),
                   at_least=NUCLEUS_GAP)
        return [gap, *learns.values(), floor]
    if claim == "brightfield-C2":
        return [gate("phenomenon present (the jump exists)", low((f1["2-head"] - f1["base"]).to_numpy(float)),
                     at_least=math.nextafter(0, 1)),
                gate("phenomenon present (border and background heads help)",
                     low((f1["3-head"] - f1["base"]).to_numpy(float)), at_least=math.nextafter(0, 1)),
                *learns.values(), floor]
    if claim == "brightfield-C3":
        return [gate("phenomenon present (removable nucleus false positives)",
                     _value(rows, "2-head", "nuclei", "removable_fp"), at_least=REMOVABLE_FP),
                learns["border"], floor]
    return [gate("treatment engaged", _value(rows, "base", "cytoplasm", "se_sd"), at_least=SE_SD), floor]


def heads_differences(rows: pd.DataFrame) -> dict[str, pd.Series]:
    """Per claim, the registered paired difference per seed (treatment - reference); C20's is the
    base model's excess nucleus gap (nucleus minus surrounding ring) minus the 4-head model's."""
    f1, nuclei = heads_paired(rows, "cytoplasm"), heads_paired(rows, "nuclei")
    gap = heads_paired(rows, "cytoplasm", "excess_gap")
    out = {"brightfield-C1": f1["4-head"] - f1["base"],
           "brightfield-C3": nuclei["4-head"] - nuclei["2-head"],
           "brightfield-C20": gap["base"] - gap["4-head"]}
    if "3-head" in f1:
        out["brightfield-C2"] = (f1["4-head"] - f1["3-head"]) - (f1["2-head"] - f1["base"]) / 2
    if PLAIN_ARM in f1:
        out["brightfield-C19"] = f1["base"] - f1[PLAIN_ARM]
    return {claim: d.dropna() for claim, d in out.items()}


def _c20_note(rows: pd.DataFrame) -> str:
    gap, fragments = heads_paired(rows, "cytoplasm", "excess_gap"), heads_paired(rows, "cytoplasm", "fragments")
    precision = heads_paired(rows, "cytoplasm", "precision")
    parts = [f"shown, not judged: extra pieces per true cell, base - 4-head "
             f"{(fragments['base'] - fragments['4-head']).mean():+.4f}; cytoplasm precision, 4-head - base "
             f"{(precision['4-head'] - precision['base']).mean():+.4f}"]
    if "3-head" in gap:
        parts.append(f"excess gap base - 3-head {(gap['base'] - gap['3-head']).mean():+.4f}, 3-head - 4-head "
                     f"{(gap['3-head'] - gap['4-head']).mean():+.4f} (3 decoders without a nuclei head)")
    return "; ".join(parts)


def judge_heads(rows: pd.DataFrame, seconds_per_seed: float | None = None) -> dict[str, dict[str, Any]]:
    """brightfield-C1, C2, C3, C19 and C20 from :func:`..heads.seed_run`'s rows and
    :func:`..heads.baseline_rows` through :func:`~cellrepro.publish.report.judge` (C2 and C19 only
    where their arms ran: 3-head, and the U-Net without SE). Returns per claim what the page states:
    ``verdict``, ``effect``, ``interval`` (text) and ``failed`` (the failed gates' names, or "none")."""
    from ....publish import report

    out = {}
    for claim, d in heads_differences(rows).items():
        entry = report.judge(claim, d.to_numpy(float), gates=heads_gates(rows, claim), digits=4,
                             seconds_per_unit=seconds_per_seed,
                             note=_c20_note(rows) if claim == "brightfield-C20" else "")
        out[claim] = summary(entry, 4)
    return out


__all__ = ["NUCLEUS_GAP", "PAPER", "REMOVABLE_FP", "SE_SD", "floors", "heads_differences", "heads_gates", "heads_paired",
           "judge_heads"]
