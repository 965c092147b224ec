"""The multimodal chapter's routing experiment: accuracy per data seed and the C5 rule, by hand."""

import numpy as np
import pandas as pd
import pytest

from cellrepro.chapters.multimodal import protocol, routing, split


def _effect(low, high):
    return {"mean": (low + high) / 2, "low": low, "high": high, "n": 3}


PC_DIC = ("phase contrast", "dic", 5)


@pytest.mark.parametrize("acc, runs, expected", [
    (_effect(0.92, 0.97), [PC_DIC, ("dic", "phase contrast", 2)], "holds"),
    (_effect(0.70, 0.80), [PC_DIC], "fails"),  # accurate enough? no: the whole interval is below 0.9
    (_effect(0.92, 0.97), [("brightfield", "dic", 3)], "fails"),  # the confusion is elsewhere
    (_effect(0.85, 0.95), [PC_DIC], "inconclusive"),  # the interval straddles 0.9
    (_effect(0.92, 0.97), [PC_DIC, ("brightfield", "fluorescence", 1)], "inconclusive"),
])
def test_c5_rule(acc, runs, expected):
    assert protocol.c5_verdict(acc, runs) == expected


def test_accuracy_averages_kmeans_seeds_within_a_data_seed():
    rows = pd.DataFrame({"seed": [0, 0, 0, 0, 1, 1], "kmeans_seed": [0, 0, 1, 1, 0, 0],
                         "truth": ["dic"] * 6, "routed": ["dic", "dic", "dic", "x", "x", "dic"]})
    assert protocol.accuracy_per_seed(rows).to_dict() == {0: 0.75, 1: 0.5}


def test_routing_run_on_synthetic_images_routes_bright_and_fluorescent_images_right(tmp_path, monkeypatch):
    monkeypatch.setenv("CELLREPRO_CACHE", str(tmp_path))
    train = split.training(0, n_labelled=3, n_unlabelled=3, size=64)
    test = split.test(n_test=3, size=64)
    rows, bright = protocol.routing_run(train, test, kmeans_seed=0, n_init=3, size=64)
    assert len(rows) == 12 and len(bright) == 3
    ok = rows[rows["truth"].isin(["brightfield", "fluorescence"])]
    assert (ok["truth"] == ok["routed"]).all()
    assert set(bright["routed"]) <= {routing.LARGE, routing.SMALL}
    assert np.isin(bright["truth"], [routing.LARGE, routing.SMALL]).all()
