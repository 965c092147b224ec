"""The brightfield chapter's training loop, inference and pooled-pixel scoring (known answers)."""

import dataclasses

import numpy as np
import pytest
import torch

from cellrepro.chapters.brightfield import train as T
from cellrepro.data.synthetic import brightfield as B

TINY = T.Settings(steps=2, batch=2, crop=16, features=(4, 8), device="cpu", progress=False)


@pytest.fixture(scope="module")
def fields():
    return B.generate(n=3, n_pool=0, size=32, seed=0)[0]


def test_input_is_two_standardised_planes(fields):
    x = T.field_input(fields[0])
    assert x.shape == (2, 32, 32) and x.dtype == torch.float32
    assert torch.allclose(x.mean((1, 2)), torch.zeros(2), atol=1e-5)
    assert torch.allclose(x.std((1, 2), unbiased=False), torch.ones(2), atol=1e-4)


def test_targets_are_the_semantic_maps_then_extras(fields):
    f = fields[0]
    extra = {"p": np.full((32, 32), 0.25, np.float32)}
    t = T.field_targets(f, extra)
    maps = B.semantic_maps(f.amodal, f.nuclei)
    assert t.shape == (len(T.TARGETS) + 1, 32, 32)
    for i, name in enumerate(T.TARGETS):
        assert torch.equal(t[i].bool(), torch.from_numpy(maps[name]))
    assert T.target_index("p", ["p"]) == len(T.TARGETS) and float(t[-1].mean()) == 0.25


def test_unannotated_field_is_refused(fields):
    f = dataclasses.replace(fields[0], amodal=None)
    with pytest.raises(ValueError, match="no annotation"):
        T.field_targets(f)


def test_heads_loss_is_the_weighted_sum_of_bce():
    t = torch.zeros(2, len(T.TARGETS), 4, 4)
    t[:, T.target_index("border")] = 1
    logits = {"border": torch.full((2, 1, 4, 4), 2.0), "background": torch.full((2, 1, 4, 4), -1.0)}
    terms = T.bce_heads_loss(["border", "background"], {"border": 3.0})(logits, t)
    assert terms["border"].item() == pytest.approx(3 * np.log1p(np.exp(-2.0)), rel=1e-5)
    assert terms["background"].item() == pytest.approx(np.log1p(np.exp(-1.0)), rel=1e-5)


def test_settings_refuse_bad_values():
    with pytest.raises(ValueError, match="crop"):
        T.Settings(crop=0)
    with pytest.raises(ValueError, match="unknown head"):
        T.Settings(weights={"cell": 1.0})


def test_train_predict_score_round_trip(fields):
    net = T.train_seunet(fields, ["cytoplasm", "nuclei"], TINY, seed=0)
    assert list(net.heads) == ["cytoplasm", "nuclei"] and len(net.train_history) == 2
    assert not net.training and next(net.parameters()).device.type == "cpu"
    probs = T.predict(net, fields[:2], TINY)
    assert len(probs) == 2 and set(probs[0]) == {"cytoplasm", "nuclei"}
    p = probs[0]["cytoplasm"]
    assert p.shape == (32, 32) and 0 <= p.min() and p.max() <= 1
    scores = T.pooled_scores(probs, fields[:2], "nuclei")
    assert set(scores) >= {"accuracy", "precision", "recall", "f1", "iou"}


def test_one_window_equals_the_plain_forward(fields):
    net = T.train_seunet(fields, ["cytoplasm"], TINY, seed=1)
    whole = dataclasses.replace(TINY, crop=32)
    p = T.predict(net, fields[:1], whole)[0]["cytoplasm"]
    with torch.no_grad():
        direct = torch.sigmoid(net(T.field_input(fields[0])[None])["cytoplasm"])[0, 0].numpy()
    np.testing.assert_allclose(p, direct, atol=1e-5)


def test_pooled_scores_of_the_truth_are_perfect(fields):
    truth = [{"overlap": B.semantic_maps(f.amodal, f.nuclei)["overlap"].astype(np.float32)} for f in fields]
    assert T.pooled_scores(truth, fields, "overlap")["f1"] == 1.0
    assert T.pooled_scores(truth, fields, "overlap")["ap"] == 1.0  # the threshold-free score of the truth itself
    with pytest.raises(ValueError, match="no head 'nuclei'"):
        T.pooled_scores(truth, fields, "nuclei")


def test_crop_not_a_multiple_of_the_depth_is_refused(fields):
    with pytest.raises(ValueError, match="multiple of 2"):
        T.train_seunet(fields, ["cytoplasm"], dataclasses.replace(TINY, crop=15), seed=0)


def test_a_wider_border_target_trains_and_is_scored_at_its_width(fields):
    f = next(f for f in fields if f.amodal is not None)
    thin, wide = (B.semantic_maps(f.amodal, f.nuclei, w)["border"] for w in (1, 3))
    assert (thin <= wide).all() and wide.sum() > 2 * thin.sum()
    assert (wide <= B.semantic_maps(f.amodal, f.nuclei)["cytoplasm"]).all()  # inside the cells
    settings = dataclasses.replace(TINY, border_width=3)
    channel = T.target_index("border")
    assert torch.equal(T.field_targets(f, border_width=3)[channel], torch.from_numpy(wide.astype(np.float32)))
    net = T.train_seunet(fields[:2], ["border"], settings, seed=0)
    probs = T.predict(net, fields[:2], settings)
    assert T.pooled_scores(probs, fields[:2], "border", border_width=3)["ap"] >= 0
    with pytest.raises(ValueError, match="border_width"):
        dataclasses.replace(TINY, border_width=0)


def test_weight_averaging_returns_the_mean_of_the_last_updates_and_cosine_decays(fields):
    base = dataclasses.replace(TINY, steps=4)
    w3 = T.train_seunet(fields[:2], ["cytoplasm"], dataclasses.replace(base, steps=3), seed=2).state_dict()
    w4 = T.train_seunet(fields[:2], ["cytoplasm"], base, seed=2).state_dict()
    avg = T.train_seunet(fields[:2], ["cytoplasm"], dataclasses.replace(base, average_from=0.5), seed=2)
    for name, value in avg.state_dict().items():  # updates 3 and 4 averaged, the same updates as without averaging
        if value.is_floating_point():
            torch.testing.assert_close(value, (w3[name] + w4[name]) / 2)
    cosine = T.train_seunet(fields[:2], ["cytoplasm"], dataclasses.replace(base, schedule="cosine"), seed=2)
    lrs = cosine.train_history["lr/net"].to_numpy()
    assert lrs[0] == pytest.approx(base.lr * (1 + np.cos(np.pi / 4)) / 2) and (np.diff(lrs) < 0).all()
    with pytest.raises(ValueError, match="schedule"):
        dataclasses.replace(TINY, schedule="step")
