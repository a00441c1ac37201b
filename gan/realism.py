"""An offline realism measure on the features of a fixed, seeded random convolutional network ("rkid-v1").

No pretrained network (Inception or other) can be fetched here, so the feature extractor is a fixed recipe:
four 3x3 conv + ReLU stages (3 -> 32 -> 64 -> 128 -> 256 channels, 2x average pooling between them) with
weights drawn from N(0, 2 / fan_in) by a ``torch.Generator`` seeded with :data:`FEATURE_SEED`, on images
resized to 64 px. An image's feature is, per stage, the spatial mean and standard deviation of every channel
(960 numbers): texture statistics at four scales (sharpness, noise, colour and contrast distributions). They do
not know what a face is; read the measures as distances of low-level image statistics, sensitive to blur and
artefacts, not as a semantic FID. Two numbers on those features:

- ``kid_x1000``: KID (Binkowski et al. 2018), the unbiased MMD^2 between the real and generated feature sets
  with the cubic polynomial kernel ``k(x, y) = (x . y / d + 1)^3``, both sets divided by one scalar (the real
  features' root mean square), x 1000. ~0 for two samples of one distribution (it can be slightly negative).
- ``c2st_acc``: a two-sample classifier test. The features, standardised by the real set's mean and standard
  deviation, of both sets are split in two halves (seeded); an L2-regularised logistic regression (weight
  :data:`C2ST_L2`, L-BFGS, float64) is fitted on one half and its accuracy read on the other, and the reverse;
  the mean of the two held-out accuracies. 0.5 = indistinguishable, 1 = always told apart.

Numbers are comparable only for the same :data:`REALISM_VERSION`, data folder, resolution and ``n``: the real
reference is a fixed seeded subset of the data, the generated images fixed sample indices of a fixed seed.
Known cases (``python benchmarks/gan_metrics.py --known-cases ../shared/data/mtfl80``: MTFL training faces,
64 px, n = 1000 per side, one thread of the 2-core AMD EPYC VM, 62 s): other real faces KID -1.0, C2ST 0.49;
those blurred (Gaussian sigma 0.5 / 1 px) KID 5.5 / 41.5, C2ST 0.71 / 0.95; moved by up to half a pixel
(bilinear) KID 3.9, C2ST 0.67; with Gaussian noise (std 0.05)
KID 1.2, C2ST 0.91; uniform noise KID 2380, C2ST 1.00. KID misses fine noise that the classifier sees.
:func:`diagnose` says where the classifier looks: the classifier per feature stage, and the radial power spectrum of
the generated images against the real ones (``python benchmarks/gan_metrics.py --diagnose GAN DATA``).
"""

from __future__ import annotations

import math
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from .generator import Generator, shift_images
from .sampling import sample

REALISM_VERSION = "rkid-v1"  # bump when anything below changes
FEATURE_SEED = 0
FEATURE_SIZE = 64  # images are resized to this side before the feature network
WIDTHS = (32, 64, 128, 256)
DEFAULT_N = 1000  # real and generated images per measurement
REFERENCE_SEED = 0  # seeded choice of the real reference images
FAKE_SEED = 21  # seed of the generated images (fixed sample indices 0 .. n-1)
N_SUBSETS = 10  # subsets of half the images for the spread of the KID estimate
C2ST_L2 = 1e-2  # L2 weight of the two-sample classifier (on the mean log loss)
C2ST_ITERS = 200  # L-BFGS iterations of the two-sample classifier


class FeatureNet(nn.Module):
    """The fixed random feature network: (N, 3, H, W) in [0, 1] -> (N, 2 * sum(WIDTHS)) features."""

    def __init__(self, seed: int = FEATURE_SEED):
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        self.convs = nn.ModuleList()
        c_in = 3
        for c in WIDTHS:
            conv = nn.Conv2d(c_in, c, 3, padding=1)
            with torch.no_grad():
                conv.weight.copy_(torch.randn(conv.weight.shape, generator=g) * math.sqrt(2 / (9 * c_in)))
                conv.bias.zero_()
            self.convs.append(conv)
            c_in = c
        self.requires_grad_(False).eval()

    @torch.no_grad()
    def forward(self, images: torch.Tensor) -> torch.Tensor:
        x = images.float()
        if x.shape[-1] != FEATURE_SIZE or x.shape[-2] != FEATURE_SIZE:
            x = F.interpolate(x, size=(FEATURE_SIZE, FEATURE_SIZE), mode="bilinear", antialias=True)
        x = x * 2 - 1
        feats = []
        for i, conv in enumerate(self.convs):
            if i:
                x = F.avg_pool2d(x, 2)
            x = F.relu(conv(x))
            feats += [x.mean(dim=(2, 3)), x.std(dim=(2, 3))]
        return torch.cat(feats, dim=1)


def features(images: torch.Tensor, batch_size: int = 200) -> torch.Tensor:
    """Features (N, 960) float64 of images (N, 3, H, W) in [0, 1] (uint8 images are scaled by 1 / 255)."""
    if images.ndim != 4 or images.shape[1] != 3:
        raise ValueError(f"images must be (N, 3, H, W), got {tuple(images.shape)}")
    net = FeatureNet()
    out = []
    for s in range(0, len(images), batch_size):
        x = images[s : s + batch_size]
        x = x.float() / 255 if x.dtype == torch.uint8 else x.float()
        out.append(net(x).double())
    return torch.cat(out)


def _mmd2_unbiased(x: torch.Tensor, y: torch.Tensor) -> float:
    d = x.shape[1]
    kxx, kyy, kxy = ((x @ x.t()) / d + 1) ** 3, ((y @ y.t()) / d + 1) ** 3, ((x @ y.t()) / d + 1) ** 3
    m, n = len(x), len(y)
    sxx = (kxx.sum() - kxx.diagonal().sum()) / (m * (m - 1))
    syy = (kyy.sum() - kyy.diagonal().sum()) / (n * (n - 1))
    return (sxx + syy - 2 * kxy.mean()).item()


def kid(real_feats: torch.Tensor, fake_feats: torch.Tensor, seed: int = 0) -> dict[str, float]:
    """KID x 1000 between two feature sets (each (N, F), N >= 4), both scaled by the real set's RMS.

    Returns:
        ``kid_x1000``: unbiased MMD^2 on all features x 1000; ``kid_x1000_spread``: standard deviation of the
        same estimate on :data:`N_SUBSETS` seeded random halves of each set (a scale for its noise).
    """
    if len(real_feats) < 4 or len(fake_feats) < 4:
        raise ValueError(f"KID needs at least 4 images per side, got {len(real_feats)} and {len(fake_feats)}")
    scale = real_feats.square().mean().sqrt().clamp_min(1e-12)
    x, y = real_feats / scale, fake_feats / scale
    g = torch.Generator().manual_seed(seed)
    halves = []
    for _ in range(N_SUBSETS):
        ix = torch.randperm(len(x), generator=g)[: len(x) // 2]
        iy = torch.randperm(len(y), generator=g)[: len(y) // 2]
        halves.append(_mmd2_unbiased(x[ix], y[iy]))
    return {"kid_x1000": 1000 * _mmd2_unbiased(x, y), "kid_x1000_spread": 1000 * torch.tensor(halves).std().item()}


def _fit_logistic(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """L2-regularised logistic regression (last column of ``x`` = bias, not penalised) by L-BFGS -> weights."""
    w = torch.zeros(x.shape[1], dtype=x.dtype, requires_grad=True)
    opt = torch.optim.LBFGS([w], max_iter=C2ST_ITERS, line_search_fn="strong_wolfe")

    def closure() -> torch.Tensor:
        opt.zero_grad()
        loss = F.binary_cross_entropy_with_logits(x @ w, y) + C2ST_L2 * w[:-1].square().sum()
        loss.backward()
        return loss

    with torch.enable_grad():
        opt.step(closure)
    return w.detach()


def c2st(real_feats: torch.Tensor, fake_feats: torch.Tensor, seed: int = 0) -> float:
    """Held-out accuracy of the fixed two-sample classifier (see the module docstring); each set needs >= 4 rows."""
    if len(real_feats) < 4 or len(fake_feats) < 4:
        raise ValueError(f"C2ST needs at least 4 images per side, got {len(real_feats)} and {len(fake_feats)}")
    mu, sd = real_feats.mean(0), real_feats.std(0).clamp_min(1e-8)
    x = torch.cat((real_feats, fake_feats)).double().sub(mu).div(sd)
    x = torch.cat((x, torch.ones(len(x), 1, dtype=x.dtype)), dim=1)
    y = torch.cat((torch.zeros(len(real_feats)), torch.ones(len(fake_feats)))).double()
    order = torch.randperm(len(x), generator=torch.Generator().manual_seed(seed))
    halves = order[: len(x) // 2], order[len(x) // 2 :]
    accs = []
    for train, test in (halves, halves[::-1]):
        w = _fit_logistic(x[train], y[train])
        accs.append(((x[test] @ w > 0).double() == y[test]).double().mean().item())
    return sum(accs) / 2


def gaussian_blur(images: torch.Tensor, sigma: float) -> torch.Tensor:
    """Separable Gaussian blur (reflect padding, kernel 2 * round(3 sigma) + 1) of (N, 3, H, W) float images."""
    half = max(1, round(3 * sigma))
    r = torch.arange(-half, half + 1, dtype=torch.float32)
    w = torch.exp(-(r**2) / (2 * sigma**2))
    w = w / w.sum()
    x = F.pad(images.float(), (half, half, half, half), mode="reflect")
    x = F.conv2d(x, w.view(1, 1, 1, -1).repeat(3, 1, 1, 1), groups=3)
    return F.conv2d(x, w.view(1, 1, -1, 1).repeat(3, 1, 1, 1), groups=3)


def subpixel_shift(images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Each of (N, 3, H, W) float images moved by its own random offset of up to half a pixel in x and y, by bilinear
    resampling (:func:`~gan.generator.shift_images`): the blur that ``train.equivariance``'s moved target carries
    at sub-pixel offsets, and nothing else."""
    offsets = (torch.rand(len(images), 2, generator=generator) - 0.5) / images.shape[-1]
    return shift_images(images.float(), offsets)


def known_cases(images: torch.Tensor, n: int = DEFAULT_N, seed: int = 1) -> dict[str, dict[str, float]]:
    """The measures on known cases: the reference against n other real images, those blurred (sigma 0.5 and
    1 px), moved by sub-pixel offsets (:func:`subpixel_shift`), with Gaussian noise (std 0.05) and replaced by
    uniform noise. Needs ``2 n`` uint8 images (N, 3, R, R)."""
    if len(images) < 2 * n:
        raise ValueError(f"known_cases needs 2 n = {2 * n} images, got {len(images)}")
    ref = reference_images(images, n)
    chosen = set(torch.randperm(len(images), generator=torch.Generator().manual_seed(REFERENCE_SEED))[:n].tolist())
    rest = torch.tensor([i for i in range(len(images)) if i not in chosen])
    other = images[rest[torch.randperm(len(rest), generator=torch.Generator().manual_seed(seed))[:n]]].float() / 255
    g = torch.Generator().manual_seed(seed)
    cases = {
        "real": other,
        "blur_0.5px": gaussian_blur(other, 0.5),
        "blur_1px": gaussian_blur(other, 1.0),
        "subpixel_shift": subpixel_shift(other, torch.Generator().manual_seed(seed + 1)),
        "noise_0.05": (other + 0.05 * torch.randn(other.shape, generator=g)).clamp(0, 1),
        "uniform_noise": torch.rand(other.shape, generator=g),
    }
    rf = features(ref)
    out = {}
    for name, x in cases.items():
        f = features(x)
        out[name] = {**kid(rf, f), "c2st_acc": c2st(rf, f)}
    return out


def radial_power(images: torch.Tensor) -> torch.Tensor:
    """Mean power spectrum of the grey images (N, 3, S, S) in [0, 1] per integer spatial frequency radius, in cycles
    per image, 0 .. round(S / sqrt 2) -> (round(S / sqrt 2) + 1,): S // 2 is Nyquist along an axis, the radii above it
    hold the diagonal frequencies (a one-pixel checkerboard sits at the last). Each image's mean is removed first."""
    if images.ndim != 4 or images.shape[-1] != images.shape[-2]:
        raise ValueError(f"radial_power needs square images (N, C, S, S), got {tuple(images.shape)}")
    grey = images.float().mean(1)
    grey = grey - grey.mean((1, 2), keepdim=True)
    power = torch.fft.fftshift(torch.fft.fft2(grey).abs().square().mean(0), dim=(-2, -1))
    s = images.shape[-1]
    yy, xx = torch.meshgrid(torch.arange(s) - s // 2, torch.arange(s) - s // 2, indexing="ij")
    radius = (yy.square() + xx.square()).float().sqrt().round().long().flatten()
    return torch.bincount(radius, power.flatten().double()) / torch.bincount(radius).clamp_min(1)


def diagnose(real: torch.Tensor, fake: torch.Tensor, bands: int = 4) -> dict[str, list[float]]:
    """Where the two-sample classifier tells ``fake`` from ``real`` (both (N, 3, S, S) in [0, 1]):

    - ``c2st_stage_mean`` / ``c2st_stage_std``: the classifier on one stage's channel means (or standard
      deviations) alone, per stage of :class:`FeatureNet` (fine to coarse);
    - ``power_ratio``: fake / real radial power (:func:`radial_power`) averaged in ``bands`` equal frequency
      bands from 1 cycle to the diagonal Nyquist (< 1: less detail than real, e.g. blur; > 1: more, e.g. noise or
      artefacts).
    """
    fr, ff = features(real), features(fake)
    out: dict[str, list[float]] = {"c2st_stage_mean": [], "c2st_stage_std": []}
    start = 0
    for c in WIDTHS:
        out["c2st_stage_mean"].append(c2st(fr[:, start : start + c], ff[:, start : start + c]))
        out["c2st_stage_std"].append(c2st(fr[:, start + c : start + 2 * c], ff[:, start + c : start + 2 * c]))
        start += 2 * c
    ratio = (radial_power(fake) / radial_power(real).clamp_min(1e-12))[1:]
    out["power_ratio"] = [chunk.mean().item() for chunk in torch.tensor_split(ratio, bands)]
    return out


def reference_images(images: torch.Tensor, n: int = DEFAULT_N, seed: int = REFERENCE_SEED) -> torch.Tensor:
    """The fixed real reference: ``n`` images (all when fewer) chosen by a seeded permutation."""
    idx = torch.randperm(len(images), generator=torch.Generator().manual_seed(seed))[:n]
    return images[idx]


@torch.no_grad()
def generated_images(generator: Generator, n: int = DEFAULT_N, seed: int = FAKE_SEED) -> torch.Tensor:
    """Samples 0 .. n-1 of ``seed``, (n, 3, R, R) in [0, 1]."""
    return sample(generator, n, seed=seed).images.cpu()


def realism_from_features(generator: Generator, real_feats: torch.Tensor, n: int = DEFAULT_N) -> dict[str, object]:
    """The measure against precomputed reference features (the training loop caches them)."""
    fake_feats = features(generated_images(generator, n))
    out = {"realism_version": REALISM_VERSION, "realism_n": n, "realism_real_n": len(real_feats)}
    return {**out, **kid(real_feats, fake_feats), "c2st_acc": c2st(real_feats, fake_feats)}


def realism(
    generator: Generator, data: str | Path | torch.Tensor, n: int = DEFAULT_N, classes: list[int] | None = None
) -> dict[str, object]:
    """KID x 1000 and C2ST accuracy of ``n`` generated images against ``n`` fixed real images of ``data``.

    Args:
        generator: the generator (EMA for releases).
        data: a training-data folder (read with :func:`gan.data.load_training_images` at the generator's
            resolution) or uint8 images (N, 3, R, R).
        n: images per side.
        classes: CUB class ids to restrict a CUB root to (as ``train-gan --classes``).
    """
    if not isinstance(data, torch.Tensor):
        from .data import load_training_images

        data = load_training_images(data, generator.resolution, classes)
    return realism_from_features(generator, features(reference_images(data, n)), n)
