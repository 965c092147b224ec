"""Augmentation sequences of the organoid thesis's contrastive stages (Sec. 3.4.1-3.4.2), with kornia.

Global stage: a translation *or* a zoom first, then brightness, Gaussian blur and Gaussian
*or* salt-and-pepper noise in random order. Local stage: the same photometric steps without
the geometric one (pixels must keep their labels). Randomness comes from torch's generator,
so :func:`cellrepro.train.seed_everything` makes the sequences reproducible.
"""

from __future__ import annotations

import torch


def _photometric() -> list:
    import kornia.augmentation as K

    noise = K.RandomGaussianNoise(mean=0.0, std=0.05, p=1.0) if torch.rand(()) < 0.5 else \
        K.RandomSaltAndPepperNoise(amount=(0.01, 0.03), salt_vs_pepper=0.5, p=1.0)
    return [K.RandomBrightness(brightness=(0.8, 1.2), p=1.0),
            K.RandomGaussianBlur(kernel_size=(5, 5), sigma=(0.1, 1.5), p=1.0), noise]


def _in_random_order(x: torch.Tensor, steps: list) -> torch.Tensor:
    for i in torch.randperm(len(steps)).tolist():
        x = steps[i](x)
    return x.clamp(0.0, 1.0)


def global_augment(x: torch.Tensor) -> torch.Tensor:
    """One random sequence for a (B, 1, H, W) batch in [0, 1] (Sec. 3.4.1)."""
    import kornia.augmentation as K

    first = K.RandomAffine(degrees=0, translate=(0.15, 0.15), p=1.0, padding_mode="reflection") \
        if torch.rand(()) < 0.5 else K.RandomAffine(degrees=0, scale=(1.0, 1.4), p=1.0, padding_mode="reflection")
    return _in_random_order(first(x), _photometric())


def local_augment(x: torch.Tensor) -> torch.Tensor:
    """Photometric steps only, in random order (Sec. 3.4.2)."""
    return _in_random_order(x, _photometric())
