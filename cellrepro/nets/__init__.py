"""Model builders on MONAI parts: a U-Net whose encoder can be used alone, and projection heads."""

from .heads import GlobalHead, LocalHead
from .unet import SplitUNet

__all__ = ["GlobalHead", "LocalHead", "SplitUNet"]
