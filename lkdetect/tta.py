"""Test-time augmentation (TTA): average the keypoints found on mirrored and rescaled views of each input.

Every view is made from the preprocessed network input (B, 3, H, W): an optional horizontal mirror, then a zoom
by ``s`` about the image centre (bilinear, border pixels repeated outside), so a point at x appears at
``c + s (x - c)`` with ``c = (W - 1) / 2`` (pixel centres at integers). The network runs once on all views;
each view's keypoints are mapped back by the inverse transform and the views are averaged (scores too).

Mirroring needs to know which keypoint is whose mirror image. Latent keypoints have no names, so that
permutation is estimated without labels from the detector itself (:func:`flip_permutation`): detect on images
and on their mirror images, mirror the second detections back, and pair keypoints (or keep a keypoint as its own
partner, one on the symmetry axis) so that paired keypoints lie closest on average. ``lkdetect train-detector``
stores it in the weights' metadata (``flip_permutation`` and ``flip_match_px``, the mean distance of each pair
in input pixels); ``python -m lkdetect.tta WEIGHTS`` adds it to older weights, from the source GAN's samples
(:func:`lkdetect.train_detector.add_flip_permutation`).

TTA costs one network pass per view (six for the default: mirror x scales 0.9, 1.0, 1.1). It is off unless asked
for (``Detector.load(..., tta=True)``, ``detector.tta = TTA(...)``, ``lkdetect eval/detect --tta``).
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

EXACT_MAX_K = 16  # exact pairing (2^K states) up to this K, greedy above


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
    if scale == 1.0:
        return batch
    b, _, h, w = batch.shape
    theta = torch.zeros(b, 2, 3, dtype=batch.dtype, device=batch.device)
    theta[:, 0, 0] = theta[:, 1, 1] = 1.0 / scale
    grid = F.affine_grid(theta, [b, batch.shape[1], h, w], align_corners=False)
    return F.grid_sample(batch, grid, mode="bilinear", padding_mode="border", align_corners=False)


def make_views(batch: torch.Tensor, tta: TTA) -> torch.Tensor:
    """All views of a (B, 3, H, W) batch, stacked view-major: (V * B, 3, H, W)."""
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


def flip_permutation(xy: np.ndarray, xy_mirrored: np.ndarray, width: int) -> tuple[np.ndarray, np.ndarray]:
    """Pair each keypoint with its mirror image from detections on images and on their mirror images.

    Args:
        xy: (N, K, 2) keypoints detected on N images, in pixels of images ``width`` pixels wide.
        xy_mirrored: (N, K, 2) keypoints detected on the mirrored images, in the mirrored images' pixels.
        width: image width in pixels.

    Returns:
        ``perm`` (K,) with ``perm[perm] == arange(K)``: keypoint i of an image corresponds to keypoint
        ``perm[i]`` of its mirror image; and ``match_px`` (K,), the mean distance between keypoint i and its
        partner mirrored back (small: a clean symmetry; large: the constellation has no mirror image).

    The pairing minimises the total of the symmetrised mean distances (a keypoint may pair with itself: it lies
    on the symmetry axis): exactly, by dynamic programming over subsets, for K <= 16; greedily (closest pair
    first) above that.
    """
    a = np.asarray(xy, dtype=np.float64)
    b = np.asarray(xy_mirrored, dtype=np.float64).copy()
    if a.ndim != 3 or a.shape[-1] != 2 or a.shape != b.shape or a.shape[0] == 0:
        raise ValueError(f"expected two (N, K, 2) arrays of the same shape with N >= 1, got {a.shape} and {b.shape}")
    b[..., 0] = (width - 1) - b[..., 0]
    cost = np.linalg.norm(a[:, :, None] - b[:, None], axis=-1).mean(0)
    sym = 0.5 * (cost + cost.T)
    perm = _best_pairing(sym) if sym.shape[0] <= EXACT_MAX_K else _greedy_pairing(sym)
    return perm, sym[np.arange(len(perm)), perm]


def _best_pairing(cost: np.ndarray) -> np.ndarray:
    """The pairing (involution) of minimum total cost; ``cost[i, i]`` is the cost of i as its own partner."""
    k = cost.shape[0]
    best: dict[int, tuple[float, tuple[tuple[int, int], ...]]] = {(1 << k) - 1: (0.0, ())}

    def solve(used: int) -> tuple[float, tuple[tuple[int, int], ...]]:
        if used in best:
            return best[used]
        i = next(n for n in range(k) if not used >> n & 1)  # the lowest free keypoint pairs now
        options = []
        for j in range(i, k):
            if not used >> j & 1:
                rest_cost, rest = solve(used | 1 << i | 1 << j)
                options.append((cost[i, j] * (1 if i == j else 2) + rest_cost, ((i, j),) + rest))
        best[used] = min(options, key=lambda o: o[0])
        return best[used]

    perm = np.arange(k)
    for i, j in solve(0)[1]:
        perm[i], perm[j] = j, i
    return perm


def _greedy_pairing(cost: np.ndarray) -> np.ndarray:
    k = cost.shape[0]
    perm = -np.ones(k, dtype=np.int64)
    for flat in np.argsort(cost, axis=None, kind="stable"):
        i, j = divmod(int(flat), k)
        if perm[i] < 0 and perm[j] < 0:
            perm[i], perm[j] = j, i
    return perm


@torch.no_grad()
def estimate_flip_permutation(
    network: torch.nn.Module, images: torch.Tensor, batch_size: int = 256
) -> tuple[np.ndarray, np.ndarray]:
    """:func:`flip_permutation` of a keypoint network ((B, 3, H, W) -> (xy px, scores)) on ``images`` in [0, 1]."""
    if images.ndim != 4 or images.shape[0] == 0:
        raise ValueError(f"expected a non-empty (N, 3, H, W) batch, got shape {tuple(images.shape)}")
    device = next(network.parameters()).device
    network.eval()
    a, b = [], []
    for s in range(0, images.shape[0], batch_size):
        x = images[s : s + batch_size].to(device)
        a.append(network(x)[0].double().cpu().numpy())
        b.append(network(x.flip(-1))[0].double().cpu().numpy())
    return flip_permutation(np.concatenate(a), np.concatenate(b), images.shape[-1])


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="add the keypoints' flip permutation (mirrored TTA) to detector weights")
    ap.add_argument("weights", help="detector weights file (rewritten in place, atomically)")
    ap.add_argument("--gan", default=None, help="GAN weights to sample from (default: the one the metadata names)")
    ap.add_argument("-n", type=int, default=None, help="GAN samples (default: as many as training validated on)")
    args = ap.parse_args(argv)
    from .train_detector import add_flip_permutation

    meta = add_flip_permutation(args.weights, args.gan, args.n)
    print(f"{args.weights}: flip_permutation {meta['flip_permutation']}, match px {meta['flip_match_px']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
