"""Table 2 of the MMCS paper on the decision protocol: MMCS against a Cellpose-style baseline on the
stand-in for the Cellpose test set (mmcs-C3), one data seed at a time (:func:`seed_run`), every
seed side by side (:func:`run_seeds`).

Per data seed, every method trained on dataset1's and the external family's labelled images:

* :data:`MMCS`: phase 1, then phase 2 with ``w`` on dataset1's unlabelled images (temporal
  ensembling), the self-adaptive diameter;
* :data:`CELLPOSE`: the same CPnet, input and optimiser trained as Cellpose trains: every image
  rescaled to a 30 px diameter, labelled images only, as many updates as both MMCS phases together
  under the same rate schedule (warm-up, then halving from the update where MMCS's phase 2 starts
  halving: Cellpose, too, anneals at the end);
* :data:`MASK_RCNN` (the first ``maskrcnn_seeds`` seeds only, a reference shown beside): torchvision's
  Mask R-CNN from scratch on the same crops, at the images' own scale.

The paper compares on the Cellpose test set, whose images are of the kind Cellpose trains on; its
stand-in here is the external family's held-out images (elongated cells, the Cellpose and Omnipose
sets' stand-in). Held-out dataset1 images are scored beside. Both CPnets are scored at their own
scale (:data:`~.train.TRUE_DIAMETER`: each test image resized by ``rho / d_i``, the cells' size read
from its labels: for the Cellpose-style net, a perfect size model). What then differs between the
two is temporal ensembling on dataset1's unlabelled images and the working scale (MMCS's pooled
``rho`` against Cellpose's 30 px); the nucleus channel is fed to both.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any, Sequence

import pandas as pd

from ...metrics.scores import instance_scores
from . import train as mt
from .phases import pseudo_label_f1, timed_seeds, unlabelled_truth
from .protocol import external_test_set, labelled_set, test_set, training_sets

MMCS, CELLPOSE, MASK_RCNN = "MMCS", "Cellpose-style", "Mask R-CNN"
ARMS = (MMCS, CELLPOSE, MASK_RCNN)
"""Table 2's methods run here (StarDist is not)."""
SETS = ("external", "dataset1")
"""The test sets: the Cellpose test set's stand-in (the verdict's) and held-out dataset1 images."""


@dataclasses.dataclass(frozen=True)
class Design:
    """What one seed of Table 2 draws and runs (the notebook's parameters).

    Attributes:
        n_labelled, n_unlabelled, n_external: dataset1 labelled and unlabelled, external labelled images.
        n_test, n_test_external: held-out dataset1 and external test images (one set each for every seed).
        size: image side (px).
        maskrcnn_steps, maskrcnn_lr: Mask R-CNN's updates and SGD rate.
        maskrcnn_seeds: how many of the first seeds also train Mask R-CNN (0: none).
    """

    n_labelled: int = 12
    n_unlabelled: int = 36
    n_external: int = 12
    n_test: int = 30
    n_test_external: int = 30
    size: int = 192
    maskrcnn_steps: int = 100
    maskrcnn_lr: float = 0.01
    maskrcnn_seeds: int = 2

    def __post_init__(self):
        for name in ("n_labelled", "n_unlabelled", "n_external", "n_test", "n_test_external"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"Design.{name} must be >= 1, got {getattr(self, name)}")
        if self.maskrcnn_seeds < 0 or self.maskrcnn_steps < 1:
            raise ValueError(f"Design: maskrcnn_seeds must be >= 0 and maskrcnn_steps >= 1, got "
                             f"{self.maskrcnn_seeds}, {self.maskrcnn_steps}")


def seed_run(seed: int, design: Design, phase1: mt.Settings, phase2: mt.Settings, with_maskrcnn: bool,
             keep_masks: bool = False) -> dict[str, Any]:
    """One data seed of Table 2 (see the module docstring). ``phase2.w`` is MMCS's ``w``.

    Returns ``scores`` (rows ``seed, arm, set, image, modality, f1, precision, recall``),
    ``seed_facts`` (one row: ``rho`` of MMCS; ``pseudo_f1``, :func:`.phases.pseudo_label_f1` of
    MMCS's phase 2; ``refreshes``; ``phase1_external``, the mean F1 of MMCS's phase-1 net on the
    external test images, the bar the Cellpose-style baseline's training is checked against) and,
    with ``keep_masks``, ``masks``: ``{arm: {image name: labels}}`` for galleries."""
    from ...nets import maskrcnn

    phase1 = dataclasses.replace(phase1, streams=True)
    phase2 = dataclasses.replace(phase2, streams=True)
    sets = training_sets(seed, design.n_labelled, design.n_unlabelled, design.n_external, design.size)
    tests = {"external": external_test_set(design.n_test_external, design.size),
             "dataset1": test_set(design.n_test, design.size)}
    labelled = labelled_set(sets, "+dataset2")
    net1 = mt.train_phase1(labelled, phase1, seed)
    mmcs = mt.train_phase2(net1, labelled, sets.unlabelled, phase2, seed + 1)
    start = None if phase2.decay_start is None else phase1.steps + phase2.decay_start
    cellpose = mt.train_phase1(labelled, dataclasses.replace(phase1, steps=phase1.steps + phase2.steps,
                                                             diameter=mt.CELLPOSE_DIAMETER, decay_start=start,
                                                             halve_every=phase2.halve_every), seed)
    predictors = {MMCS: lambda im: mt.predict(mmcs, im, mt.TRUE_DIAMETER),
                  CELLPOSE: lambda im: mt.predict(cellpose, im, mt.TRUE_DIAMETER)}
    if with_maskrcnn:
        to_tensor = functools.partial(mt.mmcs_input, nucleus=phase1.nucleus)
        rcnn = maskrcnn.train_maskrcnn(labelled, to_tensor, steps=design.maskrcnn_steps, batch=phase1.batch,
                                       crop=phase1.crop, seed=seed, lr=design.maskrcnn_lr, device=phase1.device)
        predictors[MASK_RCNN] = lambda im: maskrcnn.predict_maskrcnn(rcnn, to_tensor(im))
    rows, masks = [], {arm: {} for arm in predictors}
    for arm, predict in predictors.items():
        for name, images in tests.items():
            for im in images:
                pred = predict(im)
                if keep_masks:
                    masks[arm][im.name] = pred
                rows.append({"seed": seed, "arm": arm, "set": name, "image": im.name, "modality": im.modality,
                             **instance_scores(im.labels, pred)})
    truth = unlabelled_truth(seed, design.n_unlabelled, design.size)
    facts = {"seed": seed, "rho": float(mmcs.diam_mean), "pseudo_f1": pseudo_label_f1(mmcs, truth, phase2.crop),
             "refreshes": int(mmcs.ensemble_updates),
             "phase1_external": float(mt.scores(net1, tests["external"], mt.TRUE_DIAMETER)["f1"].mean())}
    out = {"scores": pd.DataFrame(rows), "seed_facts": pd.DataFrame([facts])}
    if keep_masks:
        out["masks"] = masks
    return out


def _job(item: tuple[int, bool, bool], **kwargs) -> dict[str, Any]:
    seed, with_maskrcnn, keep = item
    return seed_run(seed, with_maskrcnn=with_maskrcnn, keep_masks=keep, **kwargs)


def run_seeds(seeds: Sequence[int], design: Design, phase1: mt.Settings, phase2: mt.Settings,
              workers: int | str = "auto") -> tuple[dict[str, Any], float]:
    """:func:`seed_run` for every seed side by side (:func:`.phases.timed_seeds`); Mask R-CNN trains in
    the first ``design.maskrcnn_seeds`` seeds, and the last seed keeps its masks. Returns ``scores``
    and ``seed_facts`` over all seeds, the last seed's ``masks``, and the wall-clock seconds per seed."""
    job = functools.partial(_job, design=design, phase1=dataclasses.replace(phase1, progress=False),
                            phase2=dataclasses.replace(phase2, progress=False))
    items = [(s, i < design.maskrcnn_seeds, i == len(seeds) - 1) for i, s in enumerate(seeds)]
    results, seconds = timed_seeds(job, items, workers, phase1.device)
    return {"scores": pd.concat([r["scores"] for r in results], ignore_index=True),
            "seed_facts": pd.concat([r["seed_facts"] for r in results], ignore_index=True),
            "masks": results[-1]["masks"]}, seconds


__all__ = ["ARMS", "CELLPOSE", "Design", "MASK_RCNN", "MMCS", "SETS", "run_seeds", "seed_run"]
