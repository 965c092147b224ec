"""Pseudo-label -> fine-tune cycles: the order of calls and what is trained on, traced by hand."""

import numpy as np
import pytest

from cellrepro.semi.selftrain import pseudo_label_cycles


def _mask(n):
    m = np.zeros((4, 4), int)
    m.flat[:n] = np.arange(1, n + 1)
    return m


def test_each_cycle_pseudo_labels_then_trains_on_pseudo_then_on_labeled():
    calls = []

    def train(model, pairs):
        calls.append(("train", model, [name for name, _ in pairs]))
        return model + 1

    def predict(model, image):
        calls.append(("predict", model, image))
        return _mask(0 if image == "empty" else 2)

    labeled = [("l0", _mask(3))]
    model, history = pseudo_label_cycles(0, labeled, ["u0", "empty", "u1"], train, predict, cycles=2)
    assert model == 4  # two trainings per cycle
    assert calls == [
        ("predict", 0, "u0"), ("predict", 0, "empty"), ("predict", 0, "u1"),
        ("train", 0, ["u0", "u1"]), ("train", 1, ["l0"]),
        ("predict", 2, "u0"), ("predict", 2, "empty"), ("predict", 2, "u1"),
        ("train", 2, ["u0", "u1"]), ("train", 3, ["l0"]),
    ]
    assert [(h.cycle, h.pseudo_images, h.dropped, h.mean_cells) for h in history] == [(1, 2, 1, 2.0), (2, 2, 1, 2.0)]


def test_min_cells_drops_sparse_pseudo_masks_and_still_fine_tunes():
    trained = []
    model, history = pseudo_label_cycles(
        "m", [("l", _mask(1))], ["u"], lambda m, p: trained.append(len(p)) or m, lambda m, x: _mask(2), min_cells=3)
    assert trained == [1]  # only the labeled fine-tuning ran
    assert history[0].pseudo_images == 0 and history[0].dropped == 1


@pytest.mark.parametrize("kwargs, match", [({"cycles": 0}, "cycles"), ({"labeled": []}, "labeled"),
                                           ({"unlabeled": []}, "unlabeled")])
def test_refuses_bad_input(kwargs, match):
    args = {"labeled": [("l", _mask(1))], "unlabeled": ["u"], "cycles": 1} | kwargs
    with pytest.raises(ValueError, match=match):
        pseudo_label_cycles(0, args["labeled"], args["unlabeled"], lambda m, p: m, lambda m, x: _mask(1),
                            cycles=args["cycles"])
