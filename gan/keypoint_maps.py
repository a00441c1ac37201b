"""Keypoint maps of LatentKeypointGAN (He et al., arXiv 2103.15812, Sec. 3).

Coordinates are normalised to [-1, 1], (x, y) order, with pixel centres on the grid
``p_i = (2 i + 1) / r - 1`` (the ``align_corners=False`` convention). In pixels of an r-sized image that is
``x_px = (x + 1) * r / 2 - 0.5``, so pixel centres sit at integer coordinates.
"""

from __future__ import annotations

import torch


def grid2d(size: int, device: torch.device | None = None, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """Pixel-centre coordinates of a ``size`` x ``size`` map.

    Returns:
        (size, size, 2) tensor of (x, y) in [-1, 1]; ``grid[i, j] = (x_j, y_i)``.
    """
    c = (torch.arange(size, device=device, dtype=dtype) * 2 + 1) / size - 1
    y, x = torch.meshgrid(c, c, indexing="ij")
    return torch.stack((x, y), dim=-1)


def to_pixels(xy: torch.Tensor, size: int) -> torch.Tensor:
    """Normalised [-1, 1] coordinates to pixel coordinates of a ``size`` image (centres at integers)."""
    return (xy + 1) * (size / 2) - 0.5


def to_normalized(xy_px: torch.Tensor, size: int) -> torch.Tensor:
    """Inverse of :func:`to_pixels`."""
    return (xy_px + 0.5) * (2 / size) - 1


def gaussian_heatmaps(keypoints: torch.Tensor, size: int, tau: float | torch.Tensor) -> torch.Tensor:
    """Gaussian heatmaps ``H_k(p) = exp(-||p - k_k||^2 / tau)``.

    Args:
        keypoints: (B, K, 2) in [-1, 1], (x, y).
        size: side of the map in pixels.
        tau: width; a float, or a (B, K) / (K,) tensor for per-keypoint widths.

    Returns:
        (B, K, size, size) in (0, 1].
    """
    g = grid2d(size, keypoints.device, keypoints.dtype)  # (s, s, 2)
    # Separable: exp(-(dx^2 + dy^2)/tau) = exp(-dx^2/tau) * exp(-dy^2/tau); cheaper than the full distance map.
    dx = g[0, :, 0].view(1, 1, size) - keypoints[..., 0:1]  # (B, K, s)
    dy = g[:, 0, 1].view(1, 1, size) - keypoints[..., 1:2]
    if isinstance(tau, torch.Tensor):
        tau = tau.to(keypoints).expand(keypoints.shape[:2]).unsqueeze(-1)
    hx = torch.exp(-dx.square() / tau)
    hy = torch.exp(-dy.square() / tau)
    return hy.unsqueeze(-1) * hx.unsqueeze(-2)


def background_map(heatmaps: torch.Tensor) -> torch.Tensor:
    """``H_bg = 1 - max_k H_k``; (B, K, s, s) -> (B, 1, s, s)."""
    return 1 - heatmaps.amax(dim=1, keepdim=True)


def normalised_part_masks(heatmaps: torch.Tensor, bg_level: float) -> torch.Tensor:
    """Part masks that share every pixel (GANSeg-style): ``M_k = H_k / (sum_j H_j + c)``, ``M_bg = c / (...)``.

    Where a keypoint's Gaussian exceeds the background level ``c`` its part owns the pixel, split between
    neighbouring parts in proportion to their heatmaps, so the parts tile the object instead of covering small
    discs. (B, K, s, s) -> (B, K + 1, s, s), summing to 1 over the K + 1 channels; background last.
    """
    denom = heatmaps.sum(dim=1, keepdim=True) + bg_level
    return torch.cat((heatmaps / denom, bg_level / denom), dim=1)


def conditioning_map(
    heatmaps: torch.Tensor,
    kp_embed: torch.Tensor,
    bg_embed: torch.Tensor,
    mode: str = "sum",
    bg: torch.Tensor | None = None,
) -> torch.Tensor:
    """The spatial conditioning of the generator.

    Args:
        heatmaps: (B, K, s, s) keypoint heatmaps, a subset of keypoints may be zeroed (removed parts).
        kp_embed: (B, K, D) keypoint embeddings ``w_k``.
        bg_embed: (B, D) background embedding ``w_bg``.
        mode: ``"sum"``: ``sum_k H_k w_k + H_bg w_bg`` -> (B, D, s, s); ``"concat"``: the per-keypoint maps
            ``H_k w_k`` and ``H_bg w_bg`` stacked -> (B, (K + 1) D, s, s).
        bg: (B, 1, s, s) background map when already computed; default ``background_map(heatmaps)``.
    """
    h_bg = background_map(heatmaps) if bg is None else bg
    if mode == "sum":
        fg = torch.einsum("bkhw,bkd->bdhw", heatmaps, kp_embed)
        return fg + h_bg * bg_embed[:, :, None, None]
    if mode == "concat":
        b, k, s, _ = heatmaps.shape
        fg = (heatmaps.unsqueeze(2) * kp_embed[:, :, :, None, None]).reshape(b, -1, s, s)
        return torch.cat((fg, h_bg * bg_embed[:, :, None, None]), dim=1)
    raise ValueError(f"conditioning mode must be 'sum' or 'concat', got {mode!r}")


def conditioning_channels(n_keypoints: int, embed_dim: int, mode: str) -> int:
    """Channel count of :func:`conditioning_map` output."""
    return embed_dim if mode == "sum" else (n_keypoints + 1) * embed_dim


def keypoint_offsets(keypoints: torch.Tensor, size: int) -> torch.Tensor:
    """Offsets ``p - k_k`` of every pixel to every keypoint: (B, K, 2) -> (B, 2K, size, size).

    This is the generator's only source of spatial layout (keypoint-relative positional start).
    """
    g = grid2d(size, keypoints.device, keypoints.dtype)  # (s, s, 2)
    diff = g.view(1, 1, size, size, 2) - keypoints[:, :, None, None, :]  # (B, K, s, s, 2)
    b, k = keypoints.shape[:2]
    return diff.permute(0, 1, 4, 2, 3).reshape(b, 2 * k, size, size)
