"""Instances from the multimodal chapter's networks, and the per-image scores of Table 3.

:func:`predict` turns one image into an (H, W) label image for each model kind of :mod:`.train`:

* ``"cellpose"``: :func:`cellrepro.nets.cellpose.predict_instances` (flows / 5, followed; Cellpose's
  ``min_size`` 15 and cell-probability threshold 0);
* ``"vgg_unet"``: the 3-class softmax; seeds are the 8-connected components of the interior class
  (at least ``min_seed`` pixels), grown over the foreground (interior or boundary) by a marker
  watershed on ``-p(interior)``; foreground no seed reaches is an instance of its own (as
  :func:`cellrepro.instances.cdnet.cdnet_decode` does), holes filled, instances under ``min_size``
  pixels dropped. The paper names the loss of its U-Net (Eq. 1) but neither its classes nor its
  decoding; this is ours;
* ``"cdnet"``: :func:`cellrepro.instances.cdnet.decode_outputs` with its defaults.

Inference is on the whole image, zero-padded at the bottom and right to a multiple of 16 and cropped
back (the paper uses a sliding window of the training patch size, Sec. 3.2.1; our test images are
small enough to go whole). The input is :func:`cellrepro.data.crops.rgb_input` (``image / 255``), as in training (:func:`.train.to_input`).

:func:`scores` gives one row per image with :func:`cellrepro.metrics.scores.instance_scores`:
precision, recall, F1 at IoU 0.5, foreground Dice and instance Dice (the paper's mP, mR, mF1, mDice,
mInstDice are their means over images).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

from ...data.types import CellImage
from ...instances.cdnet import decode_outputs, three_class_decode
from ...metrics.scores import instance_scores
from ...nets.cellpose import predict_instances
from ...data.crops import KINDS, rgb_input

unet_decode = three_class_decode
"""The VGG U-Net's decoding: :func:`cellrepro.instances.cdnet.three_class_decode`."""


def _device(model: torch.nn.Module, device) -> torch.device:
    if device is not None:
        return torch.device(device)
    first = next(model.parameters(), None)
    return first.device if first is not None else torch.device("cpu")


def predict(model: torch.nn.Module, kind: str, image, device=None, **decode_kwargs) -> np.ndarray:
    """(H, W) int32 instance labels of one image (a :class:`CellImage` or (H, W, 3) uint8 array).

    Args:
        model: a net of ``kind`` (from :mod:`.train`); put in eval mode for the call, its mode restored.
        kind: ``"cellpose"``, ``"vgg_unet"`` or ``"cdnet"``.
        device: where to run the net (default: where its parameters are; the trainers leave them on the
            CPU); a VGG U-Net or CDNet is moved there and stays.
        decode_kwargs: passed to the decoding (``predict_instances``, :func:`unet_decode` or ``cdnet_decode``).
    """
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
    x = rgb_input(image)
    device = _device(model, device)
    if kind == "cellpose":
        return predict_instances(model, x, device=device, **decode_kwargs)
    h, w = x.shape[-2:]
    x = F.pad(x.to(device), (0, -w % 16, 0, -h % 16))[None]
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            out = model.to(device)(x)
    finally:
        model.train(was_training)
    if kind == "vgg_unet":
        return unet_decode(torch.softmax(out[0, :, :h, :w].float(), 0), **decode_kwargs)
    return decode_outputs({k: v[:, :, :h, :w] for k, v in out.items()}, **decode_kwargs)[0]


def scores(model: torch.nn.Module, kind: str, images: Sequence[CellImage], mode: str = "plain",
           threshold: float = 0.5, device=None, **decode_kwargs) -> pd.DataFrame:
    """One row per image: ``image``, ``modality`` and :func:`instance_scores` (precision, recall, f1,
    dice, inst_dice, counts) of :func:`predict` against the image's labels."""
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
    if not images:
        raise ValueError("images is empty: nothing to score")
    unlabelled = [im.name for im in images if im.labels is None]
    if unlabelled:
        raise ValueError(f"images must be labelled to be scored; {unlabelled[:3]} have no labels")
    rows = [{"image": im.name, "modality": im.modality,
             **instance_scores(im.labels, predict(model, kind, im, device, **decode_kwargs), threshold, mode)}
            for im in images]
    return pd.DataFrame(rows)


__all__ = ["predict", "scores", "unet_decode"]
