"""Table 4 section of the multimodal chapter: the claim rules and per-seed aggregation on hand-made
numbers, the fallback arms on a tiny untrained pipeline, the load-time measurement, and one tiny
end-to-end seed."""

import math

import numpy as np
import pandas as pd
import pytest

from cellrepro.publish import report
from cellrepro.chapters.multimodal import evaluate, loading, table4, train
from cellrepro.chapters.multimodal import table4_claims as rules
from cellrepro.chapters.multimodal.pipeline import GENERAL
from cellrepro.chapters.multimodal.routing import LARGE, SMALL, count_instances
from cellrepro.data.synthetic.multimodal import make_image
from cellrepro.engine.hardware import timed, torch_device
from pipeline_helpers import TINY, tiny_images, tiny_pipeline

NAN = {"low": math.nan, "high": math.nan}


def _e(low, high):
    return {"low": low, "high": high}


# ---- the rules, on hand-made intervals ----------------------------------------------------------------------

def test_c6_needs_a_repair_and_calls_a_silent_fallback_a_failure():
    assert rules.c6(_e(0.01, 0.2)) == "holds"
    assert rules.c6(_e(0.0, 0.0)) == "fails"  # the fallback never fired: with == without on every seed
    assert rules.c6(_e(-0.2, -0.01)) == "fails"
    assert rules.c6(_e(-0.01, 0.2)) == "inconclusive"
    assert rules.c6(NAN) == "inconclusive"


def test_c7_needs_both_parts():
    good, bad, unsure = _e(0.05, 0.2), _e(-0.3, -0.1), _e(-0.05, 0.1)
    assert rules.c7(good, _e(0.0, 0.1)) == "holds"  # routed >= best single: a lower bound of exactly 0 is enough
    assert rules.c7(good, unsure) == "inconclusive"
    assert rules.c7(bad, _e(0.1, 0.2)) == "fails"
    assert rules.c7(good, bad) == "fails"
    assert rules.c7(unsure, _e(0.1, 0.2)) == "inconclusive"
    assert rules.c7(good, NAN) == "inconclusive"


def test_c11_compares_the_drop_with_three_seed_sds_and_checks_fluorescence_is_not_just_hard():
    fine = _e(-0.05, 0.02)
    assert rules.c11(_e(0.31, 0.5), 0.1, fine, fine) == "holds"
    assert rules.c11(_e(0.29, 0.5), 0.1, fine, fine) == "inconclusive"  # not above 3 x SD = 0.3
    assert rules.c11(_e(0.31, 0.5), 0.1, _e(-0.2, -0.01), fine) == "inconclusive"  # fluorescence below PC
    assert rules.c11(_e(0.31, 0.5), 0.1, fine, _e(-0.2, -0.01)) == "inconclusive"  # ... or below brightfield
    assert rules.c11(_e(0.0, 0.5), 0.01, fine, fine) == "fails"  # the drop's interval reaches 0
    assert rules.c11(_e(-0.3, -0.1), 0.01, fine, fine) == "fails"
    assert rules.c11(_e(0.31, 0.5), math.nan, fine, fine) == "inconclusive"


def test_c13_on_fake_timings():
    times = pd.DataFrame({"repeat": [0, 0, 1, 1, 2, 2], "load_all_s": [2.0, 4.0, 2.2, 4.0, 1.8, 4.2],
                          "load_one_s": [1.0, 2.0, 1.0, 2.0, 1.0, 2.0]})
    ratio = loading.ratio_per_repeat(times)
    assert ratio.tolist() == pytest.approx([2.0, 6.2 / 3, 2.0])
    effect = report.paired_effect(ratio.to_numpy())
    assert rules.c13(effect) == "holds"
    assert rules.c13(report.paired_effect([0.9, 1.1, 1.0])) == "inconclusive"
    assert rules.c13(report.paired_effect([0.5, 0.6, 0.55])) == "fails"
    assert rules.c13(report.paired_effect([2.0])) == "inconclusive"


# ---- per-seed aggregation of hand-made rows --------------------------------------------------------------------

def _rows():
    """Two seeds; each arm's F1 is known per image."""
    out = []

    def add(seed, arm, test_set, f1s, group="", branch="", used=False):
        for i, f1 in enumerate(f1s):
            out.append({"seed": seed, "arm": arm, "test_set": test_set, "image": f"im{i}", "modality": test_set,
                        "group": group, "branch": branch, "used_general": used, "f1": f1})

    for seed in (0, 1):
        s = 0.1 * seed
        add(seed, table4.MISROUTED, "phase contrast", [0.5 + s, 0.7], used=True)
        add(seed, table4.MISROUTED, "dic", [0.2, 0.2])
        add(seed, table4.MISROUTED_NO_FALLBACK, "phase contrast", [0.1, 0.1])
        add(seed, table4.MISROUTED_NO_FALLBACK, "dic", [0.2, 0.2])
        add(seed, table4.MISROUTED_GENERAL, "phase contrast", [0.6, 0.6])
        add(seed, table4.MISROUTED_GENERAL, "dic", [0.6, 0.6])
        for t in ("phase contrast", "dic"):
            add(seed, table4.TRUE_ROUTE, t, [0.8, 0.8])
            add(seed, table4.TRUE_NO_FALLBACK, t, [0.8, 0.8])
        add(seed, table4.TRUE_ROUTE, "brightfield", [0.9, 0.7], LARGE, f"brightfield {LARGE}")
        add(seed, table4.TRUE_ROUTE, "brightfield", [0.5], SMALL, f"brightfield {LARGE}")  # misrouted by the splitter
        add(seed, table4.TRUE_ROUTE, "brightfield", [0.9], SMALL, f"brightfield {SMALL}")
        for arm, (large, small) in {table4.BF_LARGE: (0.8, 0.3), f"vgg_unet: {table4.BF_LARGE}": (0.4, 0.5),
                                    f"cellpose: {table4.BF_SMALL}": (0.2, 0.6), table4.BF_SMALL: (0.1, 0.7 + s),
                                    "cellpose: brightfield": (0.7, 0.6), "vgg_unet: brightfield": (0.3, 0.6)}.items():
            add(seed, arm, "brightfield", [large, large], LARGE)
            add(seed, arm, "brightfield", [small, small], SMALL)
    return pd.DataFrame(out)


def test_c6_per_seed_averages_the_phase_contrast_and_dic_images():
    c6 = rules.c6_per_seed(_rows())
    assert c6.loc[0, "misrouted, with fallback"] == pytest.approx((0.5 + 0.7 + 0.2 + 0.2) / 4)
    assert c6.loc[1, "misrouted, with fallback"] == pytest.approx((0.6 + 0.7 + 0.2 + 0.2) / 4)
    assert c6.loc[0, "misrouted, without fallback"] == pytest.approx(0.15)
    assert c6.loc[0, "fallback fired (misrouted)"] == pytest.approx(0.5)
    assert c6.loc[0, "fallback fired (true route)"] == 0
    effect = rules.paired(c6, "misrouted, with fallback", "misrouted, without fallback")
    assert effect["mean"] == pytest.approx((0.25 + 0.275) / 2) and effect["n"] == 2
    assert rules.c6(effect) == "holds"


def test_brightfield_grid_purity_and_best_single_model():
    rows = _rows()
    grid = rules.c7_grid(rows)
    assert grid.loc[0, ("cellpose", LARGE)] == pytest.approx(0.8)
    assert grid.loc[0, ("vgg_unet", LARGE)] == pytest.approx(0.4)
    assert grid.loc[1, ("vgg_unet", SMALL)] == pytest.approx(0.8)
    assert grid.loc[0, ("cellpose (all brightfield)", SMALL)] == pytest.approx(0.6)
    bright = rules.brightfield_per_seed(rows)
    assert bright.loc[0, "sub-split purity"] == pytest.approx(3 / 4)
    assert bright.loc[0, "routed combination"] == pytest.approx((0.9 + 0.7 + 0.5 + 0.9) / 4)
    assert bright.loc[0, "cellpose: brightfield"] == pytest.approx(0.65)
    assert rules.best_single(bright) == "cellpose: brightfield"
    summary = rules.summary(bright)
    assert summary.loc["cellpose: brightfield", "mean"] == pytest.approx(0.65)
    assert summary.loc["sub-split purity", "n"] == 2
    texts = rules.interval_texts(bright)
    assert texts["sub-split purity"].startswith("[") and "nan" not in texts["routed combination"]


def test_mean_f1_names_what_is_missing():
    with pytest.raises(ValueError, match="no rows of arm 'nothing'"):
        rules.mean_f1(_rows(), "nothing", "dic")


def test_table4_cells_pool_the_four_columns_and_take_fluorescence_from_the_chosen_style():
    rows = []
    for test_set, f1s in {"brightfield": [1.0, 0.8], "dic": [0.5, 0.7, 0.9], "phase contrast": [0.6],
                          "fluorescence": [0.9, 0.9], table4.FLUO_B: [0.0, 0.1]}.items():
        rows += [{"seed": 0, "arm": table4.ROUTED, "test_set": test_set, "f1": f} for f in f1s]
    rows.append({"seed": 0, "arm": table4.TRUE_ROUTE, "test_set": "dic", "f1": 0.0})  # another arm: ignored
    per_seed = table4.table4_per_seed(pd.DataFrame(rows))
    assert per_seed.loc[0, ("median F1", "DIC")] == pytest.approx(0.7)
    assert per_seed.loc[0, ("mean F1", "fluorescence")] == pytest.approx(0.05)
    assert per_seed.loc[0, ("median F1", "all")] == pytest.approx(np.median([1.0, 0.8, 0.5, 0.7, 0.9, 0.6, 0.0, 0.1]))
    style_a = table4.table4_per_seed(pd.DataFrame(rows), "fluorescence")
    assert style_a.loc[0, ("mean F1", "fluorescence")] == pytest.approx(0.9)
    cells = table4.paper_cells(per_seed)
    compared = report.compare(cells, "multimodal", "4")  # every key is a cell of the paper's table
    assert compared["this run"].notna().all() and len(cells) == 10


# ---- the fallback arms on a tiny untrained pipeline ------------------------------------------------------------

@pytest.fixture(scope="module")
def images():
    return tiny_images()


@pytest.fixture(scope="module")
def grey_tests():
    return {m: [make_image(f"{m[:3]}{i}", np.random.default_rng([7, j, i]), 64, m) for i in range(2)]
            for j, m in enumerate(("phase contrast", "dic"))}


@pytest.mark.parametrize("min_cells, fires", [(0, False), (10 ** 6, True)])
def test_misrouted_arms_with_and_without_the_general_model(images, grey_tests, min_cells, fires):
    pipe = tiny_pipeline(images, min_cells=min_cells)
    rows = pd.DataFrame(table4._pipeline_arms(pipe, grey_tests))
    mis = rows[rows["arm"] == table4.MISROUTED].set_index(["test_set", "image"])
    bare = rows[rows["arm"] == table4.MISROUTED_NO_FALLBACK].set_index(["test_set", "image"])
    general = rows[rows["arm"] == table4.MISROUTED_GENERAL].set_index(["test_set", "image"])
    assert mis.loc["phase contrast", "branch"].eq("dic").all() and mis.loc["dic", "branch"].eq("phase contrast").all()
    assert mis["used_general"].eq(fires).all() and not bare["used_general"].any()
    assert general["branch"].eq(GENERAL).all()
    specific = [count_instances(evaluate.predict(pipe.models[table4.SWAP[t]][1], "cellpose", im))
                for t, ims in grey_tests.items() for im in ims]
    assert bare["n_found"].tolist() == specific  # without the fallback: the wrong branch's own result
    expected = general["n_found"] if fires else bare["n_found"]
    assert mis["n_found"].tolist() == expected.tolist()
    assert set(rows["arm"]) == {table4.ROUTED, table4.TRUE_ROUTE, table4.TRUE_NO_FALLBACK, table4.MISROUTED,
                                table4.MISROUTED_NO_FALLBACK, table4.MISROUTED_GENERAL}


def test_without_fallback_drops_only_the_general_model(images):
    pipe = tiny_pipeline(images)
    bare = table4.without_fallback(pipe)
    assert GENERAL in pipe.models and GENERAL not in bare.branches
    assert set(bare.branches) == set(pipe.branches) - {GENERAL}
    assert bare.modality_router is pipe.modality_router and bare.min_cells == pipe.min_cells


# ---- loading times ---------------------------------------------------------------------------------------------

def test_load_times_time_both_sides_for_each_image(images, tmp_path):
    folder = tiny_pipeline(images).save(tmp_path / "pipeline")
    times = loading.load_times(folder, images[::4][:2], repeat=1)
    assert len(times) == 2 and (times[["load_all_s", "load_one_s"]] > 0).all().all()
    assert times["n_loaded"].between(1, 2).all()  # its branch, and the general model if the fallback fired
    assert len(loading.ratio_per_repeat(times)) == 1
    with pytest.raises(ValueError, match="repeat"):
        loading.load_times(folder, images, repeat=0)


def test_timed_and_torch_device():
    out, seconds = timed(lambda: sum(range(1000)), "cpu")
    assert out == 499500 and seconds >= 0
    assert torch_device("cpu").type == "cpu" and torch_device("auto").type in ("cpu", "cuda", "mps")


# ---- one tiny seed end to end ----------------------------------------------------------------------------------

def test_training_sets_refuse_a_missing_brightfield_group():
    data = table4.seed_training(0, 1, 1, 0, 64)
    group = table4.brightfield_groups(data["brightfield"].labelled, 64)
    missing = LARGE if not group[LARGE] else SMALL
    with pytest.raises(ValueError, match=f"no labelled brightfield image of group '{missing}'"):
        table4.training_sets(data, 64)


def test_train_models_starts_dic_from_phase_contrast_and_gives_the_unets_their_steps():
    data = table4.seed_training(0, 2, 3, 0, 64)
    settings = train.Settings(steps=1, batch=2, crop=32, cellpose_features=TINY.cellpose_features,
                              vgg_width=TINY.vgg_width, cdnet_features=TINY.cdnet_features, device="cpu")
    models = table4.train_models(data, settings, 0, 64, names=["dic", table4.BF_SMALL], unet_steps=3)
    assert set(models) == {"phase contrast", "dic", table4.BF_SMALL}  # DIC's start is trained first
    assert len(models[table4.BF_SMALL][1].train_history) == 3 and len(models["dic"][1].train_history) == 1
    pc, dic = (dict(models[n][1].named_parameters()) for n in ("phase contrast", "dic"))
    assert all(pc[k].shape == dic[k].shape for k in pc) and any(not (pc[k] == dic[k]).all() for k in pc)
    with pytest.raises(ValueError, match="unknown model"):
        table4.train_models(data, settings, 0, 64, names=["resnet"])


def test_tiny_seed_run_scores_every_arm():
    data = table4.seed_training(0, 2, 3, 2, 64)
    tests = table4.test_sets(2, 3, 64)
    settings = train.Settings(steps=1, batch=2, crop=32, cellpose_features=TINY.cellpose_features,
                              vgg_width=TINY.vgg_width, cdnet_features=TINY.cdnet_features, device="cpu")
    rows, pipe = table4.seed_run(0, data, tests, settings, 64, n_init=2, unet_steps=2)
    assert set(pipe.models) == set(table4.BRANCHES)
    arms = set(rows["arm"])
    assert {table4.ROUTED, table4.TRUE_ROUTE, table4.ZERO_SHOT, "cellpose: fluorescence"} <= arms
    assert set(rules.GRID.values()) | set(rules.SINGLE_MODELS) <= arms
    assert rows["f1"].between(0, 1).all() and rows["seed"].eq(0).all()
    assert len(rows[rows["arm"] == table4.ROUTED]) == sum(len(v) for v in tests.values())
    bright = rows[(rows["test_set"] == "brightfield")]
    assert set(bright["group"]) == {LARGE, SMALL}
    for per_seed in (rules.fluorescence_per_seed, rules.c6_per_seed, rules.c7_grid, rules.brightfield_per_seed,
                     rules.c12_per_seed):
        assert len(per_seed(rows)) == 1
