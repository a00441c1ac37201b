"""A keypoint reader for training (``train.kp_recon``, issue 20's keypoint drift): a small network that reads
the generator's keypoints back from its images. The reader learns to read them from the fakes; the generator's
renderer pays for what the reader cannot read, so that every keypoint is drawn where it is (InfoGAN's idea,
Chen et al. 2016, with the keypoints as the code): a keypoint the image does not show cannot be read. On faces the
reader read them to about 1 px while the face's geometry still followed the appearance noise: a network trained
on the renders can find cues that are not the face's geometry (CHANGELOG; ``lkdetect gan-readability``)."""

from __future__ import annotations

import torch
import torch.nn as nn

from .generator import Latents
from .keypoint_maps import grid2d


class KeypointReader(nn.Module):
    """Image (B, 3, R, R) in [-1, 1] -> keypoints (B, K, 2) in [-1, 1], (x, y): convolutions down to R / 4,
    one heatmap per keypoint, spatial soft-argmax."""

    def __init__(self, n_keypoints: int, resolution: int, width: int = 32):
        super().__init__()
        if resolution < 8 or resolution % 4:
            raise ValueError(f"the keypoint reader needs a resolution >= 8 divisible by 4, got {resolution}")
        c1, c2, c3 = width, 2 * width, 2 * width
        self.body = nn.Sequential(
            nn.Conv2d(3, c1, 3, padding=1), nn.LeakyReLU(0.2),
            nn.Conv2d(c1, c2, 3, stride=2, padding=1), nn.LeakyReLU(0.2),
            nn.Conv2d(c2, c2, 3, padding=1), nn.LeakyReLU(0.2),
            nn.Conv2d(c2, c3, 3, stride=2, padding=1), nn.LeakyReLU(0.2),
            nn.Conv2d(c3, c3, 3, padding=2, dilation=2), nn.LeakyReLU(0.2),
            nn.Conv2d(c3, c3, 3, padding=4, dilation=4), nn.LeakyReLU(0.2),
            nn.Conv2d(c3, n_keypoints, 1),
        )  # fmt: skip
        self.register_buffer("grid", grid2d(resolution // 4).reshape(-1, 2), persistent=False)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        logits = self.body(images).flatten(2).float()  # (B, K, s * s)
        return logits.softmax(-1) @ self.grid


def keypoint_reading_error(reader: KeypointReader, images: torch.Tensor, lat: Latents) -> torch.Tensor:
    """Mean absolute difference between the keypoints ``reader`` reads from ``images`` and ``lat``'s (detached),
    in [-1, 1] units (x R / 2 for pixels); only visible keypoints count."""
    target = lat.keypoints.detach().float()
    vis = lat.visible.detach().float()[..., None]
    diff = (reader(images) - target).abs() * vis
    return diff.sum() / (vis.sum() * 2).clamp_min(1)
