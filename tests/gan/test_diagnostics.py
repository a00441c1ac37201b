"""Label-free keypoint diagnostics with known answers."""

from __future__ import annotations

import math

import pytest
import torch

from gan.diagnostics import central_share, configuration_extent, keypoint_spread, layout_ratio


def configuration(width: float, height: float, angle: float = 0.0, n: int = 32) -> torch.Tensor:
    """(n, 4, 2): the corners of a width x height rectangle, rotated, jittered per sample, shifted to (30, 30)."""
    corners = torch.tensor([[-1.0, -1.0], [1.0, -1.0], [1.0, 1.0], [-1.0, 1.0]]) * torch.tensor([width, height]) / 2
    c, s = math.cos(angle), math.sin(angle)
    rotated = corners @ torch.tensor([[c, s], [-s, c]])
    jitter = torch.randn(n, 4, 2, generator=torch.Generator().manual_seed(0)) * 0.1
    return rotated + jitter + 30


@pytest.mark.parametrize("angle", [0.0, 0.7])
def test_layout_ratio_is_the_minor_over_the_major_axis_of_the_mean_configuration(angle):
    assert layout_ratio(configuration(20, 20, angle)) == pytest.approx(1.0, abs=0.02)
    assert layout_ratio(configuration(20, 10, angle)) == pytest.approx(0.5, abs=0.02)
    assert layout_ratio(configuration(0, 20, angle)) < 0.02  # a line, at any angle
    assert layout_ratio(torch.full((8, 3, 2), 5.0)) == 0.0  # all keypoints at one place


def test_spread_and_central_share():
    kp = configuration(20, 10)
    assert torch.allclose(keypoint_spread(kp), torch.full((4,), 0.1 * math.sqrt(2)), rtol=0.3)
    assert central_share(kp, 64) == 1.0 and central_share(kp - 28, 64) == 0.0


def test_extent_is_the_rms_radius_of_the_mean_configuration():
    assert configuration_extent(configuration(6, 8, angle=0.3)) == pytest.approx(5.0, abs=0.05)  # corners at 5 px
    assert configuration_extent(torch.full((8, 3, 2), 5.0)) == 0.0
