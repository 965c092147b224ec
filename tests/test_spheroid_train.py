"""The spheroid chapter's training loops on a few tiny synthetic stacks: views, DSC, SSC, evaluation."""

import numpy as np
import pytest

from cellrepro.chapters.spheroid import train as sph
from cellrepro.data.synthetic import dic_spheroid


@pytest.fixture(scope="module")
def scenes():
    stacks = dic_spheroid.generate(n=3, size=48, slices=5, seed=0)
    return sph.make_scenes(stacks, k=3, sparse_k=2, progress=False, scales=(7, 15))


def test_views_share_the_pixel_grid_and_the_labels(scenes):
    sc = scenes[0]
    assert sc.weak.shape == sc.strong.shape == sc.sparse.shape == sc.labels.shape == (48, 48)
    assert all(0 <= v.min() and v.max() <= 1 for v in (sc.weak, sc.strong, sc.sparse))
    assert not np.array_equal(sc.weak, sc.strong)
    with pytest.raises(ValueError, match="sparse_k must be between 1 and k - 1"):
        sph.make_scenes([], k=3, sparse_k=3)


def test_dsc_and_ssc_train_and_evaluate(scenes):
    settings = sph.Settings(steps=3, batch=2, device="cpu")
    model, saved = sph.train_maskrcnn(scenes[:2], settings, seed=0, dsc=True, checkpoint_steps=[1, 3])
    assert len(saved) == 2 and "loss_consistency" in model.train_history.columns
    assert {"dsc_detections", "dsc_confident"} <= set(model.train_history.columns)  # DSC's activity, per update
    assert np.isfinite(model.train_history["loss"]).all()
    scores = sph.evaluate(model, scenes[2:])
    assert set(scores) == {"bbox_AP", "bbox_AP50", "bbox_AP75", "mask_AP", "mask_AP50", "mask_AP75"}
    ssc_model, info = sph.train_ssc(scenes[:2], scenes[2:], settings, seed=0)
    assert len(info["stability"]) == 1 and 0 <= info["stability"][0] <= 1
    assert set(info["reliable"].tolist()) <= {0}


def test_unetpp_baseline_trains_and_is_scored_like_mask_rcnn(scenes):
    from cellrepro.chapters.spheroid.unetpp import SMALL_FEATURES

    settings = sph.Settings(steps=2, batch=2, device="cpu")
    model = sph.train_unetpp(scenes[:2], settings, seed=0, features=SMALL_FEATURES)
    assert len(model.train_history) == 2 and np.isfinite(model.train_history["loss"]).all()
    scores = sph.evaluate_unetpp(model, scenes[2:])
    assert set(scores) == {"bbox_AP", "bbox_AP50", "bbox_AP75", "mask_AP", "mask_AP50", "mask_AP75", "dice"}


def test_factorial_effects_on_a_hand_made_table():
    import pandas as pd

    rows = []
    for seed, base in ((0, 0.5), (1, 0.6)):
        for (name, dsc, ssc), gain in zip(sph.ARMS, (0.0, 0.02, 0.01, 0.05)):
            rows.append({"arm": name, "seed": seed, "mask_AP": base + gain})
    eff = sph.factorial_effects(pd.DataFrame(rows), "mask_AP")
    assert eff["DSC"]["mean"] == pytest.approx(((0.01 - 0) + (0.05 - 0.02)) / 2)
    assert eff["SSC"]["mean"] == pytest.approx(((0.02 - 0) + (0.05 - 0.01)) / 2)
    assert eff["interaction"]["mean"] == pytest.approx((0.05 - 0.02) - (0.01 - 0))
    assert eff["both"]["mean"] == pytest.approx(0.05) and eff["both"]["n"] == 2


def test_spread_ratio_interval():
    small = [[0.1, 0.3, 0.5], [0.2, 0.4, 0.6]]  # SD 0.2 each
    ref = [0.40, 0.41, 0.42]  # SD 0.01
    e = sph.spread_ratio(small, ref)
    assert e["mean"] == pytest.approx(20.0) and e["low"] < e["mean"] < e["high"] and e["n"] == 3
    assert np.isnan(sph.spread_ratio([[0.1]], ref)["mean"])


def test_run_arms_shares_the_round_without_ssc_with_ssc_first_round(scenes, monkeypatch):
    """Saving checkpoints changes nothing in training, so the arm without SSC is SSC's first round:
    run_arms trains it once (four rounds for four arms, not six) and the rows are those of separate runs."""
    import torch

    settings = sph.Settings(steps=3, batch=2, device="cpu")
    plain, _ = sph.train_maskrcnn(scenes[:2], settings, seed=0)
    saving, states = sph.train_maskrcnn(scenes[:2], settings, seed=0, checkpoint_steps=[1, 2, 3])
    assert all(torch.equal(v, saving.state_dict()[k]) for k, v in plain.state_dict().items())
    assert all(torch.equal(v, states[-1][k]) for k, v in plain.state_dict().items())
    with pytest.raises(ValueError, match="first_round has 1 checkpoints; SSC needs 3"):
        sph.train_ssc(scenes[:2], scenes[2:], settings, seed=0, first_round=(saving, states[:1]))

    calls = []
    real = sph.train_maskrcnn
    monkeypatch.setattr(sph, "train_maskrcnn", lambda *a, **kw: calls.append(kw.get("desc")) or real(*a, **kw))
    rows = sph.run_arms(scenes[:2], scenes[2:], scenes[2:], settings, seed=0)
    assert [r["arm"] for r in rows] == [name for name, _, _ in sph.ARMS]
    assert len(calls) == 4  # two first rounds (without / with DSC) and two SSC re-trainings
    alone = sph.evaluate(plain, scenes[2:])
    assert rows[0]["mask_AP"] == alone["mask_AP"] and rows[0]["bbox_AP"] == alone["bbox_AP"]


def test_ssc_round_two_from_the_baselines_seed_is_the_baseline_when_nothing_is_kept(scenes):
    """With ssc_seed_offset = 0 and a threshold nothing passes, round 2 repeats round 1 exactly,
    so SSC's effect over its baseline is 0, not the difference between two seeds."""
    import dataclasses

    import torch

    settings = sph.Settings(steps=3, batch=2, device="cpu", ssc_tau=2.0, ssc_seed_offset=0)
    model, info = sph.train_ssc(scenes[:2], scenes[2:], settings, seed=0)
    assert len(info["reliable"]) == 0
    same = all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), info["first"].state_dict().values()))
    assert same
    other, _ = sph.train_ssc(scenes[:2], scenes[2:], dataclasses.replace(settings, ssc_seed_offset=10_000), seed=0)
    assert not all(torch.equal(a, b) for a, b in zip(other.state_dict().values(), info["first"].state_dict().values()))


def _same_weights(a, b) -> bool:
    import torch

    return all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))


def test_dsc_forked_from_its_baseline_is_dsc_trained_from_the_start(scenes):
    """dsc_from = P: DSC makes the baseline's first P updates; resuming from the baseline's fork at P
    gives the same weights as training DSC from update 1 (the fork saves Adam, the schedule and
    every generator), and a baseline resumed from its own fork is the baseline."""
    settings = sph.Settings(steps=4, batch=2, device="cpu", dsc_from=2, tau=0.5, score_threshold=0.0)
    base, _ = sph.train_maskrcnn(scenes[:2], settings, seed=0, fork_at=2)
    full, _ = sph.train_maskrcnn(scenes[:2], settings, seed=0, dsc=True)
    forked, _ = sph.train_maskrcnn(scenes[:2], settings, seed=0, dsc=True, start=base.fork)
    assert _same_weights(full, forked) and not _same_weights(full, base)
    h_base, h_full = base.train_history, full.train_history
    assert np.array_equal(h_base["loss"][:2], h_full["loss"][:2])  # the shared prefix
    assert h_full["loss_consistency"].isna()[:2].all() and h_full["loss_consistency"].notna()[2:].all()
    assert {"dsc_box_share", "dsc_confident"} <= set(h_full.columns)
    assert forked.train_history["step"].tolist() == [1, 2, 3, 4]
    assert np.allclose(forked.train_history["loss"], h_full["loss"])
    again, _ = sph.train_maskrcnn(scenes[:2], settings, seed=0, start=base.fork)
    assert _same_weights(again, base)
    with pytest.raises(ValueError, match="forked from another run"):
        sph.train_maskrcnn(scenes[:2], settings, seed=1, dsc=True, start=base.fork)
    with pytest.raises(ValueError, match="fork_at must be in 1..steps - 1"):
        sph.train_maskrcnn(scenes[:2], settings, seed=0, fork_at=4)


def test_paper_augmentation_moves_every_view_and_the_labels_together():
    labels = np.zeros((32, 32), np.int32)
    labels[3:9, 20:30] = 1
    labels[15:28, 2:7] = 2
    image = (labels > 0).astype(np.float32)
    sampler = sph._Sampler([(image, image.copy(), labels, {1: 1, 2: 2})], seed=0, augment="paper")
    shapes = set()
    for _ in range(20):
        weak, strong, targets = sampler.draw(1, "cpu")
        w = weak[0][0].numpy()
        shapes.add(w.shape)
        assert np.array_equal(w, strong[0][0].numpy()) and 24 <= w.shape[0] == w.shape[1] <= 32
        painted = targets[0]["masks"].any(0).numpy() if len(targets[0]["masks"]) else np.zeros_like(w, bool)
        assert np.array_equal(painted, w > 0)  # the labels moved with the image
    assert len(shapes) > 1
    with pytest.raises(ValueError, match="augment must be one of"):
        sph._Sampler([], seed=0, augment="rotate")


def test_dsc_with_lambda_zero_is_its_baseline(scenes):
    """The student's pass on the strong view leaves BatchNorm's running statistics as they were, so
    with lambda = 0 a DSC run (whose term does run: every detection is a target) is the baseline."""
    settings = sph.Settings(steps=3, batch=2, device="cpu", tau=0.5, score_threshold=0.0, lam=0.0)
    base, _ = sph.train_maskrcnn(scenes[:2], settings, seed=0)
    dsc, _ = sph.train_maskrcnn(scenes[:2], settings, seed=0, dsc=True)
    assert (dsc.train_history["dsc_detections"] > 0).all()
    assert _same_weights(base, dsc)


def test_shared_scenes_rank_each_stack_once_for_every_k(monkeypatch, tmp_path):
    from cellrepro.chapters.spheroid import views

    monkeypatch.setenv("CELLREPRO_CACHE", str(tmp_path))
    monkeypatch.setattr(views, "_cached_orders", None)
    calls, real = [], views.rankings
    monkeypatch.setattr(views, "rankings", lambda stacks, *a, **kw: calls.append(len(stacks)) or real(stacks, *a, **kw))
    stand_in = {"size": 32, "slices": 5}
    by_k = {k: views.shared_scenes("dic-spheroid", 2, 3, k, 1, "stack", **stand_in) for k in (2, 4)}
    assert calls == [2]  # the blur maps of the two stacks, once for both k
    from cellrepro import data

    stacks = data.load("dic-spheroid", n=2, seed=3, **stand_in)
    for k, scenes in by_k.items():
        expected = views.make_scenes(stacks, k, 1, "stack", progress=False)
        for got, want, stack in zip(scenes, expected, stacks):
            np.testing.assert_array_equal(got.weak, want.weak)
            np.testing.assert_array_equal(got.in_focus, stack.in_focus)
    assert not np.array_equal(by_k[2][0].weak, by_k[4][0].weak)


def test_view_ssim_is_one_on_the_truth_and_lower_on_a_blurred_view(scenes):
    from dataclasses import replace

    truth = [replace(sc, weak=sc.in_focus) for sc in scenes]
    assert sph.view_ssim(truth) == pytest.approx(1.0)
    assert sph.view_ssim(scenes, "strong") < 1.0
    assert np.isnan(sph.view_ssim([replace(scenes[0], in_focus=None)]))


def test_unetpp_trains_on_the_papers_crops_of_different_sizes_and_reports_its_dice(scenes):
    from cellrepro.chapters.spheroid.unetpp import SMALL_FEATURES

    settings = sph.Settings(steps=3, batch=3, device="cpu", augment="paper")
    model = sph.train_unetpp(scenes, settings, seed=1, features=SMALL_FEATURES)
    assert np.isfinite(model.train_history["loss"]).all()
    assert 0.0 <= sph.evaluate_unetpp(model, scenes)["dice"] <= 1.0
