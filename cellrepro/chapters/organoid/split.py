"""The organoid chapter's data: training images per seed, a fixed held-out test set, crops.

The thesis cut ~80k overlapping, rotated crops from its images and split the *crops* at
random into pre-training (~35k), fine-tuning (~35k) and test (~10k) sets (Sec. 4.1), so
near-duplicates of training crops reach the test set. Here:

* the **test set** is its own images (:func:`load_images`: a separate seed stream for
  synthetic data, a fixed subset of the files for real data), identical for every seed, never
  cropped for training; its crops are non-overlapping tiles chosen by the **true** mask, so
  crops over organoids the annotation omits are scored;
* the **training images** are drawn anew for each seed (synthetic), so models of different
  seeds share no data and seeds are independent units for the intervals;
* training images are split *by image* into a pre-training pool (halved between the global
  and the local stage, 33,680 = 2 x 16,840 in the thesis) and fine-tuning images, whose
  crops can be subsampled to a label-scarce budget (``n_labelled``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from scipy import ndimage as ndi

from ... import data
from ...data.synthetic.organoid import is_large
from ...data.tiling import organoid_crops

TEST_SEED = 10_000
"""Seed of the synthetic held-out test images (training images use the run's seeds)."""


def _t(a: np.ndarray) -> torch.Tensor:
    return torch.as_tensor(np.ascontiguousarray(a), dtype=torch.float32)[:, None]


@dataclass
class TestSet:
    """Test crops (N, 1, c, c): the image, the true mask, the annotation, the true mask of large
    organoids, and for each crop the index of its test image (``image``)."""

    images: torch.Tensor
    true: torch.Tensor
    annotation: torch.Tensor
    large: torch.Tensor
    image: np.ndarray
    names: list[str]
    origin: list[tuple[str, int, int, int]]

    def __len__(self) -> int:
        return len(self.images)


@dataclass
class OrganoidSplit:
    """Crops of one seed's training images, and the shared test set."""

    global_images: torch.Tensor
    local_images: torch.Tensor
    local_masks: torch.Tensor
    tune_images: torch.Tensor
    tune_masks: torch.Tensor
    test: TestSet

    def sizes(self) -> dict[str, int]:
        return {"global pool (unlabelled)": len(self.global_images), "local pool (labelled)": len(self.local_images),
                "fine-tuning (labelled)": len(self.tune_images), "test crops": len(self.test),
                "test images": len(self.test.names)}


def load_images(dataset: str, data_root: str | None, n_train: int, n_test: int, size: int,
                seed: int) -> tuple[list, list]:
    """(training images for ``seed``, the held-out test images).

    Synthetic data: ``n_train`` images generated with ``seed`` and ``n_test`` with
    :data:`TEST_SEED`. Real data (``data_root``): the test images are a fixed random subset of
    ``n_test`` files (at most a third), the rest are the training images for every seed.
    """
    if data_root is None:
        return (data.load(dataset, n=n_train, size=size, seed=seed),
                data.load(dataset, n=n_test, size=size, seed=TEST_SEED))
    images = data.load(dataset, data_root=data_root)
    if len(images) < 3:
        raise ValueError(f"{data_root}: {len(images)} images; the split needs at least 3")
    order = np.random.default_rng(TEST_SEED).permutation(len(images))
    k = max(1, min(n_test, len(images) // 3))
    return [images[i] for i in order[k:]], [images[i] for i in order[:k]]


def test_crops(images: list, crop: int, min_fraction: float = 0.03) -> TestSet:
    """Non-overlapping ``crop`` tiles of the test images with at least ``min_fraction`` organoid
    pixels in the true mask (the annotation for real data, which has no other)."""
    crops = organoid_crops(images, crop=crop, overlap=0.0, min_fraction=min_fraction, rotations=(), by="true_mask")
    names = [o.name for o in images]
    # "large" is a property of the whole organoid, so it is decided on the whole image
    whole = {o.name: is_large(o.labels if o.labels is not None else ndi.label(o.mask)[0], o.image.shape[1])
             for o in images}
    large = [whole[name][top:top + crop, left:left + crop] for name, top, left, _ in crops.origin]
    true = crops.true_masks if crops.true_masks is not None else crops.masks
    return TestSet(_t(crops.images), _t(true), _t(crops.masks), _t(np.array(large, bool)),
                   np.array([names.index(n) for n, *_ in crops.origin]), names, crops.origin)


def prepare(train_images: list, test_images: list, crop: int, seed: int = 0, pool_share: float = 0.5,
            n_labelled: int | None = None, overlap: float = 0.5) -> OrganoidSplit:
    """Crops for one seed: pool (global/local halves) and fine-tuning by image, plus the test set.

    Args:
        pool_share: share of the training images in the pre-training pool (the rest are
            fine-tuning images; at least one each). The thesis halves its training crops
            (~35,000 for pre-training, ~35,000 for fine-tuning).
        n_labelled: keep this many fine-tuning crops (chosen at random; None: all), the
            label-scarce setting where pre-training can matter.
    """
    n = len(train_images)
    n_pool = min(max(1, int(round(pool_share * n))), n - 1)
    if n < 2:
        raise ValueError(f"{n} training images are too few for a pre-training and a fine-tuning split (need 2)")
    order = np.random.default_rng(seed).permutation(n)
    pool = organoid_crops([train_images[i] for i in order[:n_pool]], crop=crop, overlap=overlap)
    tune = organoid_crops([train_images[i] for i in order[n_pool:]], crop=crop, overlap=overlap)
    gen = torch.Generator().manual_seed(seed)
    half = torch.randperm(len(pool), generator=gen)
    g_idx, l_idx = half[: len(half) // 2], half[len(half) // 2:]
    keep = torch.randperm(len(tune), generator=gen)[:n_labelled] if n_labelled else torch.arange(len(tune))
    pool_img, pool_mask, tune_img, tune_mask = _t(pool.images), _t(pool.masks), _t(tune.images), _t(tune.masks)
    return OrganoidSplit(pool_img[g_idx], pool_img[l_idx], pool_mask[l_idx], tune_img[keep], tune_mask[keep],
                         test_crops(test_images, crop))


def subset(n: int, fraction: float, seed: int) -> torch.Tensor:
    """A seeded random ``fraction`` of ``range(n)`` (at least 2 items)."""
    k = min(n, max(2, int(round(fraction * n))))
    return torch.randperm(n, generator=torch.Generator().manual_seed(seed))[:k]
