"""The networks of the MMCS paper's Table 8: CPnet against MONAI's U-Net and SwinUNETR.

The paper compares its CPnet with "U-Net" and "SwinUNETR" (Sec. 4.5 "Model structure", Table 8) and
says nothing of how they were trained, what they predicted or how their output became instances
(register: mmcs-C11). This module builds each on one of two heads so that the comparison can be made
under a stated choice:

* ``"flows"``: three output channels, (dy, dx, cell-probability logit), trained with the Cellpose loss
  and followed to instances as CPnet's: the same targets and post-processing, so only the
  architecture differs;
* ``"semantic"``: three class logits (background, interior, boundary) trained with Dice +
  cross-entropy and decoded by a marker watershed
  (:func:`cellrepro.instances.cdnet.three_class_decode`): our guess at the usual use of a U-Net for
  cells.

``"unet"`` is ``monai.networks.nets.UNet`` (strided convolutions down, transposed up, two residual
units per level, batch norm) with the widths given; ``"swinunetr"`` is ``monai.networks.nets.SwinUNETR``
in 2-D (patch size 2, four Swin stages of window 7, ``feature_size`` 12 for the CPU budget); its
input side must be a multiple of 32. CPnet is :class:`cellrepro.nets.cellpose.CellposeNet`. Every
network gets a ``size_multiple`` (what :func:`cellrepro.nets.cellpose.padded_output` pads whole
images to).
"""

from __future__ import annotations

from typing import Sequence

from torch import nn

from ...nets.cellpose import CellposeNet

ARCHS = ("cpnet", "unet", "swinunetr")
HEADS = ("flows", "semantic")
SWIN_FEATURES = 12
"""SwinUNETR's ``feature_size`` (a multiple of 12; MONAI's default 24, 48 in the SwinUNETR paper)."""


def build(arch: str, head: str = "flows", in_channels: int = 2, features: Sequence[int] = (8, 16, 32)) -> nn.Module:
    """A network of ``arch`` with the ``head``'s three output channels (see the module docstring).

    ``features``: CPnet's and the U-Net's widths per level (the U-Net's strides follow their count);
    ignored by SwinUNETR, whose width is :data:`SWIN_FEATURES`.
    """
    if arch not in ARCHS:
        raise ValueError(f"arch must be one of {ARCHS}, got {arch!r}")
    if head not in HEADS:
        raise ValueError(f"head must be one of {HEADS}, got {head!r}")
    features = tuple(int(f) for f in features)
    if arch == "cpnet":
        if head != "flows":
            raise ValueError("CPnet predicts flows: head must be 'flows' for arch 'cpnet'")
        net = CellposeNet(in_channels=in_channels, features=features)
    elif arch == "unet":
        from monai.networks.nets import UNet

        if len(features) < 2:
            raise ValueError(f"the U-Net needs at least 2 widths, got {features}")
        net = UNet(spatial_dims=2, in_channels=in_channels, out_channels=3, channels=features,
                   strides=(2,) * (len(features) - 1), num_res_units=2, norm="batch")
        net.size_multiple = 2 ** (len(features) - 1)
    else:
        from monai.networks.nets import SwinUNETR

        net = SwinUNETR(in_channels=in_channels, out_channels=3, feature_size=SWIN_FEATURES, spatial_dims=2)
        net.size_multiple = 32
    net.arch, net.head = arch, head
    return net


__all__ = ["ARCHS", "HEADS", "SWIN_FEATURES", "build"]
