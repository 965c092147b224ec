"""The multimodal chapter's split: counts per modality, seeds independent, one fixed test set."""

import numpy as np
import pytest

from cellrepro.chapters.multimodal import split


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("CELLREPRO_CACHE", str(tmp_path))


def test_training_draws_each_modality_with_the_counts_asked_and_new_images_per_seed():
    a = split.training(0, ["fluorescence", "dic"], n_labelled=2, n_unlabelled=6, size=48)
    b = split.training(1, ["fluorescence", "dic"], n_labelled=2, n_unlabelled=6, size=48)
    for m in ("fluorescence", "dic"):
        assert [x.modality for x in a[m].labelled] == [m, m] and len(a[m].unlabelled) == 6
        assert all(x.labels is None for x in a[m].unlabelled)
        assert not np.array_equal(a[m].labelled[0].image, b[m].labelled[0].image)


def test_test_set_is_fixed_and_its_shifted_fluorescence_has_the_same_cells():
    t1, t2 = split.test(["fluorescence"], n_test=2, size=48), split.test(["fluorescence"], n_test=2, size=48)
    shifted = split.test(["fluorescence"], n_test=2, size=48, fluorescence_style="B")
    assert np.array_equal(t1["fluorescence"][0].image, t2["fluorescence"][0].image)
    assert np.array_equal(t1["fluorescence"][1].labels, shifted["fluorescence"][1].labels)
    assert not np.array_equal(t1["fluorescence"][1].image, shifted["fluorescence"][1].image)


@pytest.mark.parametrize("call, match", [(lambda: split.training(0, ["x-ray"]), "modalities"),
                                         (lambda: split.training(0, n_labelled=0), "n_labelled"),
                                         (lambda: split.test(n_test=0), "n_test")])
def test_refuses_bad_input(call, match):
    with pytest.raises(ValueError, match=match):
        call()
