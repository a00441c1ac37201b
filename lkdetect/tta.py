"""Test-time augmentation (TTA): average the keypoints found on mirrored and rescaled views of each input.

Every view is made from the preprocessed network input (B, 3, H, W): an optional horizontal mirror, then a zoom
by ``s`` about the image centre (bilinear, border pixels repeated outside), so a point at x appears at
``c + s (x - c)`` with ``c = (W - 1) / 2`` (pixel centres at integers). The network runs once on all views;
each view's keypoints are mapped back by the inverse transform and the views are averaged (scores too).

Mirroring needs to know which keypoint is whose mirror image: the ``flip_permutation`` of the weights' metadata,
estimated without labels at training time (:mod:`lkdetect.training.flip`; ``lkdetect add-flip WEIGHTS`` adds it
to older weights).

TTA costs one network pass per view (six for the default: mirror x scales 0.9, 1.0, 1.1). It is off unless asked
for (``Detector.load(..., tta=True)``, ``detector.tta = TTA(...)``, ``lkdetect eval/detect --tta``; ``--tta-scales``
leaves the mirrored views out, for weights without a flip permutation).
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:  # torch is imported where views are made: parsing --tta on a command line stays light
    import torch


@dataclass(frozen=True)
class TTA:
    """Which views to average: every scale, each also mirrored when ``flip``."""

    scales: tuple[float, ...] = (0.9, 1.0, 1.1)
    flip: bool = True

    def __post_init__(self) -> None:
        scales = tuple(float(s) for s in self.scales)
        if not scales or any(not np.isfinite(s) or s <= 0 for s in scales):
            raise ValueError(f"TTA scales must be positive numbers (at least one), got {self.scales!r}")
        object.__setattr__(self, "scales", scales)

    @property
    def views(self) -> list[tuple[bool, float]]:
        """(mirrored, scale) of every view, the unmirrored ones first."""
        return [(m, s) for m in ((False, True) if self.flip else (False,)) for s in self.scales]

    def __str__(self) -> str:
        return f"{'mirror x ' if self.flip else ''}scales {', '.join(f'{s:g}' for s in self.scales)}"


def add_tta_arguments(p: argparse.ArgumentParser) -> None:
    """``--tta`` (mirror x scales) and ``--tta-scales`` (the scales alone: weights without a flip permutation, such
    as the shipped birds detector), exclusive; :func:`tta_from_args` reads them. Every command that detects takes
    them this way."""
    g = p.add_mutually_exclusive_group()
    g.add_argument(
        "--tta",
        action="store_true",
        help="test-time augmentation: average mirrored views x scales 0.9, 1, 1.1 (6 network passes per image)",
    )
    g.add_argument(
        "--tta-scales",
        action="store_true",
        help="test-time augmentation without the mirrored views: scales 0.9, 1, 1.1 (3 passes; for weights "
        "without a flip permutation)",
    )


def tta_from_args(args: argparse.Namespace) -> TTA | None:
    """The :class:`TTA` that ``--tta`` / ``--tta-scales`` ask for, or None."""
    if getattr(args, "tta", False):
        return TTA()
    if getattr(args, "tta_scales", False):
        return TTA(flip=False)
    return None


def as_tta(value: TTA | bool | None) -> TTA | None:
    """``None``/``False``: off; ``True``: the default :class:`TTA`; a :class:`TTA`: itself."""
    if value is None or value is False:
        return None
    if value is True:
        return TTA()
    if isinstance(value, TTA):
        return value
    raise TypeError(f"tta: expected None, a bool or lkdetect.tta.TTA, got {type(value).__name__}")


def check_permutation(perm: Any, k: int, what: str = "flip_permutation") -> np.ndarray:
    """``perm`` as an int array if it is a permutation of range(k) that is its own inverse; else ValueError."""
    try:
        p = np.asarray(perm, dtype=np.int64)
    except (TypeError, ValueError):
        raise ValueError(f"{what}: expected {k} integers, got {perm!r}") from None
    if p.shape != (k,) or sorted(p.tolist()) != list(range(k)):
        raise ValueError(f"{what}: expected a permutation of 0..{k - 1}, got {perm!r}")
    if not np.array_equal(p[p], np.arange(k)):
        raise ValueError(f"{what}: a mirror pairing must be its own inverse (p[p[i]] == i), got {perm!r}")
    return p


def zoom(batch: torch.Tensor, scale: float) -> torch.Tensor:
    """(B, C, H, W) zoomed by ``scale`` about the centre: content at x moves to c + scale (x - c)."""
    import torch
    import torch.nn.functional as F

    if scale == 1.0:
        return batch
    b, _, h, w = batch.shape
    theta = torch.zeros(b, 2, 3, dtype=batch.dtype, device=batch.device)
    theta[:, 0, 0] = theta[:, 1, 1] = 1.0 / scale
    grid = F.affine_grid(theta, [b, batch.shape[1], h, w], align_corners=False)
    return F.grid_sample(batch, grid, mode="bilinear", padding_mode="border", align_corners=False)


def make_views(batch: torch.Tensor, tta: TTA) -> torch.Tensor:
    """All views of a (B, 3, H, W) batch, stacked view-major: (V * B, 3, H, W)."""
    import torch

    out = []
    for mirrored, scale in tta.views:
        x = batch.flip(-1) if mirrored else batch
        out.append(zoom(x, scale))
    return torch.cat(out)


def merge_views(
    xy: np.ndarray, scores: np.ndarray, tta: TTA, size: tuple[int, int], perm: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray]:
    """Map each view's (V * B, K, 2) keypoints back to the original input and average the views."""
    h, w = size
    centre = np.array([(w - 1) / 2.0, (h - 1) / 2.0])
    views = tta.views
    b = xy.shape[0] // len(views)
    acc_xy, acc_sc = np.zeros((b,) + xy.shape[1:]), np.zeros((b,) + scores.shape[1:])
    for v, (mirrored, scale) in enumerate(views):
        p = (xy[v * b : (v + 1) * b] - centre) / scale + centre
        sc = scores[v * b : (v + 1) * b]
        if mirrored:
            if perm is None:
                raise ValueError("mirrored views need the keypoints' flip permutation")
            p = p.copy()
            p[..., 0] = (w - 1) - p[..., 0]
            p, sc = p[:, perm], sc[:, perm]
        acc_xy += p
        acc_sc += sc
    return acc_xy / len(views), acc_sc / len(views)
