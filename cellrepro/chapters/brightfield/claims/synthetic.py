"""Tables 5.4-5.6's verdict rules: training with synthetic fields (brightfield-C6, C7, C8, C9)."""

from __future__ import annotations

import math
from typing import Any

import pandas as pd

from ....publish.decision import Gate, gate
from ....publish.rules import low, per_seed, summary
from .heads import floors
from .translation import DRAWS_CELLS

SYNTHETIC = {"brightfield-C6": ("overlap", "ap", "pix2pix fields", "brightfield paste", 0.05),
             "brightfield-C7": ("cytoplasm", "f1", "pix2pix fields", "original", 0.0039),
             "brightfield-C8": ("nuclei", "f1", "pix2pix fields", "original", 0.0095),
             "brightfield-C9": ("overlap", "ap", "pix2pix fields", "original", 0.05)}
"""Claim -> (head, metric, treatment arm, reference arm, the effect the reference's ceiling leaves
room for: the thesis's, or the registered planning effect where the thesis has none in this metric)."""


def synthetic_paired(rows: pd.DataFrame, head: str, treatment: str, reference: str, column: str = "f1") -> pd.Series:
    """Per seed, ``column`` on ``head`` of ``treatment`` minus ``reference`` (:func:`..synthetic_data.seed_run` rows)."""
    return per_seed(rows[rows["head"] == head], treatment, reference, column)


def synthetic_floors(baselines: pd.DataFrame, overlap_share: float) -> dict[str, float]:
    """The score a reference must beat on each head: the no-training baselines of
    :func:`..heads.baseline_rows` (:func:`floors`) for cytoplasm and nuclei F1, twice the test overlap
    share for overlap AP (a map that ranks pixels at random scores the share)."""
    return {**floors(baselines), "overlap": round(2 * overlap_share, 4)}


AGREEMENT = 1.25
"""C6: away from overlaps, pasting in brightfield may depart from the additive render at most this many
times as far as a fresh render does (:func:`..synthesis.paste_agreement`)."""


def synthetic_gates(rows: pd.DataFrame, claim: str, floor: dict[str, float]) -> list[Gate]:
    """The registered gates of ``claim`` (brightfield-C6 to C9), as a design referee asked:

    - *treatment engaged (pix2pix draws the cells)*: the seed's pix2pix ``structure`` on the test
      fields >= :data:`DRAWS_CELLS` x the exact optics' (means over seeds, as for C10);
    - C7-C9, *phenomenon present (more real fields help)*, the oracle: as many more real annotated
      fields beat the reference on the claim's metric (the lower end of the 95% interval over seeds
      above 0; else the stand-in is not short of data at this budget and no synthetic field can help),
      and *phenomenon present (realistic synthetic fields help)*: so do the pasted fields rendered by
      the family's own optics (else the pasting itself, not the translation, decides);
    - C6, *phenomenon present (additive pasting helps)*: the exact-optics arm beats the
      brightfield-paste arm, and *phenomenon isolated (the pastes agree away from overlaps)*: their
      fields differ off the overlaps no more than :data:`AGREEMENT` x two renders of one field do;
    - *reference off floor and ceiling*: the reference's score above ``floor`` (:func:`synthetic_floors`)
      and at most 1 - 2 x the effect of :data:`SYNTHETIC`.
    """
    head, metric, treatment, reference, effect = SYNTHETIC[claim]
    first = rows.groupby("seed").first()
    score = rows[(rows["arm"] == reference) & (rows["head"] == head)][metric].astype(float)

    def helps(arm: str) -> float:
        arms = set(rows["arm"])
        return low(synthetic_paired(rows, head, arm, reference, metric).to_numpy(float)) if arm in arms else float("nan")

    engaged = gate("treatment engaged (pix2pix draws the cells)", float(first["structure"].mean()),
                   at_least=round(DRAWS_CELLS * float(first["exact_structure"].mean()), 4))
    if claim == "brightfield-C6":
        phenomena = [gate("phenomenon present (additive pasting helps)", helps("exact-optics fields"),
                          at_least=math.nextafter(0, 1)),
                     gate("phenomenon isolated (the pastes agree away from overlaps)",
                          float(first["paste_agreement"].mean()), at_most=AGREEMENT)]
    else:
        phenomena = [gate("phenomenon present (more real fields help)", helps("more real fields"),
                          at_least=math.nextafter(0, 1)),
                     gate("phenomenon present (realistic synthetic fields help)", helps("exact-optics fields"),
                          at_least=math.nextafter(0, 1))]
    return [engaged, *phenomena, gate("reference off floor and ceiling", float(score.mean()) if len(score) else None,
                                      within=(round(floor[head], 4), round(1 - 2 * effect, 4)))]


def judge_synthetic(rows: pd.DataFrame, baselines: pd.DataFrame, overlap_share: float,
                    seconds_per_seed: float | None = None) -> dict[str, dict[str, Any]]:
    """brightfield-C6 to C9 from :func:`..synthetic_data.seed_run`'s rows through
    :func:`~cellrepro.publish.report.judge`, paired over seeds (:data:`SYNTHETIC`). Each note gives,
    shown and not judged, the oracle's and the exact-optics arm's differences (C7-C9), F1 at 0.3
    (overlaps) and the share of predicted overlap on cell borders off true overlaps (C6). Returns
    per claim what the page states (:func:`_summary`) and the mean differences of the positive
    controls against the reference: ``oracle`` (more real fields; NaN for C6) and ``control`` (the
    exact-optics fields)."""
    from ....publish import report

    floor = synthetic_floors(baselines, overlap_share)
    out = {}
    for claim, (head, metric, treatment, reference, _) in SYNTHETIC.items():
        d = synthetic_paired(rows, head, treatment, reference, metric)
        parts = []
        for arm in ("more real fields", "exact-optics fields"):
            if reference == "original" and arm in set(rows["arm"]):
                parts.append(f"{arm} - original {synthetic_paired(rows, head, arm, reference, metric).mean():+.4f}")
        if head == "overlap":
            parts.append(f"F1 at 0.3 {synthetic_paired(rows, head, treatment, reference, 'f1').mean():+.3f}")
        if claim == "brightfield-C6":
            share = rows[rows["head"] == "overlap"].groupby("arm")["border_share"].mean()
            parts.append(f"share of predicted overlap pixels on cell borders off true overlaps: brightfield paste "
                         f"{share.get(reference, float('nan')):.3f}, pix2pix fields {share.get(treatment, float('nan')):.3f}")
        entry = report.judge(claim, d.to_numpy(float), gates=synthetic_gates(rows, claim, floor), digits=4,
                             seconds_per_unit=seconds_per_seed,
                             note="gate values of the positive controls are the lower ends of 95% intervals; shown, "
                                  "not judged: " + "; ".join(parts))
        control = "exact-optics fields"
        out[claim] = {**summary(entry, 4),
                      "oracle": (float(synthetic_paired(rows, head, "more real fields", reference, metric).mean())
                                 if reference == "original" and "more real fields" in set(rows["arm"]) else float("nan")),
                      "control": float(synthetic_paired(rows, head, control, reference, metric).mean())
                      if control in set(rows["arm"]) else float("nan")}
    return out


__all__ = ["AGREEMENT", "SYNTHETIC", "judge_synthetic", "synthetic_floors", "synthetic_gates", "synthetic_paired"]
