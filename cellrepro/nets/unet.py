"""A 2-D U-Net with a separable encoder (organoid thesis, Sec. 3.4), on MONAI's ``BasicUNet``.

MONAI's ``BasicUNet`` is used as it is (its blocks, initialisation and forward pass); this
wrapper only exposes the encoder (``conv_0``, ``down_1``..``down_4``) and the decoder
(``upcat_4``..``upcat_1``) separately, which the contrastive stages need: the global stage
trains the encoder alone, the local stage the whole network, possibly with the encoder frozen.
MONAI's recursive ``UNet`` cannot be split this way, hence ``BasicUNet``.
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn


class SplitUNet(nn.Module):
    """``BasicUNet`` (2-D) with ``encode``, ``decode`` and ``encoder_parameters``.

    Args:
        in_channels, out_channels: image channels and output logits.
        features: the six ``BasicUNet`` feature sizes (five encoder levels, then the decoder's
            last); the thesis's network ends at 512 deep features, (32, 64, 128, 256, 512, 32).
    """

    forward_methods = ("encode", "decode")  # called directly by the training steps (see cellrepro.engine.train)

    def __init__(self, in_channels: int = 1, out_channels: int = 1,
                 features: Sequence[int] = (32, 64, 128, 256, 512, 32)):
        super().__init__()
        from monai.networks.nets import BasicUNet

        self.net = BasicUNet(spatial_dims=2, in_channels=in_channels, out_channels=out_channels,
                             features=tuple(features))
        self.features = tuple(features)

    @property
    def encoder(self) -> nn.ModuleList:
        n = self.net
        return nn.ModuleList([n.conv_0, n.down_1, n.down_2, n.down_3, n.down_4])

    def encoder_parameters(self):
        return self.encoder.parameters()

    @property
    def deep_channels(self) -> int:
        return self.features[4]

    @property
    def decoder_channels(self) -> int:
        return self.features[5]

    def encode(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Encoder outputs from full resolution to the deepest level (5 tensors)."""
        n = self.net
        x0 = n.conv_0(x)
        x1 = n.down_1(x0)
        x2 = n.down_2(x1)
        x3 = n.down_3(x2)
        return [x0, x1, x2, x3, n.down_4(x3)]

    def decode(self, skips: list[torch.Tensor]) -> torch.Tensor:
        """Full-resolution decoder features (B, features[5], H, W) from :meth:`encode`'s outputs."""
        n = self.net
        x0, x1, x2, x3, x4 = skips
        u4 = n.upcat_4(x4, x3)
        u3 = n.upcat_3(u4, x2)
        u2 = n.upcat_2(u3, x1)
        return n.upcat_1(u2, x0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Segmentation logits (B, out_channels, H, W)."""
        return self.net.final_conv(self.decode(self.encode(x)))
