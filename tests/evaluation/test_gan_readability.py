"""``lkdetect gan-readability``: how much of each GAN keypoint's position its image shows."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

import gan
from evaluation.gan_readability import colour_floor, colour_transfer, cv_readability, geometry_sources, spread
from gan.generator import Latents
from gan.keypoint_maps import grid2d
from gan.sampling import map_noise, render, sample_noise
from lkdetect.cli import main


def test_readability_is_one_for_keypoints_the_probe_explains_and_near_zero_for_noise():
    rng = np.random.default_rng(0)
    probe = rng.normal(size=(2000, 3, 2))
    mix = rng.normal(size=(6, 4))
    followed = (probe.reshape(2000, 6) @ mix).reshape(2000, 2, 2) + 5  # linear in the probe, with an offset
    noise = rng.normal(size=(2000, 1, 2)) * 3
    half = followed[:, :1] + rng.normal(size=(2000, 1, 2)) * followed[:, :1].std(0)  # half its variance is noise
    out = cv_readability(probe, np.concatenate([followed, noise, half], 1))
    r2, res = out["r2"], out["residual"]
    assert r2[0] > 0.999 and r2[1] > 0.999 and res[0] < 1e-6
    assert abs(r2[2]) < 0.02 and abs(res[2] - out["spread"][2]) < 0.05 * out["spread"][2]
    assert 0.45 < r2[3] < 0.55
    assert out["r2_mean"] == pytest.approx(np.mean(r2))
    assert spread(np.array([[[0.0, 0.0]], [[2.0, 0.0]]])) == [1.0]
    with pytest.raises(ValueError, match="at least"):
        cv_readability(probe[:10], followed[:10])


def test_command_prints_a_row_per_keypoint_and_json(tmp_path, capsys):
    weights = tmp_path / "g.safetensors"
    gan.save_generator(weights, gan.Generator(gan.get_config("tiny").model), {"step": 0})
    assert main(["gan-readability", "--gan", str(weights), "-n", "64", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    k = gan.get_config("tiny").model.n_keypoints
    assert len(out["r2"]) == len(out["spread"]) == k and len(out["probe_spread_samples"]) == 10
    assert set(out["geometry_moves"]) == {"pose", "app", "bg", "unrelated", "colour"}
    assert main(["gan-readability", "--gan", str(weights), "-n", "64"]) == 0
    text = capsys.readouterr().out
    assert len([ln for ln in text.splitlines() if ln.strip()[:1].isdigit()]) == k and "unrelated samples" in text
    folder = tmp_path / "real"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for i in range(40):  # fewer real images than samples: all are used
        Image.fromarray(rng.integers(0, 256, (40, 40, 3), dtype=np.uint8)).save(folder / f"{i}.png")
    assert (
        main(["gan-readability", "--gan", str(weights), "-n", "64", "--data", str(folder), "--no-sources", "--json"])
        == 0
    )
    assert len(json.loads(capsys.readouterr().out)["probe_spread_real"]) == 10
    assert main(["gan-readability", "--gan", str(weights), "-n", "8"]) == 2  # a clear error, no trace
    assert "-n must be >= 64" in capsys.readouterr().err


class BlobGAN(torch.nn.Module):
    """A stand-in generator whose geometry comes from the pose noise only: blob k (channel k) at keypoint k."""

    def __init__(self):
        super().__init__()
        self.cfg = gan.ModelConfig(z_dim=8, n_keypoints=3)
        self.w = torch.nn.Parameter(torch.zeros(1))

    def map(self, z_pose, z_app, z_bg):
        n = z_pose.shape[0]
        return Latents(
            torch.tanh(z_pose[:, :6].view(n, 3, 2)) * 0.5, z_app[:, None, :4].expand(n, 3, 4), z_bg, torch.ones(n, 3)
        )

    def render(self, lat):
        d2 = (grid2d(32)[None, None] - lat.keypoints[:, :, None, None]).pow(2).sum(-1)
        return torch.exp(-d2 / 0.01) * 2 - 1 + 0 * lat.kp_embed.sum() + 0 * lat.bg_embed.sum()


def centroids(images: torch.Tensor) -> np.ndarray:
    """Per channel, the intensity-weighted mean pixel (x, y): where each blob is."""
    w = images / images.sum((2, 3), keepdim=True)
    c = torch.arange(32, dtype=torch.float32)
    return torch.stack(((w.sum(2) * c).sum(-1), (w.sum(3) * c).sum(-1)), dim=-1).numpy()


def test_geometry_sources_name_the_noise_that_moves_the_probe():
    out = geometry_sources(BlobGAN(), centroids, 64, seed=0)
    base = centroids(render(BlobGAN(), map_noise(BlobGAN(), sample_noise(8, 0, range(64)))))
    assert geometry_sources(BlobGAN(), centroids, 64, seed=0, base=base) == out  # the samples' own probe, reused
    assert out["app"] == 0 and out["bg"] == 0
    assert out["pose"] == pytest.approx(out["unrelated"]) and out["pose"] > 2


def test_colour_floor_is_zero_for_a_probe_of_geometry_and_positive_for_one_of_brightness():
    lat = BlobGAN().map(*sample_noise(8, 0, range(16)))
    blobs = (BlobGAN().render(lat) + 1) / 2  # blobs of one size: every image has the same colour statistics
    grey = blobs * 0.5 + torch.tensor([0.05, 0.45] * 8)[:, None, None, None]  # ... and now different brightness
    assert torch.allclose(colour_transfer(blobs, blobs.flip(0)), blobs, atol=1e-4)
    assert colour_floor(blobs, centroids) < 1e-3
    assert colour_floor(grey, centroids) > 0.2  # the centroid of a brighter image is pulled to the middle

    def standardised_centroids(images):  # blind to each channel's mean and scale
        return centroids(((images - images.mean((2, 3), keepdim=True)) / images.std((2, 3), keepdim=True)).relu())

    assert colour_floor(grey, standardised_centroids) < 1e-3
