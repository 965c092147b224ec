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
    return organoid.generate(n=3, size=256, seed=5), organoid.generate(n=2, size=256, seed=split.TEST_SEED)


def test_split_keeps_test_images_apart_and_chooses_test_crops_by_the_truth(images):
    train, test = images
    sp = split.prepare(train, test, crop=32, seed=0, n_labelled=10)
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


def _grid(global_slope, local_slope, noise=0.0):
    rows = []
    for seed in range(3):
        for g in (0.1, 0.6):
            for lf in (0.1, 0.6):
                rows.append({"seed": seed, "global_fraction": g, "local_fraction": lf,
                             "f1": 0.8 + global_slope * g + local_slope * lf + noise * seed})
    return pd.DataFrame(rows)


def test_slopes_and_the_proportion_claims():
    sl = claims.slopes(_grid(0.0, 0.2, noise=0.001))
    assert sl["global"].tolist() == pytest.approx([0, 0, 0], abs=1e-9)
    assert sl["local"].tolist() == pytest.approx([0.1, 0.1, 0.1])  # per 50 percentage points
    jitter = pd.DataFrame({"global": [0.001, -0.001, 0.0], "local": [0.09, 0.11, 0.1]})
    assert claims.c1_global_null(jitter)[1] == "holds"
    assert claims.c3_local_over_global(jitter)[1] == "holds"
    win = {"mean": 0.05, "low": 0.02, "high": 0.08}
    lose = {"mean": -0.05, "low": -0.08, "high": -0.02}
    assert claims.c2_local(jitter, {0.1: win, 0.6: win})[1] == "holds"
    assert claims.c2_local(jitter, {0.1: win, 0.6: lose})[1] == "inconclusive"
    assert claims.c5_not_better(lose) == "holds" and claims.c5_not_better(win) == "fails"
    assert claims.c5_not_better({"mean": 0.0, "low": -0.03, "high": 0.03}) == "inconclusive"


def test_c10_holds_when_the_frozen_gap_is_an_annotation_artefact():
    rows = []
    for seed in range(4):
        d = 0.001 * seed
        rows += [{"seed": seed, "frozen": True, "f1": 0.85 + d, "f1_annotation": 0.78 + d, "large_recall": 0.9 + d},
                 {"seed": seed, "frozen": False, "f1": 0.85 - d, "f1_annotation": 0.83 - d, "large_recall": 0.6}]
    recall, verdict, gap_ann, gaps = claims.c10_explanation(pd.DataFrame(rows))
    assert verdict == "holds" and recall["mean"] > 0.29 and gap_ann["mean"] > gaps["gap_true"]["mean"]
    for r in rows:  # the same gap against the truth: the explanation fails
        r["f1"] = r["f1_annotation"]
    assert claims.c10_explanation(pd.DataFrame(rows))[1] == "fails"


def test_classical_pipeline_finds_dark_discs():
    yy, xx = np.mgrid[:128, :128]
    disc = ((yy - 64) ** 2 + (xx - 64) ** 2) <= 20 ** 2
    image = np.where(disc, 0.4, 0.75).astype(np.float32) + 0.01 * np.random.default_rng(0).standard_normal((128, 128))
    found = controls.classical_mask(image, sigma=64.0, offset=0.0, min_area=20)
    assert evaluate._f1(found, disc) > 0.95


def test_probe_reads_out_a_feature_that_carries_the_target():
    class Fraction(torch.nn.Module):  # an "encoder" whose one feature is the crop's mean intensity
        def encode(self, x):
            return [x]

    true = (torch.rand(40, 1, 8, 8) > torch.rand(40, 1, 1, 1)).float()
    test = split.TestSet(true, true, true, true, np.arange(40) % 8, [str(i) for i in range(8)], [])
    assert controls.probe_r2(Fraction(), test, ridge=1e-6) == pytest.approx(1.0, abs=1e-4)


def test_pretrainer_trains_each_global_model_once(images, monkeypatch):
    train, test = images
    sp = split.prepare(train, test, crop=32, seed=0, n_labelled=8)
    tiny = StageConfig(1, 8, 1e-3, 0.5)
    pre = protocol.Pretrainer(sp, protocol.Settings((4, 4, 8, 8, 16, 4), tiny, StageConfig(1, 4, 1e-3, 0.07, 16),
                                                    tiny, folds=2, device="cpu"), seed=0)
    calls = []
    real = protocol.global_stage
    monkeypatch.setattr(protocol, "global_stage", lambda *a, **k: calls.append(1) or real(*a, **k))
    first = pre.global_model(0.5)
    assert pre.global_model(0.5) is first and len(calls) == 2  # two folds, once
    pre.local_model(0.5, 0.5, frozen=True)
    pre.local_model(0.5, 0.5, frozen=False)
    assert len(calls) == 2  # both local models start from the cached global model
    r = protocol.finetune_and_test(pre.local_model(0.5, 0.5), sp, "bce_dice", pre.settings, keep_probs=True)
    assert len(r["scores"]) == len(sp.test) and r["probs"].shape == (len(sp.test), 32, 32)
    assert next(r["model"].parameters()).device.type == "cpu"
