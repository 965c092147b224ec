"""The routed multimodal pipeline as a saved folder (cellrepro.chapters.multimodal.pipeline; paper
Sec. 2.2-2.6): router serialisation, save/load round trip, lazy model loading (Sec. 2.6), the
general-model fallback (Sec. 2.3) and the errors a user can act on."""

from __future__ import annotations

import dataclasses
import json
import shutil

import numpy as np
import pytest
import torch

from cellrepro.chapters.multimodal import evaluate, pipeline as pl, routing, train
from cellrepro.chapters.multimodal.pipeline import GENERAL, MANIFEST, Pipeline, as_rgb, settings_from_dict
from cellrepro.chapters.multimodal.routing import KMeansRouter
from cellrepro.data.types import DataError
from pipeline_helpers import TINY, tiny_images, tiny_pipeline


@pytest.fixture(scope="module")
def images():
    return tiny_images()


@pytest.fixture(scope="module")
def pipe(images):
    return tiny_pipeline(images)


@pytest.fixture(scope="module")
def saved(pipe, tmp_path_factory):
    return pipe.save(tmp_path_factory.mktemp("ckpt") / "pipeline")


def _first(pipe, images, branch):
    return next(im for im in images if pipe.route(im) == branch)


# ---- routers as plain numbers ------------------------------------------------------------------

def test_branch_models_are_spelled_as_model_kinds():
    assert set(routing.BRANCH_MODELS.values()) <= set(train.KINDS)


def test_router_from_dict_routes_as_the_fitted_kmeans():
    rng = np.random.default_rng(0)
    x = np.concatenate([rng.normal(c, 0.3, (50, 6)) for c in (0, 1, 2, 3)])
    fitted = KMeansRouter(4, n_init=3, seed=1).fit_features(x, ["a"] * 50 + ["b"] * 50 + [None] * 100)
    restored = KMeansRouter.from_dict(json.loads(json.dumps(fitted.to_dict())))
    new = rng.uniform(-1, 4, (1000, 6))
    assert restored.kmeans is None and np.array_equal(restored.centres, fitted.kmeans.cluster_centers_)
    assert np.array_equal(restored.clusters(new), fitted.kmeans.predict(new))
    assert np.array_equal(fitted.clusters(new), fitted.kmeans.predict(new))
    assert restored.predict_features(new) == fitted.predict_features(new)
    assert (restored.n_clusters, restored.features, restored.n_init, restored.seed) == (4, "hsv", 3, 1)


def test_router_serialisation_refuses_bad_input():
    with pytest.raises(ValueError, match="not fitted"):
        KMeansRouter().to_dict()
    good = {"n_clusters": 2, "features": "rgb", "n_init": 1, "seed": 0, "centres": [[0.0], [1.0]],
            "cluster_names": ["a", "b"]}
    for bad, message in (({"centres": [[0.0]]}, "centres must be"), ({"cluster_names": ["a"]}, "must name 2"),
                         ({"centres": [[0.0], [np.nan]]}, "finite")):
        with pytest.raises(ValueError, match=message):
            KMeansRouter.from_dict({**good, **bad})
    with pytest.raises(ValueError, match=r"missing: \['seed'\]"):
        KMeansRouter.from_dict({k: v for k, v in good.items() if k != "seed"})
    with pytest.raises(ValueError, match="1 columns"):
        KMeansRouter.from_dict(good).clusters(np.zeros((1, 2)))


# ---- saving and loading ------------------------------------------------------------------------

def test_saved_folder_holds_a_manifest_and_one_state_dict_per_model(pipe, saved):
    manifest = json.loads((saved / MANIFEST).read_text())
    assert (manifest["format"], manifest["version"], manifest["min_cells"]) == (pl.FORMAT, pl.VERSION, 10)
    assert manifest["models"]["brightfield small/dispersed"] == {"kind": "vgg_unet", "file": "brightfield-small-dispersed.pt"}
    assert manifest["models"][GENERAL]["kind"] == "cellpose" and set(manifest["models"]) == set(pipe.models)
    assert sorted(p.name for p in saved.iterdir()) == sorted([MANIFEST, *(e["file"] for e in manifest["models"].values())])
    assert settings_from_dict(manifest["settings"]) == TINY
    state = torch.load(saved / "fluorescence.pt", weights_only=True)
    assert all(torch.equal(state[k], v) for k, v in pipe.models["fluorescence"][1].state_dict().items())


def test_round_trip_gives_identical_predictions(pipe, saved, images):
    loaded = Pipeline.load(saved)
    assert loaded.branches == pipe.branches and loaded.min_cells == pipe.min_cells
    seen = set()
    for im in images:
        (a, branch_a, used_a), (b, branch_b, used_b) = pipe.predict(im), loaded.predict(im)
        assert branch_a == branch_b and used_a == used_b and np.array_equal(a, b)
        seen.add(branch_a)
    assert {"fluorescence", "brightfield large/overlapping", "brightfield small/dispersed"} <= seen


def test_routing_loads_no_model_and_models_load_on_demand(pipe, saved, images):
    lazy = Pipeline.load(saved, branches=[])
    assert lazy.models == {} and lazy.branches == pipe.branches
    assert [lazy.route(im) for im in images] == routing.route(images, pipe.modality_router, pipe.brightfield_split)
    labels, branch, _ = lazy.predict(_first(pipe, images, "fluorescence"))
    assert branch == "fluorescence" and sorted(lazy.models) == ["fluorescence"]
    assert lazy.load_model("fluorescence") is lazy.models["fluorescence"]  # kept, not read again
    assert sorted(Pipeline.load(saved, branches=["dic"]).models) == ["dic"]


def test_grey_images_are_routed_as_their_rgb_repetition(pipe, images):
    grey = images[-1].image[..., 0]
    assert pipe.route(grey) == pipe.route(np.repeat(grey[..., None], 3, -1))


def test_general_model_replaces_a_dic_result_with_too_few_cells(saved, images, pipe):
    dic = _first(pipe, images, "dic")
    lazy = Pipeline.load(saved, branches=[])
    lazy.min_cells = 0                       # every result is enough: the general model is never needed
    assert lazy.predict(dic)[2] is False and GENERAL not in lazy.models
    lazy.min_cells = 10 ** 6                 # no result is enough: the general model segments again
    labels, branch, used = lazy.predict(dic)
    assert (branch, used) == ("dic", True) and GENERAL in lazy.models
    assert np.array_equal(labels, evaluate.predict(pipe.models[GENERAL][1], "cellpose", dic))
    fluo = _first(pipe, images, "fluorescence")  # Sec. 2.3: the fallback is for phase contrast and DIC only
    assert lazy.predict(fluo)[2] is False


def test_no_general_model_means_no_fallback(images):
    small = tiny_pipeline(images, branches=["dic"], min_cells=10 ** 6)
    dic = _first(small, images, "dic")
    labels, branch, used = small.predict(dic)
    assert (branch, used) == ("dic", False)
    assert np.array_equal(labels, evaluate.predict(small.models["dic"][1], "cellpose", dic))


def test_branch_without_model_names_the_branches_that_have_one(images):
    small = tiny_pipeline(images, branches=["dic", GENERAL])
    with pytest.raises(ValueError, match=r"no model for branch 'fluorescence'.*\['dic', 'general'\]"):
        small.predict(_first(small, images, "fluorescence"))


def test_a_failed_save_leaves_the_old_folder_and_no_partial_one(pipe, tmp_path, monkeypatch):
    target = pipe.save(tmp_path / "ckpt")
    before = {p.name: p.read_bytes() for p in target.iterdir()}
    real_save, calls = torch.save, []

    def dying_save(obj, path):  # killed while writing the third model
        calls.append(path)
        if len(calls) % 3 == 0:
            raise KeyboardInterrupt("killed while saving")
        real_save(obj, path)

    monkeypatch.setattr(torch, "save", dying_save)
    for folder in (target, tmp_path / "new"):
        with pytest.raises(KeyboardInterrupt):
            pipe.save(folder)
    assert {p.name: p.read_bytes() for p in target.iterdir()} == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ckpt"]  # no "new", no temporary folder left
    Pipeline.load(target, branches=[])


# ---- clear errors ------------------------------------------------------------------------------

def _edit_manifest(folder, **changes):
    manifest = json.loads((folder / MANIFEST).read_text())
    (folder / MANIFEST).write_text(json.dumps({**manifest, **changes}))


@pytest.mark.parametrize("damage, where, message", [
    (lambda f: shutil.rmtree(f), "", "folder not found"),
    (lambda f: (f / MANIFEST).unlink(), MANIFEST, "not found"),
    (lambda f: (f / MANIFEST).write_text("{"), MANIFEST, "cannot be read as JSON"),
    (lambda f: _edit_manifest(f, version=99), MANIFEST, "format version 99; this cellrepro reads version 1"),
    (lambda f: _edit_manifest(f, format="other"), MANIFEST, "expected format 'cellrepro-multimodal-pipeline'"),
    (lambda f: _edit_manifest(f, modality_router={}), MANIFEST, "incomplete or invalid entries"),
    (lambda f: (f / "dic.pt").unlink(), "dic.pt", "model file of branch 'dic' not found"),
    (lambda f: shutil.copy(f / "fluorescence.pt", f / "dic.pt"), "dic.pt", "does not fit a cellpose model"),
    (lambda f: (f / "dic.pt").write_bytes(b"not torch"), "dic.pt", "cannot be read as a torch state dict"),
])
def test_load_errors_name_the_path_and_what_was_expected(saved, tmp_path, damage, where, message):
    folder = tmp_path / "copy"
    shutil.copytree(saved, folder)
    damage(folder)
    with pytest.raises(DataError, match=message) as err:
        Pipeline.load(folder)
    assert str(err.value).startswith(str(folder / where).rstrip("/"))


def test_asking_for_an_unknown_branch_is_an_error(saved):
    with pytest.raises(DataError, match=r"no model for branch\(es\) \['nope'\]"):
        Pipeline.load(saved, branches=["nope"])


def test_constructor_refuses_unfitted_routers_and_unknown_kinds(pipe):
    with pytest.raises(ValueError, match="modality_router must be a fitted"):
        Pipeline(KMeansRouter(), None, {}, TINY)
    with pytest.raises(ValueError, match="kind in"):
        Pipeline(pipe.modality_router, None, {"dic": ("vgg-unet", torch.nn.Linear(1, 1))}, TINY)


# ---- input images and settings -----------------------------------------------------------------

def test_as_rgb_repeats_grey_stretches_deep_images_and_names_bad_ones():
    grey = np.arange(12, dtype=np.uint8).reshape(3, 4)
    assert np.array_equal(as_rgb(grey), np.stack([grey] * 3, -1))
    deep = as_rgb(np.linspace(0, 4000, 101).astype(np.uint16).reshape(1, 101))
    assert deep.dtype == np.uint8 and deep.min() == 0 and deep.max() == 255
    for bad, message in ((np.zeros((2, 2, 4), np.uint8), "got shape"), (np.zeros((3, 2, 2), np.uint8), "got shape"),
                         (np.zeros((2, 2), bool), "integer or float"), (np.full((2, 2), np.nan), "NaN")):
        with pytest.raises(DataError, match=f"^x.tif: .*{message}"):
            as_rgb(bad, "x.tif")


def test_settings_round_trip_and_unknown_entries():
    assert settings_from_dict(json.loads(json.dumps(dataclasses.asdict(TINY)))) == TINY
    assert settings_from_dict({"crop": 32, "gone": 1}) == train.Settings(crop=32)
