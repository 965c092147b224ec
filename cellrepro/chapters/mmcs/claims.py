"""The MMCS paper's verdict rules on the decision protocol: registered gates and judgements.

* Table 1, the two phases (mmcs-C1): :func:`judge_phases`;
* Tables 1 and 4, the external data and the inference diameter (mmcs-C2, C6): :func:`judge_external`,
  :func:`judge_diameter`;
* Table 2, MMCS against the Cellpose-style baseline on the Cellpose test set's stand-in (mmcs-C3):
  :func:`judge_baselines`.

Units are data seeds: every arm of a seed trains on the same images (phase 2 and its control on
the same labelled crops), so each seed gives one paired difference per claim. The rows are
:func:`.phases.seed_run`'s and :func:`.baselines.seed_run`'s; the thresholds are the registrations'
(``cellrepro/publish/claims/registrations.yml``), and each gate's docstring says which.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from ...publish.decision import Gate, gate
from ...publish.rules import difference, per_seed, summary
from .phases import CONTROL, EXTERNAL_ONLY, ORACLE, PHASE1, PHASE2, PLUS_EXTERNAL

FLOOR_CEILING = (0.2, 0.95)
"""A reference arm's mean F1 must lie here: off the floor (broken) and off the ceiling (nothing to gain)."""
PSEUDO_F1 = 0.5
"""mmcs-C1: the final pseudo labels must find the unlabelled images' cells with at least this F1
(a loss share would not do: the unlabelled term's BCE to soft targets has an entropy floor that
carries no gradient)."""
REFRESHES = 2
"""mmcs-C1: the temporal ensemble must have been refreshed at least this often."""
HEADROOM = 0.0215
"""mmcs-C1: the oracle (the unlabelled images with their true labels) minus the control must reach
the paper's dataset1 effect, else no use of those images could show it."""
PROBE = 0.9
"""mmcs-C2: the external family must be told from dataset1 by an image-statistics probe this often."""
TRANSFER = 0.2
"""mmcs-C2: a net trained on the external family alone must reach this F1 on dataset1's test images."""
CURVE_RANGE = 0.02
"""mmcs-C6: the mean F1 curve over the diameter grid must span at least this (else its argmax is noise)."""
RHO_RATIO = (0.8, 1.2)
"""mmcs-C6: the self-adaptive diameter over the generator's nominal cell diameter."""
TRAINED = 0.01
"""mmcs-C3: the Cellpose-style baseline's F1 on the external test images must come within this of
MMCS's own phase-1 net (fewer updates, labelled images only): a baseline further below is
under-trained or handicapped, and non-inferiority against it would say little."""


def arm_means(scores: pd.DataFrame) -> pd.DataFrame:
    """Per seed and arm, the mean over test images of ``f1`` (columns ``seed, arm, f1``)."""
    return scores.groupby(["seed", "arm"])["f1"].mean().reset_index()


def _mean(means: pd.DataFrame, arm: str) -> float:
    v = means.loc[means["arm"] == arm, "f1"]
    return float(v.mean()) if len(v) else float("nan")


def phases_gates(scores: pd.DataFrame, facts: pd.DataFrame) -> list[Gate]:
    """mmcs-C1's registered gates (means over seeds):

    - *treatment engaged*: the final pseudo labels' F1 against the unlabelled images' true labels
      >= :data:`PSEUDO_F1` (mean over seeds) and at least :data:`REFRESHES` ensemble refreshes (the
      fewest over seeds);
    - *phenomenon present (unlabelled images carry information)*: oracle minus control >= :data:`HEADROOM`;
    - *reference off floor and ceiling*: the control's F1 within :data:`FLOOR_CEILING`.
    """
    means = arm_means(scores)
    headroom = float(per_seed(means, ORACLE, CONTROL, "f1").mean())
    pseudo, refreshes = float(facts["pseudo_f1"].mean()), int(facts["refreshes"].min())
    return [Gate(name="treatment engaged", passed=bool(pseudo >= PSEUDO_F1 and refreshes >= REFRESHES),
                 value=f"pseudo-label F1 {pseudo:.3f}, {refreshes} refreshes",
                 rule=f"pseudo-label F1 >= {PSEUDO_F1:g} and >= {REFRESHES} refreshes"),
            gate("phenomenon present (unlabelled images carry information)", round(headroom, 4), at_least=HEADROOM),
            gate("reference off floor and ceiling", round(_mean(means, CONTROL), 4), within=FLOOR_CEILING)]


def judge_phases(scores: pd.DataFrame, facts: pd.DataFrame, seconds_per_seed: float | None = None
                 ) -> dict[str, Any]:
    """mmcs-C1 through :func:`~cellrepro.publish.report.judge`: phase 2 minus its control (``w = 0``,
    the labelled loss weighted by ``1 - w``), paired over seeds. Returns what the page states for ``"mmcs-C1"`` and, beside (not judged),
    ``"paper"`` (phase 2 minus phase 1, the paper's comparison), ``"control"`` (the control minus
    phase 1: more updates and the decaying rate alone), ``"oracle"`` (the oracle minus the control)
    and ``"oracle_median"`` (its median over seeds: the gate uses the mean)."""
    from ...publish.decision import decide
    from ...publish.report import judge

    means = arm_means(scores)
    gates = phases_gates(scores, facts)
    beside = {"paper": (PHASE2, PHASE1), "control": (CONTROL, PHASE1), "oracle": (ORACLE, CONTROL)}
    out = {k: decide(per_seed(means, a, b, "f1").to_numpy(), test="superiority").as_dict() for k, (a, b) in beside.items()}
    note = "; ".join(f"{a} - {b} {difference(out[k])}" for k, (a, b) in beside.items())
    entry = judge("mmcs-C1", per_seed(means, PHASE2, CONTROL, "f1").to_numpy(), gates=gates,
                  seconds_per_unit=seconds_per_seed, note=note)
    out["oracle_median"] = float(np.median(per_seed(means, ORACLE, CONTROL, "f1")))
    return {"mmcs-C1": summary(entry, 3), **out}


def phases_finding(out: dict[str, Any]) -> str:
    """What :func:`judge_phases`'s numbers say about the paper's comparison, as a sentence for the page
    (the rule, not the run, picks it): whether the control gains as much over phase 1 as phase 2
    does (then Table 1's gain is the longer, annealed training's), whether phase 2 beats its control,
    or neither."""
    paper, control, c1 = out["paper"]["mean"], out["control"]["mean"], out["mmcs-C1"]["verdict"]
    if c1 == "holds":
        return ("Phase 2 beats its control: the unlabelled images add to what the longer, annealed training "
                "gives.")
    if paper > 0 and control >= paper:
        return ("The control, which trains as long under the same decaying rate without any unlabelled image, "
                "gains at least as much over phase 1 as phase 2 does: here the gain of the paper's kind comes from "
                "the longer, annealed training, not from the pseudo labels.")
    return "This run cannot tell the unlabelled images' part of phase 2's gain from the longer training's."


def external_gates(scores: pd.DataFrame, facts: pd.DataFrame) -> list[Gate]:
    """mmcs-C2's registered gates (means over seeds):

    - *treatment engaged (a different family)*: :func:`.phases.family_probe` >= :data:`PROBE`;
    - *phenomenon present (transfer exists)*: the external-only net's F1 on dataset1 >= :data:`TRANSFER`;
    - *reference off floor and ceiling*: dataset1-only phase 1 F1 within :data:`FLOOR_CEILING`.
    """
    means = arm_means(scores)
    return [gate("treatment engaged (a different family)", round(float(facts["probe"].mean()), 4), at_least=PROBE),
            gate("phenomenon present (transfer exists)", round(_mean(means, EXTERNAL_ONLY), 4), at_least=TRANSFER),
            gate("reference off floor and ceiling", round(_mean(means, PHASE1), 4), within=FLOOR_CEILING)]


def judge_external(scores: pd.DataFrame, facts: pd.DataFrame, seconds_per_seed: float | None = None
                   ) -> dict[str, Any]:
    """mmcs-C2 through :func:`~cellrepro.publish.report.judge`: phase 1 on +dataset2 minus phase 1 on
    dataset1, paired over seeds; what the page states."""
    from ...publish.report import judge

    means = arm_means(scores)
    entry = judge("mmcs-C2", per_seed(means, PLUS_EXTERNAL, PHASE1, "f1").to_numpy(),
                  gates=external_gates(scores, facts), seconds_per_unit=seconds_per_seed,
                  note=f"external family alone, on dataset1: F1 {_mean(means, EXTERNAL_ONLY):.3f}")
    return summary(entry, 3)


def seed_curves(sweep: pd.DataFrame) -> pd.DataFrame:
    """Per seed, set and diameter, the mean F1 over that set's images (columns ``seed, set, diameter, f1``)."""
    return sweep.groupby(["seed", "set", "diameter"])["f1"].mean().reset_index()


def diameter_choices(sweep: pd.DataFrame, facts: pd.DataFrame) -> pd.DataFrame:
    """Per seed: ``best`` (the diameter of highest validation F1; the smaller on a tie), ``nearest``
    (the grid diameter nearest the seed's self-adaptive ``rho``; the smaller on a tie), and the test
    F1 at each, ``f1_best`` and ``f1_nearest``, and at 30 px, ``f1_30`` (NaN if 30 px is not swept)."""
    curves = seed_curves(sweep)
    rows = []
    for seed, c in curves.groupby("seed"):
        val = c[c["set"] == "validation"].sort_values("diameter")
        test = c[c["set"] == "test"].set_index("diameter")["f1"]
        if val.empty or test.empty:
            raise ValueError(f"seed {seed}: the sweep needs validation and test rows")
        grid = np.asarray(sorted(test.index), float)
        rho = float(facts.loc[facts["seed"] == seed, "rho"].iloc[0])
        best = float(val.loc[val["f1"].idxmax(), "diameter"])
        nearest = float(grid[np.argmin(np.abs(grid - rho))])
        rows.append({"seed": seed, "rho": rho, "best": best, "nearest": nearest, "f1_best": float(test[best]),
                     "f1_nearest": float(test[nearest]), "f1_30": float(test.get(30.0, np.nan))})
    return pd.DataFrame(rows)


def diameter_gates(sweep: pd.DataFrame, facts: pd.DataFrame) -> list[Gate]:
    """mmcs-C6's registered gates:

    - *phenomenon present (diameter matters)*: the range of the mean test curve >= :data:`CURVE_RANGE`;
    - *treatment engaged*: mean ``rho`` over the generator's mean nominal diameter within :data:`RHO_RATIO`;
    - *reference off floor and ceiling*: mean test F1 at the validation-chosen diameter within :data:`FLOOR_CEILING`.
    """
    curves = seed_curves(sweep)
    mean_curve = curves[curves["set"] == "test"].groupby("diameter")["f1"].mean()
    choices = diameter_choices(sweep, facts)
    ratio = float(facts["rho"].mean() / facts["nominal"].mean())
    return [gate("phenomenon present (diameter matters)", round(float(mean_curve.max() - mean_curve.min()), 4),
                 at_least=CURVE_RANGE),
            gate("treatment engaged", round(ratio, 4), within=RHO_RATIO),
            gate("reference off floor and ceiling", round(float(choices["f1_best"].mean()), 4), within=FLOOR_CEILING)]


def judge_diameter(sweep: pd.DataFrame, facts: pd.DataFrame, seconds_per_seed: float | None = None
                   ) -> dict[str, dict[str, Any]]:
    """mmcs-C6 through :func:`~cellrepro.publish.report.judge` (one-SE rule): per seed, test F1 at the
    grid diameter nearest the self-adaptive ``rho`` (the paper's 40 px, translated) minus at the
    diameter the validation images chose. Returns what the page states for ``"mmcs-C6"`` and,
    beside, ``"default"``: test F1 at the validation-chosen diameter minus at Cellpose's 30 px
    (the paper: +0.0332 for 40 against 30 px); ``"peak"`` and ``"unimodal"``: the mean test curve's
    peak and shape (up to 0.005); and ``"register_rule"``: what the claims register's first rule
    reads, shown beside, not recorded ("holds" if the curve is unimodal, its peak within one grid
    step, 5 px, of the mean rho, and ``"default"`` holds; "fails" if ``"default"`` fails or the peak
    is further from rho; else "inconclusive")."""
    from ...publish.decision import decide
    from ...publish.report import judge

    from .protocol import unimodal

    choices = diameter_choices(sweep, facts)
    curves = seed_curves(sweep)
    mean_curve = curves[curves["set"] == "test"].groupby("diameter")["f1"].mean().sort_index()
    default = decide((choices["f1_best"] - choices["f1_30"]).to_numpy(), test="superiority").as_dict()
    note = (f"test curve {'unimodal' if unimodal(mean_curve.to_numpy(), 0.005) else 'not unimodal'} "
            f"(peak {mean_curve.idxmax():.0f} px); validation chose "
            + ", ".join(f"{d:.0f}" for d in choices["best"]) + " px; nearest rho "
            + ", ".join(f"{d:.0f}" for d in choices["nearest"]) + f" px; best - 30 px {difference(default)}")
    entry = judge("mmcs-C6", (choices["f1_nearest"] - choices["f1_best"]).to_numpy(),
                  gates=diameter_gates(sweep, facts), seconds_per_unit=seconds_per_seed, note=note)
    shape, near = unimodal(mean_curve.to_numpy(), 0.005), abs(float(mean_curve.idxmax()) - float(facts["rho"].mean())) <= 5
    first = ("holds" if shape and near and default["verdict"] == "holds"
             else "fails" if default["verdict"] == "fails" or not near else "inconclusive")
    return {"mmcs-C6": summary(entry, 3), "default": default, "register_rule": first,
            "unimodal": shape, "peak": float(mean_curve.idxmax())}


def baselines_gates(scores: pd.DataFrame, facts: pd.DataFrame) -> list[Gate]:
    """mmcs-C3's registered gates (means over seeds):

    - *treatment engaged*: MMCS's final pseudo labels find the unlabelled images' cells with F1 >=
      :data:`PSEUDO_F1`, after at least :data:`REFRESHES` ensemble refreshes (the fewest over seeds);
    - *reference engaged*: the Cellpose-style F1 on the external test images >= MMCS's phase-1 F1
      there minus :data:`TRAINED`;
    - *reference off floor and ceiling*: the Cellpose-style F1 on the external test images within
      :data:`FLOOR_CEILING`.
    """
    from .baselines import CELLPOSE

    reference = _mean(arm_means(scores[scores["set"] == "external"]), CELLPOSE)
    pseudo, refreshes = float(facts["pseudo_f1"].mean()), int(facts["refreshes"].min())
    bar = float(facts["phase1_external"].mean()) - TRAINED
    return [Gate(name="treatment engaged", passed=bool(pseudo >= PSEUDO_F1 and refreshes >= REFRESHES),
                 value=f"pseudo-label F1 {pseudo:.3f}, {refreshes} refreshes",
                 rule=f"pseudo-label F1 >= {PSEUDO_F1:g} and >= {REFRESHES} refreshes"),
            gate("reference engaged", round(reference, 4), at_least=round(bar, 4)),
            gate("reference off floor and ceiling", round(reference, 4), within=FLOOR_CEILING)]


def _per_image(scores: pd.DataFrame, a: str, b: str) -> np.ndarray:
    wide = scores.pivot_table(index=["seed", "image"], columns="arm", values="f1")
    return (wide[a] - wide[b]).dropna().to_numpy()


def judge_baselines(scores: pd.DataFrame, facts: pd.DataFrame, seconds_per_seed: float | None = None
                    ) -> dict[str, Any]:
    """mmcs-C3 through :func:`~cellrepro.publish.report.judge` (non-inferiority, margin 0.01): MMCS
    minus the Cellpose-style baseline on the external test images, paired over seeds (the per-image
    differences give the bootstrap shown beside). Returns what the page states for ``"mmcs-C3"``
    and, beside (not judged): ``"direction"`` (the same difference as a superiority test: which way
    it points), ``"dataset1"`` (the same on dataset1's test images) and ``"mask_rcnn"`` (MMCS minus
    Mask R-CNN on the external images, per seed that trained it, as text; "not run" where none did)."""
    from ...publish.decision import decide
    from ...publish.report import judge
    from .baselines import CELLPOSE, MASK_RCNN, MMCS

    ext = scores[scores["set"] == "external"]
    by_set = {name: arm_means(scores[scores["set"] == name]) for name in ("external", "dataset1")}
    paired = per_seed(by_set["external"], MMCS, CELLPOSE, "f1").to_numpy()
    out: dict[str, Any] = {
        "direction": decide(paired, test="superiority").as_dict(),
        "dataset1": decide(per_seed(by_set["dataset1"], MMCS, CELLPOSE, "f1").to_numpy(), test="superiority").as_dict(),
        "mask_rcnn": "not run"}
    if (ext["arm"] == MASK_RCNN).any():
        d = per_seed(by_set["external"], MMCS, MASK_RCNN, "f1")
        out["mask_rcnn"] = ", ".join(f"{v:+.3f} (seed {s})" for s, v in d.items())
    note = (f"MMCS - Cellpose-style, its direction {difference(out['direction'])}; on dataset1's test images "
            f"{difference(out['dataset1'])}; MMCS - Mask R-CNN per seed {out['mask_rcnn']} (shown, not judged: "
            "'much better than StarDist and Mask R-CNN' is not judged)")
    entry = judge("mmcs-C3", paired, gates=baselines_gates(scores, facts), images=_per_image(ext, MMCS, CELLPOSE),
                  seconds_per_unit=seconds_per_seed, note=note)
    return {"mmcs-C3": summary(entry, 3), **out}


__all__ = ["CURVE_RANGE", "FLOOR_CEILING", "HEADROOM", "TRAINED", "baselines_gates", "judge_baselines", "PROBE", "PSEUDO_F1", "REFRESHES", "RHO_RATIO", "TRANSFER",
           "arm_means", "diameter_choices", "difference", "diameter_gates", "external_gates", "judge_diameter", "judge_external",
           "judge_phases", "phases_finding", "phases_gates", "seed_curves"]
