"""The organoid claims' measurements and gates (Sec. 6 of the claims register, organoid-C1..C11).

The notebooks compute per-seed values; the functions here turn them into what
:func:`cellrepro.publish.report.judge` takes: one paired difference per seed (treatment -
reference, as the claim's registration names the arms) and the registered gates' outcomes. The
tests, margins and thresholds live in the registrations (``registrations.yml``), not here.

Arms are named by where the fine-tuned network started: ``"supervised"`` (random weights) or
``"g{global %}/l{local %}"`` for a pre-trained one (:func:`arm`), optionally frozen.
"""

from __future__ import annotations

from typing import Iterable, Mapping

import numpy as np
import pandas as pd

from ...publish.decision import Gate, gate
from ...publish.report import paired_effect

#: Optimizer updates a pre-training stage needs to count as having trained (issue 27: 200 for the
#: global stage; a local update costs about 1.5 global ones, and the local stage gets 100).
MIN_UPDATES = {"global": 200, "local": 100}
#: How far its training loss must fall (1 - last / first 10 % of updates).
MIN_LOSS_FALL = {"global": 0.10, "local": 0.10}
#: The reference arm's F1 must lie here: off the floor (broken) and the ceiling (nothing to gain).
REFERENCE_RANGE = (0.2, 0.95)


def arm(global_fraction: float | None, local_fraction: float | None = None, frozen: bool = False) -> str:
    """The name of an arm: ``"supervised"`` or e.g. ``"g60/l10"`` (``" frozen"`` appended).

    >>> arm(0.6, 0.1), arm(None), arm(0.6, 0.6, frozen=True), arm(0.0, 0.1)
    ('g60/l10', 'supervised', 'g60/l60 frozen', 'g0/l10')
    """
    if global_fraction is None:
        return "supervised"
    return f"g{global_fraction:.0%}/l{local_fraction:.0%}".replace("%", "") + (" frozen" if frozen else "")


def paired(seeds: pd.DataFrame, value: str, treatment: str, reference: str, by: str = "arm") -> np.ndarray:
    """``treatment - reference`` of ``value`` per seed (rows of ``seeds`` whose ``by`` names them),
    in seed order; a seed missing either arm is dropped."""
    wide = seeds.pivot_table(index="seed", columns=by, values=value, aggfunc="mean")
    return (wide[treatment] - wide[reference]).dropna().to_numpy(float)


def slope_difference(seeds: pd.DataFrame, value: str, low: str, mid: str, high: str) -> np.ndarray:
    """organoid-C3 per seed: (high - mid) - (mid - low), the local step minus the global step of
    the L-shaped design (low = g10/l10, mid = g60/l10, high = g60/l60)."""
    return paired(seeds, value, high, mid) - paired(seeds, value, mid, low)


def stage_gates(stage: str, updates: Iterable[int], falls: Iterable[float], probe_gain: Mapping | None = None,
                ) -> list[Gate]:
    """The registered gates that a pre-training ``stage`` ("global" or "local") trained, over seeds:
    the fewest updates of any seed, the smallest loss fall of any seed and, for the global stage,
    the lower end of the probe gain's interval (global - random encoder, over seeds)."""
    out = [gate(f"{stage} stage engaged: updates", min(updates), at_least=MIN_UPDATES[stage]),
           gate(f"{stage} stage engaged: loss fell", min(falls), at_least=MIN_LOSS_FALL[stage])]
    if probe_gain is not None:
        out.append(gate(f"{stage} stage engaged: probe gain CI low", probe_gain["low"], at_least=np.nextafter(0, 1)))
    return out


def reaches(deltas: np.ndarray, name: str) -> Gate:
    """A gate that an upstream treatment reaches the fine-tuned model: the 95 % interval over seeds of
    ``deltas`` (with it - without it) excludes 0, in either direction. Its value is the distance of
    the interval's nearer end from 0 (positive when it excludes 0)."""
    e = effect(deltas)
    return gate(name, max(e["low"], -e["high"]), at_least=np.nextafter(0, 1))


def reference_gate(values: Iterable[float], what: str = "reference F1") -> Gate:
    """The reference arm's mean over seeds within :data:`REFERENCE_RANGE`."""
    return gate(what, float(np.mean(list(values))), within=REFERENCE_RANGE)


def effect(deltas: np.ndarray) -> dict[str, float]:
    """Mean and 95 % t-interval of per-seed differences (for descriptive parts shown beside a verdict)."""
    return paired_effect(np.asarray(deltas, float))


def c10_parts(seeds: pd.DataFrame, frozen: str, non_frozen: str) -> dict[str, np.ndarray]:
    """organoid-C10's two parts per seed: the large-organoid recall gain of the frozen arm, and how
    much the non-frozen arm's F1 advantage shrinks from the annotation to the true masks
    (gap against the truth - gap against the annotation: below 0 if it shrinks)."""
    gap_ann = paired(seeds, "f1_annotation", non_frozen, frozen)
    gap_true = paired(seeds, "f1", non_frozen, frozen)
    return {"recall": paired(seeds, "large_recall", frozen, non_frozen), "gap_annotation": gap_ann,
            "gap_true": gap_true, "shrink": gap_true - gap_ann}
