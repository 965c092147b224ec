"""Augmentation sequences of the organoid thesis's contrastive stages (Sec. 3.4.1-3.4.2), with kornia.

Global stage: a translation *or* a zoom first, then brightness, Gaussian blur and Gaussian
*or* salt-and-pepper noise in random order. Local stage: the same photometric steps without
the geometric one (pixels must keep their labels). Randomness comes from torch's generator,
so :func:`cellrepro.engine.train.seed_everything` makes the sequences reproducible.

The kornia modules are built once per process (:func:`_modules`) and only chosen per call;
building them costs more than applying them to a small batch.
"""

from __future__ import annotations

import functools

import torch


@functools.lru_cache(maxsize=None)
def _modules() -> dict:
    import kornia.augmentation as K

    return {
        "translate": K.RandomAffine(degrees=0, translate=(0.15, 0.15), p=1.0, padding_mode="reflection"),
        "zoom": K.RandomAffine(degrees=0, scale=(1.0, 1.4), p=1.0, padding_mode="reflection"),
        "brightness": K.RandomBrightness(brightness=(0.8, 1.2), p=1.0),
        "blur": K.RandomGaussianBlur(kernel_size=(5, 5), sigma=(0.1, 1.5), p=1.0),
        "gaussian_noise": K.RandomGaussianNoise(mean=0.0, std=0.05, p=1.0),
        "salt_pepper": K.RandomSaltAndPepperNoise(amount=(0.01, 0.03), salt_vs_pepper=0.5, p=1.0),
    }


def _photometric() -> list:
    m = _modules()
    noise = m["gaussian_noise"] if torch.rand(()) < 0.5 else m["salt_pepper"]
    return [m["brightness"], m["blur"], noise]


def _in_random_order(x: torch.Tensor, steps: list) -> torch.Tensor:
    for i in torch.randperm(len(steps)).tolist():
        x = steps[i](x)
    return x.clamp(0.0, 1.0)


def global_augment(x: torch.Tensor) -> torch.Tensor:
    """One random sequence for a (B, 1, H, W) batch in [0, 1] (Sec. 3.4.1)."""
    m = _modules()
    first = m["translate"] if torch.rand(()) < 0.5 else m["zoom"]
    return _in_random_order(first(x), _photometric())


def local_augment(x: torch.Tensor) -> torch.Tensor:
    """Photometric steps only, in random order (Sec. 3.4.2)."""
    return _in_random_order(x, _photometric())
