"""Deterministic (image, keypoints) pairs sampled from LatentKeypointGAN release weights (He, Wandt, Rhodin,
arXiv 2103.15812): every generated image comes with its K keypoints, the detector's training targets."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from ..errors import check_file
from ..weights import file_sha256
from .gan_weights import load_gan

VAL_SEED_OFFSET = 7919  # validation pairs come from GAN seed (seed + this), never seen in training


class GanPairs:
    """Deterministic (image, keypoints) pairs from GAN release weights, at the detector's input size.

    Args:
        gan_path: weights written by ``lkdetect train-gan`` (``generator_ema.safetensors``).
        size: detector input side S; images are resized from the GAN's R and keypoints mapped exactly.
        batch_size: GAN rendering batch.
        device: where the GAN renders ("cpu" or a CUDA device: the detector trainer's); pairs come back on the CPU.
        keypoints: which of the GAN's keypoints the pairs carry, in that order (a detector that keeps a subset,
            ``lkdetect keep-keypoints``); None = all K.

    Raises:
        ValueError: ``keypoints`` names an index outside 0..K-1, none, or one twice.
    """

    def __init__(
        self,
        gan_path: str | Path,
        size: int | None = None,
        batch_size: int = 128,
        device: str | torch.device = "cpu",
        keypoints: Sequence[int] | None = None,
    ):
        check_file(gan_path, "GAN weights")
        self.path = Path(gan_path)
        self.generator, self.info = load_gan(self.path)
        self.generator.to(device)
        self.sha256 = file_sha256(self.path)
        self.resolution = self.generator.resolution
        k = self.generator.n_keypoints
        self.keypoints = list(range(k)) if keypoints is None else [int(i) for i in keypoints]
        if (
            not self.keypoints
            or len(set(self.keypoints)) != len(self.keypoints)
            or not all(0 <= i < k for i in self.keypoints)
        ):
            raise ValueError(f"{self.path} has keypoints 0..{k - 1}; cannot keep {list(keypoints or [])}")
        self.num_keypoints = len(self.keypoints)
        self.size = size or self.resolution
        self.batch_size = batch_size

    def get(self, seed: int, start: int, n: int) -> tuple[np.ndarray, np.ndarray]:
        """Pairs ``start .. start + n - 1`` of ``seed``: ((n, S, S, 3) uint8 RGB, (n, K', 2) float32 (x, y) px) with
        K' = ``num_keypoints`` (the kept keypoints)."""
        from gan import sample

        s = sample(self.generator, n, seed=seed, start=start, batch_size=self.batch_size)
        images, kps = s.images, s.keypoints.float()[:, self.keypoints]
        if self.size != self.resolution:
            images = torch.nn.functional.interpolate(
                images, size=(self.size, self.size), mode="bilinear", align_corners=False, antialias=True
            )
            kps = (kps + 0.5) * (self.size / self.resolution) - 0.5
        u8 = (images.clamp(0, 1) * 255).round().to(torch.uint8).permute(0, 2, 3, 1).contiguous()
        return u8.cpu().numpy(), kps.cpu().numpy()
