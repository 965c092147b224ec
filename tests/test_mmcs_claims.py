"""MMCS Tables 1 and 4 on the decision protocol: the per-seed runs' pieces (the unlabelled-loss share,
the family probe, paired phase 2 and control) and the verdict rules of mmcs-C1, C2 and C6 with their
registered gates."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest
import torch

from cellrepro.chapters.mmcs import claims, phases
from cellrepro.chapters.mmcs import train as mt
from cellrepro.data.types import CellImage
from tests.conftest import not_measured


def _scores(per_arm: dict[str, list[float]]) -> pd.DataFrame:
    """Two test images per seed and arm, both at the given F1 (so the seed mean is that F1)."""
    return pd.DataFrame([{"seed": s, "arm": arm, "image": f"im{i}", "f1": v}
                         for arm, values in per_arm.items() for s, v in enumerate(values) for i in range(2)])


def _facts(n: int, **values) -> pd.DataFrame:
    base = {"rho": 34.0, "nominal": 40.0, "pseudo_f1": 0.8, "refreshes": 19, "probe": 0.95}
    return pd.DataFrame([{"seed": s, **base, **values} for s in range(n)])


def test_unlabelled_share_is_the_mean_share_of_eq1():
    class Net:
        train_history = pd.DataFrame({"labelled": [1.0, 3.0], "unlabelled": [1.0, 1.0]})

    # w = 0.5: shares 0.5 / (0.5 + 0.5) = 0.5 and 0.5 / (1.5 + 0.5) = 0.25 -> mean 0.375
    assert phases.unlabelled_share(Net(), 0.5) == pytest.approx(0.375)
    assert phases.unlabelled_share(object(), 0.4) == 0.0


def _image(name: str, level: float, rng: np.random.Generator) -> CellImage:
    img = np.clip(rng.normal(level, 10, (32, 32, 3)), 0, 255).astype(np.uint8)
    return CellImage(name=name, image=img, labels=None, modality="fluorescence", nucleus=np.zeros((32, 32), np.float32))


def test_family_probe_tells_different_families_apart_and_not_the_same_one():
    rng = np.random.default_rng(0)
    dark = [_image(f"d{i}", 40, rng) for i in range(10)]
    bright = [_image(f"b{i}", 160, rng) for i in range(10)]
    same = [_image(f"s{i}", 40, rng) for i in range(10)]
    assert phases.family_probe(dark, bright) == pytest.approx(1.0)
    assert phases.family_probe(dark, same) < 0.8
    with pytest.raises(ValueError, match="at least 2"):
        phases.family_probe(dark, bright[:1])


def test_design_refuses_what_it_cannot_run():
    with pytest.raises(ValueError, match="unknown"):
        phases.Design(arms=("phase 3",))
    with pytest.raises(ValueError, match="n_unlabelled"):
        phases.Design(n_unlabelled=0, arms=(phases.PHASE1, phases.CONTROL))
    with pytest.raises(ValueError, match="n_external"):
        phases.Design(n_external=0, arms=(phases.PHASE1, phases.EXTERNAL_ONLY))


def test_unlabelled_truth_is_the_loaded_unlabelled_images_with_labels():
    from cellrepro.chapters.mmcs.protocol import training_sets

    loaded = training_sets(0, 1, 2, 0, 64).unlabelled
    truth = phases.unlabelled_truth(0, 2, 64)
    assert all(im.labels is None for im in loaded) and all(im.labels.max() > 0 for im in truth)
    for a, b in zip(loaded, truth):
        np.testing.assert_array_equal(np.asarray(a.image), np.asarray(b.image))


@pytest.mark.parametrize("streams, same", [(True, True), (False, False)])
def test_phase2_and_its_control_cut_the_same_labelled_crops_with_streams(streams, same):
    """An A/A test: phase 2 with a vanishing w (it draws unlabelled crops and refreshes its
    ensemble, but its loss is the control's) trains the control's weights only with streams
    (the parameters; BatchNorm's running statistics also see the unlabelled batches)."""
    from cellrepro.data import load

    lab, unl = load("mmcs", n_labeled=2, n_unlabeled=2, size=96, seed=0, style="dataset1")
    s = mt.Settings(steps=3, batch=2, crop=64, features=(4, 8), device="cpu", refresh_every=1, streams=streams)
    net = mt.train_phase1(lab, dataclasses.replace(s, steps=1), 0)
    a = mt.train_phase2(net, lab, unl, dataclasses.replace(s, w=1e-12), 1)
    b = mt.train_phase2(net, lab, unl, dataclasses.replace(s, w=0.0), 1)
    close = all(torch.allclose(p, q, atol=1e-6) for p, q in zip(a.parameters(), b.parameters()))
    assert close is same


def test_c1_judges_phase2_minus_control_with_its_gates(judged):
    scores = _scores({phases.PHASE1: [0.70, 0.72, 0.71], phases.CONTROL: [0.71, 0.72, 0.72],
                      phases.PHASE2: [0.76, 0.78, 0.77], phases.ORACLE: [0.80, 0.83, 0.81]})
    out = claims.judge_phases(scores, _facts(3))
    claim, paired, _, entry = judged[-1]
    assert claim == "mmcs-C1" and np.allclose(paired, [0.05, 0.06, 0.05])
    assert out["mmcs-C1"]["verdict"] == "holds" and out["mmcs-C1"]["failed"] == "none" and not not_measured(entry)
    assert out["paper"]["mean"] == pytest.approx(0.06)  # phase 2 - phase 1, beside


@pytest.mark.parametrize("verdict, paper, control, says", [
    ("holds", 0.05, 0.01, "Phase 2 beats its control"),
    ("smaller than the paper's", 0.13, 0.15, "comes from the longer, annealed training"),
    ("underpowered", 0.05, 0.02, "cannot tell"),
    ("underpowered", -0.01, 0.0, "cannot tell"),
])
def test_c1_finding_is_picked_by_rule(verdict, paper, control, says):
    out = {"mmcs-C1": {"verdict": verdict}, "paper": {"mean": paper}, "control": {"mean": control}}
    assert says in claims.phases_finding(out)


@pytest.mark.parametrize("change, failed", [
    ({"facts": {"pseudo_f1": 0.3}}, "treatment engaged"),
    ({"facts": {"refreshes": 1}}, "treatment engaged"),
    ({"oracle": 0.01}, "phenomenon present (unlabelled images carry information)"),
    ({"control": 0.97}, "reference off floor and ceiling"),
])
def test_c1_gates_fail_when_their_check_fails(change, failed):
    control = change.get("control", 0.72)
    oracle = control + change.get("oracle", 0.1)
    scores = _scores({phases.PHASE1: [0.7] * 3, phases.CONTROL: [control] * 3, phases.PHASE2: [control + 0.01] * 3,
                      phases.ORACLE: [oracle] * 3})
    gates = {g.name: g for g in claims.phases_gates(scores, _facts(3, **change.get("facts", {})))}
    assert not gates[failed].passed
    assert all(g.passed for name, g in gates.items() if name != failed)


def test_c2_judges_external_minus_dataset1_and_its_transfer_gate(judged):
    scores = _scores({phases.PHASE1: [0.80, 0.82, 0.81], phases.PLUS_EXTERNAL: [0.85, 0.86, 0.86],
                      phases.EXTERNAL_ONLY: [0.6, 0.6, 0.6]})
    out = claims.judge_external(scores, _facts(3))
    claim, paired, _, entry = judged[-1]
    assert claim == "mmcs-C2" and np.allclose(paired, [0.05, 0.04, 0.05]) and out["failed"] == "none"
    weak = _scores({phases.PHASE1: [0.8] * 3, phases.PLUS_EXTERNAL: [0.8] * 3, phases.EXTERNAL_ONLY: [0.1] * 3})
    gates = {g.name: g.passed for g in claims.external_gates(weak, _facts(3, probe=0.6))}
    assert not gates["phenomenon present (transfer exists)"] and not gates["treatment engaged (a different family)"]


def _sweep(val: dict[float, list[float]], test: dict[float, list[float]]) -> pd.DataFrame:
    return pd.DataFrame([{"seed": s, "set": name, "diameter": d, "image": "im0", "f1": v}
                         for name, curve in (("validation", val), ("test", test))
                         for d, values in curve.items() for s, v in enumerate(values)])


def test_c6_compares_the_diameter_nearest_rho_with_the_validation_choice(judged):
    # validation peaks at 40 for seed 0 and 35 for seed 1; rho 34 and 38 -> nearest 35 and 40
    val = {30: [0.6, 0.6], 35: [0.65, 0.70], 40: [0.70, 0.65], 45: [0.5, 0.5]}
    test = {30: [0.70, 0.70], 35: [0.76, 0.74], 40: [0.72, 0.75], 45: [0.55, 0.55]}
    facts = _facts(2).assign(rho=[34.0, 38.0])
    choices = claims.diameter_choices(_sweep(val, test), facts)
    assert choices[["best", "nearest"]].to_numpy().tolist() == [[40.0, 35.0], [35.0, 40.0]]
    out = claims.judge_diameter(_sweep(val, test), facts)
    claim, paired, _, entry = judged[-1]
    assert claim == "mmcs-C6" and np.allclose(paired, [0.76 - 0.72, 0.75 - 0.74])
    assert out["default"]["mean"] == pytest.approx(((0.72 - 0.70) + (0.74 - 0.70)) / 2)
    # the register's first rule, beside: unimodal, peak 35 px within 5 px of rho 36, best - 30 px undecided
    assert out["peak"] == 35.0 and out["unimodal"] and out["register_rule"] == "inconclusive"
    assert not not_measured(entry)
    flat = {d: [0.7, 0.7] for d in test}
    gates = {g.name: g.passed for g in claims.diameter_gates(_sweep(flat, flat), facts)}
    assert not gates["phenomenon present (diameter matters)"]


def test_pseudo_label_f1_of_perfect_pseudo_labels_is_one():
    from cellrepro.losses.flows import flow_targets

    labels = np.zeros((64, 64), np.int32)
    labels[8:24, 8:24], labels[8:24, 24:40], labels[40:56, 30:50] = 1, 2, 3
    image = CellImage(name="a", image=np.zeros((64, 64, 3), np.uint8), labels=labels,
                      nucleus=np.zeros((64, 64), np.float32))
    t = flow_targets(labels)

    class Net:  # the ensemble's targets: flows in the net's units (5x) and the cell probability
        pseudo_labels = [torch.cat((5 * t[:2], t[2:].clamp(0.01, 0.99)))]
        pseudo_factors = [1.0]

    assert phases.pseudo_label_f1(Net(), [image], crop=32) == pytest.approx(1.0)
    Net.pseudo_labels = [torch.cat((5 * t[:2], torch.full_like(t[2:], 0.01)))]  # no cell anywhere
    assert phases.pseudo_label_f1(Net(), [image], crop=32) == 0.0


def test_the_control_s_labelled_scale_is_refused_with_unlabelled_images_and_halves_the_step():
    with pytest.raises(ValueError, match="labelled_scale"):
        mt.Settings(w=0.4, labelled_scale=0.6)
    from cellrepro.data import load

    lab, _ = load("mmcs", n_labeled=2, n_unlabeled=0, size=96, seed=0, style="dataset1")
    s = mt.Settings(steps=1, batch=2, crop=64, features=(4, 8), device="cpu", streams=True, warmup=0, w=0.0)
    start = mt.train_phase1(lab, s, 0)
    full = mt.train_phase2(start, lab, (), s, 1)
    half = mt.train_phase2(start, lab, (), dataclasses.replace(s, labelled_scale=0.5), 1)
    # one SGD step from the same weights and crops: the scaled step is half the full one (up to the
    # weight decay's 1e-5 x w, which the scale does not touch)
    for p0, p1, p2 in zip(start.parameters(), full.parameters(), half.parameters()):
        torch.testing.assert_close(p2 - p0, 0.5 * (p1 - p0), atol=1e-6, rtol=1e-3)


def _baseline_rows(mmcs: list[float], cellpose: list[float], rcnn: list[float] | None = None) -> pd.DataFrame:
    from cellrepro.chapters.mmcs import baselines

    arms = {baselines.MMCS: mmcs, baselines.CELLPOSE: cellpose, **({baselines.MASK_RCNN: rcnn} if rcnn else {})}
    return pd.DataFrame([{"seed": s, "arm": arm, "set": name, "image": f"{name}{i}", "f1": v + (0.1 if name == "dataset1" else 0)}
                         for arm, values in arms.items() for s, v in enumerate(values) for name in ("external", "dataset1")
                         for i in range(2)])


def _baseline_facts(n: int, **values) -> pd.DataFrame:
    base = {"rho": 30.0, "pseudo_f1": 0.7, "refreshes": 20, "phase1_external": 0.58}
    return pd.DataFrame([{"seed": s, **base, **values} for s in range(n)])


def test_c3_is_non_inferiority_on_the_external_images_with_the_direction_beside(judged):
    rows = _baseline_rows([0.62, 0.64, 0.63, 0.65], [0.60, 0.61, 0.60, 0.62], rcnn=[0.4, 0.42])
    out = claims.judge_baselines(rows, _baseline_facts(4))
    claim, paired, _, entry = judged[-1]
    assert claim == "mmcs-C3" and np.allclose(paired, [0.02, 0.03, 0.03, 0.03])
    assert entry["test"] == "non-inferiority" and out["mmcs-C3"]["verdict"] == "holds" and not not_measured(entry)
    assert out["direction"]["verdict"] == "holds" and out["mask_rcnn"] == "+0.220 (seed 0), +0.220 (seed 1)"
    assert entry["bootstrap_low"] is not None  # per-image differences given
    assert claims.judge_baselines(_baseline_rows([0.6] * 3, [0.6] * 3), _baseline_facts(3))["mask_rcnn"] == "not run"


@pytest.mark.parametrize("facts, failed", [
    ({"refreshes": 1}, "treatment engaged"),
    ({"pseudo_f1": 0.2}, "treatment engaged"),
    ({"phase1_external": 0.65}, "reference engaged"),
])
def test_c3_gates_fail_when_their_check_fails(facts, failed):
    gates = {g.name: g.passed for g in claims.baselines_gates(_baseline_rows([0.6] * 3, [0.6] * 3),
                                                              _baseline_facts(3, **facts))}
    assert not gates[failed] and all(ok for name, ok in gates.items() if name != failed)
    floor = {g.name: g.passed for g in claims.baselines_gates(_baseline_rows([0.6] * 3, [0.1] * 3), _baseline_facts(3))}
    assert not floor["reference off floor and ceiling"]
