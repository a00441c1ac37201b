"""Pictures of generated images with their keypoints (PIL only; no GUI toolkit)."""

from __future__ import annotations

import colorsys
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw


def palette(k: int) -> list[tuple[int, int, int]]:
    """``k`` well-separated RGB colours, the same for a given k everywhere (keypoint k keeps its colour)."""
    return [tuple(int(255 * c) for c in colorsys.hsv_to_rgb(i / max(k, 1), 0.9, 1.0)) for i in range(k)]


def to_pil(image: torch.Tensor) -> Image.Image:
    """(3, H, W) float in [0, 1] -> PIL RGB."""
    arr = (image.detach().float().clamp(0, 1) * 255 + 0.5).to(torch.uint8).permute(1, 2, 0).cpu().numpy()
    return Image.fromarray(np.ascontiguousarray(arr))


def draw_keypoints(
    img: Image.Image,
    keypoints_px: torch.Tensor | np.ndarray,
    scale: float = 1.0,
    radius: float = 2.0,
    marker: str = "dot",
) -> Image.Image:
    """Draw (K, 2) pixel keypoints (x, y) on a copy of ``img`` (already scaled by ``scale``)."""
    img = img.copy()
    draw = ImageDraw.Draw(img)
    if isinstance(keypoints_px, torch.Tensor):  # may live on the GPU during training
        keypoints_px = keypoints_px.detach().cpu()
    kp = np.asarray(keypoints_px, dtype=np.float64)
    for (x, y), color in zip(kp, palette(len(kp))):
        cx, cy = (x + 0.5) * scale - 0.5, (y + 0.5) * scale - 0.5
        if marker == "cross":
            draw.line([(cx - radius, cy), (cx + radius, cy)], fill=color, width=2)
            draw.line([(cx, cy - radius), (cx, cy + radius)], fill=color, width=2)
        else:
            draw.ellipse([cx - radius, cy - radius, cx + radius, cy + radius], fill=color, outline=(0, 0, 0))
    return img


def sample_grid(
    images: torch.Tensor, keypoints_px: torch.Tensor | None = None, nrow: int = 8, scale: int = 2, pad: int = 2
) -> Image.Image:
    """A grid of (N, 3, R, R) images in [0, 1], upscaled by ``scale``, keypoints drawn when given."""
    n, _, h, w = images.shape
    ncol = min(nrow, n)
    nrows = (n + ncol - 1) // ncol
    tile_w, tile_h = w * scale, h * scale
    grid = Image.new("RGB", (ncol * (tile_w + pad) + pad, nrows * (tile_h + pad) + pad), (255, 255, 255))
    for i in range(n):
        tile = to_pil(images[i]).resize((tile_w, tile_h), Image.Resampling.NEAREST)
        if keypoints_px is not None:
            tile = draw_keypoints(tile, keypoints_px[i], scale=scale, radius=max(2.0, scale * 1.2))
        r, c = divmod(i, ncol)
        grid.paste(tile, (pad + c * (tile_w + pad), pad + r * (tile_h + pad)))
    return grid


def save_png(img: Image.Image, path: str | Path) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    img.save(path)
