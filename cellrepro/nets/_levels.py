"""What U-shaped networks with one halving per level share: the input side they need and its check."""

from __future__ import annotations

import torch


class Levels:
    """Mixin for a U-shaped ``nn.Module`` with ``features`` (one width per level) and ``in_channels``."""

    features: tuple[int, ...]
    in_channels: int

    @property
    def size_multiple(self) -> int:
        """``H`` and ``W`` must be multiples of this (one halving per level below the first)."""
        return 2 ** (len(self.features) - 1)

    def check_input(self, x: torch.Tensor, hint: str = "pad the image") -> None:
        """Raise ValueError unless ``x`` is (B, in_channels, H, W) with H, W multiples of :attr:`size_multiple`."""
        if x.ndim != 4 or x.shape[1] != self.in_channels:
            raise ValueError(f"x must have shape (B, {self.in_channels}, H, W), got {tuple(x.shape)}")
        m = self.size_multiple
        if x.shape[-2] % m or x.shape[-1] % m:
            raise ValueError(f"x's height and width must be multiples of {m} for {len(self.features)} levels, "
                             f"got {tuple(x.shape[-2:])}; {hint}")
