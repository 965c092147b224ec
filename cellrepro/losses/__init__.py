"""Losses the papers define that MONAI and kornia do not provide as such."""

from .cdnet import cdnet_loss
from .contrastive import global_contrastive, local_contrastive
from .flows import FLOW_SCALE, CellposeLoss, cellpose_loss, flow_targets
from .segmentation import FINETUNE_LOSSES, finetune_loss

__all__ = ["FINETUNE_LOSSES", "FLOW_SCALE", "CellposeLoss", "cdnet_loss", "cellpose_loss", "finetune_loss", "flow_targets",
           "global_contrastive", "local_contrastive"]
