"""A CDNet-like network on MONAI parts: one U-Net trunk, three heads (mask, direction, point).

He et al., "CDNet: Centripetal Direction Network for Nuclear Instance Segmentation", ICCV 2021, as
the multimodal paper uses it for fluorescence images (Wang et al., NeurIPS 2022 CellSeg, Sec. 2.5;
Table 2: a randomly initialised CDNet of 20.47 M parameters on 256 x 256 patches).

The trunk is MONAI's ``BasicUNet`` as it is, with its ``final_conv`` replaced by the identity so
that it returns the decoder's full-resolution features (``features[5]`` channels). Each head is a
MONAI ``Convolution`` block (3 x 3 conv, instance norm, LeakyReLU, as in ``BasicUNet``) then a
1 x 1 convolution:

* ``mask``: 3 logits (background, interior, boundary);
* ``direction``: 9 logits (background and 8 centripetal directions, :mod:`cellrepro.instances.cdnet`);
* ``point``: 1 channel, the centre map, regressed (no activation: the MSE target peaks at 1).

CDNet's direction-guided refinement feeds the direction branch into the mask branch; here, with
``direction_guided``, the mask head sees the decoder features and the direction softmax (a light
stand-in for its module; the paper's backbone is not described, so ``features`` sets the size:
``(32, 32, 64, 128, 256, 32)`` is BasicUNet's default, ``(8, 8, 16, 32, 64, 8)`` a CPU-sized one).
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

#: Output channels of each head.
HEADS = {"mask": 3, "direction": 9, "point": 1}

_ACT = ("LeakyReLU", {"negative_slope": 0.1, "inplace": True})
_NORM = ("instance", {"affine": True})


def _head(in_channels: int, mid: int, out_channels: int) -> nn.Sequential:
    from monai.networks.blocks import Convolution

    return nn.Sequential(Convolution(2, in_channels, mid, kernel_size=3, act=_ACT, norm=_NORM),
                         Convolution(2, mid, out_channels, kernel_size=1, conv_only=True))


class CDNet(nn.Module):
    """U-Net trunk with mask, direction and point heads; ``forward`` returns ``{head: (B, C, H, W)}``.

    Args:
        in_channels: image channels (3 for the paper's RGB patches).
        features: the six ``BasicUNet`` feature sizes (five encoder levels, then the decoder's last).
        direction_guided: the mask head also sees the direction softmax.

    Example:
        >>> net = CDNet(in_channels=3, features=(4, 4, 8, 8, 16, 4))
        >>> {k: tuple(v.shape) for k, v in net(torch.zeros(2, 3, 32, 32)).items()}
        {'mask': (2, 3, 32, 32), 'direction': (2, 9, 32, 32), 'point': (2, 1, 32, 32)}
    """

    def __init__(self, in_channels: int = 1, features: Sequence[int] = (32, 32, 64, 128, 256, 32),
                 direction_guided: bool = True):
        super().__init__()
        from monai.networks.nets import BasicUNet

        features = tuple(int(f) for f in features)
        if len(features) != 6 or min(features) < 1:
            raise ValueError(f"features must be six positive channel counts (BasicUNet's), got {features}")
        if in_channels < 1:
            raise ValueError(f"in_channels must be >= 1, got {in_channels}")
        self.trunk = BasicUNet(spatial_dims=2, in_channels=in_channels, out_channels=1, features=features,
                               act=_ACT, norm=_NORM)
        self.trunk.final_conv = nn.Identity()
        f = features[5]
        self.direction_guided = direction_guided
        self.direction_head = _head(f, f, HEADS["direction"])
        self.point_head = _head(f, f, HEADS["point"])
        self.mask_head = _head(f + (HEADS["direction"] if direction_guided else 0), f, HEADS["mask"])
        self.in_channels, self.features = in_channels, features

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """``{"mask": (B, 3, H, W) logits, "direction": (B, 9, H, W) logits, "point": (B, 1, H, W)}``."""
        if x.dim() != 4 or x.shape[1] != self.in_channels:
            raise ValueError(f"x must have shape (B, {self.in_channels}, H, W), got {tuple(x.shape)}")
        if (x.shape[2] // 16) * (x.shape[3] // 16) < (2 if self.training else 1):
            raise ValueError(f"x must be at least 32 x 16 pixels in training, 16 x 16 otherwise (four 2x poolings; "
                             f"instance norm needs more than one pixel at the bottom), got {tuple(x.shape[2:])}")
        feats = self.trunk(x)
        direction = self.direction_head(feats)
        mask_in = torch.cat([feats, direction.softmax(1)], 1) if self.direction_guided else feats
        return {"mask": self.mask_head(mask_in), "direction": direction, "point": self.point_head(feats)}
