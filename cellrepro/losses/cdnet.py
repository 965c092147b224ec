"""CDNet's training loss on its three heads, with the Dice term of the multimodal paper's Eq. 2.

He et al., CDNet (ICCV 2021): cross entropy on the 3-class mask and on the 9 direction classes,
mean squared error on the point map. The multimodal paper (Wang et al., NeurIPS 2022 CellSeg,
Sec. 2.5, Eq. 2 and Table 2) supervises each CDNet with "dice and cross-entropy loss" on the mask;
``dice_weight`` adds MONAI's ``DiceLoss`` (softmax, one-hot target, all three classes, mean over
images and classes) to the mask, and ``dice_weight=0`` gives CDNet's own loss. Every term is
returned on its own (times its weight), so a training loop can log them; their sum is the loss.
"""

from __future__ import annotations

import functools
from typing import Mapping

import torch
import torch.nn.functional as F


@functools.lru_cache(maxsize=None)
def _dice():
    from monai.losses import DiceLoss

    return DiceLoss(softmax=True, to_onehot_y=True)


def _classes(t: torch.Tensor, name: str, like: torch.Tensor) -> torch.Tensor:
    t = t[:, 0] if t.dim() == 4 and t.shape[1] == 1 else t
    if t.shape != like.shape[:1] + like.shape[2:]:
        raise ValueError(f"targets['{name}'] must be (B, H, W) class indices matching the output "
                         f"{tuple(like.shape)}, got {tuple(t.shape)}")
    return t.long()


def cdnet_loss(outputs: Mapping[str, torch.Tensor], targets: Mapping[str, torch.Tensor], *,
               mask_weight: float = 1.0, dice_weight: float = 1.0, direction_weight: float = 1.0,
               point_weight: float = 1.0) -> dict[str, torch.Tensor]:
    """Weighted terms ``mask_ce``, ``mask_dice``, ``direction_ce``, ``point_mse`` (zero weights are left out).

    Args:
        outputs: ``{"mask": (B, 3, H, W) logits, "direction": (B, 9, H, W) logits, "point": (B, 1, H, W)}``
            (:class:`cellrepro.nets.cdnet.CDNet`).
        targets: ``{"mask": (B, H, W) in {0, 1, 2}, "direction": (B, H, W) in 0..8, "point": (B, 1, H, W)
            or (B, H, W)}`` (:func:`cellrepro.instances.cdnet.cdnet_targets`, stacked).

    Example (uniform logits: the cross entropies are log 3 and log 9 whatever the targets):

    >>> out = {"mask": torch.zeros(1, 3, 2, 2), "direction": torch.zeros(1, 9, 2, 2), "point": torch.zeros(1, 1, 2, 2)}
    >>> tgt = {"mask": torch.tensor([[[0, 1], [2, 1]]]), "direction": torch.tensor([[[0, 3], [8, 1]]]),
    ...        "point": torch.tensor([[[1.0, 0], [0, 0]]])}
    >>> terms = cdnet_loss(out, tgt, dice_weight=0)
    >>> [round(float(terms[k]), 4) for k in ("mask_ce", "direction_ce", "point_mse")]  # log 3, log 9, 1/4
    [1.0986, 2.1972, 0.25]
    """
    missing = {"mask", "direction", "point"} - set(outputs)
    if missing:
        raise ValueError(f"outputs must hold 'mask', 'direction' and 'point', missing {sorted(missing)}")
    needed = {k for k, w in (("mask", mask_weight or dice_weight), ("direction", direction_weight),
                             ("point", point_weight)) if w}
    if needed - set(targets):
        raise ValueError(f"targets must hold {sorted(needed)}, missing {sorted(needed - set(targets))}")
    terms: dict[str, torch.Tensor] = {}
    if mask_weight or dice_weight:
        logits = outputs["mask"]
        mask = _classes(targets["mask"], "mask", logits)
        if mask_weight:
            terms["mask_ce"] = mask_weight * F.cross_entropy(logits, mask)
        if dice_weight:
            terms["mask_dice"] = dice_weight * _dice()(logits.float(), mask[:, None])
    if direction_weight:
        logits = outputs["direction"]
        direction = _classes(targets["direction"], "direction", logits)
        terms["direction_ce"] = direction_weight * F.cross_entropy(logits, direction)
    if point_weight:
        pred, target = outputs["point"], targets["point"]
        target = target[:, None] if target.dim() == 3 else target
        if target.shape != pred.shape:
            raise ValueError(f"targets['point'] must have the output's shape {tuple(pred.shape)}, "
                             f"got {tuple(target.shape)}")
        terms["point_mse"] = point_weight * F.mse_loss(pred.float(), target.float())
    return terms
