"""The multimodal chapter's data: per-seed training images per modality, a fixed test set.

The challenge gave 1000 labelled patches and > 1500 unlabelled images, about 1:3 where a
modality has unlabelled images (Wang et al., Sec. 3; the paper does not report its own split
beyond "20 % validation"). Here, for each modality separately:

* the **training images** (``n_labelled`` labelled, ``n_unlabelled`` unlabelled, default
  ratio 1:3) are drawn anew for each seed, so seeds share no images and are independent units
  for the intervals;
* the **test images** come from their own seed stream (:data:`TEST_SEED`), identical for every
  seed and never trained on; the fluorescence test images also exist in the shifted style "B"
  (same cells, other rendering; :mod:`cellrepro.data.synthetic.multimodal`) for the
  domain-shift test of Table 4.

Images are drawn one modality at a time (``mix={modality: 1}``) so that each modality gets
exactly the count asked for; the seed of a draw is ``1000 * (modality index + 1) + seed``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ... import data
from ...data.types import MODALITIES, CellImage

TEST_SEED = 10_000
"""Seed of the synthetic held-out test images (training images use the run's seeds)."""


@dataclass
class ModalityData:
    """One modality's images for one seed."""

    modality: str
    labelled: list[CellImage]
    unlabelled: list[CellImage] = field(default_factory=list)


def _seed(modality: str, seed: int) -> int:
    return 1000 * (MODALITIES.index(modality) + 1) + seed


def _check(modalities) -> list[str]:
    modalities = list(modalities)
    unknown = [m for m in modalities if m not in MODALITIES]
    if unknown or not modalities:
        raise ValueError(f"modalities must be a non-empty list of {MODALITIES}, got {modalities}")
    return modalities


def training(seed: int, modalities=MODALITIES, n_labelled: int = 8, n_unlabelled: int = 24,
             size: int = 192) -> dict[str, ModalityData]:
    """Each modality's labelled and unlabelled training images for ``seed`` (cached on disk)."""
    if n_labelled < 1 or n_unlabelled < 0:
        raise ValueError(f"need n_labelled >= 1 and n_unlabelled >= 0, got {n_labelled}, {n_unlabelled}")
    out = {}
    for m in _check(modalities):
        lab, unl = data.load("multimodal", n_labeled=n_labelled, n_unlabeled=n_unlabelled, size=size,
                             seed=_seed(m, seed), mix={m: 1.0})
        out[m] = ModalityData(m, list(lab), list(unl))
    return out


def test(modalities=MODALITIES, n_test: int = 20, size: int = 192, fluorescence_style: str = "A"
         ) -> dict[str, list[CellImage]]:
    """The held-out test images of each modality, the same for every seed."""
    if n_test < 1:
        raise ValueError(f"n_test must be >= 1, got {n_test}")
    out = {}
    for m in _check(modalities):
        params = {"fluorescence_style": fluorescence_style} if fluorescence_style != "A" else {}
        lab, _ = data.load("multimodal", n_labeled=n_test, n_unlabeled=0, size=size,
                           seed=_seed(m, TEST_SEED), mix={m: 1.0}, **params)
        out[m] = list(lab)
    return out
