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
