"""ResNet and ResNeXt backbones with a feature pyramid, randomly initialised, for the Mask R-CNNs.

The spheroid paper's Table 1 backbones (Nguyen et al. 2024): ResNet-50 and -101 with FPN,
ResNeXt-101 32x4d and 64x4d; ResNet-18 is the reduced variant for a CPU budget. torchvision builds
all of them except ResNeXt-101 32x4d, which is made from its ``ResNet`` class. Every layer is
trainable with ordinary BatchNorm: no pretrained weights can be fetched here, and torchvision's
frozen BatchNorm would keep untrained statistics (training then diverges; see ``maskrcnn.py``).
"""

from __future__ import annotations

from typing import Callable, Sequence

from torch import nn
from torchvision.models import resnet
from torchvision.models.detection.backbone_utils import BackboneWithFPN
from torchvision.models.resnet import Bottleneck, ResNet
from torchvision.ops.feature_pyramid_network import LastLevelMaxPool


def _x101_32x4d(weights: None = None, **kwargs) -> ResNet:
    """ResNeXt-101 32x4d (Xie et al. 2017, the spheroid paper's "X101-32x4d"): torchvision has
    the 32x8d and 64x4d variants only, so it is built from torchvision's own ``ResNet`` (and has
    no downloadable ``weights``)."""
    if weights is not None:
        raise ValueError(f"weights: torchvision has no ResNeXt-101 32x4d weights, got {weights!r}")
    return ResNet(Bottleneck, [3, 4, 23, 3], groups=32, width_per_group=4, **kwargs)


#: Backbone names of :func:`resnet_fpn` -> a torchvision ResNet constructor. ``r50``, ``r101``,
#: ``x101_32x4d`` and ``x101_64x4d`` are the spheroid paper's Table 1 backbones; ``r18`` is the
#: reduced variant (a CPU budget), and the full torchvision names keep :func:`build_maskrcnn` working.
BACKBONES: dict[str, Callable[..., ResNet]] = {
    "r18": resnet.resnet18, "r50": resnet.resnet50, "r101": resnet.resnet101,
    "x101_32x4d": _x101_32x4d, "x101_64x4d": resnet.resnext101_64x4d,
}


def _resnet(name: str) -> ResNet:
    """A randomly initialised torchvision ResNet with ordinary (trainable) BatchNorm."""
    if name in BACKBONES:
        return BACKBONES[name](weights=None, norm_layer=nn.BatchNorm2d)
    build = getattr(resnet, name, None)
    if not name.startswith(("resnet", "resnext", "wide_resnet")) or build is None:
        raise ValueError(f"backbone must be one of {sorted(BACKBONES)} or a torchvision ResNet name "
                         f"('resnet18', 'resnet50', ...), got {name!r}")
    return build(weights=None, norm_layer=nn.BatchNorm2d)


def resnet_fpn(backbone: str, in_channels: int = 1, fpn_channels: int = 256,
               returned_layers: Sequence[int] = (1, 2, 3, 4)) -> BackboneWithFPN:
    """A randomly initialised ResNet + FPN (Lin et al. 2017), every layer trainable, plain BatchNorm.

    Args:
        backbone: a key of :data:`BACKBONES` or a torchvision ResNet name.
        in_channels: input channels (the first convolution is replaced when it is not 3).
        fpn_channels: channels of every pyramid level (256 in Lin et al. and torchvision).
        returned_layers: ResNet stages (1-4, strides 4-32) the FPN takes; the FPN adds a
            max-pooled level (``"pool"``) after the last one.

    Returns:
        torchvision's ``BackboneWithFPN``: ``(B, in_channels, H, W)`` -> ordered dict of
        ``(B, fpn_channels, H / s, W / s)`` maps, keys ``"0"``, ``"1"``, ... and ``"pool"``.

    >>> import torch
    >>> fpn = resnet_fpn("r18", in_channels=1, fpn_channels=32)
    >>> {k: tuple(v.shape) for k, v in fpn(torch.rand(1, 1, 64, 64)).items()}["pool"]
    (1, 32, 1, 1)
    """
    if not returned_layers or any(k not in (1, 2, 3, 4) for k in returned_layers) \
            or list(returned_layers) != sorted(set(returned_layers)):
        raise ValueError(f"returned_layers must be increasing ResNet stages in 1..4, got {tuple(returned_layers)}")
    body = _resnet(backbone)
    stage2 = body.inplanes // 8  # stage widths: 64 (BasicBlock) or 256 (Bottleneck) times 2 ** (k - 1)
    fpn = BackboneWithFPN(body, {f"layer{k}": str(i) for i, k in enumerate(returned_layers)},
                          [stage2 * 2 ** (k - 1) for k in returned_layers], fpn_channels,
                          extra_blocks=LastLevelMaxPool())
    if in_channels != 3:
        old = fpn.body.conv1
        conv = nn.Conv2d(in_channels, old.out_channels, old.kernel_size, old.stride, old.padding, bias=False)
        nn.init.kaiming_normal_(conv.weight, mode="fan_out", nonlinearity="relu")  # as torchvision's ResNet
        fpn.body.conv1 = conv
    return fpn


__all__ = ["BACKBONES", "resnet_fpn"]
