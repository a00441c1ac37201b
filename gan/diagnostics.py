"""Does each latent keypoint mean something? Label-free measures logged during training and used in reports.

- spread: per keypoint, the standard deviation of its position across samples (px); near 0 = frozen.
- central: share of keypoints inside the central part of the image (objects are roughly centred in the
  training sets used here; keypoints parked at the border draw nothing).
- extent: the mean keypoint configuration's size, the RMS distance of its keypoints from their centroid (px; near 0 =
  all keypoints at one place; MTFL's five annotated landmarks: 8 px at 64 px).
- layout: the mean keypoint configuration's extent across its narrower axis over its wider one (the square root of
  the eigenvalue ratio of its 2 x 2 covariance); near 0 = the keypoints line up (a chain down the middle of a face).
- locality: move one keypoint by a few pixels and measure which share of the image change falls within a
  disk around its old and new position, beside the share of the image that disk covers (chance level).
"""

from __future__ import annotations

import math

import torch

from .generator import Generator, Latents
from .keypoint_maps import grid2d, to_pixels
from .sampling import render, sample


def keypoint_spread(keypoints_px: torch.Tensor) -> torch.Tensor:
    """(N, K, 2) pixel keypoints -> (K,) spread in px: ``sqrt(var_x + var_y)`` across the N samples."""
    return keypoints_px.var(dim=0, unbiased=False).sum(-1).sqrt()


def centred_configuration(keypoints_px: torch.Tensor) -> torch.Tensor:
    """(N, K, 2) keypoints -> (K, 2): the mean configuration about its centroid (float64)."""
    mean = keypoints_px.double().mean(dim=0)
    return mean - mean.mean(dim=0)


def layout_ratio(keypoints_px: torch.Tensor) -> float:
    """(N, K, 2) keypoints -> the mean configuration's minor / major axis (K >= 2): 1 = as wide as tall, 0 = a line."""
    centred = centred_configuration(keypoints_px)
    eig = torch.linalg.eigvalsh(centred.T @ centred / len(centred)).clamp_min(0)
    return (eig[0] / eig[1]).sqrt().item() if eig[1] > 0 else 0.0


def configuration_extent(keypoints_px: torch.Tensor) -> float:
    """(N, K, 2) keypoints -> RMS distance of the mean configuration's keypoints from their centroid (px)."""
    return centred_configuration(keypoints_px).pow(2).sum(-1).mean().sqrt().item()


def central_share(keypoints_px: torch.Tensor, size: int, margin: float = 0.15) -> float:
    """Share of keypoints at least ``margin * size`` away from every image border."""
    lo, hi = margin * size - 0.5, (1 - margin) * size - 0.5
    inside = ((keypoints_px >= lo) & (keypoints_px <= hi)).all(dim=-1)
    return inside.float().mean().item()


@torch.no_grad()
def move_keypoint(lat: Latents, k: int, offset: torch.Tensor) -> Latents:
    """Latents with keypoint ``k`` moved by ``offset`` ((B, 2) or (2,), [-1, 1] units)."""
    kp = lat.keypoints.clone()
    kp[:, k] = kp[:, k] + offset
    return lat.replace(keypoints=kp)


@torch.no_grad()
def locality(
    generator: Generator, lat: Latents, shift_px: float | None = None, radius_px: float | None = None, seed: int = 0
) -> dict[str, float]:
    """Share of the image change, when one keypoint moves, that falls near it.

    Args:
        generator: the generator.
        lat: latents of N samples; every keypoint of every sample is moved once, in a random direction.
        shift_px: move length in px (default R / 16).
        radius_px: disk radius around old and new position (default R / 8).

    Returns:
        ``{"locality": mean share of |change| inside the disks, "locality_chance": mean share of the image
        area the disks cover}``; locality well above chance means keypoints control their neighbourhood.
    """
    r = generator.resolution
    shift_px = shift_px or r / 16
    radius_px = radius_px or r / 8
    g = torch.Generator().manual_seed(seed)
    base = render(generator, lat)
    grid = to_pixels(grid2d(r), r)  # (r, r, 2) pixel coords
    shares, areas = [], []
    n, k_count = lat.keypoints.shape[:2]
    for k in range(k_count):
        angle = torch.rand(n, generator=g) * 2 * math.pi
        offset = torch.stack((angle.cos(), angle.sin()), -1) * (shift_px * 2 / r)
        moved = move_keypoint(lat, k, offset.to(lat.keypoints))
        change = (render(generator, moved) - base).abs().sum(1)  # (N, r, r)
        old = to_pixels(lat.keypoints[:, k].float(), r).cpu()
        new = to_pixels(moved.keypoints[:, k].float(), r).cpu()
        d_old = (grid[None] - old[:, None, None]).norm(dim=-1)
        d_new = (grid[None] - new[:, None, None]).norm(dim=-1)
        disk = ((d_old <= radius_px) | (d_new <= radius_px)).float()
        change = change.cpu()
        shares.append((change * disk).sum((1, 2)) / change.sum((1, 2)).clamp_min(1e-8))
        areas.append(disk.mean((1, 2)))
    return {"locality": torch.cat(shares).mean().item(), "locality_chance": torch.cat(areas).mean().item()}


@torch.no_grad()
def keypoint_report(generator: Generator, n: int = 64, seed: int = 12345, n_locality: int = 8) -> dict[str, float]:
    """All diagnostics on ``n`` fresh samples (``n_locality`` of them for the locality measure)."""
    s = sample(generator, n, seed=seed)
    spread = keypoint_spread(s.keypoints)
    out = {
        "kp_spread_min": spread.min().item(),
        "kp_spread_mean": spread.mean().item(),
        "kp_central": central_share(s.keypoints, generator.resolution),
        "kp_extent": configuration_extent(s.keypoints),
        "kp_layout": layout_ratio(s.keypoints),
    }
    out.update(locality(generator, s.latents[:n_locality]))
    out["kp_spread"] = [round(v, 2) for v in spread.tolist()]
    return out
