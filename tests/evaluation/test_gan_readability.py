"""``lkdetect gan-readability``: how much of each GAN keypoint's position its image shows."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

import gan
from evaluation.gan_readability import cv_readability, spread
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
    assert main(["gan-readability", "--gan", str(weights), "-n", "64"]) == 0
    assert len([ln for ln in capsys.readouterr().out.splitlines() if ln.strip()[:1].isdigit()]) == k
    folder = tmp_path / "real"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for i in range(40):  # fewer real images than samples: all are used
        Image.fromarray(rng.integers(0, 256, (40, 40, 3), dtype=np.uint8)).save(folder / f"{i}.png")
    assert main(["gan-readability", "--gan", str(weights), "-n", "64", "--data", str(folder), "--json"]) == 0
    assert len(json.loads(capsys.readouterr().out)["probe_spread_real"]) == 10
    assert main(["gan-readability", "--gan", str(weights), "-n", "8"]) == 2  # a clear error, no trace
    assert "-n must be >= 64" in capsys.readouterr().err
