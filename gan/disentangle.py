"""How well position and appearance come apart (He et al., arXiv 2103.15812, Sec. 4.1 and 4.4).

- :func:`move_locality`: move one keypoint; which share of the image change falls near it
  (:func:`gan.diagnostics.locality`, against the share of the image the neighbourhood covers).
- :func:`swap_keypoint_shift`: exchange the embeddings (or background) of two samples; how far an independent
  keypoint detector's keypoints move, in pixels. Positions are untouched by the swap, so a disentangled
  generator keeps the detected keypoints in place; the distance between the two samples' detections is the
  reference scale. The detector is a callable so that ``gan`` imports nothing of ``lkdetect``.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from . import edit
from .diagnostics import locality
from .generator import Generator, Latents

Detect = Callable[[torch.Tensor], torch.Tensor]  # (N, 3, R, R) in [0, 1] -> (N, K', 2) pixels (x, y)


def move_locality(
    generator: Generator, lat: Latents, shift_px: float | None = None, radius_px: float | None = None, seed: int = 0
) -> dict[str, float]:
    """Share of the image change near a moved keypoint; see :func:`gan.diagnostics.locality`.

    Returns:
        ``{"locality", "locality_chance", "locality_ratio"}``; the ratio (locality / chance) is 1 for an image
        change spread evenly over the image and grows as the change concentrates near the moved keypoint.
    """
    out = locality(generator, lat, shift_px=shift_px, radius_px=radius_px, seed=seed)
    out["locality_ratio"] = out["locality"] / max(out["locality_chance"], 1e-8)
    return out


@torch.no_grad()
def swap_keypoint_shift(
    generator: Generator, a: Latents, b: Latents, detect: Detect, what: str = "embeddings", parts: edit.Parts = None
) -> dict[str, float]:
    """Detected keypoint motion when appearance is exchanged between pairs of samples.

    Args:
        generator: the generator.
        a, b: latents of N samples each; sample i of a is paired with sample i of b.
        detect: images (N, 3, R, R) in [0, 1] -> (N, K', 2) pixel keypoints (x, y).
        what: ``"embeddings"`` (keypoint embeddings of ``parts``) or ``"background"``.
        parts: parts whose embeddings are exchanged; ``None`` = all.

    Returns:
        ``{"swap_shift_px": mean distance between each sample's detections before and after the swap,
        "pose_change_px": mean distance between the detections of a and of b (reference scale),
        "swap_shift_ratio": their ratio}``; a small ratio means appearance does not move the geometry.
    """
    if what == "embeddings":
        a2, b2 = edit.swap_embeddings(a, b, parts)
    elif what == "background":
        a2, b2 = edit.swap_background(a, b)
    else:
        raise ValueError(f"what must be 'embeddings' or 'background', got {what!r}")
    n = a.keypoints.shape[0]
    images = edit.render(generator, Latents.cat([a, b, a2, b2]))
    kp = torch.as_tensor(detect(images), dtype=torch.float64)
    if kp.ndim != 3 or kp.shape[0] != 4 * n or kp.shape[-1] != 2:
        raise ValueError(f"detect must return ({4 * n}, K, 2) pixel keypoints, got {tuple(kp.shape)}")
    ka, kb, ka2, kb2 = kp.split(n)
    shift = torch.cat(((ka2 - ka).norm(dim=-1), (kb2 - kb).norm(dim=-1))).mean().item()
    pose = (kb - ka).norm(dim=-1).mean().item()
    return {"swap_shift_px": shift, "pose_change_px": pose, "swap_shift_ratio": shift / max(pose, 1e-8)}
