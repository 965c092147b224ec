"""The MMCS chapter's protocol: paired differences, the unimodality rule, and the mapping of run rows
onto the paper's Tables 1, 3 and 4 (every key must be a cell of cellrepro/reported/mmcs.csv)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from cellrepro.publish import report
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


def _weight_means(best_small, best_large, seeds=(0, 1, 2), ws=(0.05, 0.2, 0.4, 0.6)):
    """Per-seed means whose curves peak at the given w in each regime (a little seed noise)."""
    rows = []
    for s in seeds:
        for ds, best in (("dataset1", best_small), ("+dataset2", best_large)):
            rows += [{"seed": s, "dataset": ds, "w": w, "f1": 0.7 - abs(w - best) + 0.001 * s} for w in ws]
    return pd.DataFrame(rows)


def test_table5_cells_and_the_optimum_rules():
    means = _weight_means(0.4, 0.05)
    cells = protocol.table5(means)
    assert cells[("w=0.4", "dataset1 F1 (fixed lr 0.1)")] == pytest.approx(0.701)
    report.compare(cells, paper="mmcs", table="5")
    assert protocol.argmax_shift(means) == 1.0
    assert protocol.argmax_shift(_weight_means(0.05, 0.4)) == 0.0
    gap = protocol.gap_to_best(means, "dataset1", 0.4)
    assert gap["best_w"] == 0.4 and gap["gap"] == 0.0
    gap = protocol.gap_to_best(means, "+dataset2", 0.4)
    assert gap["best_w"] == 0.05 and gap["gap"] == pytest.approx(0.35)
    with pytest.raises(ValueError, match="was not run"):
        protocol.gap_to_best(means, "dataset1", 0.3)


def test_epochs_map_to_updates_and_best_checkpoints_are_chosen_on_validation():
    assert protocol.epochs_to_updates(2500, 20) == 50 and protocol.epochs_to_updates(100, 20) == 2
    with pytest.raises(ValueError):
        protocol.epochs_to_updates(1000, 0)
    curves = pd.DataFrame({"seed": 0, "arm": "a", "step": [1, 2, 3], "val_f1": [0.5, 0.7, 0.7],
                           "test_f1": [0.9, 0.6, 0.8]})
    best = protocol.best_checkpoint(curves, ["seed", "arm"])
    assert best["step"].tolist() == [2] and best["test_f1"].tolist() == [0.6]  # validation decides; earliest tie


def test_table8_cells():
    means = pd.DataFrame([{"seed": s, "arm": a, "f1": 0.5 + 0.1 * i} for s in (0, 1)
                          for i, a in enumerate(protocol.ARCH_ARMS)])
    cells = protocol.table8(means)
    assert set(cells) == {("MMCS", "F1"), ("U-Net", "F1"), ("SwinUNETR", "F1")}
    report.compare(cells, paper="mmcs", table="8")
