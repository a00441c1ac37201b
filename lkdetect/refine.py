"""Scale-normalising refinement: detect again on a square box fitted to the first detection's keypoints.

A detector sees each image (or box) resized to its small input size, so a face that fills a third of a wide
image gets few input pixels, and faces cropped at different scales reach the network at different scales. With
refinement on, the keypoints of the first pass decide a square box centred on their centroid, whose side is
``side`` times their spread (the root-mean-square distance of the K keypoints from their centroid), and the
detector runs again on that box (``passes`` times). Every object then reaches the network at about the same
scale, whatever its size and place in the image; boxes may extend past the image (padded black).

Default side: 3.5 [choice, measured]. Chosen for the shipped face detector inside the MTFL *training* split
(5-fold CV of the landmark regression, ``lkdetect train-cv mtfl ... --zoom 1.5 --refine SIDE``) among
sides 2 to 6 with one or two passes, read both on the faces as they are and on faces zoomed 1.5x for scoring only
(a train/test scale shift like the benchmark's): one pass at 3.5 came within 0.11 points of the best (two passes
at 3.5) in both readings, at half the cost. On the CUB birds detector it did not help (face detector card).

Not for tracking loops: placing each video frame's box by this rule from the previous frame's refined keypoints
let the box shrink frame after frame on the face video (the keypoints' spread fell from about 77 to 13 px), since
the refined constellation comes out slightly smaller (median spread ratio 0.994 on 2,000 MTFL training faces,
which compounds over hundreds of frames); the face tracker (``lkdetect.video.roi``) keeps its own margin.

Refinement costs one more detection per pass; it is off unless asked for (``Detector.load(..., refine=True)``,
``detector.refine = Refine(...)``, ``lkdetect detect/eval --refine``).
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass

import numpy as np

MIN_SIDE_PX = 4.0  # a box never shrinks below this many image pixels (degenerate detections)


@dataclass(frozen=True)
class Refine:
    """Refinement settings: box side in units of the keypoints' RMS spread, and how many extra passes."""

    side: float = 3.5
    passes: int = 1

    def __post_init__(self) -> None:
        side = float(self.side)
        if not np.isfinite(side) or side <= 0:
            raise ValueError(f"refine side must be a positive number (times the keypoints' spread), got {self.side!r}")
        if isinstance(self.passes, bool) or not isinstance(self.passes, (int, np.integer)) or self.passes < 1:
            raise ValueError(f"refine passes must be an integer >= 1, got {self.passes!r}")
        object.__setattr__(self, "side", side)
        object.__setattr__(self, "passes", int(self.passes))

    def __str__(self) -> str:
        return f"box {self.side:g} x keypoint spread, {self.passes} pass{'es' if self.passes > 1 else ''}"


def as_refine(value: Refine | bool | float | None) -> Refine | None:
    """``None``/``False``: off; ``True``: the default :class:`Refine`; a number: ``Refine(side=number)``."""
    if value is None or value is False:
        return None
    if value is True:
        return Refine()
    if isinstance(value, Refine):
        return value
    if isinstance(value, (int, float, np.integer, np.floating)):
        return Refine(side=float(value))
    raise TypeError(f"refine: expected None, a bool, a number or lkdetect.refine.Refine, got {type(value).__name__}")


def spread(xy: np.ndarray) -> np.ndarray:
    """(..., K, 2) keypoints -> (...,) root-mean-square distance of the keypoints from their centroid."""
    xy = np.asarray(xy, dtype=np.float64)
    centred = xy - xy.mean(axis=-2, keepdims=True)
    return np.sqrt((centred**2).sum(axis=-1).mean(axis=-1))


def refine_boxes(xy: np.ndarray, side: float) -> np.ndarray:
    """(B, K, 2) keypoints in image pixels -> (B, 4) square (x, y, w, h) boxes (float) centred on each centroid,
    of side ``side`` x spread (at least ``MIN_SIDE_PX``)."""
    xy = np.asarray(xy, dtype=np.float64)
    if xy.ndim != 3 or xy.shape[-1] != 2 or xy.shape[1] == 0:
        raise ValueError(f"expected keypoints of shape (B, K, 2) with K >= 1, got {xy.shape}")
    if not np.isfinite(xy).all():
        raise ValueError("cannot place a refinement box around non-finite keypoints")
    centre = xy.mean(axis=1)
    s = np.maximum(side * spread(xy), MIN_SIDE_PX)
    return np.stack([centre[:, 0] - s / 2, centre[:, 1] - s / 2, s, s], axis=1)


def add_refine_argument(p: argparse.ArgumentParser) -> None:
    """``--refine [SIDE]`` on a command line: absent -> None (off), bare -> the default side, else SIDE (> 0).

    The value goes to :func:`as_refine` (``Detector.load(..., refine=args.refine)``); every command that detects
    (``lkdetect detect/eval/video/train-cv``) takes it this way."""
    side = Refine().side
    p.add_argument(
        "--refine",
        nargs="?",
        type=float,
        const=side,
        default=None,
        metavar="SIDE",
        help=f"detect again on a square box around the first keypoints, SIDE times their spread (default {side:g}): "
        "every object reaches the network at the same scale; one more detection per image",
    )
