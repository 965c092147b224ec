"""Routing by K-Means (cellrepro.chapters.multimodal.routing, multimodal paper Sec. 2.2-2.4):
hand-computed features, separable feature clusters, the synthetic modalities, the brightfield
split, the general-model fallback and the confusion matrix."""

from __future__ import annotations

import numpy as np
import pytest

from cellrepro.chapters.multimodal.routing import (BRANCH_MODELS, LARGE, SMALL, KMeansRouter, confusion,
                                                   count_instances, fit_brightfield_split, fit_modality_router,
                                                   hsv_features, largest_confusion, name_clusters, rgb_features,
                                                   route, routing_accuracy, with_general_fallback)
from cellrepro.data.synthetic.multimodal import make_image
from cellrepro.data.types import MODALITIES


@pytest.fixture(scope="module")
def synthetic():
    """Six 64 x 64 images per modality (brightfield of both sub-styles)."""
    return [make_image(f"{m}-{i}", np.random.default_rng([7, j, i]), 64, m)
            for j, m in enumerate(MODALITIES) for i in range(6)]


# ---- features ----------------------------------------------------------------------------------

def test_hsv_features_by_hand():
    img = np.zeros((4, 4, 3), np.uint8)
    img[:, :2, 0] = 255                    # left half pure red: H 0, S 1, V 1
    img[:, 2:, 2] = 255                    # right half pure blue: H 2/3, S 1, V 1
    assert np.allclose(hsv_features(img), [1 / 3, 1, 1, 1 / 3, 0, 0])
    assert np.allclose(hsv_features(img.astype(np.float64) / 255), hsv_features(img))


def test_rgb_features_by_hand_and_cellimage_input(synthetic):
    img = np.zeros((2, 4, 3), np.uint8)
    img[:, :1] = 255                       # a quarter white: mean 1/4, std sqrt(3)/4 in each channel
    assert np.allclose(rgb_features(img), [0.25] * 3 + [np.sqrt(3) / 4] * 3)
    assert np.array_equal(rgb_features(synthetic[0]), rgb_features(synthetic[0].image))


@pytest.mark.parametrize("bad", [np.zeros((4, 4)), np.zeros((4, 4, 4)), np.zeros((4, 4, 3), bool)])
def test_features_refuse_non_rgb(bad):
    with pytest.raises(ValueError, match="image must"):
        hsv_features(bad)


# ---- K-Means on separable features -------------------------------------------------------------

CENTRES = {"brightfield": [0.6, 0.2, 0.9, 0.3, 0.1, 0.1], "fluorescence": [0.4, 0.8, 0.2, 0.1, 0.2, 0.2],
           "phase contrast": [0.0, 0.0, 0.4, 0.0, 0.0, 0.07], "dic": [0.0, 0.0, 0.9, 0.0, 0.0, 0.3]}


def blobs(n: int, seed: int):
    rng = np.random.default_rng(seed)
    names = [m for m in MODALITIES for _ in range(n)]
    x = np.array([CENTRES[m] for m in names]) + rng.normal(0, 0.01, (len(names), 6))
    order = rng.permutation(len(names))
    return x[order], [names[i] for i in order]


def test_separable_features_are_routed_exactly_with_few_labels():
    x, truth = blobs(10, seed=0)
    names = [t if truth[:i].count(t) < 2 else None for i, t in enumerate(truth)]   # 2 of 10 labelled
    assert sorted(n for n in names if n) == sorted(MODALITIES * 2)
    router = KMeansRouter(4, n_init=5, seed=0).fit_features(x, names)
    assert sorted(router.cluster_names) == sorted(MODALITIES)
    assert router.predict_features(x) == truth
    new, new_truth = blobs(3, seed=1)
    assert router.predict_features(new) == new_truth
    assert routing_accuracy(new_truth, router.predict_features(new)) == 1.0


def test_unlabelled_clusters_keep_their_numbers():
    x, _ = blobs(5, seed=2)
    router = KMeansRouter(4, seed=0).fit_features(x)
    assert sorted(router.cluster_names) == [f"cluster {k}" for k in range(4)]


def test_majority_vote_and_ties():
    assert name_clusters([0, 0, 0, 1, 1], ["dic", "phase contrast", "dic", "phase contrast", "dic"], 2) == [
        "dic", "dic"]                                                   # 2-1 vote; 1-1 tie goes to "dic"
    with pytest.raises(ValueError, match="names must have one entry per image"):
        name_clusters([0, 1], ["dic"], 2)


def test_router_errors():
    with pytest.raises(ValueError, match="features must be one of"):
        KMeansRouter(features="lab")
    with pytest.raises(ValueError, match="n_clusters"):
        KMeansRouter(n_clusters=0)
    with pytest.raises(ValueError, match="at least n_clusters=4"):
        KMeansRouter(4).fit_features(np.zeros((3, 6)))
    with pytest.raises(ValueError, match="not fitted"):
        KMeansRouter(4).predict_features(np.zeros((1, 6)))


# ---- the synthetic modalities ------------------------------------------------------------------

def test_synthetic_modalities_route_colour_right_and_confuse_the_grey_ones(synthetic):
    """Brightfield and fluorescence differ in colour from everything else: routed exactly. Phase
    contrast and DIC are both grey (the paper's confusion): whatever K-Means does with them, both
    go to grey clusters, and the largest confusion of the matrix is between the two."""
    truth = [im.modality for im in synthetic]
    router = fit_modality_router(synthetic, truth, n_init=5, seed=0)
    routed = router.predict(synthetic)
    cm = confusion(truth, routed)
    assert list(cm.index) == list(MODALITIES)
    for colour in ("brightfield", "fluorescence"):
        assert cm.loc[colour, colour] == 6
    grey = ["phase contrast", "dic"]
    assert cm.loc[grey, grey].to_numpy().sum() == 12
    t, r, n = largest_confusion(cm)
    if n:                                                              # K-Means merged or split them
        assert {t, r} == set(grey)
    assert routing_accuracy(truth, routed) == np.trace(cm.to_numpy()) / 24


def test_brightfield_split_separates_large_from_small_cells(synthetic):
    bright = [im for im in synthetic if im.modality == "brightfield"]
    large = [im.diameter > 6 for im in bright]                          # styles: 10-20 px vs 2-3.5 px at 64 px
    assert 0 < sum(large) < len(bright)                                 # both sub-styles drawn
    split = fit_brightfield_split(bright, n_init=5, seed=0)
    assert sorted(split.cluster_names) == sorted([LARGE, SMALL])
    assert split.predict(bright) == [LARGE if g else SMALL for g in large]
    branches = route(synthetic, fit_modality_router(synthetic, [im.modality for im in synthetic], 5), split)
    assert branches[:6] == [f"brightfield {LARGE if g else SMALL}" for g in large]
    assert set(branches) <= set(BRANCH_MODELS) | {"phase contrast", "dic"}


def test_brightfield_split_without_diameters_keeps_numbers(synthetic):
    bright = [im.image for im in synthetic if im.modality == "brightfield"]
    assert sorted(fit_brightfield_split(bright, n_init=2).cluster_names) == ["cluster 0", "cluster 1"]
    with pytest.raises(ValueError, match="diameters must have one value per image"):
        fit_brightfield_split(bright, diameters=[1.0])


# ---- fallback ----------------------------------------------------------------------------------

def cells(n: int) -> np.ndarray:
    labels = np.zeros((4, 8), np.int32)
    labels.ravel()[:n] = np.arange(1, n + 1) * 3                       # any label values count
    return labels


@pytest.mark.parametrize("found, min_cells, fallback", [(9, 10, True), (10, 10, False), (0, 10, True),
                                                        (3, 3, False), (2, 3, True), (0, 0, False)])
def test_general_model_is_used_below_min_cells(found, min_cells, fallback):
    calls = []

    def specific(image):
        calls.append("specific")
        return cells(found)

    def general(image):
        calls.append("general")
        return cells(20)

    labels, used = with_general_fallback("img", specific, general, min_cells=min_cells)
    assert used is fallback
    assert calls == (["specific", "general"] if fallback else ["specific"])
    assert count_instances(labels) == (20 if fallback else found)


def test_fallback_refuses_negative_min_cells():
    with pytest.raises(ValueError, match="min_cells"):
        with_general_fallback(None, lambda im: cells(1), lambda im: cells(1), min_cells=-1)


# ---- confusion ---------------------------------------------------------------------------------

def test_confusion_matrix_by_hand():
    truth = ["dic", "dic", "dic", "phase contrast", "fluorescence", "brightfield"]
    routed = ["phase contrast", "phase contrast", "dic", "phase contrast", "fluorescence", "cluster 3"]
    cm = confusion(truth, routed)
    assert list(cm.index) == list(cm.columns) == ["brightfield", "fluorescence", "phase contrast", "dic", "cluster 3"]
    assert cm.loc["dic"].tolist() == [0, 0, 2, 1, 0]
    assert cm.loc["brightfield", "cluster 3"] == 1 and cm.to_numpy().sum() == 6
    assert largest_confusion(cm) == ("dic", "phase contrast", 2)
    assert routing_accuracy(truth, routed) == pytest.approx(3 / 6)
    with pytest.raises(ValueError, match="same length"):
        confusion(truth, routed[:-1])
