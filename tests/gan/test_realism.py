"""gan.realism: a fixed feature network, and KID / two-sample classifier on known cases."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

import gan
from gan.keypoint_maps import grid2d
from gan.realism import (
    REALISM_VERSION,
    FeatureNet,
    c2st,
    diagnose,
    features,
    gaussian_blur,
    kid,
    radial_power,
    realism,
    reference_images,
    subpixel_shift,
)


def scenes(n: int, seed: int, res: int = 32) -> torch.Tensor:
    """Stand-ins for real images: smooth colour fields, one sharp square and fine texture, in [0, 1]."""
    g = torch.Generator().manual_seed(seed)
    img = F.interpolate(torch.rand(n, 3, 4, 4, generator=g), size=(res, res), mode="bilinear", align_corners=False)
    for i in range(n):
        x0, y0 = torch.randint(0, res - 10, (2,), generator=g).tolist()
        img[i, :, y0 : y0 + 8, x0 : x0 + 8] = torch.rand(3, 1, 1, generator=g)
    return (img + 0.1 * torch.randn(img.shape, generator=g)).clamp(0, 1)


def test_feature_network_is_fixed_whatever_the_global_seed():
    x = scenes(3, 0)
    torch.manual_seed(123)
    f1 = features(x)
    torch.manual_seed(456)
    f2 = features(x)
    assert torch.equal(f1, f2) and f1.shape == (3, 2 * sum((32, 64, 128, 256)))
    assert torch.equal(FeatureNet().convs[0].weight, FeatureNet().convs[0].weight)
    # uint8 input is read as 0..255
    assert torch.allclose(features((x * 255).round().to(torch.uint8)), f1, atol=0.05 * f1.abs().max().item())
    with pytest.raises(ValueError, match=r"\(N, 3, H, W\)"):
        features(torch.zeros(2, 1, 8, 8))


def test_known_cases_real_is_near_zero_blur_above_noise_far_above():
    real, other = scenes(100, 1), scenes(100, 2)
    fr = features(real)
    f_other, f_blur = features(other), features(gaussian_blur(other, 1.0))
    f_noise = features(torch.rand(other.shape, generator=torch.Generator().manual_seed(3)))
    k_real, k_blur, k_noise = (kid(fr, f)["kid_x1000"] for f in (f_other, f_blur, f_noise))
    assert abs(k_real) < kid(fr, f_other)["kid_x1000_spread"]  # within its own noise of 0
    assert k_blur > 10 and k_blur > k_real + 10
    assert k_noise > 20 * k_blur
    a_real, a_blur = c2st(fr, f_other), c2st(fr, f_blur)
    assert 0.35 < a_real < 0.6 and a_blur > 0.85
    # a sub-pixel move (bilinear resampling, the equivariance penalty's target) is a slight blur: told apart, less
    a_moved = c2st(fr, features(subpixel_shift(other, torch.Generator().manual_seed(0))))
    assert a_real + 0.1 < a_moved < a_blur
    assert c2st(fr, f_other) == a_real  # seeded: the same number twice


def test_radial_power_puts_a_cosine_at_its_frequency():
    x = torch.cos(2 * torch.pi * 5 * torch.arange(32) / 32).view(1, 1, 1, 32).expand(2, 3, 32, 32) * 0.5 + 0.5
    p = radial_power(x)
    assert p.shape == (24,)  # radii 0 .. 23 = round(32 / sqrt 2)
    assert p.argmax().item() == 5 and p[5] > 1e3 * (p.sum() - p[5])
    with pytest.raises(ValueError, match="square"):
        radial_power(torch.zeros(1, 3, 8, 16))


def test_diagnose_reads_blur_as_missing_detail_and_a_checkerboard_as_excess():
    real, other = scenes(60, 1), scenes(60, 2)
    same, blurred = diagnose(real, other), diagnose(real, gaussian_blur(other, 1.0))
    checker = (torch.arange(32).view(32, 1) + torch.arange(32).view(1, 32)) % 2 * 0.1 - 0.05
    artefacts = diagnose(real, (other + checker).clamp(0, 1))
    assert len(same["power_ratio"]) == 4 and len(same["c2st_stage_mean"]) == len(same["c2st_stage_std"]) == 4
    assert all(0.7 < r < 1.4 for r in same["power_ratio"])
    assert blurred["power_ratio"][-1] < 0.3 < blurred["power_ratio"][0]  # blur removes the finest band first
    assert artefacts["power_ratio"][-1] > 2 and artefacts["power_ratio"][0] < 1.4  # the checkerboard sits at Nyquist
    assert max(blurred["c2st_stage_std"]) > max(same["c2st_stage_std"]) + 0.2


def test_subpixel_shift_moves_each_image_by_at_most_half_a_pixel():
    ramp = grid2d(32)[..., 0].expand(8, 3, 32, 32)  # x in [-1, 1]: one pixel = 2 / 32
    moved = subpixel_shift(ramp, torch.Generator().manual_seed(0))
    step = (moved - ramp)[:, :, 1:-1, 1:-1].abs().amax(dim=(1, 2, 3)) / (2 / 32)  # each image's move in x, px
    assert (step <= 0.5 + 1e-4).all() and (step > 0).all() and step.max() > 0.25 and len(step.unique()) == 8


def test_kid_matches_the_unbiased_estimate_written_out_and_separates_shifted_sets():
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(5, 3, generator=g, dtype=torch.float64), torch.randn(6, 3, generator=g, dtype=torch.float64)
    s = x.square().mean().sqrt()
    k = lambda u, v: ((u / s) @ (v / s) / 3 + 1) ** 3  # noqa: E731
    xx = sum(k(x[i], x[j]) for i in range(5) for j in range(5) if i != j) / 20
    yy = sum(k(y[i], y[j]) for i in range(6) for j in range(6) if i != j) / 30
    xy = sum(k(x[i], y[j]) for i in range(5) for j in range(6)) / 30
    assert kid(x, y)["kid_x1000"] == pytest.approx(1000 * (xx + yy - 2 * xy).item(), rel=1e-9)
    f1, f2 = (torch.randn(200, 8, generator=g, dtype=torch.float64) for _ in range(2))
    same = kid(f1, f2)
    assert abs(same["kid_x1000"]) < 3 * same["kid_x1000_spread"]
    assert kid(f1, f2 + 1)["kid_x1000"] > 100 * max(abs(same["kid_x1000"]), same["kid_x1000_spread"])
    with pytest.raises(ValueError, match="at least 4"):
        kid(f1[:3], f2)


def test_realism_of_a_generator_against_uint8_images():
    torch.manual_seed(0)
    g = gan.Generator(gan.get_config("tiny").model).eval().requires_grad_(False)
    data = (scenes(24, 5) * 255).round().to(torch.uint8)
    out = realism(g, data, n=12)
    assert out["realism_version"] == REALISM_VERSION and out["realism_n"] == 12 and out["realism_real_n"] == 12
    assert out["kid_x1000"] > 0 and 0.5 <= out["c2st_acc"] <= 1
    assert torch.equal(reference_images(data, 12), reference_images(data, 12))
    assert realism(g, data, n=12) == out


def test_benchmark_diagnose_prints_the_stages_and_bands(tmp_path, capsys, monkeypatch):
    import runpy
    import sys
    from pathlib import Path

    import numpy as np
    from PIL import Image

    data = tmp_path / "imgs"
    data.mkdir()
    rng = np.random.default_rng(0)
    for i in range(8):
        Image.fromarray(rng.integers(0, 255, (40, 40, 3), dtype=np.uint8)).save(data / f"{i}.png")
    torch.manual_seed(0)
    gan.save_generator(tmp_path / "g.safetensors", gan.Generator(gan.get_config("tiny").model))
    script = Path(__file__).parents[2] / "benchmarks" / "gan_metrics.py"
    argv = [str(script), "--diagnose", str(tmp_path / "g.safetensors"), str(data), "--n", "8"]
    monkeypatch.setattr(sys, "argv", argv)
    runpy.run_path(str(script), run_name="__main__")
    out = capsys.readouterr().out
    assert "n = 8 per side" in out and "channel means" in out and "channel stds" in out
    bands = out.strip().splitlines()[-1].split()
    assert len(bands) == 4 and all(float(b) > 0 for b in bands)
