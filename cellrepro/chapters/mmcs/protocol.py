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
:func:`baseline_runs` (Table 2: MMCS, a Cellpose-style CPnet, Mask R-CNN; :func:`categories` for the
Fig. 2 categories), :func:`nucleus_runs` (Table 3), :func:`weight_runs` (Table 5's w grid),
:func:`schedule_run` (Tables 6 and 7: phase 2 under one of the paper's schedules, in epochs mapped to
updates by :func:`schedule`, scored on validation and test images at checkpoints) and
:func:`architecture_runs` (Table 8) are the other tables' runs; each ``tableN`` function maps per-seed
means onto the paper's cells (keys of ``cellrepro/reported/mmcs.csv``).
"""

from __future__ import annotations

import dataclasses
from typing import Callable, Sequence

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


BASELINE_ARMS = ("MMCS", "Cellpose-style", "Mask R-CNN")
"""Table 2's methods, all trained on the same labelled images (dataset1 + the external family)."""

TABLE2_ROWS = {"MMCS": "MMCS", "Cellpose-style": "Cellpose", "Mask R-CNN": "Mask R-CNN"}
"""This run's arm beside each row of the paper's Table 2 (its StarDist row is not run)."""


def external_test_set(n_test: int, size: int) -> list[CellImage]:
    """Held-out images of the external family (elongated cells; :data:`TEST_SEED`), for mmcs-C13's categories."""
    return list(data.load("mmcs", n_labeled=n_test, n_unlabeled=0, size=size, seed=TEST_SEED, style="external")[0])


def stain(image: CellImage) -> float:
    """Mean cytoplasm intensity (green / 255) over the image's cells: how strongly it is stained."""
    if image.labels is None or not (image.labels > 0).any():
        raise ValueError(f"{image.name}: stain needs labelled cells")
    return float(np.asarray(image.image)[..., 1][image.labels > 0].mean() / 255.0)


def categories(images: Sequence[CellImage], weak_quantile: float = 1 / 3, external: Sequence[str] = ()
               ) -> pd.DataFrame:
    """mmcs-C13's categories per image (an image may be in several): its modality ("fluorescence" with a
    nucleus channel, "phase contrast" without), "weakly stained" (:func:`stain` in the lowest
    ``weak_quantile`` of the dataset1 images) and "elongated" (the images named in ``external``).
    Rows: ``image``, ``category``, ``stain``."""
    names = set(external)
    st = {im.name: stain(im) for im in images}
    own = [st[im.name] for im in images if im.name not in names]
    cut = float(np.quantile(own, weak_quantile)) if own else -np.inf
    rows = []
    for im in images:
        if im.name in names:
            rows.append((im.name, "elongated (external family)"))
            continue
        rows.append((im.name, im.modality))
        if st[im.name] <= cut:
            rows.append((im.name, "weakly stained"))
    out = pd.DataFrame(rows, columns=["image", "category"])
    out["stain"] = out["image"].map(st)
    return out


def baseline_runs(sets: TrainingSets, tests: dict[str, Sequence[CellImage]], phase1: mt.Settings,
                  phase2: mt.Settings, maskrcnn_steps: int, seed: int, diameter: float | None = 40.0,
                  cellpose_diameter: float = mt.CELLPOSE_DIAMETER, maskrcnn_lr: float = 0.01
                  ) -> tuple[pd.DataFrame, dict[str, Callable[[CellImage], np.ndarray]]]:
    """Table 2 per data seed, every method trained on dataset1's and the external family's labelled images:

    * **MMCS**: phase 1, then phase 2 with ``phase2.w`` on the unlabelled images; inference at ``diameter``;
    * **Cellpose-style**: the same CPnet and input trained Cellpose's way: every image rescaled to
      ``cellpose_diameter`` (not the self-adaptive rho), labelled images only, as many updates as both
      MMCS phases, inference at Cellpose's default diameter (no resize);
    * **Mask R-CNN**: :mod:`cellrepro.nets.maskrcnn` on the same crops' size and batch, from scratch,
      ``maskrcnn_steps`` updates, images at their own scale.

    Every method scored per image of each named test set with the same F1 at IoU 0.5. Returns the rows
    (``seed, arm, set, image, modality, f1, precision, recall``) and each arm's predictor
    (image -> labels) for galleries."""
    from ...metrics.scores import instance_scores
    from ...nets import maskrcnn

    labelled = labelled_set(sets, "+dataset2")
    net1 = mt.train_phase1(labelled, phase1, seed)
    mmcs = mt.train_phase2(net1, labelled, sets.unlabelled, phase2, seed + 1)
    cellpose = mt.train_phase1(labelled, dataclasses.replace(phase1, steps=phase1.steps + phase2.steps,
                                                             diameter=cellpose_diameter), seed)
    to_tensor = lambda im: mt.mmcs_input(im, phase1.nucleus)  # noqa: E731
    rcnn = maskrcnn.train_maskrcnn(labelled, to_tensor, steps=maskrcnn_steps, batch=phase1.batch, crop=phase1.crop,
                                   seed=seed, lr=maskrcnn_lr, device=phase1.device)
    predictors = {"MMCS": lambda im: mt.predict(mmcs, im, diameter),
                  "Cellpose-style": lambda im: mt.predict(cellpose, im, cellpose_diameter),
                  "Mask R-CNN": lambda im: maskrcnn.predict_maskrcnn(rcnn, to_tensor(im))}
    rows = [{"seed": seed, "arm": arm, "set": name, "image": im.name, "modality": im.modality,
             **instance_scores(im.labels, predict(im))}
            for arm, predict in predictors.items() for name, images in tests.items() for im in images]
    return pd.DataFrame(rows), predictors


def table2(means: pd.DataFrame) -> dict[tuple[str, str], float]:
    """Table 2 cells (``<method>``, ``F1 (Cellpose test set)``) from per-seed means (of one test set)."""
    m = means.groupby("arm")["f1"].mean()
    return {(row, "F1 (Cellpose test set)"): float(m[arm]) for arm, row in TABLE2_ROWS.items() if arm in m.index}


def weight_runs(sets: TrainingSets, test: Sequence[CellImage], phase1: mt.Settings, phase2: mt.Settings, seed: int,
                weights: Sequence[float], datasets: Sequence[str] = tuple(DATASETS), diameter: float | None = 40.0
                ) -> pd.DataFrame:
    """Table 5 per data seed: per dataset row, one phase-1 net, then phase 2 from it at every ``w`` of
    ``weights`` (the rest of ``phase2`` fixed), scored at ``diameter``. Rows: ``seed, dataset, w, image,
    modality, f1, precision, recall``."""
    if not weights:
        raise ValueError("weights is empty: give the w grid to sweep")
    rows = []
    for ds in datasets:
        labelled = labelled_set(sets, ds)
        net1 = mt.train_phase1(labelled, phase1, seed)
        diameters = mt.unlabelled_diameters(net1, sets.unlabelled, phase2.nucleus)  # shared by the grid's runs
        for w in weights:
            net = mt.train_phase2(net1, labelled, sets.unlabelled, dataclasses.replace(phase2, w=float(w)), seed + 1,
                                  diameters=diameters)
            rows.append(_rows(net, test, diameter, seed=seed, dataset=ds, w=float(w)))
    return pd.concat(rows, ignore_index=True)


TABLE5_COLUMNS = {"dataset1": "dataset1 F1 (fixed lr 0.1)", "+dataset2": "+dataset2 F1 (lr decay)"}
"""Table 5's column per dataset row (the paper's own labels; see register inconsistency #17)."""


def table5(means: pd.DataFrame) -> dict[tuple[str, str], float]:
    """Table 5 cells (row ``w=<w>``, column per :data:`TABLE5_COLUMNS`) from per-seed means."""
    m = means.groupby(["dataset", "w"])["f1"].mean()
    return {(f"w={w:g}", TABLE5_COLUMNS[ds]): float(v) for (ds, w), v in m.items()}


def argmax_shift(means: pd.DataFrame, small: str = "dataset1", large: str = "+dataset2", n_boot: int = 2000,
                 seed: int = 0) -> float:
    """Fraction of bootstrap resamples of the seeds in which the best ``w`` of the ``large`` labelled
    set is below that of the ``small`` one (mmcs-C7's "the optimum falls as labelled data grows").

    ``means``: per-seed mean F1 with columns ``seed, dataset, w, f1``. Each resample draws seeds with
    replacement (the same draw for both rows, as a seed's runs share its data) and takes the argmax
    of the mean curve; ties go to the smaller ``w``."""
    wide = {ds: means[means["dataset"] == ds].pivot_table(index="seed", columns="w", values="f1")
            for ds in (small, large)}
    seeds = wide[small].index.intersection(wide[large].index).to_numpy()
    if seeds.size == 0:
        raise ValueError(f"no seed has both {small!r} and {large!r} rows")
    rng = np.random.default_rng(seed)
    hits = 0
    for _ in range(n_boot):
        draw = rng.choice(seeds, size=seeds.size, replace=True)
        best = {ds: float(w.loc[draw].mean().idxmax()) for ds, w in wide.items()}
        hits += best[large] < best[small]
    return hits / n_boot


def gap_to_best(means: pd.DataFrame, dataset: str, w: float) -> dict[str, float]:
    """How far ``w`` is from the best ``w`` of ``dataset``'s mean curve: ``best_w``, ``gap`` (mean F1 of
    the best minus that of ``w``, per seed then averaged) and ``se`` (standard error of that per-seed
    difference). mmcs-C7's "w* = 0.4 holds if 0.4 is within 1 SE of the best": ``gap <= se``."""
    wide = means[means["dataset"] == dataset].pivot_table(index="seed", columns="w", values="f1")
    if w not in wide.columns:
        raise ValueError(f"w = {w} was not run for {dataset!r}; ran {list(wide.columns)}")
    best = float(wide.mean().idxmax())
    d = (wide[best] - wide[w]).to_numpy()
    se = float(d.std(ddof=1) / np.sqrt(d.size)) if d.size > 1 else float("nan")
    return {"best_w": best, "gap": float(d.mean()), "se": se}


VAL_SEED = 20_000
"""Data seed of the validation images that pick checkpoints (Tables 6 and 7); never tested on."""


def validation_set(n_val: int, size: int) -> list[CellImage]:
    """Synthetic dataset1 validation images (:data:`VAL_SEED`), disjoint from training and test images."""
    return list(data.load("mmcs", n_labeled=n_val, n_unlabeled=0, size=size, seed=VAL_SEED, style="dataset1")[0])


def epochs_to_updates(epochs: float, updates_per_1000: int) -> int:
    """The paper's epochs in this run's optimiser updates (``updates_per_1000`` stand for 1000 epochs)."""
    if updates_per_1000 < 1:
        raise ValueError(f"updates_per_1000 must be >= 1, got {updates_per_1000}")
    return int(round(epochs * updates_per_1000 / 1000))


def schedule(base: mt.Settings, epochs: float, decay_from: float | None, updates_per_1000: int, w: float,
             halve_every_epochs: float = 100) -> mt.Settings:
    """``base`` with the paper's schedule in epochs (Tables 6, 7 and 10) mapped to updates: ``epochs`` of
    phase 2, halving every ``halve_every_epochs`` from ``decay_from`` (None: a fixed rate)."""
    return dataclasses.replace(
        base, steps=epochs_to_updates(epochs, updates_per_1000), w=float(w),
        decay_start=None if decay_from is None else epochs_to_updates(decay_from, updates_per_1000),
        halve_every=max(1, epochs_to_updates(halve_every_epochs, updates_per_1000)))


def schedule_run(net1, labelled: Sequence[CellImage], unlabelled: Sequence[CellImage], settings: mt.Settings,
                 seed: int, val: Sequence[CellImage], test: Sequence[CellImage], eval_every: int,
                 diameter: float | None = 40.0, unlabelled_diameters: Sequence[float] | None = None, **keys
                 ) -> pd.DataFrame:
    """Phase 2 from ``net1`` with ``settings`` (its steps and schedule), scored on ``val`` (may be empty)
    and ``test`` every ``eval_every`` updates and after the last. Rows: ``keys``, ``seed``, ``step``,
    ``val_f1`` (NaN without ``val``), ``test_f1`` (mean F1 over the images) and ``lr`` (the rate the next
    update uses). ``unlabelled_diameters``: :func:`.train.unlabelled_diameters` of ``net1``, to share."""
    sets = {"val": val, "test": test} if val else {"test": test}
    net = mt.train_phase2(net1, labelled, unlabelled, settings, seed + 1, eval_images=sets, eval_every=eval_every,
                          eval_diameter=diameter, diameters=unlabelled_diameters)
    h = net.train_history.dropna(subset=["test_f1"])
    lr_col = next(c for c in h.columns if c.startswith("lr/"))
    out = pd.DataFrame({"seed": seed, "step": h["step"].to_numpy(),
                        "val_f1": h["val_f1"].to_numpy() if val else np.nan,
                        "test_f1": h["test_f1"].to_numpy(), "lr": h[lr_col].to_numpy()})
    for k, v in keys.items():
        out.insert(0, k, v)
    return out


def best_checkpoint(curves: pd.DataFrame, by: Sequence[str]) -> pd.DataFrame:
    """Per ``by`` group (e.g. seed and arm): the checkpoint with the highest ``val_f1`` (the earliest on
    ties) and its ``test_f1``: each arm judged at its own best checkpoint, chosen without the test images."""
    idx = curves.sort_values("step").groupby(list(by))["val_f1"].idxmax()
    return curves.loc[idx].reset_index(drop=True)


ARCH_ARMS = {
    "MMCS (CPnet, flows)": ("cpnet", "flows"),
    "U-Net, flows": ("unet", "flows"),
    "SwinUNETR, flows": ("swinunetr", "flows"),
    "U-Net, semantic + watershed": ("unet", "semantic"),
    "SwinUNETR, semantic + watershed": ("swinunetr", "semantic"),
}
"""Table 8's arms: ``(arch, head)`` of :mod:`.architectures`; the first is MMCS's own network."""

TABLE8_ROWS = {"MMCS (CPnet, flows)": "MMCS", "U-Net, semantic + watershed": "U-Net",
               "SwinUNETR, semantic + watershed": "SwinUNETR"}
"""The arm set beside each of the paper's Table 8 rows (its baselines' setup is not described; the
semantic arms are our guess at it, the flow arms are shown beside them)."""


def architecture_runs(labelled: Sequence[CellImage], test: Sequence[CellImage], settings: mt.Settings, seed: int,
                      unet_features: Sequence[int], arms: Sequence[str] = tuple(ARCH_ARMS),
                      diameter: float | None = 40.0) -> pd.DataFrame:
    """Table 8 per data seed: every arm of :data:`ARCH_ARMS` trained as phase 1 on ``labelled`` with
    ``settings`` (same updates, batch, crops, schedule and diameter), the U-Nets at ``unet_features``,
    scored at ``diameter``. Rows: ``seed, arm, image, modality, f1, precision, recall``."""
    rows = []
    for arm in arms:
        if arm not in ARCH_ARMS:
            raise ValueError(f"unknown arm {arm!r}; Table 8's arms are {list(ARCH_ARMS)}")
        arch, head = ARCH_ARMS[arm]
        s = dataclasses.replace(settings, arch=arch, head=head,
                                features=tuple(unet_features) if arch == "unet" else settings.features)
        rows.append(_rows(mt.train_phase1(labelled, s, seed), test, diameter, seed=seed, arm=arm))
    return pd.concat(rows, ignore_index=True)


def table8(means: pd.DataFrame) -> dict[tuple[str, str], float]:
    """Table 8 cells (``MMCS``, ``U-Net``, ``SwinUNETR``; ``F1``) from per-seed means, per :data:`TABLE8_ROWS`."""
    m = means.groupby("arm")["f1"].mean()
    return {(row, "F1"): float(m[arm]) for arm, row in TABLE8_ROWS.items() if arm in m.index}


def unimodal(curve: Sequence[float], tolerance: float = 0.0) -> bool:
    """True if ``curve`` rises (weakly, up to ``tolerance``) to its maximum and falls after it."""
    c = np.asarray(curve, float)
    k = int(np.argmax(c))
    return bool(np.all(np.diff(c[:k + 1]) >= -tolerance) and np.all(np.diff(c[k:]) <= tolerance))


__all__ = ["ARCH_ARMS", "BASELINE_ARMS", "TABLE2_ROWS", "TABLE8_ROWS", "architecture_runs", "baseline_runs",
           "categories", "external_test_set", "stain", "table2", "table8", "DATASETS", "NUCLEUS_ARMS", "PHASES", "TABLE5_COLUMNS", "TEST_SEED", "TrainingSets", "VAL_SEED", "argmax_shift",
           "best_checkpoint", "diameter_sweep", "epochs_to_updates", "gap_to_best", "labelled_set", "nucleus_runs",
           "paired", "phase_runs", "pretrain_set", "schedule", "schedule_run", "seed_means", "table1", "table3", "table4", "table5",
           "test_set", "training_sets", "unimodal", "validation_set", "weight_runs"]
