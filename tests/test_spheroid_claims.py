"""The spheroid chapter's verdict functions (chapters/spheroid/claims.py): the registered arms'
paired differences, every registered gate supplied, and a stand-in without the phenomenon gives
"not testable here" whatever SBS did."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from cellrepro.chapters.spheroid import claims
from conftest import not_measured

K, Z = 8, 15


def tables(oracle_gain: float, sbs_gain: float, n: int = 40, seed: int = 0):
    rng = np.random.default_rng(seed)
    rows, agreement, per_stack = [], [], []
    for i in range(n):
        stack, base = f"s{i}", 0.6 + rng.normal(0, 0.05)
        for sel, gain in (("slice", sbs_gain), ("stack", 0.0), ("random", -0.01), ("middle", 0.0), ("oracle", oracle_gain)):
            for k, value in ((K, base + gain + rng.normal(0, 0.01)), (Z, base)):
                rows.append({"seed": i % 2, "stack": stack, "selection": sel, "k": k, "ssim_cells": value,
                             "psnr_cells": 20 * value, "contour": value})
        for norm, auc in (("slice", 0.85), ("stack", 0.9)):
            agreement.append({"seed": i % 2, "stack": stack, "normalisation": norm, "auc": auc + rng.normal(0, 0.02),
                              "rho": 0.5, "rho_count": 0.5, "varies": 1.0})
        per_stack.append({"seed": i % 2, "stack": stack, "changed": 0.3, "sharpness_auc": 0.8, "best_focus": 0.4,
                          "slice_focus": 0.2, "seconds": 5.0})
    return pd.DataFrame(rows), pd.DataFrame(agreement), pd.DataFrame(per_stack)


def test_c1_and_c2_use_the_registered_arms_and_gates(judged):
    quality, agreement, per_stack = tables(oracle_gain=0.05, sbs_gain=0.02)
    out = claims.judge_stacking(quality, agreement, per_stack, K, seconds_per_stack=5.0)
    assert [c for c, *_ in judged] == ["spheroid-C1", "spheroid-C2"]
    by = {c: (d, e) for c, d, _, e in judged}
    q = quality[quality["selection"] == "slice"].pivot_table(index="stack", columns="k", values="ssim_cells")
    np.testing.assert_allclose(np.sort(by["spheroid-C1"][0]), np.sort((q[K] - q[Z]).to_numpy()))
    auc = agreement[agreement["normalisation"] == "slice"]["auc"]
    np.testing.assert_allclose(np.sort(by["spheroid-C2"][0]), np.sort(auc.to_numpy() - claims.AUC_BAR))
    assert all(not not_measured(e) for *_, e in judged)
    assert by["spheroid-C1"][1]["verdict"] == "holds" and by["spheroid-C2"][1]["verdict"] == "holds"
    assert out["c1_oracle"] == pytest.approx(0.05, abs=0.01) and out["changed"] == 0.3


def test_without_the_phenomenon_c1_is_not_testable_whatever_sbs_did(judged):
    for sbs in (0.05, -0.05):
        judged.clear()
        claims.judge_stacking(*tables(oracle_gain=0.01, sbs_gain=sbs), K)
        entry = dict((c, e) for c, _, _, e in judged)["spheroid-C1"]
        assert entry["verdict"] == "not testable here"
        assert [g["name"] for g in entry["failed_gates"]] == ["phenomenon present (oracle)"]


def test_a_fusion_that_selection_does_not_change_fails_the_engagement_gate():
    quality, _, per_stack = tables(oracle_gain=0.05, sbs_gain=0.0)
    gates = {g.name: g for g in claims.c1_gates(quality, per_stack.assign(changed=0.01), K)}
    assert not gates["treatment engaged"].passed and gates["phenomenon present (oracle)"].passed


def factorial(both_gain: float, kept: int = 4, box_share: float = 0.3, strong_gap: float = -5.0, base: float = 0.4,
              n: int = 8, seed: int = 0) -> pd.DataFrame:
    """Rows as run_arms gives them: DSC adds half of ``both_gain``, SSC the other half, no interaction."""
    from cellrepro.chapters.spheroid.train import ARMS

    rng = np.random.default_rng(seed)
    rows = []
    for s in range(n):
        level = base + rng.normal(0, 0.01)
        for name, dsc, ssc in ARMS:
            value = level + (dsc + ssc) * both_gain / 200 + rng.normal(0, 0.002)
            row = {"arm": name, "seed": s, "mask_AP": value, "mask_AP75": value / 2}
            if dsc:
                row.update(dsc_box_share=box_share, dsc_loss_share=0.05)
            if ssc:
                row.update(reliable=kept, stabilities=[0.5] * 10)
            if not dsc and not ssc:
                oracle = value + rng.normal(0, 0.05, 20)
                strong = oracle + strong_gap / 100 + rng.normal(0, 0.02, 20)
                row.update(oracle_mask_AP_images=list(oracle), strong_mask_AP_images=list(strong),
                           weak_mask_AP_images=list(strong + 0.01))
            rows.append(row)
    return pd.DataFrame(rows)


def test_c6_is_the_combined_effect_with_every_registered_gate(judged):
    results = factorial(both_gain=5.0)
    effects = claims.judge_table2(results, offered=10, seconds_per_seed=100.0)
    (claim, paired, _, entry), = [j for j in judged if j[0] == "spheroid-C6"]
    base = results[results["arm"] == results["arm"].iloc[0]].set_index("seed")["mask_AP"]
    both = results[results["arm"] == results["arm"].iloc[3]].set_index("seed")["mask_AP"]
    np.testing.assert_allclose(paired, 100 * (both - base).to_numpy())
    assert not not_measured(entry) and entry["verdict"] == "holds"
    assert effects["DSC"]["mean"] == pytest.approx(2.5, abs=0.3) and effects["interaction"]["mean"] == pytest.approx(0, abs=0.5)
    assert all(effects[p]["reading"] in entry["note"] for p in ("DSC", "SSC", "interaction"))
    # the paper's parts from its Table 2, averaged the same way: DSC (1.60 + 2.34) / 2, SSC (1.86 + 2.60) / 2
    assert [round(effects[p]["paper"], 2) for p in ("DSC", "SSC", "interaction", "both")] == [1.97, 2.23, 0.74, 4.2]


@pytest.mark.parametrize("change, failed", [
    ({"kept": 0}, "treatment engaged (SSC keeps pseudo-labels), every round"),
    ({"kept": 10}, "treatment engaged (SSC keeps pseudo-labels), share kept"),
    ({"box_share": 0.0}, "treatment engaged (DSC consistency acts), box pixels"),
    ({"strong_gap": 0.0}, "phenomenon present (all-slice view harder for the detector), 95% low"),
    ({"base": 0.05}, "reference off floor and ceiling")])
def test_c6_is_not_testable_when_a_treatment_idles_or_the_stand_in_lacks_the_phenomenon(judged, change, failed):
    claims.judge_table2(factorial(both_gain=5.0, **change), offered=10)
    entry = dict((c, e) for c, _, _, e in judged)["spheroid-C6"]
    assert entry["verdict"] == "not testable here" and failed in [g["name"] for g in entry["failed_gates"]]


def test_table2_values_and_c7_is_recorded_as_not_testable():
    from cellrepro.publish.verdicts import _SESSION

    results = factorial(both_gain=0.0, strong_gap=-5.0)
    values = claims.table2_values(results)
    assert values["strong_gap"] == pytest.approx(-5.0, abs=0.5) and values["base_map"] == pytest.approx(40, abs=2)
    assert values["noise_range"] == pytest.approx(1.96 * np.sqrt(2) * values["baseline_sd"])
    claims.judge_table2(results, offered=10)
    assert _SESSION["spheroid-C7"]["verdict"] == "not testable here"
