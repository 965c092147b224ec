"""The organoid chapter's data split, scoring, controls, claim rules and caching, on known answers."""

import numpy as np
import pandas as pd
import pytest
import torch

from cellrepro.chapters.organoid import claims, controls, evaluate, protocol, split
from cellrepro.data.synthetic import organoid
from cellrepro.semi.contrastive import StageConfig


@pytest.fixture(scope="module")
def images():
    return organoid.generate(n=5, size=256, seed=5), organoid.generate(n=2, size=256, seed=split.TEST_SEED)


def test_split_keeps_test_images_apart_and_chooses_test_crops_by_the_truth(images):
    train, test = images
    sp = split.prepare(train, test, crop=32, seed=0, n_global=2, n_local=2, n_labelled=10)
    assert len(sp.tune_images) == 10 and len(sp.tune_masks) == 10
    assert len(sp.test) == len(sp.test.image) == len(sp.test.origin) and sp.test.names == [o.name for o in test]
    # no test image is in the training data (different seeds give different pixels)
    assert not any(np.array_equal(a.image, b.image) for a in train for b in test)
    # every test crop has >= 3% true organoid pixels, even where the annotation has none
    assert (sp.test.true.mean((1, 2, 3)) >= 0.03).all()
    # test crops are non-overlapping tiles without rotations
    assert {deg for *_, deg in sp.test.origin} == {0}
    starts = {(n, t, l) for n, t, l, _ in sp.test.origin}
    assert all(t % 32 == 0 or t == 192 - 32 for _, t, _ in starts)
    # "large" is decided on the whole organoid: a large mask pixel is a true pixel
    assert (sp.test.large <= sp.test.true).all()


def test_large_has_one_definition():
    labels = np.zeros((100, 200), np.int32)
    yy, xx = np.mgrid[:100, :200]
    labels[(yy - 50) ** 2 + (xx - 50) ** 2 <= 12 ** 2] = 1  # radius 12: large at width 200 (60 * 200/1024 = 11.7)
    labels[(yy - 50) ** 2 + (xx - 150) ** 2 <= 10 ** 2] = 2  # radius 10: not large
    big = organoid.is_large(labels)
    assert big[50, 50] and not big[50, 150] and organoid.large_radius(200) == pytest.approx(11.71875)


def test_annotation_drops_organoids_and_coarsens_outlines():
    rng = np.random.default_rng(0)
    labels = np.zeros((64, 64), np.int32)
    labels[10:30, 10:30], labels[40:60, 40:60] = 1, 2
    exact = organoid.annotate(labels, [2], 0.0, rng)
    assert np.array_equal(exact, labels == 1)
    coarse = organoid.annotate(labels, [2], 2.0, rng)
    assert not coarse[labels == 2].any() and not np.array_equal(coarse, labels == 1)
    assert (coarse ^ (labels == 1)).sum() < 4 * 20 * 3  # within a few pixels of the outline


def test_score_per_image_and_large_recall_by_hand():
    true = torch.zeros(3, 1, 4, 4)
    true[:, :, :2, :2] = 1
    large = torch.zeros(3, 1, 4, 4)
    large[0, :, :2, :2] = 1
    test = split.TestSet(torch.zeros(3, 1, 4, 4), true, true.clone(), large, np.array([0, 0, 1]), ["a", "b"],
                         [("a", 0, 0, 0)] * 3)
    probs = np.zeros((3, 4, 4))
    probs[0, :2, :2] = 1  # perfect
    probs[1, :2, :1] = 1  # half of the truth: F1 = 2 * 2 / (2 + 4)
    probs[2] = 1  # everything: F1 = 2 * 4 / (16 + 4)
    s = evaluate.score(probs, test)
    assert s["f1"].tolist() == pytest.approx([1.0, 2 / 3, 0.4])
    img = evaluate.per_image(s).set_index("image")
    assert img.loc[0, "f1"] == pytest.approx((1 + 2 / 3) / 2) and img.loc[1, "f1"] == pytest.approx(0.4)
    assert img.loc[0, "large_recall"] == 1.0 and np.isnan(img.loc[1, "large_recall"])


def test_shape_metrics_by_hand():
    true = np.zeros((20, 20), bool)
    true[4:12, 4:12] = True
    same = evaluate.shape_metrics(true, true)
    assert same == {"holes_per_object": 0.0, "spurious_components": 0.0, "euler_error": 0.0, "boundary_f1": 1.0}
    holed = true.copy()
    holed[7, 7] = False
    holed[16:18, 16:18] = True  # a spurious object away from the truth
    m = evaluate.shape_metrics(holed, true)
    assert m["holes_per_object"] == 0.5 and m["spurious_components"] == 1.0
    assert m["euler_error"] == 0.0  # one more object, one more hole: Euler number 2 - 1 = 1, as the truth's
    assert m["boundary_f1"] < 1.0


def test_bootstrap_of_a_constant_difference_is_that_constant():
    df = pd.DataFrame({"arm": ["a"] * 5 + ["b"] * 5, "image": list(range(5)) * 2,
                       "f1": [0.9, 0.8, 0.7, 0.6, 0.5] + [0.8, 0.7, 0.6, 0.5, 0.4]})
    e = evaluate.bootstrap_images(df, "f1", "arm", "a", "b")
    assert e["mean"] == pytest.approx(0.1) and e["low"] == pytest.approx(0.1) and e["high"] == pytest.approx(0.1)


def test_proportions_are_nested_sets_of_whole_images(images):
    train, test = images
    sp = split.prepare(train, test, crop=32, seed=0, n_global=2, n_local=2, n_labelled=None)
    assert len(sp.global_crops) == 2 and len(sp.local_crops) == len(sp.local_masks) == 2
    half, n_half = sp.global_pool(0.5)
    whole, n_whole = sp.global_pool(1.0)
    assert (n_half, n_whole) == (1, 2) and len(half) < len(whole)
    assert any(torch.equal(half, c) for c in sp.global_crops)  # one whole image's crops, no subsample of crops
    assert split.images_for(20, 0.1, 3)[0] in split.images_for(20, 0.6, 3)
    with pytest.raises(ValueError, match="in \\(0, 1\\]"):
        sp.local_pool(0.0)
    with pytest.raises(ValueError, match="n_global"):
        split.prepare(train, test, crop=32, n_global=3, n_local=2)


def _seeds(**arms):
    return pd.DataFrame([{"seed": s, "arm": a, "f1": v + 0.01 * s} for s in range(4) for a, v in arms.items()])


def test_paired_differences_and_the_l_shaped_slopes():
    seeds = _seeds(**{"g10/l10": 0.70, "g60/l10": 0.71, "g60/l60": 0.75, "supervised": 0.72})
    assert claims.paired(seeds, "f1", "g60/l10", "g10/l10") == pytest.approx([0.01] * 4)
    assert claims.slope_difference(seeds, "f1", "g10/l10", "g60/l10", "g60/l60") == pytest.approx([0.03] * 4)
    assert claims.arm(0.6, 0.1, frozen=True) == "g60/l10 frozen"


def test_c10_parts_separate_recall_and_the_annotation_artefact():
    rows = []
    for seed in range(4):
        d = 0.001 * seed
        rows += [{"seed": seed, "arm": "frozen", "f1": 0.85 + d, "f1_annotation": 0.78 + d, "large_recall": 0.9 + d},
                 {"seed": seed, "arm": "non-frozen", "f1": 0.85 - d, "f1_annotation": 0.83 - d, "large_recall": 0.6}]
    parts = claims.c10_parts(pd.DataFrame(rows), "frozen", "non-frozen")
    assert parts["recall"].mean() > 0.29
    assert (parts["shrink"] < 0).all()  # the gap is smaller against the truth: an annotation artefact


def test_stage_gates_fail_a_stage_that_did_not_train():
    ok = claims.stage_gates("global", [200, 240], [0.3, 0.2], {"low": 0.02})
    assert all(g.passed for g in ok)
    short = claims.stage_gates("global", [200, 9], [0.3, 0.2], {"low": 0.02})
    assert [g.passed for g in short] == [False, True, True]
    flat = claims.stage_gates("local", [100, 100], [0.3, 0.01])
    assert [g.name for g in flat] == ["local stage engaged: updates", "local stage engaged: loss fell"]
    assert flat[0].passed and not flat[1].passed
    assert protocol.loss_fall(pd.DataFrame({"l": [2.0] * 10 + [1.0] * 10}), "l", share=0.5) == pytest.approx(0.5)


def test_classical_pipeline_finds_dark_discs():
    yy, xx = np.mgrid[:128, :128]
    disc = ((yy - 64) ** 2 + (xx - 64) ** 2) <= 20 ** 2
    image = np.where(disc, 0.4, 0.75).astype(np.float32) + 0.01 * np.random.default_rng(0).standard_normal((128, 128))
    found = controls.classical_mask(image, sigma=64.0, offset=0.0, min_area=20)
    assert evaluate._f1(found, disc) > 0.95


def test_probe_reads_out_size_beyond_the_fraction_and_cka_sees_a_rotation():
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[:32, :32]
    true = torch.zeros(96, 1, 32, 32)
    for i in range(96):  # 1 to 4 discs of one random radius: the fraction does not fix the mean area
        r, k = rng.uniform(2.5, 5), rng.integers(1, 5)
        for cy, cx in [(8, 8), (8, 24), (24, 8), (24, 24)][:k]:
            true[i, 0] += torch.as_tensor(((yy - cy) ** 2 + (xx - cx) ** 2) <= r ** 2)
    test = split.TestSet(true, true, true, true, np.arange(96) % 8, [str(i) for i in range(8)], [])
    t = controls.crop_targets(test)
    assert abs(np.corrcoef(t["mean_area"], t["fraction"])[0, 1]) < 1e-6  # what the fraction carries is taken out
    assert t["mean_area"].std() > 0.1
    carries = np.c_[t["mean_area"] + 0.02 * rng.normal(size=96), rng.normal(size=(96, 5))]
    assert controls.probe_r2(None, test, targets=("mean_area",), features=carries) > 0.9
    assert controls.probe_r2(None, test, targets=("mean_area",), features=rng.normal(size=(96, 6))) < 0.2
    x = rng.normal(size=(100, 6))
    assert controls.linear_cka(x, x @ np.linalg.qr(rng.normal(size=(6, 6)))[0]) == pytest.approx(1.0)


def test_stages_are_computed_once_and_shared(monkeypatch, tmp_path):
    monkeypatch.setenv("CELLREPRO_CACHE", str(tmp_path))
    import importlib

    importlib.reload(protocol)  # the cached stage functions bind their folder when the module loads
    data = protocol.Data(n_global=2, n_local=2, n_tune=1, n_test=2, size=192, crop=32, n_labelled=8)
    tiny = StageConfig(1, 8, 1e-3, 0.5, steps=3)
    s = protocol.Settings((4, 4, 8, 8, 16, 4), tiny, StageConfig(1, 2, 1e-3, 0.07, 8, steps=3), tiny, 1, "cpu")
    calls = []
    real = protocol.global_stage
    monkeypatch.setattr(protocol, "global_stage", lambda *a, **k: calls.append(1) or real(*a, **k))
    local_calls, real_local = [], protocol.local_stage
    monkeypatch.setattr(protocol, "local_stage", lambda *a, **k: local_calls.append(1) or real_local(*a, **k))
    res = protocol.run(data, s, [0], {"frozen": ("local", 0.5, 1.0, True), "non-frozen": ("local", 0.5, 1.0, False),
                                      "supervised": ("random",)}, keep_probs=True)
    assert len(calls) == 1  # one global encoder under both local models
    local = res.stages[res.stages["stage"] == "local"].set_index("frozen")
    assert local.loc[True, "encoder_max_change"] == 0.0 and local.loc[False, "encoder_relative_change"] > 0
    assert set(res.scores["arm"]) == {"frozen", "non-frozen", "supervised"}
    assert res.probs["frozen"].shape[1:] == (32, 32)
    again = protocol.run(data, s, [0], {"frozen": ("local", 0.5, 1.0, True)})
    assert len(calls) == 1 and again.scores.equals(res.scores[res.scores["arm"] == "frozen"].reset_index(drop=True))
    # other fine-tuning settings reuse both pre-training stages; other local settings, the global one
    import dataclasses

    protocol.run(data, dataclasses.replace(s, finetune_cfg=StageConfig(1, 8, 1e-2, steps=2)), [0],
                 {"frozen": ("local", 0.5, 1.0, True)})
    assert len(local_calls) == 2
    protocol.local_model(data, 0, dataclasses.replace(s, local_cfg=StageConfig(1, 2, 1e-2, 0.07, 8, steps=2)),
                         0.5, 1.0, True)
    assert len(calls) == 1 and len(local_calls) == 3
    importlib.reload(protocol)
