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


def probe_reading(gain: Mapping[str, float]) -> str:
    """The sentence the pipeline page states about the global stage's positive control.

    >>> [probe_reading({"low": lo, "high": hi}).split(":")[0] for lo, hi in ((0.01, 0.2), (-0.3, -0.1), (-0.1, 0.1))]
    ['The positive control passes', 'The positive control fails', 'The positive control is inconclusive']
    """
    if gain["low"] > 0:
        return "The positive control passes: the stage taught the encoder something a linear read-out uses."
    if gain["high"] < 0:
        return ("The positive control fails: after its updates the global encoder carries less of what a linear "
                "read-out needs than a random one.")
    return "The positive control is inconclusive: the gain cannot be told from zero over these seeds."


def judge_data(seeds: pd.DataFrame, gates: list[Gate], global_fractions: Iterable[float],
               local_fractions: Iterable[float], seconds_per_unit: float | None = None) -> dict[str, float]:
    """organoid-C1, -C2, -C3 and -C5 from the ablation-data arms' per-seed F1 (``seeds``: columns
    ``seed``, ``arm``, ``f1``; arms named by :func:`arm`, the controls ``"supervised"``,
    ``"supervised + local labels (least)"`` and ``"(most)"``), each through
    :func:`cellrepro.publish.report.judge` with ``gates`` (the stages' engagement) and its own.
    Returns the values the page states (mean paired differences)."""
    from ...publish import report, tables

    global_fractions, local_fractions = list(global_fractions), list(local_fractions)
    g_lo, g_hi = min(global_fractions), max(global_fractions)
    l_lo, l_hi = min(local_fractions), max(local_fractions)
    low, mid, high, none = arm(g_lo, l_lo), arm(g_hi, l_lo), arm(g_hi, l_hi), arm(0.0, l_lo)
    f1 = seeds.groupby("arm")["f1"].mean()
    labels_help = effect(paired(seeds, "f1", "supervised + local labels (most)", "supervised"))
    downstream = paired(seeds, "f1", mid, none)
    reach = reaches(downstream, "global pre-training reaches the fine-tuned model")
    extra = {"organoid-C1": [reach, reference_gate([f1[low]], "reference F1 (least global data)")],
             "organoid-C2": [reference_gate([f1[mid]], "reference F1 (least local data)"),
                             gate("phenomenon: more labels help (CI low)", labels_help["low"], at_least=1e-12)],
             "organoid-C3": [reach, reference_gate([f1[low]], "reference F1 (least of both)")],
             "organoid-C5": [reach, reference_gate([f1["supervised + local labels (least)"]],
                                                   "reference F1 (supervised, same labels)")]}
    deltas = {"organoid-C1": paired(seeds, "f1", mid, low), "organoid-C2": paired(seeds, "f1", high, mid),
              "organoid-C3": slope_difference(seeds, "f1", low, mid, high),
              "organoid-C5": paired(seeds, "f1", mid, "supervised + local labels (least)")}
    beside = {"pre-trained (most of both) - supervised with the same labels":
              effect(paired(seeds, "f1", high, "supervised + local labels (most)")),
              "pre-trained (most global, least local) - supervised without local labels":
              effect(paired(seeds, "f1", mid, "supervised"))}
    notes = {"organoid-C2": "; ".join(f"{k}: {tables.fmt_effect(e)}" for k, e in beside.items()),
             "organoid-C3": "per seed, the C2 step minus the C1 step: it follows from those two",
             "organoid-C1": f"global pre-training's downstream effect ({g_hi:.0%} global - none, at {l_lo:.0%} "
                            f"local): {tables.fmt_effect(effect(downstream))}"}
    for claim, d in deltas.items():
        report.judge(claim, d, gates=[*gates, *extra[claim]], note=notes.get(claim, ""),
                     seconds_per_unit=seconds_per_unit)
    return {"global_effect": float(deltas["organoid-C1"].mean()), "local_effect": float(deltas["organoid-C2"].mean()),
            "c5_effect": float(deltas["organoid-C5"].mean()), "downstream_effect": float(downstream.mean()),
            "labels_help": labels_help["mean"]}


def judge_loss(seeds: pd.DataFrame, gates: list[Gate], seconds_per_unit: float | None = None) -> dict[str, float]:
    """organoid-C6 (BCE & Dice - SSIM & Dice, F1) and -C7 (holes per object, BCE & Dice minus the
    mean of the two SSIM losses) from per-seed scores per ``loss`` (``seeds``: ``seed``, ``loss``,
    ``f1`` and the shape metrics), through :func:`cellrepro.publish.report.judge`."""
    from ...publish import report, tables
    from .evaluate import LOWER_IS_BETTER, SHAPE_METRICS

    f1 = seeds.groupby("loss")["f1"].mean()
    holes = seeds.groupby("loss")["holes_per_object"].mean()
    wide = seeds.pivot(index="seed", columns="loss", values=list(SHAPE_METRICS) + ["f1"])
    c6 = (wide["f1"]["bce_dice"] - wide["f1"]["ssim_dice"]).to_numpy()
    mae = effect((wide["f1"]["bce_dice"] - wide["f1"]["ssim_mae_dice"]).to_numpy())
    ssim = ["ssim_dice", "ssim_mae_dice"]
    c7 = (wide["holes_per_object"]["bce_dice"] - wide["holes_per_object"][ssim].mean(axis=1)).to_numpy()
    beside = {m: effect(((1 if LOWER_IS_BETTER[m] else -1) * (wide[m]["bce_dice"] - wide[m][ssim].mean(axis=1))).to_numpy())
              for m in SHAPE_METRICS}
    report.judge("organoid-C6", c6, gates=[*gates, reference_gate([f1["ssim_dice"]], "reference F1 (SSIM + Dice)")],
                 note=f"BCE & Dice - SSIM-MAE & Dice (the other half of 'best of three'): {tables.fmt_effect(mae)}",
                 seconds_per_unit=seconds_per_unit)
    report.judge("organoid-C7", c7, seconds_per_unit=seconds_per_unit,
                 gates=[*gates, gate("phenomenon: holes per object (BCE + Dice)", holes["bce_dice"], at_least=0.1),
                        reference_gate([f1["bce_dice"]], "reference F1 (BCE + Dice)")],
                 note="the register's rule (better on >= 2 of 4), each signed so that positive is more coherent: "
                      + "; ".join(f"{m} {tables.fmt_effect(e)}" for m, e in beside.items()))
    return {"bce_minus_ssim": float(c6.mean())}


def judge_frozen(pooled: pd.DataFrame, probe: pd.DataFrame, cka: pd.Series, omitted: float, stages: pd.DataFrame,
                 gates: list[Gate], seconds_per_unit: float | None = None) -> dict[str, float]:
    """organoid-C9, -C10 and -C11 from the frozen and non-frozen arms.

    Args:
        pooled: per seed and arm (``"frozen"``, ``"non-frozen"``): ``f1``, ``f1_annotation``,
            ``large_recall``.
        probe: :func:`~.diagnostics.probes` of ``"global encoder (= frozen)"``, ``"non-frozen"`` and
            ``"random"``.
        cka: linear CKA of the non-frozen encoder to the global one, per seed.
        omitted: share of large true organoids' pixels the annotation omits (C10's phenomenon).
        stages: :attr:`~.protocol.Results.stages` (how far each local stage moved its encoder).
        gates: the stages' engagement gates.
    """
    from ...publish import report, tables

    moved = stages[stages["stage"] == "local"].groupby("frozen")
    parts = c10_parts(pooled, "frozen", "non-frozen")
    p11 = probe.pivot(index="seed", columns="encoder", values="r2")
    f1 = pooled.groupby("arm")[["f1_annotation", "large_recall"]].mean()
    freeze = [gate("frozen encoder unchanged (max |change|)", moved["encoder_max_change"].max()[True], at_most=1e-7),
              gate("non-frozen encoder moved (relative change)", moved["encoder_relative_change"].min()[False],
                   at_least=0.01)]
    report.judge("organoid-C9", paired(pooled, "f1_annotation", "non-frozen", "frozen"), seconds_per_unit=seconds_per_unit,
                 gates=[*gates, *freeze, reference_gate([f1.loc["frozen", "f1_annotation"]], "reference F1 (frozen)")])
    report.judge("organoid-C10", parts["recall"], seconds_per_unit=seconds_per_unit,
                 gates=[*gates, gate("phenomenon: large organoid pixels the annotation omits", omitted, at_least=0.10),
                        reference_gate([f1.loc["non-frozen", "large_recall"]],
                                       "reference large-organoid recall (non-frozen)")],
                 note=f"second part, F1 gap against the truth - against the annotation: "
                      f"{tables.fmt_effect(effect(parts['shrink']))} (the explanation needs it below 0)")
    fraction = ", ".join(f"{k} {v:.3f}" for k, v in probe.groupby("encoder")["r2_fraction"].mean().items())
    report.judge("organoid-C11", (p11["global encoder (= frozen)"] - p11["non-frozen"]).to_numpy(),
                 seconds_per_unit=seconds_per_unit,
                 gates=[*gates, gate("phenomenon: probe gain of the global encoder",
                                     (p11["global encoder (= frozen)"] - p11["random"]).mean(), at_least=0.1),
                        gate("reference probe R² (non-frozen)", p11["non-frozen"].mean(), within=(0.05, 0.95))],
                 note=f"linear CKA of the non-frozen encoder to the global one {cka.mean():.3f} (min {cka.min():.3f}); "
                      f"the organoid-fraction probe beside: {fraction}")
    return {"gap_ann": float(parts["gap_annotation"].mean()), "gap_true": float(parts["gap_true"].mean()),
            "recall": float(parts["recall"].mean()), "cka": float(cka.mean())}


def engagement_values(stages: pd.DataFrame, gain: Mapping[str, float]) -> dict:
    """What the pipeline page states about pre-training: the fewest global updates, the median
    loss falls of both stages (``stages``: :attr:`~.protocol.Results.stages`), the probe gain
    (``gain``: mean and interval) and :func:`probe_reading`."""
    glob, loc = stages[stages["stage"] == "global"], stages[stages["stage"] == "local"]
    return {"global_updates": int(glob["updates"].min()), "probe_gain": gain["mean"], "probe_low": gain["low"],
            "probe_high": gain["high"], "probe_reading": probe_reading(gain),
            "global_fall": float(glob["loss_fall"].median()), "local_fall": float(loc["loss_fall"].median())}


def pipeline_values(per_seed: pd.DataFrame, images: pd.DataFrame) -> dict:
    """What the pipeline page states about its arms: each arm's mean F1 over seeds (``per_seed``:
    one row per seed and arm), the test images and seeds counted (``images``: one row per image),
    and the paired pre-trained - supervised F1 difference with its 95% interval.

    >>> s = pd.DataFrame({"seed": [0, 0, 1, 1], "arm": ["pre-trained", "supervised"] * 2, "f1": [0.7, 0.6, 0.8, 0.6]})
    >>> v = pipeline_values(s.assign(classical=0), s.assign(image=[0, 0, 1, 1]))
    >>> round(v["gap"], 3), v["n_seeds"], v["n_test"]
    (0.15, 2, 2)
    """
    f1 = per_seed.groupby("arm")["f1"].mean()
    gap = effect(paired(per_seed, "f1", "pre-trained", "supervised"))
    return {"f1_pretrained": float(f1["pre-trained"]), "f1_supervised": float(f1["supervised"]),
            "f1_classical": float(f1.get("classical", np.nan)), "n_test": int(images["image"].nunique()),
            "n_seeds": int(per_seed["seed"].nunique()), "gap": gap["mean"], "gap_low": gap["low"],
            "gap_high": gap["high"]}


def sensitivity_reading(sens: pd.DataFrame, positive_control_passed: bool) -> dict:
    """What the pipeline page states about the global stage under other settings
    (:func:`~.diagnostics.global_sensitivity`): the seeds, the "as run" mean probe gain on those
    seeds, the best other variant's mean (and name), and a sentence that presupposes nothing.

    >>> s = pd.DataFrame({"seed": [0, 0, 1, 1], "variant": ["as run", "3x", "as run", "3x"],
    ...                   "probe_gain": [-0.1, 0.05, -0.1, 0.03]})
    >>> r = sensitivity_reading(s, False)
    >>> r["sens_best_name"], round(r["sens_best"], 3), round(r["sens_as_run"], 3)
    ('3x', 0.04, -0.1)
    >>> sensitivity_reading(s.iloc[:0], False)["sens_reading"]
    'The global stage was not run under other settings in this profile.'
    """
    others = sens[sens["variant"] != "as run"]
    if not len(others):
        return {"sens_seeds": 0, "sens_as_run": float("nan"), "sens_best": float("nan"), "sens_best_name": "none",
                "sens_reading": "The global stage was not run under other settings in this profile."}
    means = others.groupby("variant", sort=False)["probe_gain"].mean()
    as_run = float(sens[sens["variant"] == "as run"]["probe_gain"].mean())
    best = str(means.idxmax())
    n = int(sens["seed"].nunique())
    names = " and ".join(f'"{v}"' for v in means.index)
    purpose = ("whether the positive control's pass depends on the stage's settings" if positive_control_passed
               else "whether the stage's budget is what decides the positive control")
    reading = (f"To see {purpose}, the same stage ran as {names} on the first {n} seed{'s' if n > 1 else ''} "
               f"(descriptive, not a verdict): the best of them, \"{best}\", has a mean probe gain of "
               f"{means[best]:+.3f} against {as_run:+.3f} as run on the same seeds.")
    return {"sens_seeds": n, "sens_as_run": as_run, "sens_best": float(means[best]), "sens_best_name": best,
            "sens_reading": reading}
