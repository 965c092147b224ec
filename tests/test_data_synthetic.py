"""Synthetic families: deterministic by seed, ground truth consistent, phenomena present."""

import dataclasses

import numpy as np
import pytest
from scipy import ndimage as ndi

from cellrepro import data
from cellrepro.data.synthetic import brightfield, dic_spheroid, multimodal, organoid
from cellrepro.data.tiling import organoid_crops, window_starts
from cellrepro.data.types import SPHEROID_CLASSES

SMALL = {
    "dic-spheroid": dict(n=3, size=96),
    "multimodal": dict(n_labeled=12, n_unlabeled=4, size=96),
    "brightfield-overlap": dict(n=4, n_pool=2, size=96),
    "organoid": dict(n=2, size=256),
}


def assert_same(a, b, path="item"):
    """Recursive exact equality of lists, tuples, dataclasses and arrays (NaN == NaN)."""
    if isinstance(a, (list, tuple)):
        assert len(a) == len(b), path
        for i, (x, y) in enumerate(zip(a, b)):
            assert_same(x, y, f"{path}[{i}]")
    elif dataclasses.is_dataclass(a):
        for f in dataclasses.fields(a):
            assert_same(getattr(a, f.name), getattr(b, f.name), f"{path}.{f.name}")
    elif isinstance(a, np.ndarray):
        assert isinstance(b, np.ndarray) and a.shape == b.shape and a.dtype.kind == b.dtype.kind, path
        assert np.array_equal(a, b, equal_nan=True), path
    elif isinstance(a, float) and np.isnan(a):
        assert np.isnan(b), path
    else:
        assert a == b, path


@pytest.mark.parametrize("name", list(SMALL))
def test_generators_are_deterministic_by_seed(name):
    fam = data.family(name)
    a = fam.generate(seed=5, **SMALL[name])
    assert_same(a, fam.generate(seed=5, **SMALL[name]))
    with pytest.raises(AssertionError):
        assert_same(a, fam.generate(seed=6, **SMALL[name]))


def tenengrad(image):
    g = ndi.gaussian_filter(image, 1.0)
    return ndi.sobel(g, 0) ** 2 + ndi.sobel(g, 1) ** 2


def test_dic_spheroid_ground_truth_and_focus():
    stacks = dic_spheroid.generate(n=4, size=128, slices=15, seed=1)
    sharper, total = 0, 0
    for s in stacks:
        assert s.stack.shape == (15, 128, 128) and s.stack.dtype == np.float32
        assert s.labels.shape == s.stack.shape[1:] and s.in_focus.shape == s.labels.shape
        ids = set(np.unique(s.labels)) - {0}
        assert ids == set(s.classes) and set(s.classes.values()) <= set(SPHEROID_CLASSES)
        assert sorted(s.classes.values())[:2] == [1, 2] and list(s.classes.values()).count(3) >= 5
        assert np.isnan(s.depth[s.labels == 0]).all() and np.isfinite(s.depth[s.labels > 0]).all()
        sharp = [tenengrad(z) for z in s.stack]
        for i in (i for i, c in s.classes.items() if c == 3):  # each single cell: in focus vs 5+ slices away
            cell = s.labels == i
            z_in = int(round(float(s.depth[cell].mean())))
            z_out = 0 if z_in >= 7 else 14
            sharper += sharp[z_in][cell].mean() > sharp[z_out][cell].mean()
            total += 1
    assert sharper / total >= 0.95
    # the extreme slices are mostly out of focus: less detail than the best slice of the stack
    energy = [tenengrad(z).mean() for z in stacks[0].stack]
    assert max(energy[0], energy[-1]) < 0.7 * max(energy)
    assert dic_spheroid.in_focus_masks(stacks[0]).shape == stacks[0].stack.shape


def test_dic_spheroid_refuses_a_single_slice():
    with pytest.raises(ValueError, match="at least 2 slices"):
        dic_spheroid.generate(n=1, size=64, slices=1)


def test_multimodal_modalities_labels_and_nucleus_channel():
    labeled, unlabeled = multimodal.generate(n_labeled=40, n_unlabeled=10, size=96, seed=2)
    assert {x.modality for x in labeled} == {"brightfield", "fluorescence", "phase contrast", "dic"}
    assert all(x.labels is None for x in unlabeled) and len(unlabeled) == 10
    for x in labeled:
        assert x.image.shape == (96, 96, 3) and x.image.dtype == np.uint8
        ids = np.unique(x.labels)
        assert ids[0] == 0 and np.array_equal(ids[1:], np.arange(1, len(ids)))  # consecutive ids
        if x.modality == "fluorescence":
            assert np.array_equal(x.nucleus, x.image[..., 2] / np.float32(255))
        else:
            assert not x.nucleus.any()
        if x.modality in ("phase contrast", "dic"):
            assert (x.image == x.image[..., :1]).all()  # grey: R = G = B
    diam = {m: np.median([x.diameter for x in labeled if x.modality == m]) for m in ("fluorescence", "dic")}
    assert diam["fluorescence"] < diam["dic"]  # diameters differ by modality and image
    assert len({round(x.diameter, 3) for x in labeled}) == len(labeled)

def test_multimodal_shifted_fluorescence_style_keeps_the_cells_and_changes_the_colours():
    a, _ = multimodal.generate(n_labeled=12, n_unlabeled=0, size=64, seed=4)
    b, _ = multimodal.generate(n_labeled=12, n_unlabeled=0, size=64, seed=4, fluorescence_style="B")
    fluo = [i for i, x in enumerate(a) if x.modality == "fluorescence"]
    assert fluo, "the draw should hold fluorescence images"
    for i, (x, y) in enumerate(zip(a, b)):
        assert np.array_equal(x.labels, y.labels)
        assert np.array_equal(x.image, y.image) == (i not in fluo)  # only fluorescence changes
    for i in fluo:
        green_a, red_b = a[i].image[..., 1].mean(), b[i].image[..., 0].mean()
        assert a[i].image[..., 0].mean() < green_a and b[i].image[..., 1].mean() < red_b  # cytoplasm moved to red
    with pytest.raises(ValueError, match="fluorescence_style"):
        multimodal.generate(2, 0, 32, fluorescence_style="C")



def test_brightfield_overlaps_nuclei_and_maps():
    fields, pool = brightfield.generate(n=6, n_pool=3, size=128, seed=3)
    assert all(p.amodal is None and p.fluorescence is None for p in pool)
    overlapping = 0
    for f in fields:
        n = len(f.amodal)
        pairwise = np.zeros(f.phase.shape, bool)  # where two or more masks meet, computed pair by pair
        for i in range(n):
            for j in range(i + 1, n):
                pairwise |= f.amodal[i] & f.amodal[j]
        maps = brightfield.semantic_maps(f.amodal, f.nuclei)
        assert np.array_equal(maps["overlap"], pairwise)
        assert np.array_equal(maps["background"], ~f.amodal.any(0)) and not (maps["background"] & maps["nuclei"]).any()
        for i in range(1, n + 1):  # nucleus i lies inside cell i
            assert (f.nuclei == i).any() and f.amodal[i - 1][f.nuclei == i].all()
        overlapping += pairwise.any()
        assert not np.allclose(f.bf_low, f.bf_high)
    assert overlapping >= len(fields) // 2


def test_organoids_imperfect_masks_and_crops():
    images = organoid.generate(n=3, size=512, seed=4, drop_large=1.0, drop_any=0.0, coarse=0.0)
    radii = []
    for o in images:
        assert (o.mask <= o.true_mask).all() and np.array_equal(o.true_mask, o.labels > 0)
        missing = set(np.unique(o.labels[o.true_mask & ~o.mask]))
        assert missing == set(o.dropped)
        radii += [np.sqrt((o.labels == i).sum() / np.pi) for i in o.dropped]
        assert 0 <= o.image.min() and o.image.max() <= 1
    assert radii and min(radii) >= organoid.large_radius(512)  # only large organoids were left out
    crops = organoid_crops(images, crop=128, overlap=0.5, min_fraction=0.03)
    assert len(crops) % 4 == 0 and crops.images.shape[1:] == (128, 128)
    assert (crops.masks.reshape(len(crops), -1).mean(1) >= 0.03).all()
    name, top, left, deg = crops.origin[1]
    src = next(o for o in images if o.name == name)
    assert deg == 90 and np.array_equal(crops.images[1], np.rot90(src.image[top:top + 128, left:left + 128]))
    by_truth = organoid_crops(images, crop=128, overlap=0.5, rotations=(), by="true_mask")
    assert (by_truth.true_masks.reshape(len(by_truth), -1).mean(1) >= 0.03).all()
    assert len(by_truth) > len(crops) // 4  # crops over organoids the annotation omits are kept


def test_organoids_carry_the_hard_cases():
    o = organoid.generate(n=1, size=1024, seed=2)[0]
    # touching organoids: some true pixels of different organoids are 4-neighbours
    lab = o.labels
    touching = ((lab[:, 1:] != lab[:, :-1]) & (lab[:, 1:] > 0) & (lab[:, :-1] > 0)).any()
    assert touching
    # coarse annotation: the kept organoids' outlines differ from the truth
    kept = o.true_mask & ~np.isin(o.labels, o.dropped)
    assert (o.mask ^ kept).sum() > 0
    # a threshold on intensity alone does not separate organoids from background
    from skimage.filters import threshold_otsu
    guess = o.image < threshold_otsu(o.image)
    f1 = 2 * (guess & o.true_mask).sum() / (guess.sum() + o.true_mask.sum())
    assert f1 < 0.8


def test_window_starts_cover_the_image():
    assert window_starts(300, 128, 64) == [0, 64, 128, 172]
    assert window_starts(100, 128, 64) == [0]
    with pytest.raises(ValueError):
        window_starts(100, 0, 1)


def test_load_caches_and_returns_the_same(tmp_path, monkeypatch):
    monkeypatch.setenv("CELLREPRO_CACHE", str(tmp_path))
    first = data.load("dic-spheroid", n=2, size=64, seed=0)
    assert len(list((tmp_path / "dic-spheroid").iterdir())) == 1
    assert_same(first, data.load("dic-spheroid", n=2, size=64, seed=0))


def test_weak_overlaps_move_or_drop_the_hidden_outlines_and_nothing_else():
    fields, _ = brightfield.generate(n=4, n_pool=0, size=96, seed=7)
    f = max(fields, key=lambda f: int((f.amodal.sum(0) >= 2).sum()))
    exact = brightfield.semantic_maps(f.amodal, f.nuclei)
    assert exact["overlap"].any()
    same = brightfield.weak_overlaps(f, np.random.default_rng(0), missing=0.0, coarse=0)
    assert np.array_equal(same.amodal, f.amodal)
    weak = brightfield.weak_overlaps(f, np.random.default_rng(0), missing=0.0, coarse=3)
    maps = brightfield.semantic_maps(weak.amodal, weak.nuclei)
    assert not np.array_equal(maps["overlap"], exact["overlap"])  # coarse outlines
    assert np.array_equal(maps["cytoplasm"], exact["cytoplasm"]) and weak.nuclei is f.nuclei
    assert weak.bf_low is f.bf_low and np.array_equal(f.amodal, fields[fields.index(f)].amodal)  # input untouched
    gone = brightfield.weak_overlaps(f, np.random.default_rng(0), missing=1.0)
    assert not (gone.amodal.sum(0) >= 2).any() and (gone.amodal <= f.amodal).all()
    with pytest.raises(ValueError, match="missing"):
        brightfield.weak_overlaps(f, np.random.default_rng(0), missing=1.5)


def test_the_nucleus_knob_hollows_cells_at_their_nuclei():
    def contrast(optics):
        f = brightfield.make_field("f", np.random.default_rng(3), 128, 0.0, (6, 6), optics)
        cells, nuclei = f.amodal.any(0), f.nuclei > 0
        return float(f.phase[nuclei].mean() - f.phase[cells & ~nuclei].mean())

    assert contrast(brightfield.Optics()) > 0.1  # the default: nuclei are the thickest part of a cell
    assert contrast(brightfield.Optics(nucleus=-0.6)) < 0  # hollowed: nuclei thinner than their cytoplasm
