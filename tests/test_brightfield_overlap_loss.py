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
    rows, probs = O.seed_run(0, fields, fields[:2], TINY, arms=["none", O.EQ51])
    assert list(rows["arm"]) == ["none", O.EQ51] and list(rows["map"]) == ["none", "v4"]
    assert set(probs["none"][0]) == set(O.HEADS)
    assert rows[["f1", "precision", "cytoplasm_f1"]].notna().all().all()
    with pytest.raises(ValueError, match="unknown arm"):
        O.seed_run(0, fields, fields, TINY, arms=["v5"])


def test_paper_cells_are_cells_of_table_5_3():
    rows = pd.DataFrame([{"seed": 0, "arm": a, **{m: 0.1 for m in O.METRICS}} for a in O.ARMS])
    side = report.compare(O.paper_cells(rows), "brightfield", "5.3")
    assert side["this run"].notna().all() and len(side) == 30
