"""GAN losses of LatentKeypointGAN (successor's choices): non-saturating logistic loss and a lazy gradient
penalty on real images (R1 form, Mescheder et al. 2018; lazy regularisation as in StyleGAN2)."""

from __future__ import annotations

import torch
import torch.nn.functional as F


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
