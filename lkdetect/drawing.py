"""Drawing keypoints on images with PIL (no OpenCV needed)."""

from __future__ import annotations

import colorsys
from typing import Any

import numpy as np
from PIL import Image, ImageDraw


def palette(k: int) -> list[tuple[int, int, int]]:
    """``k`` well-separated RGB colours; keypoint i keeps its colour everywhere."""
    return [tuple(int(255 * c) for c in colorsys.hsv_to_rgb(i / max(k, 1), 0.9, 1.0)) for i in range(k)]


def draw_keypoints(
    image: Any, xy: np.ndarray, scores: np.ndarray | None = None, radius: float | None = None, min_score: float = 0.0
) -> Any:
    """Draw (K, 2) pixel keypoints on a copy of a PIL image or an HxWx3 uint8 RGB array (returns the same kind)."""
    as_array = isinstance(image, np.ndarray)
    if as_array:
        if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
            raise ValueError(f"draw expects an HxWx3 uint8 RGB array, got {image.dtype} {image.shape}")
        img = Image.fromarray(image)
    elif isinstance(image, Image.Image):
        img = image.convert("RGB")
    else:
        raise TypeError(f"draw expects a PIL image or a numpy array, got {type(image).__name__}")
    img = img.copy()
    r = radius if radius is not None else max(1.5, min(img.size) / 64)
    draw = ImageDraw.Draw(img)
    for i, ((x, y), color) in enumerate(zip(np.asarray(xy, dtype=float), palette(len(xy)))):
        if scores is not None and scores[i] < min_score:
            continue
        draw.ellipse([x - r, y - r, x + r, y + r], fill=color, outline=(0, 0, 0))
    return np.asarray(img) if as_array else img
