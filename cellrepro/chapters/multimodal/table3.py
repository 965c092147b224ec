"""Table 3 of Wang et al.: each modality with and without its unlabelled images.

Three arms of the paper (Sec. 2.3-2.5, 4.1) and one of ours, each on one data seed's images
(:mod:`.split`) and scored on the fixed held-out test images of its modality:

* **fluorescence** (multimodal-C1): a supervised CDNet against two CDNets trained by cross pseudo
  supervision (:func:`.train.train_cdnet_cps`), the same ``steps`` and labelled crops per step; net A
  is scored, as in the paper's inference with one network.
* **phase contrast** (multimodal-C2): a Cellpose-style net trained ``steps`` on the labelled images
  (our stand-in for the paper's LiveCell-pretrained Cellpose, whose weights cannot be had here) is the
  start of the paper's cycle (:func:`.train.self_train_cellpose`: pseudo-label the unlabelled images,
  train on them, fine-tune on the labelled ones; ``2 * steps`` per cycle). Its control continues the
  same start on the labelled images for as many steps as the cycles add (``equal steps``), so that the
  difference is the unlabelled images and not the longer training. The verdict compares the cycle
  with the equal-steps control; the shorter start is shown too.
* **brightfield** (multimodal-C3): the paper describes no semi-supervised method for brightfield and
  says it is not applied, yet Table 3 reports a gain (register inconsistency #11). *Our choice*: the
  phase-contrast cycle on the Cellpose branch of the large-cell sub-group, trained and tested on the
  large-cell images (by the generator's truth, :func:`.protocol.large_truth`; routing is judged in its
  own section), with the same equal-steps control.

:func:`arm_runs` returns one row per (arm, test image) with the five metrics of Table 3 as
:func:`.evaluate.scores` computes them; :func:`seed_means` averages them per image within a seed
(the paper's "m" prefix: means over images), and :func:`gains` gives the paired per-seed differences
the verdicts use.
"""

from __future__ import annotations

import dataclasses
from typing import Sequence

import pandas as pd

from ...data.types import CellImage
from ...engine.hardware import torch_device
from . import evaluate, train
from .protocol import large_truth
from .routing import LARGE
from .split import ModalityData

METRICS = {"mDice": "dice", "mPrecision": "precision", "mRecall": "recall", "mF1": "f1", "mInstDice": "inst_dice"}
"""Table 3's rows and the :func:`.evaluate.scores` columns they are means of."""

ARMS = {"fluorescence": "fluorescence", "phase contrast": "phase contrast", "brightfield": "brightfield"}
"""Table 3's columns (modality as the paper names it) and the data modality each arm trains on."""

SUPERVISED, SEMI, START = "labeled only", "+ unlabeled", "labeled only, shorter"
"""Arm names: the paper's two columns, and the shorter supervised start of the Cellpose cycle."""


def large_only(images: Sequence[CellImage], size: int) -> list[CellImage]:
    """The brightfield images drawn in the large-cell style (the Cellpose branch's sub-group)."""
    return [im for im in images if large_truth(im, size) == LARGE]


def _scored(model, kind: str, test: Sequence[CellImage], arm: str, device) -> pd.DataFrame:
    return evaluate.scores(model, kind, test, device=device).assign(arm=arm)


def cdnet_arms(data: ModalityData, test: Sequence[CellImage], settings: train.Settings, seed: int) -> pd.DataFrame:
    """Supervised CDNet vs cross pseudo supervision (net A), per test image."""
    device = torch_device(settings.device)
    sup = train.train_cdnet(data.labelled, settings, seed)
    cps = train.train_cdnet_cps(data.labelled, data.unlabelled, settings, seed)
    return pd.concat([_scored(sup, "cdnet", test, SUPERVISED, device), _scored(cps, "cdnet", test, SEMI, device)],
                     ignore_index=True)


def cellpose_arms(data: ModalityData, test: Sequence[CellImage], settings: train.Settings, seed: int
                  ) -> tuple[pd.DataFrame, list]:
    """The shorter start, the equal-steps control and the pseudo-label cycle, per test image; also
    the cycle summaries (:class:`~cellrepro.semi.selftrain.Cycle`)."""
    device = torch_device(settings.device)
    start = train.train_cellpose(data.labelled, settings, seed)
    extra = dataclasses.replace(settings, steps=2 * settings.steps * settings.cycles)
    control = train.train_cellpose(data.labelled, extra, seed + 104_729, init=start)
    cycle = train.self_train_cellpose(start, data.labelled, data.unlabelled, settings, seed)
    rows = pd.concat([_scored(start, "cellpose", test, START, device),
                      _scored(control, "cellpose", test, SUPERVISED, device),
                      _scored(cycle, "cellpose", test, SEMI, device)], ignore_index=True)
    return rows, cycle.cycle_summaries


def arm_runs(column: str, data: ModalityData, test: Sequence[CellImage], settings: train.Settings,
             seed: int) -> tuple[pd.DataFrame, list]:
    """One Table 3 column (a key of :data:`ARMS`) for one seed: per-image scores of each arm, with
    ``column`` and ``seed`` added, and the cycle summaries (empty for fluorescence)."""
    if column not in ARMS:
        raise ValueError(f"column must be one of {list(ARMS)}, got {column!r}")
    if not data.unlabelled:
        raise ValueError(f"{column}: no unlabelled images; Table 3's second column needs some (n_unlabelled >= 1)")
    if column == "fluorescence":
        rows, cycles = cdnet_arms(data, test, settings, seed), []
    else:
        rows, cycles = cellpose_arms(data, test, settings, seed)
    return rows.assign(column=column, seed=seed), cycles


def seed_means(rows: pd.DataFrame) -> pd.DataFrame:
    """Per (column, arm, seed): the mean over test images of each Table 3 metric (named as in the paper)."""
    cols = list(METRICS.values())
    out = rows.groupby(["column", "arm", "seed"])[cols].mean().rename(columns={v: k for k, v in METRICS.items()})
    return out.reset_index()


def gains(means: pd.DataFrame, metric: str = "mF1", against: str = SUPERVISED) -> pd.DataFrame:
    """Per-seed ``SEMI - against`` of ``metric``: one column per Table 3 column, one row per seed."""
    wide = means.pivot_table(index="seed", columns=["column", "arm"], values=metric)
    cols = [c for c in ARMS if (c, SEMI) in wide.columns and (c, against) in wide.columns]
    return pd.DataFrame({c: wide[(c, SEMI)] - wide[(c, against)] for c in cols})


def c4_contrast(per_seed_gains: pd.DataFrame) -> pd.Series:
    """multimodal-C4's per-seed contrast: the fluorescence gain minus the larger of the other gains."""
    missing = {"fluorescence", "phase contrast", "brightfield"} - set(per_seed_gains.columns)
    if missing:
        raise ValueError(f"C4 needs the gains of all three columns; missing {sorted(missing)}")
    others = per_seed_gains[["phase contrast", "brightfield"]].max(axis=1)
    return per_seed_gains["fluorescence"] - others


def paper_table(means: pd.DataFrame) -> dict[tuple[str, str], float]:
    """This run's Table 3 cells keyed as :func:`cellrepro.publish.report.compare` takes them (mean over seeds);
    only the cells the paper's table has (it reports mDice for fluorescence alone)."""
    avg = means[means["arm"].isin([SUPERVISED, SEMI])].groupby(["column", "arm"])[list(METRICS)].mean()
    out = {}
    for (column, arm), row in avg.iterrows():
        for metric in METRICS:
            if metric == "mDice" and column != "fluorescence":
                continue
            out[(metric, f"{column}, {arm}")] = float(row[metric])
    return out


def seed_sd(means: pd.DataFrame, metric: str = "mF1") -> pd.Series:
    """Seed-to-seed standard deviation of ``metric`` per (column, arm)."""
    return means.groupby(["column", "arm"])[metric].std(ddof=1)


__all__ = ["ARMS", "METRICS", "SEMI", "START", "SUPERVISED", "arm_runs", "c4_contrast", "cdnet_arms",
           "cellpose_arms", "gains", "large_only", "paper_table", "seed_means", "seed_sd"]
