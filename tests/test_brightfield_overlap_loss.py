"""Table 5.3 protocol: the overlap arms' losses, maps, runs and the paper's cells."""

import numpy as np
import pandas as pd
import pytest
import torch

from cellrepro.publish import report
from cellrepro.chapters.brightfield import overlap_loss as O
from cellrepro.chapters.brightfield import train as T
from cellrepro.data.synthetic import brightfield as B
from cellrepro.losses.focal import focal_terms

TINY = T.Settings(steps=2, batch=2, crop=16, features=(4, 8), device="cpu", progress=False)


@pytest.fixture(scope="module")
def fields():
    return B.generate(n=3, n_pool=0, size=32, seed=1)[0]


def _targets(cyto, over, p):
    t = torch.zeros(1, len(T.TARGETS) + 1, *cyto.shape)
    t[0, T.target_index("cytoplasm")], t[0, T.target_index("overlap")], t[0, -1] = cyto, over, p
    return t


def test_loss_is_bce_plus_the_chosen_focal_form():
    cyto = torch.tensor([[1.0, 0.0]])
    over = torch.tensor([[1.0, 0.0]])
    p = torch.tensor([[1.0, 0.5]])
    logits = {"cytoplasm": torch.zeros(1, 1, 1, 2), "overlap": torch.tensor([[[[0.5, 0.5]]]])}
    x = logits["overlap"][0, 0]
    for reweight, expected in (
        ("label", focal_terms(x, over * (1 - p)).mean()),  # the printed Eq. 4.5: the overlap pixel's label -> 0
        ("negative", (focal_terms(x, over) * torch.tensor([[1.0, 0.5]])).mean()),  # negative pixel weighted 1 - P
        ("loss", (p * focal_terms(x, over)).mean()),  # Eq. 5.1
    ):
        terms = O.overlap_loss(reweight)(logits, _targets(cyto, over, p))
        assert terms["cytoplasm"].item() == pytest.approx(np.log(2), rel=1e-6)
        assert terms["overlap"].item() == pytest.approx(expected.item(), rel=1e-6), reweight


def test_maps_none_is_zero_and_v4_is_one_on_the_overlap(fields):
    f = next(f for f in fields if B.semantic_maps(f.amodal, f.nuclei)["overlap"].any())
    assert not O.maps([f], None)[0]["P"].any()
    v4 = O.maps([f], "v4")[0]["P"]
    assert np.allclose(v4[B.semantic_maps(f.amodal, f.nuclei)["overlap"]], 1.0)


def test_seed_run_rows_and_unknown_arm(fields):
    rows, probs = O.seed_run(0, fields, fields[:2], TINY, arms=[O.NONE, O.EQ51, O.EXACT])
    assert list(rows["arm"]) == [O.NONE, O.EQ51, O.EXACT] and list(rows["map"]) == ["none", "v4", "none"]
    assert list(rows["labels"]) == ["weak", "weak", "exact"]
    assert set(probs[O.NONE][0]) == set(O.HEADS)
    assert rows[["ap", "f1", "precision", "cytoplasm_f1"]].notna().all().all()
    # EQ51's reference (v4) did not run: no shift; EXACT's (none) did
    assert np.isnan(rows["shift"][1]) and 0 <= rows["shift"][2] <= 1 and 0 <= rows["rank_shift"][2] <= 1
    assert rows["ap_cells"].notna().all()
    assert rows["label_dice"][0] < 1 and rows["label_dice"][2] == 1
    with pytest.raises(ValueError, match="unknown arm"):
        O.seed_run(0, fields, fields, TINY, arms=["v5"])


def test_weak_labels_are_drawn_per_seed_and_shared_by_the_arms(fields):
    a, b = O.weaken(fields, 0), O.weaken(fields, 0)
    assert all(np.array_equal(x.amodal, y.amodal) for x, y in zip(a, b))
    assert O.label_agreement(a, fields)["dice"] < 1 and O.label_agreement(a, fields)["kept"] < 1
    assert O.label_agreement(fields, fields) == {"dice": 1.0, "kept": 1.0}
    same = O.weaken(fields, 0, missing=0.0, coarse=0)
    assert O.label_agreement(same, fields)["dice"] == 1


def test_arms_share_their_crops(fields):
    """Paired arms: the same seed cuts the same crops whatever the loss (issue 31)."""
    seen = []
    original = T.CropSampler.sample

    def spy(self, indices):
        out = original(self, indices)
        seen.append(out[0].clone())
        return out

    import unittest.mock as mock
    with mock.patch.object(T.CropSampler, "sample", spy):
        O.seed_run(3, fields, fields[:1], TINY, arms=[O.NONE, O.V4])
    assert len(seen) == 2 * TINY.steps
    assert all(torch.equal(x, y) for x, y in zip(seen[:TINY.steps], seen[TINY.steps:]))


def test_v4_readings_differ_on_the_overlap(fields):
    f = next(f for f in fields if B.semantic_maps(f.amodal, f.nuclei)["overlap"].any())
    over = B.semantic_maps(f.amodal, f.nuclei)["overlap"]
    other, interior = O.maps([f], "v4")[0]["P"], O.maps([f], "v4", "interior")[0]["P"]
    assert np.allclose(other[over], 1.0) and interior[over].min() < 1.0


def test_prediction_shift_counts_changed_pixels():
    a = [{"overlap": np.zeros((2, 2))}]
    assert O.prediction_shift(a, a) == 0
    assert O.prediction_shift(a, [{"overlap": np.ones((2, 2))}]) == 1
    with pytest.raises(ValueError):
        O.prediction_shift(a, a + a)


def test_paper_cells_are_cells_of_table_5_3():
    rows = pd.DataFrame([{"seed": 0, "arm": a, **{m: 0.1 for m in O.METRICS}} for a in O.ARMS])
    side = report.compare(O.paper_cells(rows), "brightfield", "5.3")
    assert side["this run"].notna().all() and len(side) == 30
    book = report.compare(O.paper_cells(rows[rows["arm"].isin(O.BOOK_ARMS)]), "brightfield", "5.3")
    assert book["this run"].notna().sum() == 10  # none and v4, five metrics each; the rest "not run"
