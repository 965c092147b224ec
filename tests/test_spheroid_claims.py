"""The spheroid chapter's verdict functions (chapters/spheroid/claims/): the registered arms'
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


def table1(gain: float = 3.0, weak_gap: float = 5.0, base: float = 0.4, loss_share: float = 0.05,
           unet_ap50: float = 0.5, n: int = 6, backbones=("r18",), seed: int = 0) -> pd.DataFrame:
    """Rows as Table 1's notebook gives them: DSC adds ``gain`` points of mask mAP, half of it at
    AP50 and all at AP75; the baseline's SBS views score ``weak_gap`` points above its all-slice views."""
    from cellrepro.chapters.spheroid.train import TABLE1_ARMS

    rng = np.random.default_rng(seed)
    rows = []
    for s in range(n):
        for bb in backbones:
            level = base + rng.normal(0, 0.01)
            for (name, dsc, _) in TABLE1_ARMS:
                g = dsc * gain / 100 + rng.normal(0, 0.002)
                row = {"arm": name, "backbone": bb, "seed": s, "mask_AP": level + g, "mask_AP50": level + 0.3 + g / 2,
                       "mask_AP75": level - 0.1 + g, "bbox_AP": level, "bbox_AP50": level + 0.3}
                if dsc:
                    row.update(dsc_box_share=0.3, dsc_loss_share=loss_share)
                else:
                    weak = level + rng.normal(0, 0.05, 20)
                    row.update(weak_mask_AP_images=list(weak),
                               strong_mask_AP_images=list(weak - weak_gap / 100 + rng.normal(0, 0.02, 20)))
                rows.append(row)
        rows.append({"arm": claims.UNETPP, "backbone": "plain", "seed": s, "mask_AP": 0.3, "dice": 0.7,
                     "mask_AP50": unet_ap50 + rng.normal(0, 0.01), "mask_AP75": 0.2})
    return pd.DataFrame(rows)


def test_table1_claims_are_the_registered_differences_with_every_gate(judged):
    results = table1(backbones=("r18", "r50"))
    values = claims.judge_table1(results, seconds_per_seed=100.0)
    by = {c: (d, e) for c, d, _, e in judged}
    assert list(by) == ["spheroid-C3", "spheroid-C5", "spheroid-C8"]
    assert all(not not_measured(e) for _, e in by.values())
    base, dsc = (results[results["arm"] == a] for a in results["arm"].unique()[:2])
    pooled = 100 * (dsc.groupby("seed")["mask_AP"].mean() - base.groupby("seed")["mask_AP"].mean())
    np.testing.assert_allclose(by["spheroid-C3"][0], pooled.to_numpy())
    assert by["spheroid-C3"][1]["verdict"] == "holds" and "r50" in by["spheroid-C3"][1]["note"]
    unet = 100 * results[results["arm"] == claims.UNETPP].set_index("seed")["mask_AP50"]
    first = 100 * dsc[dsc["backbone"] == "r18"].set_index("seed")["mask_AP50"]
    np.testing.assert_allclose(by["spheroid-C5"][0], (first - unet).to_numpy())
    assert values["c8"] == pytest.approx(1.5, abs=0.3)  # the AP75 gain (3) minus the AP50 gain (1.5)
    assert values["weak_gap"] == pytest.approx(5.0, abs=1.0) and values["unet_dice"] == pytest.approx(0.7)


@pytest.mark.parametrize("change, claim, failed", [
    ({"weak_gap": -5.0}, "spheroid-C3", "phenomenon present (SBS view easier for the detector than the all-slice view), 95% low"),
    ({"base": 0.12}, "spheroid-C3", "reference off floor and ceiling"),
    ({"loss_share": 0.001}, "spheroid-C5", "treatment engaged (DSC consistency acts), loss share"),
    ({"unet_ap50": 0.02}, "spheroid-C5", "reference off floor and ceiling"),
    ({"base": 0.02}, "spheroid-C8", "reference off floor and ceiling")])
def test_table1_claims_are_not_testable_when_a_gate_fails_whatever_dsc_gained(judged, change, claim, failed):
    claims.judge_table1(table1(gain=10.0, **change))
    entry = dict((c, e) for c, _, _, e in judged)[claim]
    assert entry["verdict"] == "not testable here" and failed in [g["name"] for g in entry["failed_gates"]]


def test_table1_cells_put_resnet18_in_the_papers_resnet50_rows():
    cells = claims.table1_cells(table1(n=2))
    assert ("DSCMask R-CNN, R50-FPN", "mask mAP@[.5:.95]") in cells and ("Mask R-CNN, R50-FPN", "bbox AP50") in cells
    assert ("Ngo TKN [15], R50", "mask AP50") in cells and ("Ngo TKN [15], R50", "bbox AP50") not in cells


def sweep(extra_spread: float, sparse_level: float = 0.3, ssim_gap: float = 0.05, n: int = 8, seed: int = 0):
    rng = np.random.default_rng(seed)
    return pd.DataFrame([{"k": k, "seed": s, "ssim_cells": 0.6 - (k == 2) * ssim_gap,
                          "mask_AP": (sparse_level if k == 2 else 0.3) + rng.normal(0, 0.01 + (k == 2) * extra_spread)}
                         for s in range(n) for k in (2, 8)])


def test_c9_is_the_paired_brown_forsythe_contrast(judged):
    results = sweep(extra_spread=0.05)
    out = claims.judge_k_sweep(results, 2, 8, seconds_per_seed=50.0)
    (claim, paired, _, entry), = judged
    dev = {k: (100 * g.set_index("seed")["mask_AP"] - 100 * g["mask_AP"].median()).abs() for k, g in results.groupby("k")}
    np.testing.assert_allclose(paired, (dev[2] - dev[8]).to_numpy())
    assert claim == "spheroid-C9" and not not_measured(entry) and entry["verdict"] == "holds"
    assert out["sd_sparse"] > out["sd_reference"] and out["sd_ratio"] > 1


@pytest.mark.parametrize("change, failed", [({"sparse_level": 0.05}, "treatment arm off floor and ceiling"),
                                            ({"ssim_gap": 0.0}, "treatment engaged")])
def test_c9_is_not_testable_on_the_floor_or_when_the_views_do_not_differ(judged, change, failed):
    claims.judge_k_sweep(sweep(extra_spread=0.05, **change), 2, 8)
    entry = judged[0][3]
    assert entry["verdict"] == "not testable here" and failed in [g["name"] for g in entry["failed_gates"]]


def test_c9_refuses_two_seeds_whose_spread_is_one_number():
    with pytest.raises(ValueError, match="at least 3 seeds"):
        claims.judge_k_sweep(sweep(extra_spread=0.05, n=2), 2, 8)
