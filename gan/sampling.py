"""Sampling (image, keypoints) pairs from a trained generator.

Sample ``i`` of seed ``s`` draws its noise from its own generator seeded by (s, i), and the generator
normalises per sample, so a sample is the same whether drawn alone or inside any batch.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from .generator import Generator, Latents
from .keypoint_maps import to_pixels


@dataclass(frozen=True)
class Samples:
    """Generated pairs.

    Attributes:
        images: (N, 3, R, R) float in [0, 1], RGB.
        keypoints: (N, K, 2) pixel coordinates (x, y) in the R x R image, pixel centres at integers.
        latents: the :class:`Latents` they were rendered from (keypoints there are in [-1, 1]).
    """

    images: torch.Tensor
    keypoints: torch.Tensor
    latents: Latents


def sample_noise(z_dim: int, seed: int, indices: range | list[int]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(z_pose, z_app, z_bg), each (N, z_dim), for the given sample indices of ``seed``."""
    zs = []
    for i in indices:
        state = np.random.SeedSequence([seed, i]).generate_state(2, dtype=np.uint64)
        g = torch.Generator().manual_seed(int(state[0] >> np.uint64(1)))
        zs.append(torch.randn(3, z_dim, generator=g))
    z = torch.stack(zs, dim=1)  # (3, N, z_dim)
    return z[0], z[1], z[2]


def to_unit(images: torch.Tensor) -> torch.Tensor:
    """[-1, 1] generator output -> [0, 1]."""
    return (images.float().clamp(-1, 1) + 1) / 2


@torch.no_grad()
def render(generator: Generator, latents: Latents, batch_size: int = 256) -> torch.Tensor:
    """Render latents in batches -> (N, 3, R, R) in [0, 1]."""
    out = []
    for s in range(0, latents.keypoints.shape[0], batch_size):
        out.append(to_unit(generator.render(latents[s : s + batch_size])))
    return torch.cat(out)


@torch.no_grad()
def map_noise(generator: Generator, z: tuple[torch.Tensor, ...] | list[torch.Tensor], batch_size: int = 256) -> Latents:
    """Latents of noise ``(z_pose, z_app, z_bg)`` (each (N, z_dim), any device), mapped ``batch_size`` at a time on
    the generator's device."""
    device = next(generator.parameters()).device
    z = [t.to(device) for t in z]
    return Latents.cat([generator.map(*(t[s : s + batch_size] for t in z)) for s in range(0, len(z[0]), batch_size)])


@torch.no_grad()
def sample(generator: Generator, n: int, seed: int = 0, start: int = 0, batch_size: int = 256) -> Samples:
    """Draw samples ``start .. start + n - 1`` of ``seed``.

    Args:
        generator: a generator (use the EMA one for quality).
        n: number of samples.
        seed: the seed; with ``start`` it fixes every sample.
        batch_size: rendering batch; results do not depend on it.
    """
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    lat = map_noise(generator, sample_noise(generator.cfg.z_dim, seed, range(start, start + n)), batch_size)
    images = render(generator, lat, batch_size)
    return Samples(images, to_pixels(lat.keypoints.float(), generator.resolution), lat)
