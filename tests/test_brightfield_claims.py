"""The brightfield chapter's verdict functions (chapters/brightfield/claims.py): the registered arms'
paired differences, every registered gate supplied, both readings judged, and a stand-in whose weak
labels cost nothing gives "not testable here" whatever the map did."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from cellrepro.chapters.brightfield import claims
from cellrepro.chapters.brightfield import overlap_loss as ol
from conftest import not_measured

SHARE = 0.04


def rows(effects: dict[str, float], seeds: int = 6, exact_gain: float = 0.1, shift: float = 0.2,
         base: float = 0.3, seed: int = 0) -> pd.DataFrame:
    """Synthetic seed_run rows: each arm's AP is the no-map arm's plus its effect plus noise."""
    rng = np.random.default_rng(seed)
    out = []
    for s in range(seeds):
        none = base + rng.normal(0, 0.02)
        for arm in ol.BOOK_ARMS:
            gain = exact_gain if arm == ol.EXACT else effects.get(arm, 0.0)
            ap = none + gain + (rng.normal(0, 0.01) if arm != ol.NONE else 0.0)
            out.append({"seed": s, "arm": arm, "ap": ap, "f1": ap - 0.05, "ap_cells": ap + 0.1,
                        "rank_shift": np.nan if arm == ol.NONE else shift})
    return pd.DataFrame(out)


def test_c4_and_c5_use_the_registered_arms_and_gates(judged):
    r = rows({ol.V4: 0.08, ol.EQ51: 0.08 - 0.05, ol.PRINTED: 0.0, ol.PRINTED_EQ51: 0.0})
    out = claims.judge_overlap(r, SHARE, seconds_per_seed=100.0)
    assert [c for c, *_ in judged] == ["brightfield-C4", "brightfield-C5"]
    by = {c: (d, e) for c, d, _, e in judged}
    wide = r.pivot(index="seed", columns="arm", values="ap")
    np.testing.assert_allclose(by["brightfield-C4"][0], (wide[ol.V4] - wide[ol.NONE]).to_numpy())
    np.testing.assert_allclose(by["brightfield-C5"][0], (wide[ol.EQ51] - wide[ol.V4]).to_numpy())
    assert all(not not_measured(e) for *_, e in judged)
    assert by["brightfield-C4"][1]["verdict"] == "holds"
    assert by["brightfield-C5"][1]["verdict"] == "holds"  # Eq. 5.1 worse: "no improvement" holds (one-sided)
    # the printed reading is decided by the same rule, not recorded, named in the note
    assert set(out["brightfield-C5"]["printed"]) == {"verdict", "effect", "interval", "failed"}
    assert out["brightfield-C5"]["prose"]["verdict"] == "holds" and out["brightfield-C5"]["prose"]["failed"] == "none"
    assert "printed reading" in by["brightfield-C5"][1]["note"]
    assert out["brightfield-C4"]["printed"]["verdict"] in ("underpowered", "fails", "smaller than the paper's")


def test_eq51_better_than_the_margin_fails_c5(judged):
    claims.judge_overlap(rows({ol.V4: 0.05, ol.EQ51: 0.05 + 0.08}), SHARE)
    assert dict((c, e) for c, _, _, e in judged)["brightfield-C5"]["verdict"] == "fails"


def test_weak_labels_that_cost_nothing_make_c4_not_testable_whatever_the_map_did(judged):
    for effect in (0.1, -0.1):
        judged.clear()
        out = claims.judge_overlap(rows({ol.V4: effect}, exact_gain=0.0), SHARE)
        entry = dict((c, e) for c, _, _, e in judged)["brightfield-C4"]
        assert entry["verdict"] == "not testable here"
        assert [g["name"] for g in entry["failed_gates"]] == ["phenomenon present (weak labels cost AP)",
                                                              "phenomenon present, 95% low"]
        assert out["brightfield-C4"]["printed"]["verdict"] == "not testable here"
        # nor can "Eq. 5.1 adds nothing" be told where there is nothing to add
        assert dict((c, e) for c, _, _, e in judged)["brightfield-C5"]["verdict"] == "not testable here"


def test_engagement_and_floor_gates():
    r = rows({ol.V4: 0.05}, shift=0.01, base=0.05)
    gates = {g.name: g for g in claims.overlap_gates(r, ol.V4, ol.NONE, SHARE)}
    assert not gates["treatment engaged"].passed
    assert not gates["reference off floor and ceiling"].passed  # AP 0.05 < 2 x 0.04
    assert gates["reference off floor and ceiling"].rule == "within [0.08, 0.95]"
    assert gates["phenomenon present (weak labels cost AP)"].passed and gates["phenomenon present, 95% low"].passed


def test_recovered_share_of_the_weak_label_cost():
    r = rows({ol.V4: 0.05}, exact_gain=0.1)
    assert claims.recovered(r) == pytest.approx(0.5, abs=0.1)


def test_paired_names_a_missing_arm():
    with pytest.raises(ValueError, match="no arm 'v9'"):
        claims.paired(rows({}), "v9", ol.NONE)
