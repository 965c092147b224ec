"""The multimodal chapter's experiments, as functions the notebooks call.

Routing (Sec. 2.2 and 2.4): for each data seed, K-Means is fitted on that seed's training
images, labelled and unlabelled alike as in the paper, its clusters are named by the labelled
members' modalities (:mod:`.routing`), and the fixed held-out test images are routed. Runs with
different K-Means seeds on the same data share their images, so the independent unit of an
interval is the data seed (their accuracies are averaged within a data seed first).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd

from ...data.synthetic.multimodal import STYLES
from ...data.types import MODALITIES, CellImage
from . import routing
from .split import ModalityData


def large_truth(image: CellImage, size: int) -> str:
    """The brightfield sub-style an image was drawn from, told by its cell diameter: the two
    styles' diameter ranges (:data:`~cellrepro.data.synthetic.multimodal.STYLES`, at 256 px) do
    not overlap, so the midpoint between them separates them at any image size."""
    small_max, large_min = STYLES["brightfield-small"][0][1], STYLES["brightfield-large"][0][0]
    return routing.LARGE if image.diameter >= (small_max + large_min) / 2 * size / 256 else routing.SMALL


def fit_routers(train: dict[str, ModalityData], kmeans_seed: int = 0, n_init: int = 10, n_clusters: int = 4
                ) -> tuple[routing.KMeansRouter, routing.KMeansRouter | None]:
    """The modality router (K-Means on HSV statistics of every training image, labelled and unlabelled;
    clusters named by the labelled members' modalities) and the brightfield split (None without
    brightfield training images), both with ``random_state`` ``kmeans_seed``."""
    fit_images = [im for d in train.values() for im in d.labelled + d.unlabelled]
    names = [im.modality if im.labels is not None else None for im in fit_images]
    router = routing.KMeansRouter(n_clusters, "hsv", n_init, kmeans_seed).fit(fit_images, names)
    splitter = None
    if "brightfield" in train:
        bright = train["brightfield"].labelled + train["brightfield"].unlabelled
        splitter = routing.fit_brightfield_split(bright, n_init=n_init, seed=kmeans_seed)
    return router, splitter


def routing_run(train: dict[str, ModalityData], test: dict[str, list[CellImage]], kmeans_seed: int,
                n_init: int = 10, size: int = 192, n_clusters: int = 4) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Fit the modality router and the brightfield split on ``train``; route every test image.

    ``n_clusters`` is the paper's 4 (one per modality); other values are controls (clusters are
    still named by their labelled members' majority modality).

    Returns one row per test image for the modality routing (``truth``, ``routed``) and one per
    brightfield test image for the sub-split (``truth``, ``routed`` as large/small).
    """
    router, splitter = fit_routers(train, kmeans_seed, n_init, n_clusters)
    images = [im for m in test for im in test[m]]
    rows = pd.DataFrame({"image": [im.name for im in images], "truth": [im.modality for im in images],
                         "routed": router.predict(images)})
    split = pd.DataFrame(columns=["image", "truth", "routed"])
    if splitter is not None and "brightfield" in test:
        tb = test["brightfield"]
        split = pd.DataFrame({"image": [im.name for im in tb], "truth": [large_truth(im, size) for im in tb],
                              "routed": splitter.predict(tb)})
    return rows, split


def routing_runs(trains: dict[int, dict[str, ModalityData]], test: dict[str, list[CellImage]],
                 kmeans_seeds: Sequence[int], n_init: int = 10, size: int = 192, n_clusters: int = 4
                 ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """:func:`routing_run` for every data seed (keys of ``trains``) and K-Means seed, concatenated."""
    modal, split = [], []
    for seed, train in trains.items():
        for k in kmeans_seeds:
            r, s = routing_run(train, test, k, n_init, size, n_clusters)
            modal.append(r.assign(seed=seed, kmeans_seed=k))
            split.append(s.assign(seed=seed, kmeans_seed=k))
    return pd.concat(modal, ignore_index=True), pd.concat(split, ignore_index=True)


def accuracy_per_seed(rows: pd.DataFrame) -> pd.Series:
    """Routing accuracy per data seed (mean over its K-Means seeds)."""
    hit = (rows["truth"] == rows["routed"]).astype(float)
    return hit.groupby([rows["seed"], rows["kmeans_seed"]]).mean().groupby(level="seed").mean()


def c5_verdict(acc: dict, confusions: list[tuple[str, str, int]], threshold: float = 0.9) -> str:
    """multimodal-C5: *holds* if the accuracy interval lies at or above ``threshold`` and every run's
    largest confusion is phase contrast vs DIC; *fails* if the interval lies below ``threshold``
    or no run's largest confusion is between them; otherwise *inconclusive*."""
    pair = {"phase contrast", "dic"}
    pc_dic = [({t, r} == pair) and n > 0 for t, r, n in confusions]
    if acc["high"] < threshold or not any(pc_dic):
        return "fails"
    if acc["low"] >= threshold and all(pc_dic):
        return "holds"
    return "inconclusive"


def modality_order(names: Sequence[str]) -> list[str]:
    """Modalities first in the project's order, then any other route names sorted."""
    seen = set(names)
    return [m for m in MODALITIES if m in seen] + sorted(seen - set(MODALITIES))


def per_image_features(images: Sequence[CellImage]) -> np.ndarray:
    """The 6 HSV statistics the router clusters (Sec. 2.2), one row per image."""
    return routing.image_features(images, "hsv")
