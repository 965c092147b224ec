"""Tables 5.1-5.2 protocol of the brightfield chapter: fragments, rules and the paper's cells."""

import numpy as np
import pandas as pd
import pytest

from cellrepro.publish import report
from cellrepro.chapters.brightfield import heads as H
from cellrepro.data.types import Field


def _field(cells, nuclei):
    z = np.zeros(cells.shape[1:], np.float32)
    return Field("f", z, z, z, None, cells, nuclei)


def test_fragments_count_pieces_per_cell_and_nucleus_gaps():
    cells = np.zeros((2, 8, 16), bool)
    cells[0, 1:7, 1:8] = True
    cells[1, 1:7, 8:15] = True
    nuclei = np.zeros((8, 16), np.int32)
    nuclei[3:5, 3:5] = 1
    nuclei[3:5, 11:13] = 2
    pred = cells.any(0).astype(float)
    pred[:, 4] = 0  # cell 0 cut in two, through its nucleus (half of its 4 pixels)
    out = H.fragments(pred, _field(cells, nuclei))
    ring_gap = out.pop("ring_gap")
    assert 0 < ring_gap < 2 / 8 and out.pop("excess_gap") == pytest.approx(2 / 8 - ring_gap)
    assert out == {"fragments": 0.5, "split_cells": 0.5, "nucleus_gap": 2 / 8, "cells": 2}
    whole = H.fragments(cells.any(0).astype(float), _field(cells, nuclei))
    assert whole["fragments"] == 0 and whole["nucleus_gap"] == 0


def test_fragments_refuse_a_wrong_shape():
    cells = np.ones((1, 4, 4), bool)
    with pytest.raises(ValueError, match="prediction shape"):
        H.fragments(np.ones((4, 5)), _field(cells, np.zeros((4, 4), np.int32)))


def _rows(f1_by_arm):
    return pd.DataFrame([{"seed": s, "arm": a, "target": "cytoplasm", "f1": v[s]}
                         for a, v in f1_by_arm.items() for s in range(len(v))])


def test_seed_run_scores_every_head_the_arm_has_and_the_se_excitations():
    from cellrepro.chapters.brightfield import train as T
    from cellrepro.data.synthetic import brightfield as B

    tiny = T.Settings(steps=2, batch=2, crop=32, features=(4, 8), border_width=3, device="cpu", progress=False)
    fields = B.generate(n=3, n_pool=0, size=64, seed=1, optics=B.Optics(nucleus=-0.3, nucleus_size=(0.45, 0.55)))[0]
    rows, _ = H.seed_run(0, fields, fields[:2], tiny, arms=["base", "4-head", H.PLAIN])
    assert rows.groupby("arm")["target"].apply(list).to_dict() == {
        "base": ["cytoplasm"], "4-head": ["cytoplasm", "nuclei", "border"], H.PLAIN: ["cytoplasm"]}
    cyto = rows[rows["target"] == "cytoplasm"].set_index("arm")
    assert cyto.loc["base", "se_sd"] >= 0 and np.isnan(cyto.loc[H.PLAIN, "se_sd"])
    spread, _, _ = H.run_seeds([0, 1], fields, fields[:2], tiny, arms=["base"], workers=2)
    inline, _, _ = H.run_seeds([0, 1], fields, fields[:2], tiny, arms=["base"], workers=1)
    pd.testing.assert_frame_equal(spread, inline)


def test_nuclei_size_is_a_knob_and_the_default_field_is_unchanged():
    from cellrepro.data.synthetic import brightfield as B

    default = B.generate(n=1, n_pool=0, size=96, seed=3)[0][0]
    same = B.generate(n=1, n_pool=0, size=96, seed=3, optics=B.Optics(nucleus_size=(0.28, 0.38)))[0][0]
    large = B.generate(n=1, n_pool=0, size=96, seed=3, optics=B.Optics(nucleus_size=(0.45, 0.55)))[0][0]
    assert np.array_equal(default.bf_low, same.bf_low)
    assert (large.nuclei > 0).sum() > (default.nuclei > 0).sum()


def test_paper_cells_are_cells_of_tables_5_1_and_5_2():
    rows = pd.DataFrame([{"seed": 0, "arm": arm, "target": target, **{m: 0.5 for m in H.METRICS}}
                         for arm in H.ARMS for target in ("cytoplasm", "nuclei")
                         if target == "cytoplasm" or "nuclei" in H.ARMS[arm]])
    cells = H.paper_cells(rows)
    table1 = {k: v for k, v in cells.items() if k[0].endswith("cytoplasm")}
    table2 = {k: v for k, v in cells.items() if k[0].endswith("nuclei")}
    assert len(table1) == 20 and len(table2) == 10  # 4 arms x 5 metrics; 2 arms with a nuclei head
    side = report.compare(table1, "brightfield", "5.1")
    assert side["this run"].notna().all()
    assert report.compare(table2, "brightfield", "5.2")["this run"].isna().sum() == 5  # the base row


def test_threshold_baseline_is_off_the_ceiling_but_finds_cells():
    tests = H.held_out_fields(3, 128)
    row = H.baseline_rows(tests).iloc[0]
    assert row["arm"] == H.OTSU and 0.3 < row["f1"] < 0.95
