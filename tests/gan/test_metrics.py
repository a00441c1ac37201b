"""gan.metrics on constructed generators with known answers, and on the tiny preset."""

from __future__ import annotations

import math
from types import SimpleNamespace

import pytest
import torch

import gan
from gan.generator import Latents
from gan.keypoint_maps import grid2d, to_pixels
from gan.metrics import (
    appearance_shares,
    cpd,
    gan_metrics,
    keypoint_region,
    metric_pairs,
    part_swap_changes,
    swap_locality,
)

RES, K, D = 32, 3, 3
# pixel centres (8, 9), (23, 10), (16, 24): well apart, equal discs fully inside the image
SPOTS = (torch.tensor([[8.0, 9.0], [23.0, 10.0], [16.0, 24.0]]) + 0.5) * 2 / RES - 1


class Painter(torch.nn.Module):
    """A generator with known answers: a background colour from ``bg_embed`` everywhere, and a disc of radius
    ``radius`` px at every keypoint in the colour of its embedding.

    ``use_embed`` / ``use_bg`` False: fixed colours instead (the embedding / background is ignored).
    ``parts="uniform"``: no discs, each embedding tints the whole image evenly; ``parts="pattern"``: each embedding
    tints the whole image along one fixed spatial pattern shared by all parts.
    """

    def __init__(self, radius=3.0, use_embed=True, use_bg=True, parts="discs"):
        super().__init__()
        self.cfg = SimpleNamespace(z_dim=K * D)
        self.resolution, self.n_keypoints = RES, K
        self.radius, self.use_embed, self.use_bg, self.parts = radius, use_embed, use_bg, parts
        self.dummy = torch.nn.Parameter(torch.zeros(1))

    def map(self, z_pose, z_app, z_bg):
        b = z_pose.shape[0]
        return Latents(SPOTS.expand(b, K, 2).clone(), z_app.view(b, K, D), z_bg[:, :D], torch.ones(b, K))

    def render(self, lat):
        b = lat.keypoints.shape[0]
        bg = 0.5 * torch.tanh(lat.bg_embed) if self.use_bg else torch.zeros(b, 3)
        img = bg[:, :, None, None].expand(b, 3, RES, RES).clone()
        colours = torch.tanh(lat.kp_embed) if self.use_embed else torch.full((b, K, 3), 0.7)
        grid = to_pixels(grid2d(RES), RES)
        pattern = (grid[..., 0] / RES)[None, None]  # 0 .. 1 from left to right
        for k in range(K):
            c = colours[:, k, :, None, None]
            if self.parts == "uniform":
                img = img + 0.1 * c
            elif self.parts == "pattern":
                img = img + 0.1 * c * pattern
            else:
                disc = (grid - to_pixels(lat.keypoints[:, k], RES)[:, None, None]).norm(dim=-1) <= self.radius
                img = torch.where(disc[:, None], c.expand(b, 3, RES, RES), img)
        return img.clamp(-1, 1)


def pairs(g, n=6):
    return metric_pairs(g, n, seed=3)


def test_region_counts_pixels_within_the_radius():
    # a keypoint on the centre of pixel (10, 12) of a 32 px image: pixels at distance <= 2 px
    kp = torch.tensor([[[(10 + 0.5) * 2 / 32 - 1, (12 + 0.5) * 2 / 32 - 1]]])
    region = keypoint_region(kp, torch.ones(1, 1), 32, 2.0)
    assert region.sum().item() == 13  # the 13 lattice points of a radius-2 disc
    assert region[0, 12, 10] and region[0, 12, 12] and not region[0, 13, 12]
    assert not keypoint_region(kp, torch.zeros(1, 1), 32, 2.0).any()  # removed parts have no region


def test_generator_that_ignores_its_embeddings_has_appearance_share_zero():
    g = Painter(use_embed=False)
    m = appearance_shares(g, *pairs(g))
    assert m["app_share_region"] == 0 and m["app_share_outside"] == 0
    assert m["bg_share_region"] == pytest.approx(1) and m["bg_share_outside"] == pytest.approx(1)
    changes = part_swap_changes(g, *pairs(g))
    assert changes.abs().max() == 0
    loc = swap_locality(changes, pairs(g)[0])
    assert loc["swap_locality"] == 0 and loc["swap_change_255"] == 0
    out = cpd(changes)
    assert math.isnan(out["cpd"]) and out["cpd_defined"] == 0


def test_generator_that_ignores_its_background_has_background_share_zero():
    g = Painter(use_bg=False)
    m = appearance_shares(g, *pairs(g))
    assert m["bg_share_region"] == 0 and m["bg_share_outside"] == 0
    assert m["app_share_region"] == pytest.approx(1)
    assert m["change_all_outside_255"] == 0 and m["app_share_outside"] == 0  # nothing to share outside


def test_disc_painter_shares_locality_and_cpd_have_their_known_values():
    g = Painter(radius=3.0)  # discs of 3 px inside the 12 % region (3.84 px) and the R / 8 = 4 px locality disc
    a, b = pairs(g)
    m = appearance_shares(g, a, b)
    assert m["app_share_outside"] == 0 and m["bg_share_outside"] == pytest.approx(1)
    # every region pixel is a disc pixel (embedding) or a background pixel: the two shares add up to 1
    assert 0.2 < m["app_share_region"] < 0.9
    assert m["app_share_region"] + m["bg_share_region"] == pytest.approx(1)
    changes = part_swap_changes(g, a, b)
    loc = swap_locality(changes, a)
    assert loc["swap_locality"] == pytest.approx(1)
    assert loc["swap_locality_ratio"] == pytest.approx(1 / loc["swap_locality_chance"])
    # disjoint discs of equal area f: Pearson correlation of their indicator maps is -f / (1 - f)
    f = (changes[0, 0] > 0).float().mean().item()
    assert (changes > 0).float().mean((2, 3)).allclose(torch.tensor(f))
    out = cpd(changes)
    assert out["cpd"] == pytest.approx(f / (1 - f), rel=1e-6) and out["cpd_defined"] == 1
    assert out["cpd_matrix"][0][0] == 1 and out["cpd_matrix"][0][1] == pytest.approx(-f / (1 - f), abs=1e-3)


def test_global_parts_have_chance_locality_and_full_cpd():
    g = Painter(parts="uniform")  # every swap changes every pixel equally: exactly chance
    a, b = pairs(g)
    loc = swap_locality(part_swap_changes(g, a, b), a)
    assert loc["swap_locality_ratio"] == pytest.approx(1, rel=1e-5)
    assert cpd(part_swap_changes(g, a, b))["cpd_defined"] == 0  # uniform maps: correlation undefined
    g = Painter(parts="pattern")  # every part changes the same pixels in the same proportions
    assert cpd(part_swap_changes(g, a, b))["cpd"] == pytest.approx(1, abs=1e-6)


def test_gan_metrics_on_the_tiny_generator_is_deterministic_and_in_range():
    torch.manual_seed(0)
    g = gan.Generator(gan.get_config("tiny").model).eval().requires_grad_(False)
    m1, m2 = gan_metrics(g, 4), gan_metrics(g, 4)
    assert m1 == m2 and m1["pairs"] == 4 and m1["metrics_version"] >= 1
    for key in ("app_share_region", "bg_share_region", "swap_locality", "swap_locality_chance", "cpd"):
        assert 0 <= m1[key] <= 1.5, key
    assert m1["change_all_region_255"] > 0 and len(m1["cpd_matrix"]) == g.n_keypoints
    # pair i is (sample i, sample n + i) of the seed, whatever n is
    a4, _ = metric_pairs(g, 4)
    a2, _ = metric_pairs(g, 2)
    assert torch.equal(a4.kp_embed[:2], a2.kp_embed)


def test_cli_prints_the_metrics(tmp_path, capsys):
    from gan.metrics import main

    torch.manual_seed(0)
    g = gan.Generator(gan.get_config("tiny").model)
    gan.save_generator(tmp_path / "g.safetensors", g)
    main(["--gan", str(tmp_path / "g.safetensors"), "--pairs", "2", "--json"])
    import json

    out = json.loads(capsys.readouterr().out)
    assert out["pairs"] == 2 and "app_share_region" in out and "cpd" in out
    with pytest.raises(SystemExit):
        main(["--gan", str(tmp_path / "g.safetensors"), "--pairs", "0"])
