"""Table 3 protocol of the multimodal chapter: aggregation and contrasts on hand-made numbers,
and one tiny end-to-end arm."""

import numpy as np
import pandas as pd
import pytest

from cellrepro.publish import report
from cellrepro.chapters.multimodal import split, table3, train


def _rows():
    """Two seeds, two test images, three columns; F1 of the semi arm is known per column."""
    rows = []
    semi_gain = {"fluorescence": 0.10, "phase contrast": 0.02, "brightfield": 0.04}
    for seed in (0, 1):
        for column, gain in semi_gain.items():
            for arm, g in ((table3.SUPERVISED, 0.0), (table3.SEMI, gain + 0.01 * seed), (table3.START, -0.05)):
                for img, f1 in (("a", 0.6), ("b", 0.8)):
                    rows.append({"column": column, "arm": arm, "seed": seed, "image": img, "f1": f1 + g,
                                 "precision": 0.9, "recall": 0.5, "dice": 0.7, "inst_dice": 0.65})
    return pd.DataFrame(rows)


def test_seed_means_names_the_papers_rows_and_averages_images():
    means = table3.seed_means(_rows())
    assert set(table3.METRICS) <= set(means.columns)
    row = means[(means["column"] == "fluorescence") & (means["arm"] == table3.SEMI) & (means["seed"] == 1)]
    assert row["mF1"].item() == pytest.approx(0.7 + 0.11)
    assert row["mRecall"].item() == pytest.approx(0.5)


def test_gains_are_paired_per_seed():
    g = table3.gains(table3.seed_means(_rows()))
    assert list(g.index) == [0, 1]
    assert g.loc[0, "fluorescence"] == pytest.approx(0.10)
    assert g.loc[1, "phase contrast"] == pytest.approx(0.03)
    shorter = table3.gains(table3.seed_means(_rows()), against=table3.START)
    assert shorter.loc[0, "brightfield"] == pytest.approx(0.09)


def test_c4_contrast_is_fluorescence_minus_the_larger_other_gain():
    g = table3.gains(table3.seed_means(_rows()))
    c = table3.c4_contrast(g)
    np.testing.assert_allclose(c.to_numpy(), [0.10 - 0.04, 0.11 - 0.05])
    assert report.verdict(report.paired_effect(c.to_numpy())) == "holds"
    with pytest.raises(ValueError, match="brightfield"):
        table3.c4_contrast(g.drop(columns="brightfield"))


def test_paper_table_keys_are_cells_of_the_papers_table_3():
    ours = table3.paper_table(table3.seed_means(_rows()))
    assert ("mDice", "fluorescence, labeled only") in ours
    assert ("mDice", "phase contrast, labeled only") not in ours  # the paper reports mDice for fluorescence only
    out = report.compare(ours, "multimodal", "3")  # raises on a key the paper's table does not have
    assert out["this run"].notna().sum() == len(ours)
    assert ours[("mF1", "brightfield, + unlabeled")] == pytest.approx(0.7 + 0.045)


def test_arm_runs_rejects_bad_input():
    data = split.ModalityData("phase contrast", [], [])
    with pytest.raises(ValueError, match="column must be one of"):
        table3.arm_runs("dic", data, [], train.Settings(), 0)
    with pytest.raises(ValueError, match="no unlabelled images"):
        table3.arm_runs("phase contrast", data, [], train.Settings(), 0)


def test_tiny_cellpose_arm_end_to_end():
    d = split.training(0, ["phase contrast"], n_labelled=2, n_unlabelled=2, size=32)["phase contrast"]
    test = split.test(["phase contrast"], n_test=2, size=32)["phase contrast"]
    rows, cycles = table3.arm_runs("phase contrast", d, test, train.Settings(steps=1, batch=2, crop=32, device="cpu"), 3)
    assert set(rows["arm"]) == {table3.START, table3.SUPERVISED, table3.SEMI}
    assert len(rows) == 3 * len(test) and set(rows["seed"]) == {3}
    assert len(cycles) == 1 and cycles[0].pseudo_images + cycles[0].dropped == 2
