"""Tables 2 and 8 of the MMCS paper: MMCS against other methods and other networks.

:func:`baseline_runs` trains MMCS, a Cellpose-style CPnet and Mask R-CNN on the same labelled images
(Table 2) and :func:`categories` sorts test images into the paper's Fig. 2 categories (mmcs-C13);
:func:`architecture_runs` trains CPnet, MONAI's U-Net and SwinUNETR on flows or 3 classes (Table 8).
``table2`` and ``table8`` map per-seed means onto the paper's cells.
"""

from __future__ import annotations

import dataclasses
from typing import Callable, Sequence

import numpy as np
import pandas as pd

from ...data.types import CellImage
from . import train as mt
from .protocol import TrainingSets, _rows, labelled_set


BASELINE_ARMS = ("MMCS", "Cellpose-style", "Mask R-CNN")
"""Table 2's methods, all trained on the same labelled images (dataset1 + the external family)."""

TABLE2_ROWS = {"MMCS": "MMCS", "Cellpose-style": "Cellpose", "Mask R-CNN": "Mask R-CNN"}
"""This run's arm beside each row of the paper's Table 2 (its StarDist row is not run)."""


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


__all__ = ["ARCH_ARMS", "BASELINE_ARMS", "TABLE2_ROWS", "TABLE8_ROWS", "architecture_runs", "baseline_runs",
           "categories", "stain", "table2", "table8"]
