"""GAN losses of LatentKeypointGAN (successor's choices): non-saturating logistic loss and a lazy gradient
penalty on real images (R1 form, Mescheder et al. 2018; lazy regularisation as in StyleGAN2); a penalty on the
generator for not moving and zooming its image with its keypoints (``train.equivariance``); a bound on the keypoints'
spread across samples (``train.kp_spread_max``); a floor on the width of their mean configuration
(``train.kp_minor_min``)."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .generator import Generator, Latents, shift_images
from .keypoint_maps import grid2d


def d_logistic_loss(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    """``softplus(D(fake)) + softplus(-D(real))``, averaged over the batch."""
    return F.softplus(fake_logits).mean() + F.softplus(-real_logits).mean()


def g_nonsaturating_loss(fake_logits: torch.Tensor) -> torch.Tensor:
    """``softplus(-D(fake))``, averaged over the batch."""
    return F.softplus(-fake_logits).mean()


def gradient_penalty(real_logits: torch.Tensor, real_images: torch.Tensor) -> torch.Tensor:
    """``E ||grad_x D(x)||^2`` on real images; ``real_images`` must require grad and produce ``real_logits``."""
    (grad,) = torch.autograd.grad(real_logits.sum(), real_images, create_graph=True)
    return grad.float().square().sum(dim=(1, 2, 3)).mean()


def keypoint_spread_excess(keypoints: torch.Tensor, bound: float) -> torch.Tensor:
    """(B, K, 2) keypoints in [-1, 1] -> mean over keypoints of max(0, spread - ``bound``)^2, the spread being
    sqrt(var_x + var_y) across the batch as a fraction of the image side (``train.kp_spread_max``); 0 for a batch
    whose keypoints all stay within the bound."""
    spread = keypoints.float().var(dim=0, unbiased=False).sum(-1).add(1e-12).sqrt() / 2  # [-1, 1] spans the side
    return (spread - bound).clamp_min(0).square().mean()


def configuration_minor_shortfall(keypoints: torch.Tensor, floor: float) -> torch.Tensor:
    """(B, K, 2) keypoints in [-1, 1] -> max(0, ``floor`` - minor)^2, minor being the standard deviation of the batch's
    mean configuration (the K mean positions) along its narrowest axis, as a fraction of the image side
    (``train.kp_minor_min``); 0 for a configuration at least that wide in every direction. A chain of keypoints (a
    line) has minor 0. The smaller eigenvalue of the 2x2 covariance is taken in closed form (its gradient stays finite
    for a round configuration)."""
    mean = keypoints.float().mean(dim=0)
    centred = mean - mean.mean(dim=0)
    cov = centred.T @ centred / len(centred)
    a, b, c = cov[0, 0], cov[0, 1], cov[1, 1]
    smaller = (a + c) / 2 - (((a - c) / 2).square() + b.square() + 1e-12).sqrt()
    minor = smaller.clamp_min(0).add(1e-12).sqrt() / 2  # [-1, 1] spans the side
    return (floor - minor).clamp_min(0).square()


def equivariance_loss(
    generator: Generator,
    lat: Latents,
    image: torch.Tensor,
    offsets: torch.Tensor,
    scales: torch.Tensor | None = None,
    bg_offset: torch.Tensor | None = None,
) -> torch.Tensor:
    """How far the generator is from drawing what its keypoints say (``train.equivariance``).

    Renders ``lat`` again with its keypoints moved as a whole: zoomed by ``scales`` (B,) about the image centre when
    given, then translated by ``offsets`` (B, 2), (x, y) fractions of the side (a composite background moved with
    them, on top of its own ``bg_offset``); returns the mean absolute difference to ``image`` (the first rendering)
    moved the same way, over the pixels whose content was inside the first image (elsewhere the moved image shows a
    reflection, not content). 0 for a generator whose image moves with its keypoints.

    Only the second rendering carries gradients, and only into the generator's rendering: the latents and the
    first image are detached, so that the penalty trains the renderer to follow the keypoints and cannot move the
    keypoints themselves (with gradients into the latents the face GAN's ten keypoints clumped at one place).
    """
    n, size = image.shape[0], image.shape[-1]
    scale = torch.ones(n, device=image.device) if scales is None else scales.to(image.device, torch.float32)
    offsets = offsets.to(image.device, torch.float32)
    lat = lat.detach()
    kp = lat.keypoints * scale[:, None, None].to(lat.keypoints) + 2 * offsets[:, None].to(lat.keypoints)
    bg_off, bg_scale = None, None
    if generator.cfg.background == "composite":  # content at p -> s (p + 2 b) + 2 t: offset s b + t, scale s
        bg_off = offsets if bg_offset is None else bg_offset.to(offsets) * scale[:, None] + offsets
        bg_scale = scales
    second = generator.render(lat.replace(keypoints=kp), bg_off, bg_scale)
    target = shift_images(image.detach(), offsets, scales)
    source = (grid2d(size, image.device)[None] - 2 * offsets[:, None, None]) / scale[:, None, None, None]
    inside = (source.abs() <= 1 - 1 / size).all(dim=-1).unsqueeze(1)  # (B, 1, s, s): no reflection in reach
    if not inside.any():
        raise ValueError("the moves take every pixel's content outside the image: nothing to compare")
    diff = (second.float() - target.float()).abs() * inside
    return diff.sum() / (inside.sum() * image.shape[1])
