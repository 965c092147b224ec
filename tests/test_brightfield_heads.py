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


def test_c2_rule_on_hand_made_seeds():
    base = np.array([0.80, 0.81, 0.79])
    big = _rows({"base": base, "2-head": base + [0.05, 0.06, 0.04], "3-head": base + 0.05,
                 "4-head": base + 0.05 + [0.04, 0.05, 0.03]})
    verdict, jump, d = H.c2_rule(big)
    assert verdict == "holds" and jump["mean"] == pytest.approx(0.05) and d["mean"] == pytest.approx(0.015)
    small_leap = _rows({"base": base, "2-head": base + [0.05, 0.06, 0.04], "3-head": base + 0.05,
                        "4-head": base + 0.05 + [0.001, 0.0, 0.002]})
    assert H.c2_rule(small_leap)[0] == "fails"
    flat = _rows({"base": base, "2-head": base + [0.01, -0.01, 0.0], "3-head": base, "4-head": base})
    assert H.c2_rule(flat)[0] == "inconclusive"


def test_contrast_and_best_within_one_se():
    rows = _rows({"base": [0.80, 0.82, 0.81], "2-head": [0.90, 0.91, 0.92], "3-head": [0.85, 0.86, 0.84],
                  "4-head": [0.905, 0.90, 0.915]})
    e = H.contrast(rows, "cytoplasm", "4-head", "base")
    assert e["mean"] == pytest.approx(0.0967, abs=1e-4) and e["n"] == 3
    assert H.best_within_se(rows, "4-head") == (True, "2-head")
    assert H.best_within_se(rows, "3-head") == (False, "2-head")


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
