"""Table 5.3's verdict rules: the overlap maps (brightfield-C4) and Eq. 5.1 (brightfield-C5).

Units are data seeds: every arm of a seed trains on the same fields, weak labels and crops
(:mod:`..overlap_loss`), so each seed gives one paired difference per claim.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from ....publish.decision import Gate, decide, gate
from .. import overlap_loss as ol
from ....publish.rules import low, mean_of, per_seed, summary, text

WEAK_COST = 0.02
"""Positive control: exact labels must beat weak ones by this much overlap AP (the phenomenon maps address)."""
RANK_SHIFT = 0.05
"""A treatment engaged if it replaced at least this share of the reference's top-ranked overlap pixels."""
CEILING = 0.95


def paired(rows: pd.DataFrame, treatment: str, reference: str, metric: str = "ap") -> pd.Series:
    """Per seed, ``metric`` of ``treatment`` minus ``reference`` (seeds where both ran)."""
    return per_seed(rows, treatment, reference, metric)


def overlap_gates(rows: pd.DataFrame, treatment: str, reference: str, overlap_share: float) -> list[Gate]:
    """The registered gates of brightfield-C4 and -C5 for ``treatment`` against ``reference``:

    - *treatment engaged*: the treatment replaced >= :data:`RANK_SHIFT` of the reference's
      top-ranked overlap pixels (``rank_shift``, :func:`..overlap_loss.ranking_shift`, mean over seeds:
      a change of the ranking AP scores, not of the calibration a threshold sees);
    - *reference off floor and ceiling*: the reference's test AP within [2 p, 0.95], p the test
      overlap share (a constant map's AP is p);
    - *phenomenon present (weak labels cost AP)*, the positive control: exact-label minus
      weak-label no-map AP, mean over seeds, >= :data:`WEAK_COST`, and the lower end of its 95%
      t-interval over seeds > 0 (told from zero, not only large on average).
    """
    rank = rows.loc[rows["arm"] == treatment, "rank_shift"].astype(float)
    cost = paired(rows, ol.EXACT, ol.NONE).to_numpy(float) if ol.EXACT in set(rows["arm"]) else np.array([])
    return [gate("treatment engaged", float(rank.mean()) if len(rank) else None, at_least=RANK_SHIFT),
            gate("phenomenon present (weak labels cost AP)", float(cost.mean()) if len(cost) else None,
                 at_least=WEAK_COST),
            gate("phenomenon present, 95% low", low(cost), at_least=math.nextafter(0, 1)),
            gate("reference off floor and ceiling", mean_of(rows, reference, "ap"),
                 within=(round(2 * overlap_share, 4), CEILING))]


def _reading_decision(claim: str, rows: pd.DataFrame, treatment: str, reference: str,
                      overlap_share: float) -> dict[str, Any]:
    """The registered rule of ``claim`` applied to another pair of arms (the second reading), without
    recording it: its verdict, effect and interval for the primary entry's note."""
    from ....publish.claims import registration

    reg = registration(claim)
    d = decide(paired(rows, treatment, reference).to_numpy(), test=reg["test"], paper_effect=reg.get("paper_effect"),
               margin=reg.get("margin"), planning_effect=reg.get("planning_effect"),
               gates=overlap_gates(rows, treatment, reference, overlap_share))
    return d.as_dict()


def judge_overlap(rows: pd.DataFrame, overlap_share: float, seconds_per_seed: float | None = None
                  ) -> dict[str, dict[str, Any]]:
    """brightfield-C4 and -C5 from :func:`..overlap_loss.seed_run`'s rows (overlap AP, paired over seeds).

    C4 (v4 map minus no map) and C5 (Eq. 5.1 minus Eq. 4.5, one-sided non-superiority) are judged
    through :func:`~cellrepro.publish.report.judge` under the prose reading (the registered primary),
    and the same registered rule and gates are applied to the printed reading
    (:data:`.overlap_loss.READINGS`), whose verdict goes into the entry's note. Returns, per claim
    and reading (``"prose"``, ``"printed"``), what the page states: ``verdict``, ``effect`` (mean
    paired AP difference), ``interval`` (text) and ``failed`` (the failed gates' names)."""
    from ....publish import report

    out: dict[str, dict[str, Any]] = {}
    pairs = {"brightfield-C4": {r: (eq45, ol.NONE) for r, (eq45, _) in ol.READINGS.items()},
             "brightfield-C5": {r: (eq51, eq45) for r, (eq45, eq51) in ol.READINGS.items()}}
    for claim, by_reading in pairs.items():
        second = _reading_decision(claim, rows, *by_reading["printed"], overlap_share)
        treatment, reference = by_reading["prose"]
        f1 = paired(rows, treatment, reference, "f1")
        cells = paired(rows, treatment, reference, "ap_cells")
        entry = report.judge(claim, paired(rows, treatment, reference).to_numpy(),
                             gates=overlap_gates(rows, treatment, reference, overlap_share), digits=3,
                             seconds_per_unit=seconds_per_seed,
                             note=f"printed reading ({by_reading['printed'][0]} vs {by_reading['printed'][1]}): "
                                  f"{text(second)}; shown, not judged: AP over true cell pixels {cells.mean():+.3f}, "
                                  f"F1 at 0.3 {f1.mean():+.3f}")
        out[claim] = {"prose": summary(entry, 3), "printed": summary(second, 3)}
    return out


def recovered(rows: pd.DataFrame, treatment: str = ol.V4) -> float:
    """Share of the weak labels' cost that ``treatment`` recovers: (treatment - no map) / (exact
    labels - no map), ratio of the means over seeds (a point value: its denominator is small)."""
    cost = mean_of(rows, ol.EXACT, "ap") - mean_of(rows, ol.NONE, "ap")
    return (mean_of(rows, treatment, "ap") - mean_of(rows, ol.NONE, "ap")) / cost if cost else float("nan")


__all__ = ["CEILING", "RANK_SHIFT", "WEAK_COST", "judge_overlap", "overlap_gates", "paired", "recovered"]
