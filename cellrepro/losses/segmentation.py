"""Fine-tuning losses of the organoid thesis (Sec. 3.5): BCE + Dice, SSIM + Dice, SSIM-MAE + Dice.

Built from MONAI's ``DiceLoss`` and ``SSIMLoss`` (which returns 1 - SSIM; Eq. 3.8 prints SSIM
itself) and torch's BCE; MAE is the mean absolute error of the probabilities (Eq. 3.9). The
terms are summed with equal weights (the thesis gives none). :func:`dice_ce` is the Dice + cross-entropy
of 3-class (background, interior, boundary) U-Nets.
"""

from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F

FINETUNE_LOSSES = ("bce_dice", "ssim_dice", "ssim_mae_dice")


def finetune_loss(name: str, win_size: int = 7) -> Callable[[torch.Tensor, torch.Tensor], dict[str, torch.Tensor]]:
    """A loss on (B, 1, H, W) logits and {0, 1} masks returning its named terms."""
    from monai.losses import DiceLoss, SSIMLoss

    if name not in FINETUNE_LOSSES:
        raise ValueError(f"unknown loss '{name}'; losses are {', '.join(FINETUNE_LOSSES)}")
    dice = DiceLoss(sigmoid=True)
    ssim = SSIMLoss(spatial_dims=2, data_range=1.0, win_size=win_size)

    def loss(logits: torch.Tensor, target: torch.Tensor) -> dict[str, torch.Tensor]:
        target = target.float()
        terms = {"dice": dice(logits, target)}
        if name == "bce_dice":
            terms["bce"] = F.binary_cross_entropy_with_logits(logits, target)
        else:
            prob = torch.sigmoid(logits)
            terms["ssim"] = ssim(prob.float(), target)
            if name == "ssim_mae_dice":
                terms["mae"] = (prob - target).abs().mean()
        return terms

    return loss


def dice_ce() -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    """Dice + cross-entropy on class logits against integer class targets (B, 1, H, W), weights 1 and 1:
    MONAI's ``DiceCELoss`` with softmax and one-hot targets (the multimodal paper's Eq. 1 for its U-Net;
    the MMCS chapter's semantic baselines)."""
    from monai.losses import DiceCELoss

    return DiceCELoss(softmax=True, to_onehot_y=True)

