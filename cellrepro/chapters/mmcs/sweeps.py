"""Tables 5-7 of the MMCS paper: sweeps of phase 2's weight and schedule.

:func:`weight_runs` sweeps ``w`` from one phase-1 net per label regime (Table 5; :func:`argmax_shift` and
:func:`gap_to_best` are mmcs-C7's two rules); :func:`schedule` maps the paper's schedules in epochs
onto updates and :func:`schedule_run` trains phase 2 under one, scored on validation and test images
at checkpoints (Tables 6 and 7; :func:`best_checkpoint` picks on validation).
"""

from __future__ import annotations

import dataclasses
from typing import Sequence

import numpy as np
import pandas as pd

from ...data.types import CellImage
from . import train as mt
from .protocol import DATASETS, TrainingSets, _rows, labelled_set


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


__all__ = ["TABLE5_COLUMNS", "argmax_shift", "best_checkpoint", "epochs_to_updates", "gap_to_best", "schedule",
           "schedule_run", "table5", "weight_runs"]
