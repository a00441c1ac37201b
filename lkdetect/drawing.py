"""Drawing keypoints, in one place: on images with PIL (:func:`draw_keypoints`, no OpenCV needed) and on video
frames with OpenCV (:func:`draw_result`, imported lazily); one colour per keypoint everywhere (:func:`palette`)."""

from __future__ import annotations

import colorsys
from typing import TYPE_CHECKING, Any

import numpy as np
from PIL import Image, ImageDraw

if TYPE_CHECKING:
    from .video.pipeline import FrameResult


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


def draw_result(
    frame: np.ndarray, result: FrameResult, bgr: bool = True, radius: int | None = None, show_region: bool = True
) -> np.ndarray:
    """Draw a frame's keypoints (one colour per keypoint, as :func:`lkdetect.drawing.palette`) and region box
    in place on an HxWx3 uint8 frame with OpenCV; returns the frame."""
    import cv2

    r = radius if radius is not None else max(2, round(min(frame.shape[:2]) / 120))
    colours = palette(result.keypoints.num_keypoints)
    if show_region:
        x, y, w, h = result.region
        cv2.rectangle(frame, (x, y), (x + w - 1, y + h - 1), (255, 255, 255), 1, cv2.LINE_8)
    for (px, py), colour in zip(result.keypoints.xy, colours, strict=True):
        if not (np.isfinite(px) and np.isfinite(py)):
            continue
        c = colour[::-1] if bgr else colour
        centre = (int(round(px)), int(round(py)))
        cv2.circle(frame, centre, r + 1, (0, 0, 0), -1, cv2.LINE_AA)
        cv2.circle(frame, centre, r, tuple(int(v) for v in c), -1, cv2.LINE_AA)
    return frame
