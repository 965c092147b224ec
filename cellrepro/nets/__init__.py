"""Model builders on MONAI / torchvision parts: a U-Net whose encoder can be used alone, projection
heads, a Cellpose-style CPnet, a U-Net on a VGG16-BN encoder, CDNet, the brightfield thesis's SE-U-Net
with decoupled decoder heads, and (``cellrepro.nets.maskrcnn``,
imported on use as it loads torchvision's detection models) a small Mask R-CNN."""

from .cdnet import CDNet
from .cellpose import CellposeNet, predict_instances
from .heads import GlobalHead, LocalHead
from .seunet import SEUNet
from .unet import SplitUNet
from .vgg_unet import VGGUNet

__all__ = ["CDNet", "CellposeNet", "GlobalHead", "LocalHead", "SEUNet", "SplitUNet", "VGGUNet", "predict_instances"]
