"""The organoid chapter's verdict functions (chapters/organoid/claims.py): every registered gate is
supplied, the paired differences are the registered arms', and the cost of a seed reaches judge."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from cellrepro.chapters.organoid import claims
from cellrepro.chapters.organoid.evaluate import SHAPE_METRICS
from conftest import not_measured

SEEDS = range(8)


def engagement():
    return [*claims.stage_gates("global", [200, 200], [0.2, 0.3], {"low": 0.01}),
            *claims.stage_gates("local", [100, 100], [0.3, 0.4])]


def test_judge_data_uses_the_registered_arms_and_gates(judged):
    rng = np.random.default_rng(0)
    arms = {"g10/l10": 0.60, "g60/l10": 0.61, "g60/l60": 0.66, "g0/l10": 0.55, "supervised": 0.58,
            "supervised + local labels (least)": 0.60, "supervised + local labels (most)": 0.64}
    seeds = pd.DataFrame([{"seed": s, "arm": a, "f1": f + rng.normal(0, 0.005)} for s in SEEDS for a, f in arms.items()])
    out = claims.judge_data(seeds, engagement(), [0.1, 0.6], [0.1, 0.6], seconds_per_unit=100.0)
    assert [c for c, *_ in judged] == ["organoid-C1", "organoid-C2", "organoid-C3", "organoid-C5"]
    by = {c: (d, kw, e) for c, d, kw, e in judged}
    wide = seeds.pivot(index="seed", columns="arm", values="f1")
    np.testing.assert_allclose(by["organoid-C1"][0], wide["g60/l10"] - wide["g10/l10"])
    np.testing.assert_allclose(by["organoid-C2"][0], wide["g60/l60"] - wide["g60/l10"])
    np.testing.assert_allclose(by["organoid-C3"][0], by["organoid-C2"][0] - by["organoid-C1"][0])
    np.testing.assert_allclose(by["organoid-C5"][0], wide["g60/l10"] - wide["supervised + local labels (least)"])
    assert all(not not_measured(e) for *_, e in judged)
    assert all(kw["seconds_per_unit"] == 100.0 for _, _, kw, _ in judged)
    assert out["downstream_effect"] == pytest.approx((wide["g60/l10"] - wide["g0/l10"]).mean())


def test_judge_loss_signs_c6_and_c7(judged):
    rows = []
    for s in SEEDS:
        for loss, f1, holes in (("bce_dice", 0.70, 0.30), ("ssim_dice", 0.60, 0.20), ("ssim_mae_dice", 0.62, 0.10)):
            rows.append({"seed": s, "loss": loss, "f1": f1 + 0.001 * s, "holes_per_object": holes,
                         **{m: 0.5 for m in SHAPE_METRICS if m != "holes_per_object"}})
    out = claims.judge_loss(pd.DataFrame(rows), engagement())
    by = {c: (d, e) for c, d, _, e in judged}
    np.testing.assert_allclose(by["organoid-C6"][0], 0.10)
    np.testing.assert_allclose(by["organoid-C7"][0], 0.30 - 0.15)  # BCE & Dice minus the SSIM losses' mean
    assert out["bce_minus_ssim"] == pytest.approx(0.10)
    assert all(not not_measured(e) for _, e in by.values())


def test_judge_frozen_supplies_every_gate_and_fails_an_encoder_that_moved(judged):
    pooled = pd.DataFrame([{"seed": s, "arm": a, "f1": 0.6, "f1_annotation": f, "large_recall": r}
                           for s in SEEDS for a, f, r in (("frozen", 0.60, 0.7), ("non-frozen", 0.62 + 0.001 * s, 0.6))])
    probe = pd.DataFrame([{"seed": s, "encoder": e, "r2": r, "r2_fraction": 0.5}
                          for s in SEEDS for e, r in (("global encoder (= frozen)", 0.3), ("non-frozen", 0.2 + 0.01 * s),
                                                      ("random", 0.1))])
    stages = pd.DataFrame([{"stage": "local", "frozen": True, "encoder_max_change": 0.5, "encoder_relative_change": 0.1},
                           {"stage": "local", "frozen": False, "encoder_max_change": 0.5, "encoder_relative_change": 0.1}])
    out = claims.judge_frozen(pooled, probe, pd.Series([0.7] * 8), 0.3, stages, engagement())
    by = {c: (d, e) for c, d, _, e in judged}
    assert list(by) == ["organoid-C9", "organoid-C10", "organoid-C11"]
    np.testing.assert_allclose(by["organoid-C9"][0], 0.02 + 0.001 * np.arange(8))
    np.testing.assert_allclose(by["organoid-C10"][0], 0.1)
    assert all(not not_measured(e) for _, e in by.values())
    assert [g["name"] for g in by["organoid-C9"][1]["failed_gates"]] == ["frozen encoder unchanged (max |change|)"]
    assert by["organoid-C9"][1]["verdict"] == "not testable here"
    assert out["cka"] == pytest.approx(0.7)
