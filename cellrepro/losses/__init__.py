"""Losses the papers define that MONAI and kornia do not provide as such."""

from .contrastive import global_contrastive, local_contrastive
from .segmentation import FINETUNE_LOSSES, finetune_loss

__all__ = ["FINETUNE_LOSSES", "finetune_loss", "global_contrastive", "local_contrastive"]
