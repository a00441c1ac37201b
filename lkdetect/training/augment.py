"""Keypoint-aware augmentation of generated (image, keypoints) pairs with albumentations.

Geometry (affine scale, rotation, translation) moves the keypoints with the image; photometric changes (colour
jitter, grayscale, blur, noise, JPEG) make GAN images look more like photos. No horizontal flip: it would swap
left and right keypoints. Keypoints are (x, y) pixels with centres at integer coordinates, which is also the
convention of albumentations' ``Affine`` (checked by a test). Training code only: imports albumentations and cv2.
"""

from __future__ import annotations

import numpy as np

from .config import AugmentConfig


class Augmenter:
    """Applies the configured augmentation to a batch, reproducibly from a seed.

    Args:
        cfg: what to apply and how strongly.
    """

    def __init__(self, cfg: AugmentConfig):
        import albumentations as A
        import cv2

        self.cfg = cfg
        c = cfg
        transforms = [
            A.Affine(
                scale=c.scale,
                rotate=(-c.rotate, c.rotate),
                translate_percent=(-c.translate, c.translate),
                interpolation=cv2.INTER_LINEAR,
                border_mode=cv2.BORDER_CONSTANT,
                fill=0,
                p=c.p_affine,
            ),
            A.ColorJitter(
                brightness=c.brightness, contrast=c.contrast, saturation=c.saturation, hue=c.hue, p=c.p_color
            ),
            A.ToGray(p=c.p_gray),
            A.GaussianBlur(blur_limit=(3, 5), sigma_limit=(0.3, 1.2), p=c.p_blur),
            A.GaussNoise(std_range=c.noise_std, p=c.p_noise),
            A.ImageCompression(quality_range=c.jpeg_quality, p=c.p_jpeg),
        ]
        self.transform = A.Compose(
            transforms, keypoint_params=A.KeypointParams(format="xy", remove_invisible=False), seed=0
        )

    def __call__(self, images: np.ndarray, keypoints: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray]:
        """Augment a batch.

        Args:
            images: (B, H, W, 3) uint8 RGB.
            keypoints: (B, K, 2) float (x, y) pixels, centres at integers.
            seed: fixes every random choice of this call.

        Returns:
            (images (B, H, W, 3) uint8, keypoints (B, K, 2) float32); keypoints may leave the image.
        """
        if not self.cfg.enabled:
            return images, keypoints.astype(np.float32)
        self.transform.set_random_seed(seed)
        out_images, out_kps = np.empty_like(images), np.empty(keypoints.shape, np.float32)
        for i in range(len(images)):
            r = self.transform(image=images[i], keypoints=keypoints[i])
            out_images[i] = r["image"]
            out_kps[i] = np.asarray(r["keypoints"], np.float32)[:, :2]
        return out_images, out_kps
