"""The multimodal chapter's trainers and evaluation (cellrepro.chapters.multimodal.train / .evaluate)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from cellrepro.chapters.multimodal import evaluate, split, train
from cellrepro.data import crops
from cellrepro.instances.cdnet import cdnet_targets
from cellrepro.instances.flows import instance_centres
from cellrepro.losses.flows import flow_targets

TINY = dict(steps=3, batch=2, lr=5e-3, crop=32, cellpose_features=(8, 16), vgg_width=32,
            cdnet_features=(4, 4, 8, 8, 16, 4), device="cpu")


@pytest.fixture(scope="module")
def data():
    return split.training(0, ["phase contrast", "fluorescence", "brightfield"], n_labelled=2, n_unlabelled=2, size=64)


def _params(net):
    return [p.detach().clone() for p in net.parameters()]


def _changed(before, net):
    return any(not torch.equal(a, b) for a, b in zip(before, net.parameters()))


def _labels():
    m = np.zeros((24, 28), np.int32)  # odd-sided rectangles: one centre pixel each, no ties
    m[2:9, 3:14] = 1
    m[11:22, 5:10] = 2
    m[12:19, 15:26] = 3
    return m


@pytest.mark.parametrize("dim", [-1, -2])
def test_flip_keeps_flow_targets_consistent(dim):
    m = _labels()
    t = flow_targets(m)
    _, (flipped,) = crops.flip_crop("cellpose", torch.zeros(3, *m.shape), [t], dim)
    flipped_m = np.ascontiguousarray(np.flip(m, dim))
    expected = flow_targets(flipped_m)
    # at the centre pixel itself the flow is 0 / 0 (equal heat on both sides): rounding decides it
    _, centres = instance_centres(flipped_m)
    keep = torch.ones(m.shape, dtype=torch.bool)
    keep[tuple(torch.from_numpy(centres).T)] = False
    assert torch.allclose(flipped[:, keep], expected[:, keep], atol=1e-5)
    assert keep.sum() == m.size - 3


@pytest.mark.parametrize("dim", [-1, -2])
def test_flip_keeps_direction_classes_consistent(dim):
    m = _labels()
    t = {k: torch.from_numpy(v)[None] for k, v in cdnet_targets(m).items()}
    _, out = crops.flip_crop("cdnet", torch.zeros(3, *m.shape), [t["mask"], t["direction"], t["point"]], dim)
    flipped_m = np.ascontiguousarray(np.flip(m, dim))
    expected = cdnet_targets(flipped_m)
    _, centres = instance_centres(flipped_m)
    centre = np.zeros(m.shape, bool)
    centre[tuple(centres.T)] = True
    for got, key in zip(out, ("mask", "direction", "point")):
        same = got[0].numpy() == expected[key]
        assert same[~centre].all(), key
        if key == "direction":  # the centre is class 1 by convention (atan2(0, 0) = 0); an x-flip makes it 5
            assert (same[centre] if dim == -2 else got[0].numpy()[centre] == 5).all()
        else:
            assert same.all(), key


def test_flip_tables_are_involutions():
    for lut in (crops.FLIP_X_DIRECTION, crops.FLIP_Y_DIRECTION):
        assert torch.equal(lut[lut], torch.arange(9))
    assert crops.FLIP_X_DIRECTION[1] == 5 and crops.FLIP_X_DIRECTION[3] == 3  # right <-> left, up stays
    assert crops.FLIP_Y_DIRECTION[3] == 7 and crops.FLIP_Y_DIRECTION[1] == 1  # up <-> down, right stays


def test_crop_sampler_shapes(data):
    images = data["fluorescence"].labelled
    s = train.CropSampler("cdnet", images, crop=32)
    torch.manual_seed(0)
    x, mask, direction, point = s.sample(torch.tensor([0, 1, 1]))
    assert x.shape == (3, 3, 32, 32) and mask.shape == direction.shape == (3, 32, 32) and point.shape == (3, 1, 32, 32)
    assert 0 <= float(x.min()) and float(x.max()) <= 1
    assert next(iter(s.loader(5)))[0].shape == (5,)


@pytest.mark.parametrize("kind, modality, trainer", [
    ("cellpose", "phase contrast", train.train_cellpose),
    ("vgg_unet", "brightfield", train.train_vgg_unet),
    ("cdnet", "fluorescence", train.train_cdnet),
])
def test_trainer_returns_a_model_that_predicts_labels(data, kind, modality, trainer):
    images = data[modality].labelled
    net = trainer(images, train.Settings(**TINY), seed=0)
    labels = evaluate.predict(net, kind, images[0])
    assert labels.shape == images[0].image.shape[:2] and labels.dtype == np.int32
    assert len(net.train_history) == TINY["steps"]
    table = evaluate.scores(net, kind, images)
    assert len(table) == len(images)
    assert {"precision", "recall", "f1", "dice", "inst_dice"} <= set(table.columns)


@pytest.mark.parametrize("kind, modality, trainer, steps", [
    ("cellpose", "phase contrast", train.train_cellpose, 25),
    ("vgg_unet", "brightfield", train.train_vgg_unet, 25),
    ("cdnet", "fluorescence", train.train_cdnet, 25),
])
def test_training_on_one_image_lowers_the_loss(data, kind, modality, trainer, steps):
    settings = train.Settings(**{**TINY, "steps": steps, "flips": False})
    net = trainer(data[modality].labelled[:1], settings, seed=1)
    assert train.loss_drop(net) > 0


def test_init_is_copied_not_modified(data):
    images = data["phase contrast"].labelled
    settings = train.Settings(**TINY)
    first = train.train_cellpose(images, settings, seed=0)
    before = _params(first)
    again = train.train_cellpose(images, settings, seed=0, init=first)
    assert not _changed(before, first) and _changed(before, again)


def test_cps_updates_both_nets(data):
    settings = train.Settings(**TINY)
    torch.manual_seed(0)
    a0, b0 = train.build("cdnet", settings), train.build("cdnet", settings)
    pa, pb = _params(a0), _params(b0)
    a, b = train.train_cdnet_cps(data["fluorescence"].labelled, data["fluorescence"].unlabelled, settings, seed=0,
                                 init=(a0, b0), return_both=True)
    assert _changed(pa, a) and _changed(pb, b)
    assert not _changed(pa, a0) and not _changed(pb, b0)  # the initial nets were copied
    h = a.train_history
    assert {"a_mask_ce", "b_mask_ce", "cps_mask", "cps_direction"} <= set(h.columns)
    assert evaluate.predict(a, "cdnet", data["fluorescence"].labelled[0]).shape == (64, 64)


def test_cps_alpha_zero_has_no_cross_term(data):
    settings = train.Settings(**{**TINY, "steps": 1, "alpha": 0.0})
    a = train.train_cdnet_cps(data["fluorescence"].labelled, data["fluorescence"].unlabelled, settings, seed=0)
    assert float(a.train_history["cps_mask"].iloc[0]) == 0.0


def test_self_training_runs_the_cycle(data):
    settings = train.Settings(**{**TINY, "steps": 2})
    d = data["phase contrast"]
    start = train.train_cellpose(d.labelled, settings, seed=0)
    before = _params(start)
    net = train.self_train_cellpose(start, d.labelled, d.unlabelled, settings, seed=0)
    assert not _changed(before, start) and _changed(before, net)
    assert len(net.cycle_summaries) == 1
    assert evaluate.predict(net, "cellpose", d.labelled[0]).shape == (64, 64)


def test_bad_input_names_the_parameter(data):
    settings = train.Settings(**TINY)
    with pytest.raises(ValueError, match="images"):
        train.train_cellpose([], settings, seed=0)
    with pytest.raises(ValueError, match="labelled"):
        train.train_cdnet_cps([], data["fluorescence"].unlabelled, settings, seed=0)
    with pytest.raises(ValueError, match="unlabelled"):
        train.train_cdnet_cps(data["fluorescence"].labelled, [], settings, seed=0)
    with pytest.raises(ValueError, match="crop"):
        train.train_cdnet(data["fluorescence"].labelled, train.Settings(**{**TINY, "crop": 80}), seed=0)
    with pytest.raises(ValueError, match="crop"):
        train.Settings(crop=40)
    with pytest.raises(ValueError, match="steps"):
        train.Settings(steps=0)
    with pytest.raises(ValueError, match="labels"):
        train.train_cellpose(data["phase contrast"].unlabelled, settings, seed=0)
    with pytest.raises(ValueError, match="kind"):
        train.build("stardist", settings)
    net = train.build("cdnet", settings)
    with pytest.raises(ValueError, match="kind"):
        evaluate.predict(net, "unet", data["fluorescence"].labelled[0])
    with pytest.raises(ValueError, match="kind"):
        evaluate.scores(net, "unet", data["fluorescence"].labelled)
    with pytest.raises(ValueError, match="labels"):
        evaluate.scores(net, "cdnet", data["fluorescence"].unlabelled)


def test_unet_decode_keeps_unseeded_foreground_and_drops_small():
    probs = np.zeros((3, 10, 10))
    probs[0] = 1
    probs[:, 2:6, 2:6] = np.array([0, 0, 1.0])[:, None, None]  # a boundary-only blob: no interior seed
    out = evaluate.unet_decode(probs, min_size=10)
    assert out.max() == 1 and (out > 0).sum() == 16
    assert evaluate.unet_decode(probs, min_size=20).max() == 0


def test_to_input_scales_and_checks():
    x = train.to_input(np.full((4, 5, 3), 255, np.uint8))
    assert x.shape == (3, 4, 5) and float(x.max()) == 1.0
    with pytest.raises(ValueError, match="image"):
        train.to_input(np.zeros((4, 5), np.uint8))


def test_same_seed_same_model(data):
    images = data["phase contrast"].labelled
    settings = train.Settings(**TINY)
    a = train.train_cellpose(images, settings, seed=3)
    b = train.train_cellpose(images, settings, seed=3)
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters()))
    assert dataclasses.asdict(settings)["crop"] == 32


@pytest.mark.parametrize("streams, same", [(True, True), (False, False)])
def test_a_a_arms_of_the_chapter_s_trainer_are_identical_with_streams(data, monkeypatch, streams, same):
    """Common random numbers through the chapter's own loop: an arm that also draws from torch's
    global stream every step (as one sampling unlabelled images would) trains the same weights when
    the crops come from the seed's stream, and other weights when they come from the global one."""
    images = data["fluorescence"].labelled
    settings = train.Settings(**{**TINY, "streams": streams})
    a = train.train_vgg_unet(images, settings, seed=3)
    original = crops.CropSampler.sample

    def with_a_no_op_draw(self, indices):
        torch.rand(7)  # the other arm's extra draw: no effect on the model
        return original(self, indices)

    monkeypatch.setattr(crops.CropSampler, "sample", with_a_no_op_draw)
    b = train.train_vgg_unet(images, settings, seed=3)
    equal = all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))
    assert equal is same
