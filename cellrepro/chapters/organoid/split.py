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
    """Crops of one seed's training images, kept per image, and the shared test set.

    ``global_crops`` and ``local_crops`` / ``local_masks`` hold one tensor of crops per
    pre-training image, so a data proportion is a number of *images* (:meth:`global_pool`,
    :meth:`local_pool`): 10 % and 60 % of the pool differ in the organoids, backgrounds and
    illumination they show, not only in how many overlapping crops of the same images they hold.
    Proportions are nested (the 10 % images are among the 60 % ones), so two arms of a seed differ
    only in the images added.
    """

    global_crops: list[torch.Tensor]
    local_crops: list[torch.Tensor]
    local_masks: list[torch.Tensor]
    tune_images: torch.Tensor
    tune_masks: torch.Tensor
    test: TestSet
    seed: int = 0

    def global_pool(self, fraction: float) -> tuple[torch.Tensor, int]:
        """Crops of the first ``fraction`` of the global images (in a seeded order) and how many images."""
        keep = images_for(len(self.global_crops), fraction, self.seed)
        return torch.cat([self.global_crops[i] for i in keep]), len(keep)

    def local_pool(self, fraction: float) -> tuple[torch.Tensor, torch.Tensor, int]:
        """Crops and masks of the first ``fraction`` of the local images, and how many images."""
        keep = images_for(len(self.local_crops), fraction, self.seed + 1)
        return (torch.cat([self.local_crops[i] for i in keep]), torch.cat([self.local_masks[i] for i in keep]),
                len(keep))

    def sizes(self) -> dict[str, int]:
        return {"global pool: images": len(self.global_crops),
                "global pool: crops": sum(len(c) for c in self.global_crops),
                "local pool: images": len(self.local_crops),
                "local pool: crops (labelled)": sum(len(c) for c in self.local_crops),
                "fine-tuning crops (labelled)": len(self.tune_images), "test crops": len(self.test),
                "test images": len(self.test.names)}


def images_for(n: int, fraction: float, seed: int) -> list[int]:
    """The first ``round(fraction * n)`` (at least 1) of a seeded order of ``n`` images: nested, so
    a larger fraction keeps every image of a smaller one.

    >>> images_for(20, 0.1, 0), set(images_for(20, 0.1, 0)) <= set(images_for(20, 0.6, 0))
    ([4, 19], True)
    """
    if not 0 < fraction <= 1:
        raise ValueError(f"a data proportion must be in (0, 1], got {fraction}")
    k = min(n, max(1, int(round(fraction * n))))
    return sorted(np.random.default_rng(seed).permutation(n)[:k].tolist()) if k < n else list(range(n))


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


def prepare(train_images: list, test_images: list, crop: int, seed: int = 0, n_global: int = 20,
            n_local: int = 10, n_labelled: int | None = None, overlap: float = 0.5) -> OrganoidSplit:
    """Crops for one seed, split *by image*: ``n_global`` images for the global (unlabelled) stage,
    ``n_local`` for the local (labelled) stage, the rest for fine-tuning, plus the test set.

    Args:
        n_global, n_local: pre-training images of each stage (the thesis halves its ~35,000
            pre-training crops between them); data proportions choose among these images.
        n_labelled: keep this many fine-tuning crops (chosen at random; None: all), the
            label-scarce setting where pre-training can matter. The same crops for every arm of
            the seed.
    """
    n = len(train_images)
    if n < n_global + n_local + 1:
        raise ValueError(f"{n} training images; the split needs n_global ({n_global}) + n_local ({n_local}) "
                         "+ at least 1 fine-tuning image")
    order = np.random.default_rng(seed).permutation(n)
    parts = np.split(order, [n_global, n_global + n_local])

    def per_image(idx):
        crops = [organoid_crops([train_images[i]], crop=crop, overlap=overlap) for i in idx]
        return [(_t(c.images), _t(c.masks)) for c in crops if len(c.images)]

    glob, loc = per_image(parts[0]), per_image(parts[1])
    tune = organoid_crops([train_images[i] for i in parts[2]], crop=crop, overlap=overlap)
    gen = torch.Generator().manual_seed(seed)
    keep = torch.randperm(len(tune.images), generator=gen)[:n_labelled] if n_labelled else torch.arange(len(tune.images))
    tune_img, tune_mask = _t(tune.images), _t(tune.masks)
    return OrganoidSplit([g for g, _ in glob], [x for x, _ in loc], [m for _, m in loc], tune_img[keep],
                         tune_mask[keep], test_crops(test_images, crop), seed)
