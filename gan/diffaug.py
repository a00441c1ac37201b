"""Differentiable augmentation of the discriminator's inputs (after Zhao et al., "Differentiable Augmentation for
Data-Efficient GAN Training", NeurIPS 2020): the same random transforms are applied to real and generated images
before D, and gradients flow through them into G, so D cannot overfit a small training set (10k faces, 1.4k
birds) by memorising it, while G is not taught to produce augmented images.

Policies (``train.diffaug``, comma-separated, applied in this order):
- ``color``: per image, brightness + U(-0.5, 0.5), saturation x U(0, 2) around the pixel's channel mean,
  contrast x U(0.5, 1.5) around the image mean (images in [-1, 1]; the values are for that range's half width).
- ``translation``: per image, an integer shift of up to 1/8 of the side in x and y, zeros shifted in.
- ``cutout``: per image, a square of half the side at a random position set to zero.

All randomness comes from the ``torch.Generator`` passed in (the trainer's), so resumed runs stay bit-identical.
"""

from __future__ import annotations

import torch

POLICIES = ("color", "translation", "cutout")


def parse_policy(policy: str) -> tuple[str, ...]:
    """``"color,translation"`` -> ``("color", "translation")``; unknown names raise ``ValueError``."""
    names = tuple(p.strip() for p in policy.split(",") if p.strip())
    bad = [p for p in names if p not in POLICIES]
    if bad:
        raise ValueError(f"unknown DiffAugment policies {bad}; known: {list(POLICIES)}")
    return names


def _uniform(n: int, lo: float, hi: float, rng: torch.Generator, like: torch.Tensor) -> torch.Tensor:
    return (torch.rand(n, 1, 1, 1, generator=rng) * (hi - lo) + lo).to(like)


def color(x: torch.Tensor, rng: torch.Generator) -> torch.Tensor:
    n = x.shape[0]
    x = x + _uniform(n, -0.5, 0.5, rng, x)
    mean = x.mean(dim=1, keepdim=True)
    x = (x - mean) * _uniform(n, 0.0, 2.0, rng, x) + mean
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    return (x - mean) * _uniform(n, 0.5, 1.5, rng, x) + mean


def _shift_index(size: int, shift: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(N, size) source indices ``i - shift`` clamped into range, and a mask of the valid ones."""
    src = torch.arange(size).view(1, -1) - shift.view(-1, 1)
    valid = (src >= 0) & (src < size)
    return src.clamp(0, size - 1), valid


def translation(x: torch.Tensor, rng: torch.Generator, ratio: float = 0.125) -> torch.Tensor:
    n, c, h, w = x.shape
    sy, sx = int(h * ratio + 0.5), int(w * ratio + 0.5)
    dy = torch.randint(-sy, sy + 1, (n,), generator=rng)
    dx = torch.randint(-sx, sx + 1, (n,), generator=rng)
    iy, vy = _shift_index(h, dy)
    ix, vx = _shift_index(w, dx)
    dev = x.device
    rows = torch.gather(x, 2, iy.to(dev).view(n, 1, h, 1).expand(n, c, h, w))
    out = torch.gather(rows, 3, ix.to(dev).view(n, 1, 1, w).expand(n, c, h, w))
    mask = (vy.view(n, 1, h, 1) & vx.view(n, 1, 1, w)).to(x)
    return out * mask


def cutout(x: torch.Tensor, rng: torch.Generator, ratio: float = 0.5) -> torch.Tensor:
    n, _, h, w = x.shape
    ch, cw = int(h * ratio + 0.5), int(w * ratio + 0.5)
    cy = torch.randint(0, h + (1 - ch % 2), (n,), generator=rng)
    cx = torch.randint(0, w + (1 - cw % 2), (n,), generator=rng)
    ys, xs = torch.arange(h).view(1, h, 1), torch.arange(w).view(1, 1, w)
    y0, x0 = (cy - ch // 2).view(n, 1, 1), (cx - cw // 2).view(n, 1, 1)
    inside = (ys >= y0) & (ys < y0 + ch) & (xs >= x0) & (xs < x0 + cw)
    return x * (~inside).unsqueeze(1).to(x)


FUNCTIONS = {"color": color, "translation": translation, "cutout": cutout}


def diff_augment(x: torch.Tensor, policy: str | tuple[str, ...], rng: torch.Generator) -> torch.Tensor:
    """Apply the policies to a batch (N, 3, H, W) in [-1, 1]; differentiable in ``x``; ``""`` returns ``x``."""
    names = parse_policy(policy) if isinstance(policy, str) else policy
    for name in names:
        x = FUNCTIONS[name](x, rng)
    return x
