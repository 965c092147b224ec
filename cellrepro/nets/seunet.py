"""SE-U-Net with decoupled decoders (brightfield thesis, Sec. 4.2, 4.2.1, 4.2.3; Tables 5.1-5.2).

The thesis's semantic-segmentation model is a U-Net "enhanced with Squeeze-and-Excitation
blocks (SEU-Net)" (Sec. 4.2), the SE block of Hu et al., "Squeeze-and-Excitation Networks"
(CVPR 2018): global average pooling (squeeze), a two-layer bottleneck with a sigmoid
(excitation), and the features rescaled channel by channel (Sec. 4.2.1).

Where the SE blocks go. Sec. 4.2.1: "The SE blocks are added to the encoding and decoding
pathways of the U-Net". Every encoder level therefore ends in a channel SE layer; the decoder
levels do too unless ``decoder_se=False`` (an encoder-only variant, for ablation).

What "decoupled heads" means. Sec. 4.2.3, "Decoupled Decoders": the model is extended "with
three more auxiliary branches"; "Each auxiliary branch has its decoder head responsible for
predicting the respective class. By having multiple decoder heads, the model can learn to
extract features specific to each class". Sec. 5.2 trains "both cytoplasm and overlap decoders
in parallel", and Fig. 5.9 shows "two parallel decoupled decoders". So a head is a whole
decoder (every up-sampling level with its skip connections and its own 1 x 1 output
convolution), not a final layer on one shared decoder (the latter is the thesis's
"multi-channel approach", Fig. 4.4 b). One encoder is shared by all heads; each head's
decoder reads the same skips. The losses of the heads are combined by Eq. 4.2 (a weighted
sum of per-head BCE); that is the loss's job, not this module's.

Head names (:data:`HEAD_NAMES`): the thesis's 4-head model of Tables 5.1-5.2 and Eq. 4.2 has
cytoplasm, nuclei, border and background heads; its overlap head appears in Sec. 5.2 (cytoplasm +
overlap decoders). Any subset of the five, in any order, can be built.

Built from MONAI parts: ``basic_unet.TwoConv`` (conv -> norm -> act, twice) for every level,
``basic_unet.UpCat`` (2 x 2 transposed convolution, concatenation with the skip, ``TwoConv``)
for every decoder level, ``blocks.ChannelSELayer`` for the SE layers and ``blocks.Convolution``
for the 1 x 1 output. MONAI's ``BasicUNet`` itself did not serve: it has one decoder, a fixed
five levels, and no place for SE layers; ``SEBlock`` is a residual bottleneck block (1 x 1,
3 x 3, 1 x 1 convolutions) of SE-ResNet, not a U-Net level. The thesis gives no SE reduction
ratio, norm or activation: ``se_reduction=8`` (Hu et al.'s 16 would leave one hidden unit at
width 16), batch norm and ReLU are our choices.
"""

from __future__ import annotations

import numbers
from typing import Sequence

import torch
from torch import nn

from ._levels import Levels

#: Head names this network accepts (one decoder each).
HEAD_NAMES = ("cytoplasm", "nuclei", "overlap", "border", "background")
THESIS_HEADS = ("cytoplasm", "nuclei", "border", "background")
"""The 4-head model of the thesis's Eq. 4.2 and Tables 5.1-5.2 (the default)."""


def _check_heads(heads) -> tuple[str, ...]:
    if isinstance(heads, str):
        raise ValueError(f"heads must be a sequence of head names such as ('cytoplasm',), got the string {heads!r}")
    heads = tuple(heads)
    if not heads:
        raise ValueError(f"heads must name at least one head out of {HEAD_NAMES}, got an empty sequence")
    unknown = [h for h in heads if h not in HEAD_NAMES]
    if unknown:
        raise ValueError(f"unknown head name(s) {unknown}; allowed: {HEAD_NAMES}")
    dupes = sorted({h for h in heads if heads.count(h) > 1})
    if dupes:
        raise ValueError(f"duplicate head name(s) {dupes} in {heads}; each head is one decoder")
    return heads


def _check_features(features) -> tuple[int, ...]:
    try:
        feats = tuple(features)
    except TypeError:
        raise ValueError(f"features must be a sequence of positive integer widths, got {features!r}") from None
    if len(feats) < 2:
        raise ValueError(f"features must give at least 2 levels (an encoder level and one below it), got {feats}")
    if not all(isinstance(f, numbers.Integral) and not isinstance(f, bool) and f >= 2 for f in feats):
        raise ValueError(f"features must be integer widths >= 2, got {feats}")
    return feats


def _se(channels: int, reduction: int) -> nn.Module:
    """MONAI's channel SE layer; the ratio is capped so the bottleneck keeps >= 1 unit."""
    from monai.networks.blocks import ChannelSELayer

    return ChannelSELayer(spatial_dims=2, in_channels=channels, r=min(reduction, channels))


class _Decoder(nn.Module):
    """One head: up-sampling levels (``UpCat``, optional SE) from the deepest features to full
    resolution, then a 1 x 1 convolution to the head's logits."""

    def __init__(self, features: tuple[int, ...], out_channels: int, act, norm, se: bool, se_reduction: int):
        super().__init__()
        from monai.networks.blocks import Convolution
        from monai.networks.nets.basic_unet import UpCat

        # level i (deep -> shallow): features[i + 1] up-sampled, concatenated with skip i -> features[i]
        self.ups = nn.ModuleList()
        for i in range(len(features) - 2, -1, -1):
            up = UpCat(2, features[i + 1], features[i], features[i], act=act, norm=norm, bias=True)
            self.ups.append(_UpSE(up, _se(features[i], se_reduction) if se else nn.Identity()))
        self.out = Convolution(2, features[0], out_channels, kernel_size=1, conv_only=True)

    def forward(self, skips: list[torch.Tensor]) -> torch.Tensor:
        x = skips[-1]
        for up, skip in zip(self.ups, reversed(skips[:-1])):
            x = up(x, skip)
        return self.out(x)


class _UpSE(nn.Module):
    """``UpCat`` followed by channel SE (or ``nn.Identity`` without)."""

    def __init__(self, up: nn.Module, se: nn.Module):
        super().__init__()
        self.up, self.se = up, se

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        return self.se(self.up(x, skip))


class SEUNet(Levels, nn.Module):
    """2-D SE-U-Net: one shared SE encoder, one decoder per head (thesis Sec. 4.2.3).

    Args:
        in_channels: image channels (e.g. 2 for the lower and higher brightfield planes, Fig. 4.3).
        heads: head names out of :data:`HEAD_NAMES`, no duplicates (the thesis's 1- to 4-head models
            use 1 to 4 of them; default :data:`THESIS_HEADS`).
        features: widths per level, shallow to deep (>= 2 levels); ``H`` and ``W`` must be
            multiples of :attr:`size_multiple` ``= 2 ** (len(features) - 1)``.
        out_channels_per_head: logits per head (1: a binary map per class, trained by BCE, Eq. 4.1).
        decoder_se: SE layers in the decoders too, as Sec. 4.2.1 says (default); False puts
            them in the encoder only.
        se: False drops every SE layer: a plain U-Net of otherwise the same shape, the control
            of the thesis's "SE beats U-Net" (claim C19).
        se_reduction: SE bottleneck ratio ``r`` (hidden units ``= channels // r``).
        act, norm: MONAI activation and norm names for the convolutions.

    ``forward(x)`` returns ``{head: (B, out_channels_per_head, H, W) logits}`` in the order of ``heads``.

    Example (each extra head adds one whole decoder, identical in size; the encoder is shared):

    >>> net1 = SEUNet(1, heads=("cytoplasm",), features=(4, 8))
    >>> net4 = SEUNet(1, features=(4, 8))
    >>> count = lambda m: sum(p.numel() for p in m.parameters())
    >>> count(net4) - count(net1) == 3 * count(net1.decoders["cytoplasm"])
    True
    >>> {k: tuple(v.shape) for k, v in net4(torch.rand(2, 1, 8, 8)).items()}
    {'cytoplasm': (2, 1, 8, 8), 'nuclei': (2, 1, 8, 8), 'border': (2, 1, 8, 8), 'background': (2, 1, 8, 8)}
    """

    def __init__(self, in_channels: int, heads: Sequence[str] = THESIS_HEADS,
                 features: Sequence[int] = (16, 32, 64, 128), out_channels_per_head: int = 1, *,
                 decoder_se: bool = True, se: bool = True, se_reduction: int = 8,
                 act: str | tuple = "relu", norm: str | tuple = "batch"):
        super().__init__()
        from monai.networks.nets.basic_unet import TwoConv

        if not isinstance(in_channels, int) or in_channels < 1:
            raise ValueError(f"in_channels must be a positive integer, got {in_channels!r}")
        if not isinstance(out_channels_per_head, int) or out_channels_per_head < 1:
            raise ValueError(f"out_channels_per_head must be a positive integer, got {out_channels_per_head!r}")
        if not isinstance(se_reduction, int) or se_reduction < 1:
            raise ValueError(f"se_reduction must be a positive integer, got {se_reduction!r}")
        self.heads = _check_heads(heads)
        self.features = tuple(int(f) for f in _check_features(features))
        self.in_channels, self.out_channels_per_head = in_channels, out_channels_per_head
        widths = (in_channels, *self.features)
        self.encoder = nn.ModuleList()
        for i in range(len(self.features)):
            level = [nn.MaxPool2d(2)] if i else []
            level += [TwoConv(2, widths[i], widths[i + 1], act=act, norm=norm, bias=True),
                      _se(widths[i + 1], se_reduction) if se else nn.Identity()]
            self.encoder.append(nn.Sequential(*level))
        self.decoders = nn.ModuleDict({
            h: _Decoder(self.features, out_channels_per_head, act, norm, se and decoder_se, se_reduction)
            for h in self.heads})

    def encode(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Encoder features, full resolution first (``len(features)`` tensors)."""
        self.check_input(x, "pad or crop the image")
        skips = []
        for level in self.encoder:
            x = level(x)
            skips.append(x)
        return skips

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """``{head: (B, out_channels_per_head, H, W) logits}``, one decoder per head."""
        skips = self.encode(x)
        return {h: dec(skips) for h, dec in self.decoders.items()}


__all__ = ["HEAD_NAMES", "THESIS_HEADS", "SEUNet"]
