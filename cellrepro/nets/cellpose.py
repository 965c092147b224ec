"""A Cellpose-style network (CPnet) and instance prediction from its flows.

Stringer et al., "Cellpose: a generalist algorithm for cellular segmentation", Nat. Methods 2021
(Methods, "Network architecture"); the model of the multimodal paper's phase-contrast, DIC and
large-cell brightfield branches (Wang et al., Sec. 2.3-2.4) and the base of the MMCS paper's
network (two input channels: cytoplasm and nucleus).

The architecture, as Cellpose's ``CPnet``:

* encoder: per level a residual block of four pre-activation 3 x 3 convolutions
  (BatchNorm -> ReLU -> conv) with a 1 x 1 projection on the first residual path; max pooling
  between levels;
* style: the deepest features averaged over space and divided by their L2 norm, one vector
  per image (:meth:`CellposeNet.style`);
* decoder: nearest-neighbour upsampling; the encoder skip is *added* (not concatenated); the
  style goes through a linear layer per convolution and is added to that convolution's input,
  in every decoder block (the deepest block too);
* head: BatchNorm -> ReLU -> 1 x 1 conv to 3 channels (dy, dx, cell-probability logit).

Built from MONAI's ``ADN`` (norm and activation before the convolution) and ``Convolution``
(``conv_only=True``). MONAI's ``ResidualUnit`` did not serve: it is post-activation
(conv -> norm -> act) and has no place to inject the style before each convolution. Widths are
the ``features`` tuple: Cellpose's own is ``(32, 64, 128, 256)`` (6.60 M parameters with 2 input
channels); ``(8, 16)`` makes a tiny CPU model. Flows come out scaled by
:data:`~cellrepro.losses.flows.FLOW_SCALE` when trained with
:func:`~cellrepro.losses.flows.cellpose_loss`; :func:`predict_instances` undoes that.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from cellrepro.instances.flows import flows_to_masks
from cellrepro.losses.flows import FLOW_SCALE

from ._levels import Levels

#: Cellpose's BatchNorm settings.
NORM = ("BATCH", {"eps": 1e-5, "momentum": 0.05})


def _conv(cin: int, cout: int, kernel_size: int, act: str | None = "RELU") -> nn.Sequential:
    """Pre-activation convolution: BatchNorm (-> ReLU) -> conv (Cellpose's ``batchconv``; with
    ``act=None`` its ``batchconv0``, used on the residual projection)."""
    from monai.networks.blocks import ADN, Convolution

    return nn.Sequential(
        ADN(ordering="NA" if act else "N", in_channels=cin, act=act, norm=NORM, norm_dim=2),
        Convolution(2, cin, cout, kernel_size=kernel_size, conv_only=True),
    )


class _ResDown(nn.Module):
    """Encoder block: ``x = proj(x) + c1(c0(x)); x = x + c3(c2(x))``."""

    def __init__(self, cin: int, cout: int, kernel_size: int):
        super().__init__()
        self.proj = _conv(cin, cout, 1, act=None)
        self.conv = nn.ModuleList([_conv(cin, cout, kernel_size)] +
                                  [_conv(cout, cout, kernel_size) for _ in range(3)])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.proj(x) + self.conv[1](self.conv[0](x))
        return x + self.conv[3](self.conv[2](x))


class _StyleConv(nn.Module):
    """``conv(x [+ skip] + W style)``: the style, through a linear layer, added to the input
    of a pre-activation convolution (Cellpose's ``batchconvstyle``)."""

    def __init__(self, cin: int, cout: int, style_channels: int, kernel_size: int):
        super().__init__()
        self.full = nn.Linear(style_channels, cin)
        self.conv = _conv(cin, cout, kernel_size)

    def forward(self, style: torch.Tensor, x: torch.Tensor, skip: torch.Tensor | None = None) -> torch.Tensor:
        if skip is not None:
            x = x + skip
        return self.conv(x + self.full(style)[:, :, None, None])


class _ResUp(nn.Module):
    """Decoder block: ``x = proj(x) + s1(c0(x), skip); x = x + s3(s2(x))``, s* with style."""

    def __init__(self, cin: int, cout: int, style_channels: int, kernel_size: int):
        super().__init__()
        self.proj = _conv(cin, cout, 1, act=None)
        self.conv0 = _conv(cin, cout, kernel_size)
        self.styled = nn.ModuleList([_StyleConv(cout, cout, style_channels, kernel_size) for _ in range(3)])

    def forward(self, x: torch.Tensor, skip: torch.Tensor, style: torch.Tensor) -> torch.Tensor:
        x = self.proj(x) + self.styled[0](style, self.conv0(x), skip)
        return x + self.styled[2](style, self.styled[1](style, x))


class CellposeNet(Levels, nn.Module):
    """Cellpose's residual U-Net with a style vector; output (B, 3, H, W): dy, dx, logit.

    Args:
        in_channels: image channels (2 for MMCS: cytoplasm + nucleus; 3 for RGB).
        out_channels: 3 (flows and cell probability); other values for other heads.
        features: widths per level, shallow to deep; Cellpose's ``(32, 64, 128, 256)``.
            ``H`` and ``W`` must be multiples of ``2 ** (len(features) - 1)``
            (:attr:`size_multiple`).
        kernel_size: odd convolution size (3 as Cellpose).
        style_on: if False, the decoder gets a zero style (Cellpose's ``style_on``); the
            style vector is still computed and returned by :meth:`forward_with_style`.

    Example (a tiny model: shapes, and the style has unit length):

    >>> net = CellposeNet(in_channels=2, features=(8, 16)).eval()
    >>> out, style = net.forward_with_style(torch.rand(2, 2, 16, 16))
    >>> tuple(out.shape), tuple(style.shape), torch.allclose(style.norm(dim=1), torch.ones(2))
    ((2, 3, 16, 16), (2, 16), True)
    """

    forward_methods = ("forward_with_style", "style")  # see cellrepro.engine.train

    def __init__(self, in_channels: int = 2, out_channels: int = 3,
                 features: Sequence[int] = (32, 64, 128, 256), kernel_size: int = 3,
                 style_on: bool = True):
        super().__init__()
        features = tuple(int(f) for f in features)
        if in_channels < 1 or out_channels < 1:
            raise ValueError(f"in_channels and out_channels must be >= 1, got {in_channels} and {out_channels}")
        if len(features) < 1 or min(features) < 1:
            raise ValueError(f"features must be a non-empty tuple of positive widths, got {features}")
        if kernel_size < 1 or kernel_size % 2 == 0:
            raise ValueError(f"kernel_size must be a positive odd integer, got {kernel_size}")
        self.in_channels, self.out_channels, self.features = in_channels, out_channels, features
        self.style_on = bool(style_on)
        widths = (in_channels, *features)
        self.down = nn.ModuleList([_ResDown(widths[i], widths[i + 1], kernel_size) for i in range(len(features))])
        up_widths = (*features, features[-1])  # the deepest decoder block keeps the deepest width
        self.up = nn.ModuleList([_ResUp(up_widths[i + 1], up_widths[i], features[-1], kernel_size)
                                 for i in range(len(features))])
        self.output = _conv(features[0], out_channels, 1)

    def encode(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Encoder features, full resolution first (``len(features)`` tensors)."""
        self.check_input(x, "pad the image (predict_instances does)")
        skips = []
        for i, block in enumerate(self.down):
            x = block(F.max_pool2d(x, 2) if i else x)
            skips.append(x)
        return skips

    @staticmethod
    def make_style(deepest: torch.Tensor) -> torch.Tensor:
        """(B, C) style: spatial mean of (B, C, h, w) features, divided by its L2 norm."""
        return F.normalize(deepest.mean(dim=(-2, -1)), dim=1)

    def decode(self, skips: list[torch.Tensor], style: torch.Tensor) -> torch.Tensor:
        """(B, out_channels, H, W) from :meth:`encode`'s features and a (B, features[-1]) style."""
        if not self.style_on:
            style = torch.zeros_like(style)
        x = self.up[-1](skips[-1], skips[-1], style)
        for i in range(len(self.up) - 2, -1, -1):
            x = self.up[i](F.interpolate(x, scale_factor=2, mode="nearest"), skips[i], style)
        return self.output(x)

    def style(self, x: torch.Tensor) -> torch.Tensor:
        """The (B, features[-1]) unit-length style vectors of images ``x``."""
        return self.make_style(self.encode(x)[-1])

    def forward_with_style(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(output, style)``; the style is the one computed even when ``style_on`` is False."""
        skips = self.encode(x)
        style = self.make_style(skips[-1])
        return self.decode(skips, style), style

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, out_channels, H, W): flows (dy, dx) and the cell-probability logit."""
        return self.forward_with_style(x)[0]


def outputs_to_masks(output, flow_scale: float = FLOW_SCALE, cellprob_threshold: float = 0.0,
                     **flow_kwargs) -> np.ndarray:
    """Instances from one network output (3, H, W) = (scaled dy, dx, logit).

    The flows are divided by ``flow_scale`` (a net trained with
    :func:`~cellrepro.losses.flows.cellpose_loss` predicts ``5 x`` unit flows) and passed with
    the logit to :func:`~cellrepro.instances.flows_to_masks`; ``flow_kwargs`` go there too
    (``niter``, ``min_size``, ``max_size_fraction``, ``flow_threshold``, ``device``).

    Returns:
        (H, W) int32 labels 0..N.

    Example (the targets of two touching squares, as a perfect network would give them):

    >>> from cellrepro.losses.flows import flow_targets
    >>> m = np.zeros((12, 20), np.int32); m[2:10, 2:10] = 1; m[2:10, 10:18] = 2
    >>> t = flow_targets(m)
    >>> out = torch.cat((5 * t[:2], 10 * (2 * t[2:] - 1)))
    >>> bool((outputs_to_masks(out) == m).all())
    True
    """
    if isinstance(output, torch.Tensor):
        output = output.detach()
    else:
        output = torch.as_tensor(np.asarray(output))
    if output.ndim != 3 or output.shape[0] < 3:
        raise ValueError(f"output must have shape (3, H, W) (dy, dx, logit), got {tuple(output.shape)}")
    if not flow_scale > 0:
        raise ValueError(f"flow_scale must be > 0, got {flow_scale}")
    output = output.to(torch.float32)
    return flows_to_masks(output[:2] / flow_scale, output[2], cellprob_threshold, **flow_kwargs)


def padded_output(net: nn.Module, image, device: str | torch.device | None = None) -> torch.Tensor:
    """The network's output on one whole image, (C_out, H, W) float32 on ``device``.

    The image is zero-padded at the bottom and right to the network's ``size_multiple`` (as
    Cellpose pads), the output cropped back; the network runs in eval mode under ``no_grad`` and
    its training mode is restored afterwards. Normalising the image is the caller's job.

    Args:
        net: a module mapping (1, C, H, W) to (1, C_out, H, W), e.g. :class:`CellposeNet`.
        image: (C, H, W) real image, NumPy or torch.
        device: where to run the network; default that of its first parameter (else CPU).
    """
    x = image.detach() if isinstance(image, torch.Tensor) else torch.as_tensor(np.asarray(image))
    if x.ndim != 3:
        raise ValueError(f"image must have shape (C, H, W), got {tuple(x.shape)}")
    if device is None:
        first = next(net.parameters(), None)
        device = first.device if first is not None else torch.device("cpu")
    h, w = x.shape[-2:]
    m = int(getattr(net, "size_multiple", 1))
    x = F.pad(x.to(device, torch.float32), (0, -w % m, 0, -h % m))
    was_training = net.training
    net.eval()
    try:
        with torch.no_grad():
            return net(x[None])[0, :, :h, :w].float()
    finally:
        net.train(was_training)


def predict_instances(net: nn.Module, image, flow_scale: float = FLOW_SCALE, cellprob_threshold: float = 0.0,
                      device: str | torch.device | None = None, **flow_kwargs) -> np.ndarray:
    """Instances of one image: :func:`padded_output`, then :func:`outputs_to_masks`.

    Args:
        net: a module mapping (1, C, H, W) to (1, 3, H, W), e.g. :class:`CellposeNet`.
        image: (C, H, W) real image, NumPy or torch, normalised as in training.
        flow_scale, cellprob_threshold, flow_kwargs: as :func:`outputs_to_masks`.
        device: where to run the network; default that of its first parameter (else CPU).

    Returns:
        (H, W) int32 labels 0..N.
    """
    return outputs_to_masks(padded_output(net, image, device), flow_scale, cellprob_threshold, **flow_kwargs)
