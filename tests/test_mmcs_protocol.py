"""The MMCS chapter's protocol: paired differences, the unimodality rule, and the mapping of run rows
onto the paper's Tables 1, 3 and 4 (every key must be a cell of cellrepro/reported/mmcs.csv)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from cellrepro import report
from cellrepro.chapters.mmcs import protocol


def test_unimodal_rule():
    assert protocol.unimodal([0.6, 0.7, 0.8, 0.75, 0.7])
    assert protocol.unimodal([0.8, 0.7, 0.6])  # peak at the edge still rises-then-falls
    assert not protocol.unimodal([0.6, 0.8, 0.7, 0.75])
    assert protocol.unimodal([0.6, 0.8, 0.7, 0.703], tolerance=0.005)


def test_paired_differences_are_per_seed():
    means = pd.DataFrame({"seed": [0, 0, 1, 1, 0, 1], "phase": ["phase2", "control"] * 2 + ["phase1"] * 2,
                          "dataset": "dataset1", "f1": [0.8, 0.7, 0.9, 0.85, 0.5, 0.6]})
    assert np.allclose(protocol.paired(means, "phase", "phase2", "control"), [0.1, 0.05])
    assert np.allclose(protocol.paired(means, "phase", "control", "phase1", dataset="dataset1"), [0.2, 0.25])


def test_seed_means_average_images_first():
    rows = pd.DataFrame({"seed": [0, 0, 0, 1], "phase": "phase1", "f1": [1.0, 0.0, 0.5, 0.2]})
    m = protocol.seed_means(rows, ["phase"])
    assert m.set_index("seed")["f1"].to_dict() == {0: 0.5, 1: 0.2}


def test_tables_map_onto_the_papers_cells():
    means = pd.DataFrame([{"seed": s, "dataset": ds, "phase": ph, "f1": 0.5 + 0.1 * s}
                          for s in (0, 1) for ds in protocol.DATASETS for ph in protocol.PHASES])
    t1 = protocol.table1(means)
    assert set(t1) == {(ds, f"{ph} F1") for ds in protocol.DATASETS for ph in ("phase1", "phase2")}
    assert t1[("dataset1", "phase1 F1")] == pytest.approx(0.55)
    report.compare(t1, paper="mmcs", table="1")  # raises on a key that is not a cell of the paper's table
    sweep = pd.DataFrame([{"seed": 0, "dataset": "dataset1", "diameter": d, "f1": 0.7} for d in (30, 35, 40, 60)]
                         + [{"seed": 0, "dataset": "+dataset2", "diameter": d, "f1": 0.8} for d in (40, float("nan"))])
    t4 = protocol.table4(sweep)
    assert ("+dataset2, diameter 40 px", "F1") in t4 and len(t4) == 5
    report.compare(t4, paper="mmcs", table="4")
    nuc = pd.DataFrame([{"seed": 0, "arm": arm, "diameter": d, "f1": 0.6} for arm in protocol.NUCLEUS_ARMS
                        for d in (30.0, float("nan"))])
    t3 = protocol.table3(nuc)
    assert len(t3) == 4
    report.compare(t3, paper="mmcs", table="3")


def test_real_data_needs_labelled_images(tmp_path):
    (tmp_path / "images").mkdir()
    with pytest.raises(Exception, match="images"):
        protocol.training_sets(0, 4, 0, 0, 64, data_root=str(tmp_path))


def test_training_sets_without_external_images_read_back_from_the_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("CELLREPRO_CACHE", str(tmp_path))
    for _ in range(2):  # the second call reads the cache
        sets = protocol.training_sets(0, 2, 1, 0, 64)
        assert len(sets.labelled) == 2 and len(sets.unlabelled) == 1 and sets.external == []
