"""What the MMCS notebooks run per seed, and how their rows become the paper's tables.

Data (:func:`training_sets`, :func:`test_set`): per data seed, dataset1's labelled and unlabelled images
(1 : 3, as the challenge) and the external family's labelled images ("+dataset2"); one fixed held-out
test set of dataset1 images that no seed trains on. With ``data_root`` (a NeurIPS-CellSeg folder) the
labelled images are split by a seeded shuffle into training and test images instead; ``external_root``
(a Cellpose-layout folder) gives the external labelled set.

Runs (:func:`phase_runs`): phase 1, then phase 2 with the unlabelled images (``w``), then the control:
phase 2 with ``w = 0`` (the same updates and schedule on the labelled images alone). Every model is
scored per test image; :func:`diameter_sweep` re-scores the phase-1 models over inference diameters
(the paper's Table 4 values equal its Table 1 phase-1 values: the sweep is of those models).
:func:`nucleus_runs` is Table 3. The other tables' runs live in :mod:`.comparisons` (Tables 2 and 8)
and :mod:`.sweeps` (Tables 5-7), re-exported here so that every notebook reads one module; the data
helpers they share (:func:`labelled_set`, :func:`validation_set`, :func:`external_test_set`) stay
here. Each ``tableN`` function maps per-seed means onto the paper's cells (keys of
``cellrepro/reported/mmcs.csv``).
"""

from __future__ import annotations

import dataclasses
from typing import Sequence

import numpy as np
import pandas as pd

from ... import data
from ...data.types import CellImage
from . import train as mt

TEST_SEED = 10_000
"""Data seed of the held-out test images (training seeds are small integers)."""

DATASETS = {"dataset1": "dataset1", "+dataset2": "+dataset2"}
"""Table 1's rows: the challenge's labelled data, and with the external labelled data added."""

PHASES = ("phase1", "phase2", "control")
"""phase 1; phase 2 (Eq. 1 with w); phase 2 with w = 0 (labelled only, same updates and schedule)."""


@dataclasses.dataclass
class TrainingSets:
    labelled: list[CellImage]
    unlabelled: list[CellImage]
    external: list[CellImage]


def _check_real(images: Sequence[CellImage], where: str) -> list[CellImage]:
    labelled = [im for im in images if im.labels is not None]
    if len(labelled) < 4:
        raise ValueError(f"{where}: need at least 4 labelled images, found {len(labelled)}")
    return labelled


def training_sets(seed: int, n_labelled: int, n_unlabelled: int, n_external: int, size: int,
                  data_root: str | None = None, external_root: str | None = None, test_fraction: float = 0.3
                  ) -> TrainingSets:
    """The training images of one data seed (see the module docstring)."""
    if data_root is not None:
        lab, unl = data.readers.read_cellseg(data_root)
        lab = _check_real(lab, data_root)
        order = np.random.default_rng(seed).permutation(len(lab))
        n_test = max(1, int(round(test_fraction * len(lab))))
        train = [lab[i] for i in order[n_test:]][:n_labelled]
        ext = _real_external(external_root)[:n_external] if external_root else []
        return TrainingSets(train, unl[:n_unlabelled], ext)
    lab, unl = data.load("mmcs", n_labeled=n_labelled, n_unlabeled=n_unlabelled, size=size, seed=seed, style="dataset1")
    ext = []  # an empty set is not generated: its cached folder would have no images/ to read back
    if n_external > 0:
        ext, _ = data.load("mmcs", n_labeled=n_external, n_unlabeled=0, size=size, seed=seed, style="external")
    return TrainingSets(list(lab), list(unl), list(ext))


def _real_external(root: str) -> list[CellImage]:
    return _check_real(data.readers.read_cellpose(root), root)


def test_set(n_test: int, size: int, data_root: str | None = None, seed: int = 0, test_fraction: float = 0.3
             ) -> list[CellImage]:
    """Held-out test images: synthetic dataset1 at :data:`TEST_SEED`, or the seed's test split of ``data_root``."""
    if data_root is not None:
        lab = _check_real(data.readers.read_cellseg(data_root)[0], data_root)
        order = np.random.default_rng(seed).permutation(len(lab))
        return [lab[i] for i in order[:max(1, int(round(test_fraction * len(lab))))]]
    return list(data.load("mmcs", n_labeled=n_test, n_unlabeled=0, size=size, seed=TEST_SEED, style="dataset1")[0])


def external_test_set(n_test: int, size: int) -> list[CellImage]:
    """Held-out images of the external family (elongated cells; :data:`TEST_SEED`), for mmcs-C13's categories."""
    return list(data.load("mmcs", n_labeled=n_test, n_unlabeled=0, size=size, seed=TEST_SEED, style="external")[0])


VAL_SEED = 20_000
"""Data seed of the validation images that pick checkpoints (Tables 6 and 7); never tested on."""


def validation_set(n_val: int, size: int) -> list[CellImage]:
    """Synthetic dataset1 validation images (:data:`VAL_SEED`), disjoint from training and test images."""
    return list(data.load("mmcs", n_labeled=n_val, n_unlabeled=0, size=size, seed=VAL_SEED, style="dataset1")[0])


def _rows(net, test: Sequence[CellImage], diameter: float | None = None, **keys) -> pd.DataFrame:
    out = mt.scores(net, test, diameter=diameter)[["image", "modality", "f1", "precision", "recall"]]
    for k, v in keys.items():
        out.insert(0, k, v)
    return out


def labelled_set(sets: TrainingSets, dataset: str) -> list[CellImage]:
    """The labelled training images of one of Table 1's rows (:data:`DATASETS`)."""
    if dataset not in DATASETS:
        raise ValueError(f"unknown dataset {dataset!r}; Table 1's rows are {list(DATASETS)}")
    if dataset == "+dataset2" and not sets.external:
        raise ValueError("+dataset2 needs external labelled images (n_external > 0 or external_root)")
    return sets.labelled + (sets.external if dataset == "+dataset2" else [])


def phase_runs(sets: TrainingSets, test: Sequence[CellImage], phase1: mt.Settings, phase2: mt.Settings, seed: int,
               datasets: Sequence[str] = tuple(DATASETS), diameter: float | None = 40.0
               ) -> tuple[pd.DataFrame, dict[str, object]]:
    """Per dataset row of Table 1: phase 1, phase 2 (``phase2.w``) and the ``w = 0`` control, scored per
    test image at inference ``diameter`` (default 40 px: the paper's Table 1 values are its Table 4
    values at 40 px; None: the self-adaptive rho). Returns the rows (``seed, dataset, phase, image,
    modality, f1, precision, recall``) and the phase-1 nets by dataset (for :func:`diameter_sweep`)."""
    rows, nets = [], {}
    for ds in datasets:
        labelled = labelled_set(sets, ds)
        net1 = mt.train_phase1(labelled, phase1, seed)
        net2 = mt.train_phase2(net1, labelled, sets.unlabelled, phase2, seed + 1)
        control = mt.train_phase2(net1, labelled, sets.unlabelled, dataclasses.replace(phase2, w=0.0), seed + 1)
        for phase, net in zip(PHASES, (net1, net2, control)):
            rows.append(_rows(net, test, diameter, seed=seed, dataset=ds, phase=phase))
        nets[ds] = net1
    return pd.concat(rows, ignore_index=True), nets


NUCLEUS_ARMS = {
    "cyto2, no nucleus channel": ("full", False),
    "cyto2, nucleus channel": ("full", True),
    "cyto, nucleus channel": ("half", True),
    "no pretraining, nucleus channel": (None, True),
}
"""Table 3's rows and their analogues: ``(pre-training set, nucleus channel)``. "cyto2" is a net
pre-trained on the whole pre-training family, "cyto" on its first half (Cellpose's cyto2 added data to
cyto's); the pre-training itself always sees the nucleus channel (both Cellpose models are 2-channel)."""


def pretrain_set(seed: int, n: int, size: int) -> list[CellImage]:
    """The pre-training family's labelled images of one data seed (the cyto/cyto2 weights' stand-in)."""
    return list(data.load("mmcs", n_labeled=n, n_unlabeled=0, size=size, seed=seed, style="pretrain")[0])


def nucleus_runs(labelled: Sequence[CellImage], pretrain: Sequence[CellImage], test: Sequence[CellImage],
                 settings: mt.Settings, pretrain_settings: mt.Settings, seed: int, diameters: Sequence[float | None]
                 ) -> pd.DataFrame:
    """Table 3 per data seed: two pre-trained starts (whole / first half of ``pretrain``) and a fresh net,
    each fine-tuned on ``labelled`` (phase 1) with or without the nucleus channel as
    :data:`NUCLEUS_ARMS` says; every net scored on ``test`` at each of ``diameters`` (None: the
    self-adaptive rho). Rows: ``seed, arm, diameter, image, modality, f1, precision, recall``."""
    if len(pretrain) < 2:
        raise ValueError("pretrain needs at least 2 labelled images (its first half is the 'cyto' analogue)")
    starts = {"full": mt.train_phase1(pretrain, pretrain_settings, seed + 11),
              "half": mt.train_phase1(pretrain[:len(pretrain) // 2], pretrain_settings, seed + 11)}
    rows = []
    for arm, (start, nucleus) in NUCLEUS_ARMS.items():
        net = mt.train_phase1(labelled, dataclasses.replace(settings, nucleus=nucleus), seed,
                              init=starts[start] if start else None)
        rows += [_rows(net, test, d, arm=arm, seed=seed).assign(diameter=float("nan") if d is None else float(d))
                 for d in diameters]
    return pd.concat(rows, ignore_index=True)


def table3(means: pd.DataFrame, diameter: float = 30.0) -> dict[tuple[str, str], float]:
    """Table 3 cells (``<arm>, diameter 30 px``, ``F1``) from per-seed means at ``diameter``."""
    m = means[means["diameter"] == diameter].groupby("arm")["f1"].mean()
    return {(f"{arm}, diameter {int(diameter)} px", "F1"): float(v) for arm, v in m.items()}


def diameter_sweep(net, test: Sequence[CellImage], diameters: Sequence[float], **keys) -> pd.DataFrame:
    """One row per (diameter, test image): ``keys``, ``image``, ``modality``, ``f1``, ``precision``, ``recall``,
    ``diameter`` (NaN: the self-adaptive default, no resize) and the net's ``rho``."""
    out = pd.concat([_rows(net, test, d, **keys).assign(diameter=float("nan") if d is None else float(d))
                     for d in list(diameters) + [None]], ignore_index=True)
    out["rho"] = float(net.diam_mean)
    return out


def seed_means(rows: pd.DataFrame, by: Sequence[str], value: str = "f1") -> pd.DataFrame:
    """Mean of ``value`` over test images within each seed and ``by`` group (images first, then seeds)."""
    return rows.groupby(["seed", *by], dropna=False)[value].mean().reset_index()


def paired(means: pd.DataFrame, column: str, a: str, b: str, value: str = "f1", **where) -> np.ndarray:
    """Per-seed differences ``value[a] - value[b]`` of ``column``'s levels, rows filtered by ``where``."""
    m = means
    for k, v in where.items():
        m = m[m[k] == v]
    wide = m.pivot_table(index="seed", columns=column, values=value)
    return (wide[a] - wide[b]).to_numpy()


def table1(means: pd.DataFrame) -> dict[tuple[str, str], float]:
    """Table 1 cells (row dataset, column ``phase1 F1`` / ``phase2 F1``) from per-seed means."""
    m = means[means["phase"].isin(["phase1", "phase2"])].groupby(["dataset", "phase"])["f1"].mean()
    return {(ds, f"{ph} F1"): float(v) for (ds, ph), v in m.items()}


def table4(sweep_means: pd.DataFrame, phase_means: pd.DataFrame | None = None) -> dict[tuple[str, str], float]:
    """Table 4 cells: ``dataset1, diameter D px`` from the sweep, and ``+dataset2, diameter 40 px`` from the
    sweep or else from the phase-1 rows of ``phase_means`` (Table 1's runs, scored at 40 px)."""
    m = sweep_means.dropna(subset=["diameter"]).groupby(["dataset", "diameter"])["f1"].mean()
    out = {}
    for (ds, d), v in m.items():
        if ds == "dataset1" or int(d) == 40:
            out[(f"{ds}, diameter {int(d)} px", "F1")] = float(v)
    key = ("+dataset2, diameter 40 px", "F1")
    if key not in out and phase_means is not None:
        sel = phase_means[(phase_means["dataset"] == "+dataset2") & (phase_means["phase"] == "phase1")]
        if len(sel):
            out[key] = float(sel["f1"].mean())
    return out


def unimodal(curve: Sequence[float], tolerance: float = 0.0) -> bool:
    """True if ``curve`` rises (weakly, up to ``tolerance``) to its maximum and falls after it."""
    c = np.asarray(curve, float)
    k = int(np.argmax(c))
    return bool(np.all(np.diff(c[:k + 1]) >= -tolerance) and np.all(np.diff(c[k:]) <= tolerance))


# The other tables' runs live in their own modules; the notebooks reach them through this one. They
# import this module, so they are resolved on first use (PEP 562): importing either of them first works.
_ELSEWHERE = {
    "comparisons": ("ARCH_ARMS", "BASELINE_ARMS", "TABLE2_ROWS", "TABLE8_ROWS", "architecture_runs", "baseline_runs",
                    "categories", "stain", "table2", "table8"),
    "sweeps": ("TABLE5_COLUMNS", "argmax_shift", "best_checkpoint", "epochs_to_updates", "gap_to_best", "schedule",
               "schedule_run", "table5", "weight_runs"),
}


def __getattr__(name: str):
    import importlib

    for module, names in _ELSEWHERE.items():
        if name in names:
            return getattr(importlib.import_module(f".{module}", __package__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["DATASETS", "NUCLEUS_ARMS", "PHASES", "TEST_SEED", "TrainingSets", "VAL_SEED", "diameter_sweep",
           "external_test_set", "labelled_set", "nucleus_runs", "paired", "phase_runs", "pretrain_set", "seed_means",
           "table1", "table3", "table4", "test_set", "training_sets", "unimodal", "validation_set"]
__all__ += [name for names in _ELSEWHERE.values() for name in names]
