"""Residual discriminator of LatentKeypointGAN (successor's design, arXiv 2103.15812 Sec. 3.2).

from-RGB 1x1 conv, then down-sampling residual blocks to 4x4 (main: conv3x3 + LReLU, stride-2 conv3x3 +
LReLU; skip: 2x2 average pool + 1x1 conv; (main + skip) / sqrt 2), then Linear -> LReLU -> Linear -> logit.
No normalisation; Kaiming init (a = 0.2).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from .config import ModelConfig


class DownBlock(nn.Module):
    def __init__(self, c_in: int, c_out: int):
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_in, 3, padding=1)
        self.conv2 = nn.Conv2d(c_in, c_out, 3, stride=2, padding=1)
        self.skip = nn.Conv2d(c_in, c_out, 1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # Activations in place: the convolutions' backward does not read their outputs. The sum is a new tensor
        # (the activation's backward reads h), scaled in place.
        h = F.leaky_relu(self.conv1(x), 0.2, inplace=True)
        h = F.leaky_relu(self.conv2(h), 0.2, inplace=True)
        return torch.add(h, self.skip(F.avg_pool2d(x, 2))).mul_(1 / math.sqrt(2))


class Discriminator(nn.Module):
    """Images (B, 3, R, R) in [-1, 1] -> logits (B,)."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        ch = cfg.d_channels
        self.from_rgb = nn.Conv2d(3, ch[0], 1)
        self.blocks = nn.Sequential(*(DownBlock(ch[i], ch[i + 1]) for i in range(len(ch) - 1)))
        self.head = nn.Sequential(nn.Flatten(), nn.Linear(ch[-1] * 16, ch[-1]), nn.LeakyReLU(0.2), nn.Linear(ch[-1], 1))
        for m in self.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                nn.init.kaiming_normal_(m.weight, a=0.2)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = F.leaky_relu(self.from_rgb(x), 0.2, inplace=True)
        return self.head(self.blocks(h)).squeeze(1)
