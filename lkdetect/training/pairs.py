"""Deterministic (image, keypoints) pairs sampled from LatentKeypointGAN release weights (He, Wandt, Rhodin,
arXiv 2103.15812): every generated image comes with its K keypoints, the detector's training targets."""

from __future__ import annotations

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
    """

    def __init__(
        self, gan_path: str | Path, size: int | None = None, batch_size: int = 128, device: str | torch.device = "cpu"
    ):
        check_file(gan_path, "GAN weights")
        self.path = Path(gan_path)
        self.generator, self.info = load_gan(self.path)
        self.generator.to(device)
        self.sha256 = file_sha256(self.path)
        self.resolution = self.generator.resolution
        self.num_keypoints = self.generator.n_keypoints
        self.size = size or self.resolution
        self.batch_size = batch_size

    def get(self, seed: int, start: int, n: int) -> tuple[np.ndarray, np.ndarray]:
        """Pairs ``start .. start + n - 1`` of ``seed``: ((n, S, S, 3) uint8 RGB, (n, K, 2) float32 (x, y) px)."""
        from gan import sample

        s = sample(self.generator, n, seed=seed, start=start, batch_size=self.batch_size)
        images, kps = s.images, s.keypoints.float()
        if self.size != self.resolution:
            images = torch.nn.functional.interpolate(
                images, size=(self.size, self.size), mode="bilinear", align_corners=False, antialias=True
            )
            kps = (kps + 0.5) * (self.size / self.resolution) - 0.5
        u8 = (images.clamp(0, 1) * 255).round().to(torch.uint8).permute(0, 2, 3, 1).contiguous()
        return u8.cpu().numpy(), kps.cpu().numpy()
