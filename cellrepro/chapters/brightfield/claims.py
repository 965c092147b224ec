"""The brightfield thesis's verdict rules: registered gates and judgements, one function per claim.

Units are data seeds: every arm of a seed trains on the same fields, weak labels and crops
(:mod:`.overlap_loss`), so each seed gives one paired difference per claim. The thresholds below are
the registrations' (``cellrepro/publish/claims/registrations.yml``); each gate's docstring says which.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from ...publish.decision import Gate, decide, gate
from . import overlap_loss as ol
from .heads import PLAIN as PLAIN_ARM

WEAK_COST = 0.02
"""Positive control: exact labels must beat weak ones by this much overlap AP (the phenomenon maps address)."""
RANK_SHIFT = 0.05
"""A treatment engaged if it replaced at least this share of the reference's top-ranked overlap pixels."""
CEILING = 0.95


def _mean(rows: pd.DataFrame, arm: str, column: str) -> float:
    values = rows.loc[rows["arm"] == arm, column].astype(float)
    return float(values.mean()) if len(values) else float("nan")


def _low(values: np.ndarray) -> float:
    """Lower end of the 95% t-interval of ``values`` over units (NaN for fewer than 2)."""
    from ...publish.report import paired_effect

    return paired_effect(values)["low"] if len(values) > 1 else float("nan")


def _summary(entry: dict[str, Any], digits: int) -> dict[str, Any]:
    """What a page states of a decision: ``verdict``, ``effect``, ``interval`` (text), ``failed``
    (the failed gates' names, or "none") and ``needed`` (the seeds that would detect the paper's or
    the planning effect, "-" where the decision has none)."""
    from ...publish import tables

    needed = entry.get("n_needed")
    return {"verdict": entry["verdict"], "effect": float(entry["effect"] if "effect" in entry else entry["mean"]),
            "interval": tables.fmt_interval(entry["low"], entry["high"], entry["n"], digits),
            "failed": ", ".join(g["name"] for g in entry["failed_gates"]) or "none",
            "needed": str(needed) if needed is not None else "-"}


def _difference(d: dict[str, Any], digits: int = 3) -> str:
    """A comparison shown beside a verdict, without a verdict word: its effect, interval and where
    the interval lies."""
    short = _summary(d, digits)
    low, high = d.get("low"), d.get("high")
    where = ("no interval" if low is None or high is None or not np.isfinite([low, high]).all()
             else "interval above 0" if low > 0 else "interval below 0" if high < 0 else "interval includes 0")
    return f"{short['effect']:+.{digits}f} {short['interval']} ({where})"


def paired(rows: pd.DataFrame, treatment: str, reference: str, metric: str = "ap") -> pd.Series:
    """Per seed, ``metric`` of ``treatment`` minus ``reference`` (seeds where both ran)."""
    wide = rows.pivot(index="seed", columns="arm", values=metric)
    for arm in (treatment, reference):
        if arm not in wide:
            raise ValueError(f"no arm {arm!r} in the rows; arms are {list(wide.columns)}")
    return (wide[treatment] - wide[reference]).dropna()


def overlap_gates(rows: pd.DataFrame, treatment: str, reference: str, overlap_share: float) -> list[Gate]:
    """The registered gates of brightfield-C4 and -C5 for ``treatment`` against ``reference``:

    - *treatment engaged*: the treatment replaced >= :data:`RANK_SHIFT` of the reference's
      top-ranked overlap pixels (``rank_shift``, :func:`.overlap_loss.ranking_shift`, mean over seeds:
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
            gate("phenomenon present, 95% low", _low(cost), at_least=math.nextafter(0, 1)),
            gate("reference off floor and ceiling", _mean(rows, reference, "ap"),
                 within=(round(2 * overlap_share, 4), CEILING))]


def _reading_decision(claim: str, rows: pd.DataFrame, treatment: str, reference: str,
                      overlap_share: float) -> dict[str, Any]:
    """The registered rule of ``claim`` applied to another pair of arms (the second reading), without
    recording it: its verdict, effect and interval for the primary entry's note."""
    from ...publish.claims import registration

    reg = registration(claim)
    d = decide(paired(rows, treatment, reference).to_numpy(), test=reg["test"], paper_effect=reg.get("paper_effect"),
               margin=reg.get("margin"), planning_effect=reg.get("planning_effect"),
               gates=overlap_gates(rows, treatment, reference, overlap_share))
    return d.as_dict()


def _text(d: dict[str, Any], digits: int = 3) -> str:
    short = _summary(d, digits)
    failed = "" if short["failed"] == "none" else f"; failed: {short['failed']}"
    return f"{short['verdict']} ({short['effect']:+.{digits}f} {short['interval']}{failed})"


def judge_overlap(rows: pd.DataFrame, overlap_share: float, seconds_per_seed: float | None = None
                  ) -> dict[str, dict[str, Any]]:
    """brightfield-C4 and -C5 from :func:`.overlap_loss.seed_run`'s rows (overlap AP, paired over seeds).

    C4 (v4 map minus no map) and C5 (Eq. 5.1 minus Eq. 4.5, one-sided non-superiority) are judged
    through :func:`~cellrepro.publish.report.judge` under the prose reading (the registered primary),
    and the same registered rule and gates are applied to the printed reading
    (:data:`.overlap_loss.READINGS`), whose verdict goes into the entry's note. Returns, per claim
    and reading (``"prose"``, ``"printed"``), what the page states: ``verdict``, ``effect`` (mean
    paired AP difference), ``interval`` (text) and ``failed`` (the failed gates' names)."""
    from ...publish import report

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
                                  f"{_text(second)}; shown, not judged: AP over true cell pixels {cells.mean():+.3f}, "
                                  f"F1 at 0.3 {f1.mean():+.3f}")
        out[claim] = {"prose": _summary(entry, 3), "printed": _summary(second, 3)}
    return out


def recovered(rows: pd.DataFrame, treatment: str = ol.V4) -> float:
    """Share of the weak labels' cost that ``treatment`` recovers: (treatment - no map) / (exact
    labels - no map), ratio of the means over seeds (a point value: its denominator is small)."""
    cost = _mean(rows, ol.EXACT, "ap") - _mean(rows, ol.NONE, "ap")
    return (_mean(rows, treatment, "ap") - _mean(rows, ol.NONE, "ap")) / cost if cost else float("nan")


# ----------------------------------------------------------------------------------------------------
# Tables 5.1-5.2: the heads (brightfield-C1, C2, C3, C19, C20)
# ----------------------------------------------------------------------------------------------------
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
    :func:`.heads.baseline_rows`: cytoplasm, the larger of calling every pixel cell and Otsu's
    threshold; nuclei, the cores of the true cells."""
    from .heads import ALL_CELL, CORE, OTSU

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
        return [gate("phenomenon present (the jump exists)", _low((f1["2-head"] - f1["base"]).to_numpy(float)),
                     at_least=math.nextafter(0, 1)),
                gate("phenomenon present (border and background heads help)",
                     _low((f1["3-head"] - f1["base"]).to_numpy(float)), at_least=math.nextafter(0, 1)),
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
    """brightfield-C1, C2, C3, C19 and C20 from :func:`.heads.seed_run`'s rows and
    :func:`.heads.baseline_rows` through :func:`~cellrepro.publish.report.judge` (C2 and C19 only
    where their arms ran: 3-head, and the U-Net without SE). Returns per claim what the page states:
    ``verdict``, ``effect``, ``interval`` (text) and ``failed`` (the failed gates' names, or "none")."""
    from ...publish import report

    out = {}
    for claim, d in heads_differences(rows).items():
        entry = report.judge(claim, d.to_numpy(float), gates=heads_gates(rows, claim), digits=4,
                             seconds_per_unit=seconds_per_seed,
                             note=_c20_note(rows) if claim == "brightfield-C20" else "")
        out[claim] = _summary(entry, 4)
    return out


# ----------------------------------------------------------------------------------------------------
# Sec. 5.6: pix2pix against its alternatives (brightfield-C10)
# ----------------------------------------------------------------------------------------------------
SEES = 0.75
"""The realism test must tell the noise-free optics and the optics with swapped planes from real at least this often."""
SEES_MISSING = 0.95
"""The realism test must tell the mean planes (no cells) from real at least this often."""
CHANCE_AT_MOST = 0.6
"""The realism test's A/A control (real fields of another draw) must stay at or below this accuracy."""
GAME = (0.55, 0.95)
"""pix2pix's held-out discriminator accuracy when training stopped: the adversarial game still played."""
DRAWS_CELLS = 0.5
"""A trained translator draws the cells if its ``structure`` is at least this share of the exact optics'."""
ROOM = 0.6
"""The autoencoder must be told from real at least this often: below, there is no realism left to gain."""
INDISTINGUISHABLE = 0.05
"""The thesis's "indistinguishable", decided beside: pix2pix within this accuracy of the exact optics."""
P2P, AE, MASK, L1 = "pix2pix", "autoencoder (MSE + BCE)", "mask -> brightfield", "pix2pix without its discriminator"
EXACT_OPTICS, EXACT_CLEAN, WRONG_OPTICS, MEAN, AA = ("exact optics", "exact optics, noise-free",
                                                     "exact optics, planes swapped", "mean planes", "real, another draw")


def _arm(rows: pd.DataFrame, arm: str, column: str) -> float:
    values = rows.loc[rows["translator"] == arm, column].astype(float) if column in rows else pd.Series(dtype=float)
    return float(values.mean()) if len(values) else float("nan")


def translator_paired(rows: pd.DataFrame, treatment: str, reference: str, column: str = "accuracy") -> pd.Series:
    """Per seed, ``column`` of ``reference`` minus ``treatment``: for the realism test's accuracy, how
    much more often the reference is told from real (> 0: the treatment is the more realistic)."""
    wide = rows.pivot(index="seed", columns="translator", values=column)
    for arm in (treatment, reference):
        if arm not in wide:
            raise ValueError(f"no translator {arm!r} in the rows; they are {list(wide.columns)}")
    return (wide[reference] - wide[treatment]).dropna()


def translator_gates(rows: pd.DataFrame) -> list[Gate]:
    """The registered gates of brightfield-C10 (means over seeds), as a design referee asked:

    - *phenomenon present (the test sees noise and light)*, *(the test sees how cells look)*,
      *(the test sees missing cells)*: the realism test tells the noise-free optics and the
      optics with swapped planes from real with accuracy >= :data:`SEES`, the mean planes with >=
      :data:`SEES_MISSING` (else a translator that got the texture, the cells' look or the cells
      themselves wrong could pass as real);
    - *test at chance on real fields (A/A)*: real fields of another draw score <= :data:`CHANCE_AT_MOST`;
    - *treatment engaged (the adversarial game)*: pix2pix's held-out discriminator accuracy within
      :data:`GAME`;
    - *treatment engaged (pix2pix draws the cells)*, *reference off the floor (the autoencoder draws
      the cells)*: ``structure`` >= :data:`DRAWS_CELLS` x the exact optics' (a translator that
      ignores its input scores 0);
    - *reference off the ceiling*: the autoencoder's accuracy >= :data:`ROOM` (room to be more realistic).
    """
    structure = _arm(rows, EXACT_OPTICS, "structure")
    return [gate("phenomenon present (the test sees noise and light)", _arm(rows, EXACT_CLEAN, "accuracy"), at_least=SEES),
            gate("phenomenon present (the test sees how cells look)", _arm(rows, WRONG_OPTICS, "accuracy"), at_least=SEES),
            gate("phenomenon present (the test sees missing cells)", _arm(rows, MEAN, "accuracy"), at_least=SEES_MISSING),
            gate("test at chance on real fields (A/A)", _arm(rows, AA, "accuracy"), at_most=CHANCE_AT_MOST),
            gate("treatment engaged (the adversarial game)", _arm(rows, P2P, "d_accuracy"), within=GAME),
            gate("treatment engaged (pix2pix draws the cells)", _arm(rows, P2P, "structure"),
                 at_least=round(DRAWS_CELLS * structure, 4)),
            gate("reference off the floor (the autoencoder draws the cells)", _arm(rows, AE, "structure"),
                 at_least=round(DRAWS_CELLS * structure, 4)),
            gate("reference off the ceiling", _arm(rows, AE, "accuracy"), at_least=ROOM)]


def judge_translators(rows: pd.DataFrame, seconds_per_seed: float | None = None) -> dict[str, dict[str, Any]]:
    """brightfield-C10 from :func:`.fidelity.seed_run`'s rows through :func:`~cellrepro.publish.report.judge`:
    the realism test's accuracy, autoencoder minus pix2pix, paired over seeds. Returns what the page
    states for ``"brightfield-C10"`` and, decided beside by the same rule and gates (not recorded),
    ``"mask"`` (mask -> brightfield minus pix2pix), ``"l1"`` (pix2pix's generator without its
    discriminator minus pix2pix: what the adversarial term adds), ``"deterministic"`` (autoencoder
    minus pix2pix with dropout off), ``"s0"`` and ``"s2"`` (at the other smoothings); and
    ``"indistinguishable"``: pix2pix minus the exact optics, an equivalence test within
    :data:`INDISTINGUISHABLE` (the thesis's word; "holds" only if pix2pix is as hard to tell from
    real as the family's own optics). The recorded entry's note states the latter's verdict and
    the other comparisons' intervals without verdict words (they are not claims)."""
    from ...publish import report
    from ...publish.claims import registration

    reg = registration("brightfield-C10")
    gates = translator_gates(rows)
    beside = {"mask": translator_paired(rows, P2P, MASK), "l1": translator_paired(rows, P2P, L1),
              "deterministic": translator_paired(rows, P2P, AE, "accuracy_deterministic"),
              "s0": translator_paired(rows, P2P, AE, "accuracy_s0"), "s2": translator_paired(rows, P2P, AE, "accuracy_s2")}
    decided = {key: decide(d.to_numpy(float), test=reg["test"], planning_effect=reg.get("planning_effect"),
                           gates=gates).as_dict() for key, d in beside.items()}
    same = -translator_paired(rows, P2P, EXACT_OPTICS)  # pix2pix - exact optics
    decided["indistinguishable"] = decide(same.to_numpy(float), test="equivalence", margin=INDISTINGUISHABLE,
                                          gates=gates).as_dict()
    out = {key: _summary(d, 3) for key, d in decided.items()}
    names = {"mask": "mask -> brightfield - pix2pix", "l1": "pix2pix without its discriminator - pix2pix",
             "deterministic": "autoencoder - pix2pix, both with dropout off",
             "s0": "autoencoder - pix2pix without smoothing", "s2": "autoencoder - pix2pix smoothed by 2 px"}
    same = decided["indistinguishable"]
    entry = report.judge("brightfield-C10", translator_paired(rows, P2P, AE).to_numpy(float), gates=gates, digits=3,
                         seconds_per_unit=seconds_per_seed,
                         note="the claim's comparative half ('more realistic than the autoencoder'); its word "
                              f"'indistinguishable', pix2pix - exact optics within {INDISTINGUISHABLE}: "
                              f"{same['verdict']} ({_difference(same)}). Shown beside, realism-test accuracy: "
                              + "; ".join(f"{names[k]} {_difference(d)}" for k, d in decided.items()
                                          if k != "indistinguishable"))
    out["brightfield-C10"] = _summary(entry, 3)
    return out


# ----------------------------------------------------------------------------------------------------
# Tables 5.4-5.6: training with synthetic fields (brightfield-C6, C7, C8, C9)
# ----------------------------------------------------------------------------------------------------
SYNTHETIC = {"brightfield-C6": ("overlap", "ap", "pix2pix fields", "brightfield paste", 0.05),
             "brightfield-C7": ("cytoplasm", "f1", "pix2pix fields", "original", 0.0039),
             "brightfield-C8": ("nuclei", "f1", "pix2pix fields", "original", 0.0095),
             "brightfield-C9": ("overlap", "ap", "pix2pix fields", "original", 0.05)}
"""Claim -> (head, metric, treatment arm, reference arm, the effect the reference's ceiling leaves
room for: the thesis's, or the registered planning effect where the thesis has none in this metric)."""


def synthetic_paired(rows: pd.DataFrame, head: str, treatment: str, reference: str, column: str = "f1") -> pd.Series:
    """Per seed, ``column`` on ``head`` of ``treatment`` minus ``reference`` (:func:`.synthetic_data.seed_run` rows)."""
    wide = rows[rows["head"] == head].pivot(index="seed", columns="arm", values=column)
    for arm in (treatment, reference):
        if arm not in wide:
            raise ValueError(f"no arm {arm!r} in the rows; arms are {list(wide.columns)}")
    return (wide[treatment] - wide[reference]).dropna()


def synthetic_floors(baselines: pd.DataFrame, overlap_share: float) -> dict[str, float]:
    """The score a reference must beat on each head: the no-training baselines of
    :func:`.heads.baseline_rows` (:func:`floors`) for cytoplasm and nuclei F1, twice the test overlap
    share for overlap AP (a map that ranks pixels at random scores the share)."""
    return {**floors(baselines), "overlap": round(2 * overlap_share, 4)}


AGREEMENT = 1.25
"""C6: away from overlaps, pasting in brightfield may depart from the additive render at most this many
times as far as a fresh render does (:func:`.synthesis.paste_agreement`)."""


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
        return _low(synthetic_paired(rows, head, arm, reference, metric).to_numpy(float)) if arm in arms else float("nan")

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
    """brightfield-C6 to C9 from :func:`.synthetic_data.seed_run`'s rows through
    :func:`~cellrepro.publish.report.judge`, paired over seeds (:data:`SYNTHETIC`). Each note gives,
    shown and not judged, the oracle's and the exact-optics arm's differences (C7-C9), F1 at 0.3
    (overlaps) and the share of predicted overlap on cell borders off true overlaps (C6). Returns
    per claim what the page states (:func:`_summary`) and the mean differences of the positive
    controls against the reference: ``oracle`` (more real fields; NaN for C6) and ``control`` (the
    exact-optics fields)."""
    from ...publish import report

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
        out[claim] = {**_summary(entry, 4),
                      "oracle": (float(synthetic_paired(rows, head, "more real fields", reference, metric).mean())
                                 if reference == "original" and "more real fields" in set(rows["arm"]) else float("nan")),
                      "control": float(synthetic_paired(rows, head, control, reference, metric).mean())
                      if control in set(rows["arm"]) else float("nan")}
    return out


__all__ = ["AA", "AE", "AGREEMENT", "CEILING", "CHANCE_AT_MOST", "DRAWS_CELLS", "EXACT_CLEAN", "EXACT_OPTICS", "GAME",
           "INDISTINGUISHABLE", "L1", "MASK", "MEAN", "NUCLEUS_GAP", "P2P", "PAPER", "RANK_SHIFT", "REMOVABLE_FP",
           "ROOM", "SEES", "SEES_MISSING", "SE_SD", "SYNTHETIC", "WEAK_COST", "WRONG_OPTICS", "floors",
           "heads_differences", "heads_gates", "heads_paired", "judge_heads", "judge_overlap", "judge_synthetic",
           "judge_translators", "overlap_gates", "paired", "recovered", "synthetic_floors", "synthetic_gates",
           "synthetic_paired", "translator_gates", "translator_paired"]
