"""Projection heads of the two contrastive stages (organoid thesis, Sec. 3.4.1-3.4.2)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class GlobalHead(nn.Module):
    """Average pooling then two linear layers to a 256-d image representation (Sec. 4.2.1)."""

    def __init__(self, in_channels: int, hidden: int = 512, out_dim: int = 256):
        super().__init__()
        self.mlp = nn.Sequential(nn.Linear(in_channels, hidden), nn.ReLU(inplace=True), nn.Linear(hidden, out_dim))

    def forward(self, deep: torch.Tensor) -> torch.Tensor:
        """(B, C, h, w) deepest encoder features -> (B, out_dim)."""
        return self.mlp(F.adaptive_avg_pool2d(deep, 1).flatten(1))


class LocalHead(nn.Module):
    """Per-pixel projection (two 1 x 1 convolutions) of decoder features, L2-normalised."""

    def __init__(self, in_channels: int, out_dim: int = 64):
        super().__init__()
        self.proj = nn.Sequential(nn.Conv2d(in_channels, in_channels, 1), nn.ReLU(inplace=True),
                                  nn.Conv2d(in_channels, out_dim, 1))

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) -> (B, out_dim, H, W) unit vectors per pixel."""
        return F.normalize(self.proj(features), dim=1)
