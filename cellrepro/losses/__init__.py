"""Losses the papers define that MONAI and kornia do not provide as such."""

from .cdnet import cdnet_loss
from .contrastive import global_contrastive, local_contrastive
from .flows import FLOW_SCALE, CellposeLoss, cellpose_loss, flow_targets
from .focal import (OverlapFocalLoss, focal_terms, label_reweighted_focal_loss, loss_reweighted_focal_loss,
                    negative_reweighted_focal_loss)
from .segmentation import FINETUNE_LOSSES, dice_ce, finetune_loss

__all__ = ["FINETUNE_LOSSES", "FLOW_SCALE", "CellposeLoss", "OverlapFocalLoss", "cdnet_loss", "cellpose_loss", "dice_ce",
           "finetune_loss", "flow_targets", "focal_terms", "global_contrastive", "label_reweighted_focal_loss",
           "local_contrastive", "loss_reweighted_focal_loss", "negative_reweighted_focal_loss"]
