"""Torch ``Dataset`` wrappers for training, with MONAI dictionary transforms.

Every family's structures become dictionaries of channel-first float tensors, which is what
MONAI's ``*d`` transforms and networks expect::

    from cellrepro.data.datasets import ArrayDataset, flips_and_rotations
    ds = ArrayDataset({"image": crops.images[:, None], "label": crops.masks[:, None]},
                      transform=flips_and_rotations(["image", "label"]))
    batch = next(iter(torch.utils.data.DataLoader(ds, batch_size=8)))   # {"image": (8, 1, H, W), ...}
"""

from __future__ import annotations

from typing import Any, Callable, Mapping, Sequence

import numpy as np
import torch

from .types import CellImage


class ArrayDataset(torch.utils.data.Dataset):
    """Items ``{key: arrays[key][i]}`` as float32 tensors, then an optional dictionary transform.

    Args:
        arrays: equally long sequences (or arrays) per key, each item channel-first (C, H, W).
        transform: a callable on the item dictionary, e.g. a MONAI ``Compose`` of ``*d``
            transforms (the spatial ones must name every spatial key so image and label move
            together).
    """

    def __init__(self, arrays: Mapping[str, Sequence[np.ndarray] | np.ndarray], transform: Callable | None = None):
        lengths = {k: len(v) for k, v in arrays.items()}
        if len(set(lengths.values())) != 1:
            raise ValueError(f"every key needs the same number of items, got {lengths}")
        self.arrays, self.transform = dict(arrays), transform
        self.length = next(iter(lengths.values()))

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, index: int) -> dict[str, Any]:
        item = {k: torch.as_tensor(np.ascontiguousarray(v[index]), dtype=torch.float32) for k, v in self.arrays.items()}
        return self.transform(item) if self.transform is not None else item


def flips_and_rotations(keys: Sequence[str], prob: float = 0.5):
    """Random flips on both axes and 90-degree rotations (MONAI), applied to all ``keys`` alike."""
    from monai.transforms import Compose, RandFlipd, RandRotate90d

    return Compose([RandFlipd(keys, prob=prob, spatial_axis=0), RandFlipd(keys, prob=prob, spatial_axis=1),
                    RandRotate90d(keys, prob=prob, max_k=3)])


def cell_arrays(items: Sequence[CellImage], nucleus: bool = False) -> dict[str, list[np.ndarray]]:
    """CellImages as channel-first arrays: ``image`` (3 or 2 channels in [0, 1]) and ``label``.

    With ``nucleus=True`` the image is the MMCS two-channel input: the green (cytoplasm)
    channel and the nucleus channel (zeros where the modality has none).
    """
    images, labels = [], []
    for it in items:
        rgb = it.image.astype(np.float32) / 255.0
        images.append(np.stack([rgb[..., 1], it.nucleus]) if nucleus else np.moveaxis(rgb, -1, 0))
        labels.append((it.labels if it.labels is not None else np.zeros(it.image.shape[:2], np.int32))[None])
    return {"image": images, "label": labels}
