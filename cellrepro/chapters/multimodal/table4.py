"""Table 4 of Wang et al.: the routed pipeline on held-out test images, per data seed.

For each data seed (:func:`seed_run`), every model of the paper's pipeline (Sec. 2.1-2.5) is trained on
that seed's labelled images (:mod:`.split`), the routers are fitted on its training images (labelled and
unlabelled, :func:`.protocol.fit_routers`), and the fixed held-out test images are routed and segmented
by :class:`.pipeline.Pipeline`, with the general-model fallback of Sec. 2.3. Each image is scored as the
challenge scores it (:func:`cellrepro.metrics.scores.instance_scores`, mode ``"cellseg"``, F1 at IoU 0.5).

The models (:data:`RECIPES`; trained ``settings.steps`` steps on ``settings.crop`` crops, the VGG U-Nets
``unet_steps``, see :func:`train_models`):

* the branches: a Cellpose-style net for phase contrast; for DIC the phase-contrast net fine-tuned on the
  DIC images (Sec. 2.3: the paper fine-tunes its LiveCell-pretrained Cellpose for DIC; our phase-contrast
  net stands in for that start, so this is also the fine-tuned arm of the C12 analogue); the general
  phase-contrast + DIC Cellpose (Sec. 2.3); brightfield split by the generator's truth
  (:func:`.protocol.large_truth`) on the *training* images into a Cellpose for the large/overlapping and a
  VGG U-Net for the small/dispersed group (Sec. 2.4, not the abstract's swap: inconsistency #12); a
  supervised CDNet for fluorescence (Sec. 2.5 adds cross pseudo supervision, judged in Table 3's section;
  here the supervised net keeps the seed's cost down). The paper starts every Cellpose from LiveCell
  weights and trains the U-Net and CDNet from scratch (its Table 2); here all start from scratch except
  DIC's.
* controls outside the pipeline: each of Cellpose and VGG U-Net trained on each brightfield group (the
  2 x 2 of multimodal-C7) and on all brightfield images (the single models of C7 and C9), and a Cellpose
  on the fluorescence images (C8).

Test images (:func:`test_sets`): ``n_test`` per modality, brightfield more so that both groups are
scored, and the fluorescence images again in the shifted style "B" (the same cells; C11). The paper's
final test set is where fluorescence collapsed, so Table 4 beside the paper uses style B for fluorescence
(:func:`table4_per_seed`); the paper does not say how many images of each modality it held, nor how
"all" weighs them: here "all" pools every scored image of the table's four columns.

:func:`seed_run` returns one row per (arm, test image); :mod:`.table4_claims` turns them into the
per-seed numbers of each claim and its verdict rule.
"""

from __future__ import annotations

import dataclasses
import logging
from typing import Sequence

import numpy as np
import pandas as pd
import torch

from ...data.types import MODALITIES, CellImage
from ...engine.hardware import torch_device
from ...metrics.scores import instance_scores
from . import evaluate, split, train
from .pipeline import GENERAL, Pipeline
from .protocol import fit_routers, large_truth
from .routing import LARGE, MIN_CELLS, SMALL, count_instances
from .split import ModalityData

log = logging.getLogger(__name__)

BF_LARGE, BF_SMALL = f"brightfield {LARGE}", f"brightfield {SMALL}"
FLUO_B = "fluorescence B"
"""Test-set key of the fluorescence images in the shifted style (the same cells as ``"fluorescence"``)."""
COLUMNS = {"brightfield": "brightfield", "dic": "DIC", "fluorescence": "fluorescence",
           "phase contrast": "phase contrast"}
"""Data modality -> Table 4's column name."""

# model name -> (kind, training set, model it starts from); training sets are named in training_sets()
RECIPES = {
    "phase contrast": ("cellpose", "phase contrast", None),
    "dic": ("cellpose", "dic", "phase contrast"),
    GENERAL: ("cellpose", "phase contrast + dic", None),
    BF_LARGE: ("cellpose", BF_LARGE, None),
    BF_SMALL: ("vgg_unet", BF_SMALL, None),
    "fluorescence": ("cdnet", "fluorescence", None),
    f"vgg_unet: {BF_LARGE}": ("vgg_unet", BF_LARGE, None),
    f"cellpose: {BF_SMALL}": ("cellpose", BF_SMALL, None),
    "cellpose: brightfield": ("cellpose", "brightfield", None),
    "vgg_unet: brightfield": ("vgg_unet", "brightfield", None),
    "cellpose: fluorescence": ("cellpose", "fluorescence", None),
}
"""Every model one seed trains; the first six are the pipeline's branches (:data:`BRANCHES`)."""
BRANCHES = ("phase contrast", "dic", GENERAL, BF_LARGE, BF_SMALL, "fluorescence")
TRAINERS = {"cellpose": train.train_cellpose, "vgg_unet": train.train_vgg_unet, "cdnet": train.train_cdnet}

# arms of seed_run's rows
ROUTED = "pipeline, routed"
TRUE_ROUTE = "pipeline, true modality"
TRUE_NO_FALLBACK = "true modality, without fallback"
MISROUTED = "misrouted, with fallback"
MISROUTED_NO_FALLBACK = "misrouted, without fallback"
MISROUTED_GENERAL = "misrouted, general model"
ZERO_SHOT = "phase-contrast model (zero-shot)"
SWAP = {"phase contrast": "dic", "dic": "phase contrast"}
"""The injected routing errors of multimodal-C6: each phase-contrast image to DIC and vice versa."""


def seed_training(seed: int, n_labelled: int = 8, n_labelled_brightfield: int = 16, n_unlabelled: int = 24,
                  size: int = 192) -> dict[str, ModalityData]:
    """:func:`.split.training` of ``seed``, with ``n_labelled_brightfield`` labelled brightfield images
    (both groups need some) and ``n_labelled`` of each other modality."""
    others = [m for m in MODALITIES if m != "brightfield"]
    out = split.training(seed, others, n_labelled, n_unlabelled, size)
    out.update(split.training(seed, ["brightfield"], n_labelled_brightfield, n_unlabelled, size))
    return {m: out[m] for m in MODALITIES}


def test_sets(n_test: int = 12, n_test_brightfield: int = 24, size: int = 192) -> dict[str, list[CellImage]]:
    """The held-out test images: each modality, and the fluorescence ones in style "B" (:data:`FLUO_B`)."""
    others = [m for m in MODALITIES if m != "brightfield"]
    out = split.test(["brightfield"], n_test_brightfield, size)
    out.update(split.test(others, n_test, size))
    out[FLUO_B] = split.test(["fluorescence"], n_test, size, fluorescence_style="B")["fluorescence"]
    return out


def brightfield_groups(images: Sequence[CellImage], size: int) -> dict[str, list[CellImage]]:
    """Brightfield images by the style they were drawn from (:func:`.protocol.large_truth`)."""
    return {g: [im for im in images if large_truth(im, size) == g] for g in (LARGE, SMALL)}


def training_sets(data: dict[str, ModalityData], size: int) -> dict[str, list[CellImage]]:
    """The labelled images each :data:`RECIPES` entry trains on.

    Raises:
        ValueError: a brightfield group has no labelled image (raise ``n_labelled_brightfield``).
    """
    groups = brightfield_groups(data["brightfield"].labelled, size)
    empty = [g for g, ims in groups.items() if not ims]
    if empty:
        raise ValueError(f"no labelled brightfield image of group {empty[0]!r} among "
                         f"{len(data['brightfield'].labelled)}; draw more labelled brightfield images")
    return {"phase contrast": data["phase contrast"].labelled, "dic": data["dic"].labelled,
            "phase contrast + dic": data["phase contrast"].labelled + data["dic"].labelled,
            BF_LARGE: groups[LARGE], BF_SMALL: groups[SMALL], "brightfield": data["brightfield"].labelled,
            "fluorescence": data["fluorescence"].labelled}


def train_models(data: dict[str, ModalityData], settings: train.Settings, seed: int, size: int,
                 names: Sequence[str] | None = None, unet_steps: int | None = None
                 ) -> dict[str, tuple[str, torch.nn.Module]]:
    """name -> ``(kind, model)`` for :data:`RECIPES` (or ``names`` of it, with the models they start from).

    ``unet_steps``: steps of the VGG U-Nets instead of ``settings.steps`` (None: the same). Our choice: at
    the book's budget the small VGG U-Net's Dice + CE loss still falls steeply after 120 steps and it
    segments nothing on some seeds, where 360 steps reach F1 0.78-0.86 on the small group; its steps cost
    about a third of a Cellpose step. The paper, too, trains its U-Net far longer than Cellpose (about
    2 h against 10 min, its Table 2).
    """
    sets = training_sets(data, size)
    wanted = list(RECIPES) if names is None else list(names)
    unknown = [n for n in wanted if n not in RECIPES]
    if unknown:
        raise ValueError(f"unknown model {unknown[0]!r}; models are {list(RECIPES)}")
    models: dict[str, tuple[str, torch.nn.Module]] = {}
    unet = settings if unet_steps is None else dataclasses.replace(settings, steps=int(unet_steps))

    def make(name: str) -> None:
        kind, images, start = RECIPES[name]
        if start is not None and start not in models:
            make(start)
        init = None if start is None else models[start][1]
        log.info("seed %d: training %s (%s) on %d images", seed, name, kind, len(sets[images]))
        models[name] = (kind, TRAINERS[kind](sets[images], unet if kind == "vgg_unet" else settings, seed, init=init))

    for name in wanted:
        if name not in models:
            make(name)
    return models


def build_pipeline(data: dict[str, ModalityData], models: dict[str, tuple[str, torch.nn.Module]],
                   settings: train.Settings, kmeans_seed: int = 0, n_init: int = 10, min_cells: int = MIN_CELLS,
                   device: str | torch.device | None = None) -> Pipeline:
    """Routers fitted on ``data`` (:func:`.protocol.fit_routers`) and the :data:`BRANCHES` of ``models``."""
    modality, splitter = fit_routers(data, kmeans_seed, n_init)
    return Pipeline(modality, splitter, {b: models[b] for b in BRANCHES if b in models}, settings, min_cells, device)


def without_fallback(pipe: Pipeline) -> Pipeline:
    """The same routers and branch models without the general model: the fallback never fires."""
    models = {b: m for b, m in pipe.models.items() if b != GENERAL}
    return Pipeline(pipe.modality_router, pipe.brightfield_split, models, pipe.settings, pipe.min_cells, pipe.device)


def true_branch(image: CellImage, pipe: Pipeline) -> str:
    """The branch of ``image``'s true modality (brightfield: as the pipeline's splitter routes it)."""
    if image.modality == "brightfield" and pipe.brightfield_split is not None:
        return f"brightfield {pipe.brightfield_split.predict([image])[0]}"
    return image.modality


def _row(image: CellImage, labels: np.ndarray, **extra) -> dict:
    scores = instance_scores(image.labels, labels, 0.5, "cellseg")
    return {"image": image.name, "modality": image.modality, "n_found": count_instances(labels),
            **{k: scores[k] for k in ("precision", "recall", "f1")}, **extra}


def _pipeline_arms(pipe: Pipeline, tests: dict[str, list[CellImage]]) -> list[dict]:
    """Rows of the pipeline arms (routed, true modality, misrouted; with and without the fallback)."""
    bare = without_fallback(pipe)
    done: dict[tuple, tuple[np.ndarray, bool]] = {}  # (test set, image index, branch) -> (labels, used)
    rows = []

    def run(key, image, branch):
        if (key, branch) not in done:
            labels, _, used = pipe.predict(image, branch)
            done[(key, branch)] = labels, used
        return done[(key, branch)]

    def add(arm, key, image, branch, labels, used):
        rows.append(_row(image, labels, arm=arm, test_set=key[0], branch=branch, used_general=used))

    for name, images in tests.items():
        for i, image in enumerate(images):
            key = (name, i)
            routed = pipe.route(image)
            add(ROUTED, key, image, routed, *run(key, image, routed))
            branch = true_branch(image, pipe)
            labels, used = run(key, image, branch)
            add(TRUE_ROUTE, key, image, branch, labels, used)
            if name in SWAP:  # the C6 control and the fine-tuned arm of the C12 analogue
                add(TRUE_NO_FALLBACK, key, image, branch, bare.predict(image, branch)[0] if used else labels, False)
                wrong = SWAP[name]
                labels, used = run(key, image, wrong)
                add(MISROUTED, key, image, wrong, labels, used)
                add(MISROUTED_NO_FALLBACK, key, image, wrong, bare.predict(image, wrong)[0] if used else labels, False)
                add(MISROUTED_GENERAL, key, image, GENERAL, *run(key, image, GENERAL))
    return rows


def _control_arms(models: dict[str, tuple[str, torch.nn.Module]], tests: dict[str, list[CellImage]],
                  device) -> list[pd.DataFrame]:
    """Controls scored directly (:func:`.evaluate.scores`, CellSeg mode): the brightfield models on every
    brightfield test image, the Cellpose fluorescence model on both styles, the phase-contrast model on DIC
    (the CDNet's scores are the pipeline's on fluorescence: that branch has no fallback)."""
    out = []

    def scored(arm, name, key):
        kind, model = models[name]
        frame = evaluate.scores(model, kind, tests[key], mode="cellseg", device=device)
        out.append(frame.assign(arm=arm, test_set=key, branch=name))

    for name in (BF_LARGE, BF_SMALL, f"vgg_unet: {BF_LARGE}", f"cellpose: {BF_SMALL}", "cellpose: brightfield",
                 "vgg_unet: brightfield"):
        if name in models:
            scored(name, name, "brightfield")
    if "cellpose: fluorescence" in models:
        for key in ("fluorescence", FLUO_B):
            scored("cellpose: fluorescence", "cellpose: fluorescence", key)
    scored(ZERO_SHOT, "phase contrast", "dic")
    return out


def seed_run(seed: int, data: dict[str, ModalityData], tests: dict[str, list[CellImage]],
             settings: train.Settings, size: int, n_init: int = 10, min_cells: int = MIN_CELLS,
             unet_steps: int | None = None) -> tuple[pd.DataFrame, Pipeline]:
    """Train every model of :data:`RECIPES` on ``data`` (:func:`train_models`, ``unet_steps`` passed on), build
    the pipeline, score every arm on ``tests``.

    Returns one row per (arm, test image) -- ``seed``, ``arm``, ``test_set``, ``image``, ``modality``,
    ``group`` (brightfield images: the true group), ``branch`` (the route, or the model), ``used_general``,
    ``n_found``, ``precision``, ``recall``, ``f1`` -- and the pipeline (its models on the CPU unless
    ``settings.device`` names another device).
    """
    device = torch_device(settings.device)
    models = train_models(data, settings, seed, size, unet_steps=unet_steps)
    pipe = build_pipeline(data, models, settings, seed, n_init, min_cells, device)
    rows = pd.concat([pd.DataFrame(_pipeline_arms(pipe, tests)), *_control_arms(models, tests, device)],
                     ignore_index=True)
    group = {(k, im.name): large_truth(im, size) for k in ("brightfield",) for im in tests.get(k, [])}
    rows["group"] = [group.get((t, n), "") for t, n in zip(rows["test_set"], rows["image"])]
    rows["used_general"] = rows["used_general"].fillna(False).astype(bool)
    rows = rows.assign(seed=seed)
    keep = ["seed", "arm", "test_set", "image", "modality", "group", "branch", "used_general", "n_found",
            "precision", "recall", "f1"]
    return rows[[c for c in keep if c in rows.columns]], pipe


def table4_per_seed(rows: pd.DataFrame, fluorescence: str = FLUO_B) -> pd.DataFrame:
    """Table 4's cells per seed from the routed pipeline: median and mean F1 over test images of each
    column and of all of them; the fluorescence column from test set ``fluorescence`` (:data:`FLUO_B` as
    the paper's final test set, or ``"fluorescence"`` for style A). Index: seed; columns: (statistic, column)."""
    sets = {m: m for m in COLUMNS}
    sets["fluorescence"] = fluorescence
    routed = rows[rows["arm"] == ROUTED]
    parts = [routed[routed["test_set"] == key].assign(column=COLUMNS[m]) for m, key in sets.items()]
    table = pd.concat(parts, ignore_index=True)
    table = pd.concat([table, table.assign(column="all")], ignore_index=True)
    stats = table.groupby(["seed", "column"])["f1"].agg(["median", "mean"])
    wide = stats.rename(columns={"median": "median F1", "mean": "mean F1"}).unstack("column")
    order = [c for c in (*COLUMNS.values(), "all")]
    return wide.reindex(columns=pd.MultiIndex.from_product([["median F1", "mean F1"], order]))


def paper_cells(per_seed: pd.DataFrame) -> dict[tuple[str, str], float]:
    """Mean over seeds of :func:`table4_per_seed`, keyed as :func:`cellrepro.publish.report.compare` takes them."""
    return {(stat, column): float(v) for (stat, column), v in per_seed.mean().items()}


__all__ = ["BF_LARGE", "BF_SMALL", "BRANCHES", "COLUMNS", "FLUO_B", "MISROUTED", "MISROUTED_GENERAL",
           "MISROUTED_NO_FALLBACK", "RECIPES", "ROUTED", "SWAP", "TRUE_NO_FALLBACK", "TRUE_ROUTE", "ZERO_SHOT",
           "brightfield_groups", "build_pipeline", "paper_cells", "seed_run", "seed_training", "table4_per_seed",
           "test_sets", "train_models", "training_sets", "true_branch", "without_fallback"]
