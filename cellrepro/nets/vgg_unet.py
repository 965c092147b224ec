"""U-Net with a VGG16-BN encoder, the small-cell brightfield model of the multimodal paper.

Wang et al., NeurIPS 2022 CellSeg, Sec. 2.4: "U-Net is utilized as the segmentation model with
VGG16 encoders", trained with Dice + cross-entropy (Eq. 1; MONAI's ``DiceCELoss``), randomly
initialised (Table 2), 20.27 M parameters (Table 2).

* Encoder: torchvision's ``vgg16_bn(weights=None).features`` (:func:`vgg16_bn_features`), cut
  at its max pools into five stages (64, 128, 256, 512, 512 channels at strides 1, 2, 4, 8, 16); VGG's fifth pool is
  not used, so the deepest features are at stride 16 as in Ronneberger et al.'s U-Net.
* Decoder: four MONAI ``UpCat`` blocks (2 x 2 transposed conv, concatenation with the encoder
  skip, two conv-BN-ReLU), widths 256, 128, 64, 32; a 1 x 1 conv to ``out_channels`` logits.
  ``width=1`` has 18.56 M parameters (the paper reports 20.27 M for its U-Net without saying
  how its decoder is built; ours is the plain U-Net one).
* ``width``: every channel count divided by it, for tiny CPU variants (the encoder is then
  built with divided widths, so the layer indices and state-dict keys stay those of
  ``vgg16_bn``: ``encoder.<stage>.<index in vgg16_bn().features>.*``).
  **The paper's model is width 1.**

No pretrained weights are downloaded (none can be here; the paper's U-Net is randomly
initialised anyway). ``weights`` loads a user's state dict (with ``weights_only=True``): either
a whole :class:`VGGUNet` state dict or a torchvision ``vgg16_bn`` one (its ``features.*`` keys
fill the encoder; the classifier is ignored).
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
from torch import nn

from .weights import mismatch, read_state_dict

#: Boundaries of the encoder stages in ``vgg16_bn().features``: stage s is ``features[STAGES[s]:STAGES[s + 1]]``
#: (each after the first starts with a max pool; index 43, VGG's fifth pool, is left out).
STAGES = (0, 6, 13, 23, 33, 43)

#: Decoder widths at width 1, deepest first.
DECODER = (256, 128, 64, 32)


def vgg16_bn_features(width: int = 1) -> nn.Sequential:
    """torchvision's VGG16-BN convolutional part (``vgg16_bn(weights=None).features``), every
    width divided by ``width``, initialised as torchvision's ``VGG`` initialises it.

    Built with torchvision's own ``make_layers(cfgs["D"], batch_norm=True)``, which is what
    ``vgg16_bn`` calls, rather than ``vgg16_bn(weights=None).features``: that would also build
    and initialise the 120 M-parameter classifier only to throw it away (2.7 s against 0.2 s on
    one CPU core). The initialisation is ``VGG.__init__``'s: Kaiming-normal (fan out) convolutions
    with zero bias, BatchNorm weight 1 and bias 0.
    """
    from torchvision.models.vgg import cfgs, make_layers

    features = make_layers([c if c == "M" else max(1, c // width) for c in cfgs["D"]], batch_norm=True)
    for m in features.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            nn.init.constant_(m.bias, 0)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.constant_(m.weight, 1)
            nn.init.constant_(m.bias, 0)
    return features


class VGGUNet(nn.Module):
    """U-Net on a torchvision VGG16-BN encoder; logits (B, out_channels, H, W).

    Args:
        in_channels: image channels; 3 uses VGG's first layer as it is, other values replace
            it with a convolution of the same width (its key then no longer fits a VGG file).
        out_channels: number of classes (logits, for a softmax or, with 1, a sigmoid).
        width: divide every channel count by this (1 is the paper's model).
        weights: optional path to a state dict of this model or of torchvision's ``vgg16_bn``.

    ``H`` and ``W`` must be multiples of 16 (:attr:`size_multiple`).

    Example (a tiny variant on a 32 x 32 RGB image):

    >>> net = VGGUNet(in_channels=3, out_channels=2, width=16)
    >>> tuple(net(torch.rand(1, 3, 32, 32)).shape)
    (1, 2, 32, 32)
    """

    size_multiple = 16

    def __init__(self, in_channels: int = 3, out_channels: int = 2, width: int = 1,
                 weights: str | os.PathLike | None = None):
        super().__init__()
        from monai.networks.nets.basic_unet import UpCat

        if in_channels < 1 or out_channels < 1:
            raise ValueError(f"in_channels and out_channels must be >= 1, got {in_channels} and {out_channels}")
        if not isinstance(width, int) or isinstance(width, bool) or not 1 <= width <= 32:
            raise ValueError(f"width must be an integer divisor in 1..32 (1 is the paper's model), got {width!r}")
        self.in_channels, self.out_channels, self.width = in_channels, out_channels, width
        features = vgg16_bn_features(width)
        if in_channels != 3:
            first = features[0]
            features[0] = nn.Conv2d(in_channels, first.out_channels, 3, padding=1)
        self.encoder = nn.ModuleList([features[a:b] for a, b in zip(STAGES[:-1], STAGES[1:])])
        enc = [self._out_channels(stage) for stage in self.encoder]
        dec = [max(1, c // width) for c in DECODER]
        norm, act = ("batch", {"eps": 1e-5}), ("relu", {"inplace": True})
        ins = [enc[-1], *dec[:-1]]
        self.decoder = nn.ModuleList([UpCat(2, cin, skip, cout, act=act, norm=norm, bias=False, halves=True)
                                      for cin, skip, cout in zip(ins, enc[-2::-1], dec)])
        self.head = nn.Conv2d(dec[-1], out_channels, 1)
        if weights is not None:
            self.load_weights(weights)

    @staticmethod
    def _out_channels(stage: nn.Sequential) -> int:
        return [m.out_channels for m in stage if isinstance(m, nn.Conv2d)][-1]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != 4 or x.shape[1] != self.in_channels:
            raise ValueError(f"x must have shape (B, {self.in_channels}, H, W), got {tuple(x.shape)}")
        if x.shape[-2] % 16 or x.shape[-1] % 16:
            raise ValueError(f"x's height and width must be multiples of 16, got {tuple(x.shape[-2:])}")
        skips = []
        for stage in self.encoder:
            x = stage(x)
            skips.append(x)
        x = skips.pop()
        for block in self.decoder:
            x = block(x, skips.pop())
        return self.head(x)

    def load_weights(self, path: str | os.PathLike) -> None:
        """Load a state dict saved from this model or from torchvision's ``vgg16_bn``.

        Raises:
            FileNotFoundError: ``path`` does not exist.
            ValueError: the file holds no state dict, or its tensors do not fit this model
                (the message names the first missing, unexpected or mis-shaped keys).
        """
        path = Path(path)
        state = read_state_dict(path)
        own = self.state_dict()
        if not set(state) & set(own):  # a torchvision vgg16_bn file: map features.N.* onto the encoder
            state = self._from_torchvision(state, path)
        missing, unexpected, shapes = mismatch(own, state)
        if missing or unexpected or shapes:
            def few(keys):
                return ", ".join(keys[:3]) + (f" (+{len(keys) - 3} more)" if len(keys) > 3 else "")
            parts = [f"{name}: {few(keys)}" for name, keys in
                     (("missing", missing), ("unexpected", unexpected), ("wrong shape", shapes)) if keys]
            raise ValueError(f"weights: {path} does not fit VGGUNet(in_channels={self.in_channels}, "
                             f"out_channels={self.out_channels}, width={self.width}); " + "; ".join(parts))
        self.load_state_dict(state)

    def _from_torchvision(self, state: dict, path: Path) -> dict:
        """Map a torchvision ``vgg16_bn`` state dict onto the encoder; keep the decoder as it is."""
        stage_of = {i: s for s, (a, b) in enumerate(zip(STAGES[:-1], STAGES[1:])) for i in range(a, b)}
        mapped = {}
        for key, value in state.items():
            parts = key.split(".")
            if parts[0] != "features" or len(parts) < 3 or not parts[1].isdigit():
                continue  # the classifier, or a key of something else
            i = int(parts[1])
            if i in stage_of:  # slices of an nn.Sequential keep the original indices as names
                mapped[f"encoder.{stage_of[i]}.{key[len('features.'):]}"] = value
        if not mapped:
            raise ValueError(f"weights: {path} holds neither VGGUNet keys (encoder.*, decoder.*, head.*) "
                             f"nor torchvision vgg16_bn keys (features.*)")
        own = self.state_dict()
        return {**{k: v for k, v in own.items() if not k.startswith("encoder.")}, **mapped}
