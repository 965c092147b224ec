"""Tables 1 and 4 of the MMCS paper on the decision protocol: one data seed's runs
(:func:`seed_run`), every seed side by side (:func:`run_seeds`).

Per data seed, every net a CPnet with the nucleus channel and the self-adaptive diameter:

* :data:`PHASE1`: phase 1 on dataset1's labelled images;
* :data:`PHASE2` and :data:`CONTROL`: phase 2 from that net with the paper's ``w`` and with
  ``w = 0``, the control's labelled loss weighted by ``1 - w`` as Eq. 1 weights it (so that its
  labelled steps are as large), run with one seed and :attr:`~.train.Settings.streams`, so both cut
  the same labelled crops at every update: the difference is the unlabelled term (mmcs-C1; the
  unlabelled images' forward passes also move BatchNorm's running statistics, which the control's
  do not);
* :data:`ORACLE`: the control with the unlabelled images' true labels added to the labelled ones
  (synthetic data only): what those images could give at most, the phenomenon gate of mmcs-C1;
* :data:`PLUS_EXTERNAL`: phase 1 on dataset1's and the external family's labelled images (mmcs-C2);
* :data:`EXTERNAL_ONLY`: phase 1 on the external images alone, scored on dataset1: whether the
  external family teaches the task at all (mmcs-C2's transfer gate).

Every net is scored on the held-out dataset1 test images at its own scale
(:data:`~.train.TRUE_DIAMETER`: each test image resized by ``rho / d_i`` as every training image
was), so no net is scored on another net's scale. The phase-1 net is also scored at each inference
diameter of Table 4 on the validation images (which pick the best diameter) and on the test images
(mmcs-C6). :func:`family_probe` measures how different the external family looks (mmcs-C2's
"a different family" gate).
"""

from __future__ import annotations

import dataclasses
import functools
import time
from typing import Any, Sequence

import numpy as np
import pandas as pd
import torch

from ...data.types import CellImage
from . import train as mt
from .protocol import VAL_SEED, test_set, training_sets

PHASE1, PHASE2, CONTROL = "phase 1", "phase 2", "phase 2, w = 0"
ORACLE = "phase 2, w = 0, unlabelled images labelled"
# the control and the oracle weight the labelled loss by 1 - w, as Eq. 1 does (Settings.labelled_scale)
PLUS_EXTERNAL, EXTERNAL_ONLY = "phase 1, +dataset2", "phase 1, external family alone"
ARMS = (PHASE1, PHASE2, CONTROL, ORACLE, PLUS_EXTERNAL, EXTERNAL_ONLY)
"""Every arm of :func:`seed_run`, in the order it trains them."""


@dataclasses.dataclass(frozen=True)
class Design:
    """What one seed of Tables 1 and 4 draws and runs (the notebook's parameters).

    Attributes:
        n_labelled, n_unlabelled, n_external: dataset1 labelled and unlabelled, external labelled images.
        n_test, n_val: held-out dataset1 test images (one set for every seed) and validation images
            (:func:`validation_images`, a draw per seed).
        size: image side (px).
        diameters: Table 4's inference diameters (px), swept on the phase-1 net; empty: no sweep.
        arms: the arms to train (:data:`ARMS`; :data:`PHASE1` always trains, the others start
            from it or share its seed). :data:`ORACLE` needs the synthetic generator (the
            unlabelled images' labels); :data:`PLUS_EXTERNAL` and :data:`EXTERNAL_ONLY` need
            ``n_external`` images.
    """

    n_labelled: int = 12
    n_unlabelled: int = 36
    n_external: int = 12
    n_test: int = 30
    n_val: int = 20
    size: int = 192
    diameters: tuple[float, ...] = (30, 35, 40, 45, 50, 55, 60)
    arms: tuple[str, ...] = ARMS

    def __post_init__(self):
        for name in ("n_labelled", "n_test"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"Design.{name} must be >= 1, got {getattr(self, name)}")
        for name in ("n_unlabelled", "n_external", "n_val"):
            if int(getattr(self, name)) < 0:
                raise ValueError(f"Design.{name} must be >= 0, got {getattr(self, name)}")
        if self.diameters and min(self.diameters) <= 0:
            raise ValueError(f"Design.diameters must be positive px values, got {self.diameters}")
        unknown = [a for a in self.arms if a not in ARMS]
        if unknown:
            raise ValueError(f"Design.arms: unknown {unknown}; the arms are {list(ARMS)}")
        if {PHASE2, CONTROL, ORACLE} & set(self.arms) and self.n_unlabelled < 1:
            raise ValueError("Design.arms: phase 2, its control and the oracle need n_unlabelled >= 1")
        if {PLUS_EXTERNAL, EXTERNAL_ONLY} & set(self.arms) and self.n_external < 1:
            raise ValueError("Design.arms: the external arms need n_external >= 1")


def unlabelled_truth(seed: int, n_unlabelled: int, size: int) -> list[CellImage]:
    """dataset1's ``n_unlabelled`` unlabelled images of ``seed`` with their labels (the synthetic
    generator's; the same images :func:`~.protocol.training_sets` loads without them)."""
    from ...data.synthetic import mmcs as family

    return family.generate(0, n_unlabelled, size, seed, "dataset1", label_unlabeled=True)[1]


def unlabelled_share(net: Any, w: float) -> float:
    """Mean over phase-2 updates of the unlabelled term's share of Eq. 1's loss,
    ``w L_u / ((1 - w) L_l + w L_u)``; 0 for a net trained without unlabelled images."""
    h = getattr(net, "train_history", None)
    if h is None or "unlabelled" not in h:
        return 0.0
    lab, unl = np.asarray(h["labelled"], float), np.asarray(h["unlabelled"], float)
    total = (1 - w) * lab + w * unl
    return float(np.mean(np.where(total > 0, w * unl / np.where(total > 0, total, 1.0), 0.0)))


def image_features(image: CellImage) -> np.ndarray:
    """What :func:`family_probe` sees of an image, no labels: the cytoplasm channel's mean, SD and
    5/50/95 % quantiles, the share of pixels above its mean, its mean gradient magnitude and mean
    structure-tensor coherence (0 for round structures, towards 1 for elongated ones; Gaussian
    derivatives at 2 px, tensor smoothed at 4 px), and the nucleus channel's mean and SD."""
    from scipy import ndimage as ndi

    g = np.asarray(image.image, float)[..., 1] / 255.0
    n = np.asarray(image.nucleus, float) if image.nucleus is not None else np.zeros_like(g)
    gy, gx = ndi.gaussian_filter(g, 2, order=(1, 0)), ndi.gaussian_filter(g, 2, order=(0, 1))
    jxx, jyy, jxy = (ndi.gaussian_filter(a, 4) for a in (gx * gx, gy * gy, gx * gy))
    coherence = np.sqrt((jxx - jyy) ** 2 + 4 * jxy ** 2) / (jxx + jyy + 1e-12)
    return np.array([g.mean(), g.std(), *np.quantile(g, [0.05, 0.5, 0.95]), (g > g.mean()).mean(),
                     np.hypot(gx, gy).mean(), coherence.mean(), n.mean(), n.std()])


def family_probe(own: Sequence[CellImage], other: Sequence[CellImage], folds: int = 5) -> float:
    """Cross-validated accuracy of a logistic regression telling ``other``'s images from ``own``'s by
    :func:`image_features` (scikit-learn, standardised features, balanced classes): 0.5 is chance.
    Fewer than ``folds`` images in a family use as many folds as it has (at least 2 are needed)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold, cross_val_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    if min(len(own), len(other)) < 2:
        raise ValueError(f"family_probe needs at least 2 images per family, got {len(own)} and {len(other)}")
    folds = min(folds, len(own), len(other))
    x = np.stack([image_features(im) for im in [*own, *other]])
    y = np.r_[np.zeros(len(own)), np.ones(len(other))]
    model = make_pipeline(StandardScaler(), LogisticRegression(class_weight="balanced", max_iter=1000))
    cv = StratifiedKFold(folds, shuffle=True, random_state=0)
    return float(cross_val_score(model, x, y, cv=cv, scoring="balanced_accuracy").mean())


def validation_images(seed: int, design: Design) -> list[CellImage]:
    """``design.n_val`` dataset1 validation images of ``seed`` (data seed ``VAL_SEED + seed``): each seed
    chooses its diameter on its own draw, so that the choice varies as a replicate's would (one
    fixed set for every seed would make every seed choose alike)."""
    from ... import data

    return list(data.load("mmcs", n_labeled=design.n_val, n_unlabeled=0, size=design.size, seed=VAL_SEED + seed,
                          style="dataset1")[0])


def pseudo_label_f1(net, truth: Sequence[CellImage], crop: int) -> float:
    """Mean F1 (IoU 0.5) of a phase-2 net's final temporal-ensemble pseudo labels (flows and cell
    probability, followed as a net's output is) against the unlabelled images' true labels, at the
    scale they were trained at: whether the pseudo labels carry the cells."""
    from ...metrics.scores import instance_scores
    from ...nets.cellpose import outputs_to_masks

    if len(net.pseudo_labels) != len(truth):
        raise ValueError(f"the net has {len(net.pseudo_labels)} pseudo labels for {len(truth)} images")
    f1 = []
    for z, factor, image in zip(net.pseudo_labels, net.pseudo_factors, truth):
        p = z[2].clamp(1e-6, 1 - 1e-6)
        masks = outputs_to_masks(torch.cat((z[:2], torch.log(p / (1 - p))[None])))
        f1.append(instance_scores(mt.rescaled(image, factor, crop).labels, masks)["f1"])
    return float(np.mean(f1))


def _scored(net, images: Sequence[CellImage], at, **keys) -> pd.DataFrame:
    out = mt.scores(net, images, diameter=at)[["image", "f1", "precision", "recall"]]
    return out.assign(**keys)


def seed_run(seed: int, design: Design, phase1: mt.Settings, phase2: mt.Settings, data_root: str | None = None,
             external_root: str | None = None) -> dict[str, Any]:
    """One data seed of Tables 1 and 4 (see the module docstring). ``phase2.w`` is the paper's ``w``;
    both settings are run with ``streams=True``.

    Returns ``scores`` (rows ``seed, arm, image, f1, precision, recall``: test images at each net's
    own scale), ``sweep`` (rows ``seed, set, diameter, image, f1, ...``: the phase-1 net on the
    validation and test images at each of ``design.diameters``) and ``seed_facts``: one row with
    ``rho`` (the phase-1 net's self-adaptive diameter), ``rho/<arm>`` (every arm's), ``pseudo_f1``
    (:func:`pseudo_label_f1` of phase 2; synthetic data only), ``nominal`` (the generator's mean cell
    diameter of the same images; NaN for real data), ``share`` (:func:`unlabelled_share` of phase 2),
    ``refreshes`` (its temporal-ensemble refreshes) and ``probe`` (:func:`family_probe`, external
    against dataset1)."""
    phase1 = dataclasses.replace(phase1, streams=True)
    phase2 = dataclasses.replace(phase2, streams=True)
    sets = training_sets(seed, design.n_labelled, design.n_unlabelled, design.n_external, design.size,
                         data_root, external_root)
    test = test_set(design.n_test, design.size, data_root, seed)
    val = validation_images(seed, design) if data_root is None and design.n_val and design.diameters else []
    arms = set(design.arms)
    nets = {PHASE1: mt.train_phase1(sets.labelled, phase1, seed)}
    control = dataclasses.replace(phase2, w=0.0, labelled_scale=1.0 - phase2.w)
    if PHASE2 in arms:
        nets[PHASE2] = mt.train_phase2(nets[PHASE1], sets.labelled, sets.unlabelled, phase2, seed + 1)
    if CONTROL in arms:
        nets[CONTROL] = mt.train_phase2(nets[PHASE1], sets.labelled, sets.unlabelled, control, seed + 1)
    truth = unlabelled_truth(seed, design.n_unlabelled, design.size) if data_root is None and {PHASE2, ORACLE} & arms else None
    if ORACLE in arms:
        if truth is None:
            raise ValueError("the oracle arm needs the synthetic generator (the unlabelled images' labels); "
                             "drop it from Design.arms with data_root")
        nets[ORACLE] = mt.train_phase2(nets[PHASE1], [*sets.labelled, *truth], (), control, seed + 1)
    if PLUS_EXTERNAL in arms:
        nets[PLUS_EXTERNAL] = mt.train_phase1([*sets.labelled, *sets.external], phase1, seed)
    if EXTERNAL_ONLY in arms:
        nets[EXTERNAL_ONLY] = mt.train_phase1(sets.external, phase1, seed)
    scores = pd.concat([_scored(net, test, mt.TRUE_DIAMETER, seed=seed, arm=arm) for arm, net in nets.items()],
                       ignore_index=True)
    sweep = [_scored(nets[PHASE1], images, float(d), seed=seed, set=name, diameter=float(d))
             for name, images in (("validation", val), ("test", test)) if images for d in design.diameters]
    sweep = pd.concat(sweep, ignore_index=True) if sweep else pd.DataFrame()
    nominal = float(np.mean([im.diameter for im in sets.labelled])) if data_root is None else float("nan")
    facts = {"seed": seed, "rho": float(nets[PHASE1].diam_mean),
             **{f"rho/{arm}": float(net.diam_mean) for arm, net in nets.items()},
             "pseudo_f1": pseudo_label_f1(nets[PHASE2], truth, phase2.crop) if PHASE2 in nets and truth else float("nan"),
             "nominal": nominal, "share": unlabelled_share(nets[PHASE2], phase2.w) if PHASE2 in nets else float("nan"),
             "refreshes": int(nets[PHASE2].ensemble_updates) if PHASE2 in nets else 0,
             "probe": family_probe([*sets.labelled, *sets.unlabelled], sets.external)
             if min(len(sets.labelled), len(sets.external)) >= 2 else float("nan")}
    return {"scores": scores, "sweep": sweep, "seed_facts": pd.DataFrame([facts])}


def _job(seed: int, **kwargs) -> dict[str, Any]:
    return seed_run(seed, **kwargs)


def timed_seeds(job, items: Sequence[Any], workers: int | str, device: str) -> tuple[list[Any], float]:
    """``job`` (picklable) over ``items`` (one per seed) spread over the CPU's cores, one thread each
    (:func:`cellrepro.engine.parallel.map_units`), and the wall-clock seconds per item: what one
    more seed costs on this machine."""
    from ...engine.parallel import map_units

    if not items:
        raise ValueError("seeds is empty")
    start = time.perf_counter()
    results = map_units(job, list(items), workers, device)
    return results, (time.perf_counter() - start) / len(items)


def run_seeds(seeds: Sequence[int], design: Design, phase1: mt.Settings, phase2: mt.Settings,
              data_root: str | None = None, external_root: str | None = None, workers: int | str = "auto"
              ) -> tuple[dict[str, pd.DataFrame], float]:
    """:func:`seed_run` for every seed side by side (:func:`timed_seeds`). Returns the three tables
    over all seeds and the wall-clock seconds per seed."""
    job = functools.partial(_job, design=design, phase1=dataclasses.replace(phase1, progress=False),
                            phase2=dataclasses.replace(phase2, progress=False), data_root=data_root,
                            external_root=external_root)
    results, seconds = timed_seeds(job, seeds, workers, phase1.device)
    return {k: pd.concat([r[k] for r in results], ignore_index=True) for k in results[0]}, seconds


__all__ = ["ARMS", "CONTROL", "Design", "EXTERNAL_ONLY", "ORACLE", "PHASE1", "PHASE2", "PLUS_EXTERNAL", "family_probe",
           "image_features", "pseudo_label_f1", "run_seeds", "seed_run", "timed_seeds", "unlabelled_share", "unlabelled_truth",
           "validation_images"]
