"""``lkdetect demo`` end to end on a tiny generator, and the shipped-weights resolver."""

from __future__ import annotations

import logging
import re
import subprocess
import sys

import numpy as np
import pytest
import torch
from PIL import Image

import gan
from lkdetect import demo as demo_mod
from lkdetect import models
from lkdetect.cli import main


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


@pytest.fixture(scope="module")
def tiny_gan(tmp_path_factory):
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("gan") / "tiny_gan.safetensors"
    gan.save_generator(path, gan.Generator(gan.get_config("tiny").model), {"step": 7})
    return path


def test_cli_demo_end_to_end(tiny_gan, tmp_path, monkeypatch, caplog):
    monkeypatch.setitem(sys.modules, "lkdetect.detector", None)  # no detector: the demo must still run
    out = tmp_path / "demo"
    with caplog.at_level(logging.WARNING):
        rc = main(["demo", "--gan", str(tiny_gan), "--out", str(out), "--seed", "1", "--no-progress"])
    assert rc == 0
    assert any("no keypoint detector" in r.getMessage() for r in caplog.records)
    page = (out / "index.html").read_text()
    refs = re.findall(r'src="([^"]+)"', page)
    assert {
        "samples.png",
        "edit_translate.png",
        "edit_move_part.png",
        "edit_scale.png",
        "edit_rotate.png",
        "edit_swap_embeddings.png",
        "edit_swap_subset.png",
        "edit_interpolate_embeddings.png",
        "edit_background.png",
        "edit_remove_part.png",
        "edit_add_part.png",
        "anim_move_part.gif",
        "anim_interpolate_pose.gif",
        "anim_interpolate_embeddings.gif",
    } == set(refs)
    assert len(re.findall("<figcaption>", page)) == len(refs) and "step 7" in page and "Locality" in page
    for name in refs:
        with Image.open(out / name) as im:
            assert im.width >= 3 * 32 * 8 if name.startswith("edit_") else im.width >= 32 * 8
            if name.endswith(".gif"):
                assert im.n_frames >= 10
                im.seek(0)
                first = np.asarray(im.convert("RGB")).copy()
                im.seek(im.n_frames // 2)
                assert np.abs(np.asarray(im.convert("RGB")).astype(int) - first).max() > 0  # it moves
    # The before/after panels differ where they should: "after" differs from "before" for every edit.
    with Image.open(out / "edit_move_part.png") as im:
        arr = np.asarray(im.convert("RGB")).astype(int)
    w = 32 * 8
    assert np.abs(arr[4 : 4 + w, 4 : 4 + w] - arr[4 : 4 + w, 8 + w : 8 + 2 * w]).max() > 0


def test_demo_is_deterministic_and_draws_detections(tiny_gan, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "lkdetect.detector", None)
    calls = []

    def detect(images):
        calls.append(tuple(images.shape[1:]))
        return torch.full((len(images), 2, 2), 16.0)  # two detections at the image centre

    r1 = demo_mod.run_demo(tmp_path / "a", seed=2, gan_path=tiny_gan, detect=detect, n_grid=4)
    r2 = demo_mod.run_demo(tmp_path / "b", seed=2, gan_path=tiny_gan, n_grid=4)
    assert r1.detector and not r2.detector and set(calls) == {(3, 32, 32)}
    assert "crosses" in r1.html.read_text() and "no keypoint detector" in r2.html.read_text()

    def grid(r):
        return np.asarray(Image.open(r.files["samples.png"]).convert("RGB")).astype(int)

    g1, g2 = grid(r1), grid(r2)
    assert g1.shape == g2.shape == (32 * 8 + 4, 4 * (32 * 8 + 2) + 2, 3)  # 4 tiles of 32 px x 8, 2 px gaps
    changed = np.abs(g1 - g2).sum(-1) > 0  # only the crosses differ, and they sit at each tile's centre
    ys, xs = changed.nonzero()
    assert changed.any() and np.all(np.abs(ys - (2 + 16.5 * 8)) < 12) and len(set(xs // 258)) == 4
    r3 = demo_mod.run_demo(tmp_path / "c", seed=2, gan_path=tiny_gan, detect=detect, n_grid=4)
    assert np.array_equal(grid(r3), g1)
    assert 0 <= r1.measures["locality"] <= 1 and r1.measures == r3.measures


def test_demo_errors(tiny_gan, tmp_path, capsys):
    assert main(["demo", "--domain", "no_such_domain", "--out", str(tmp_path / "x"), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "no shipped GAN weights" in err and "no_such_domain_gan.safetensors" in err
    assert main(["demo", "--gan", str(tmp_path / "missing.safetensors"), "--out", str(tmp_path / "y")]) == 2
    with pytest.raises(ValueError, match="domain"):
        models.shipped_gan_path("../faces")


def test_shipped_gan_path_follows_weights_dirs(tmp_path, monkeypatch):
    monkeypatch.setenv("LKDETECT_WEIGHTS_DIR", str(tmp_path))
    with pytest.raises(FileNotFoundError, match="cats_gan"):
        models.shipped_gan_path("cats")
    (tmp_path / "cats_gan.safetensors").write_bytes(b"x")
    assert models.shipped_gan_path("cats") == tmp_path / "cats_gan.safetensors"
    (tmp_path / "birds_gan.safetensors").write_bytes(b"x")  # $LKDETECT_WEIGHTS_DIR comes before the shipped ones
    assert models.shipped_gan_path("birds") == tmp_path / "birds_gan.safetensors"


def test_import_demo_does_not_load_gan():
    code = "import sys, lkdetect.demo, lkdetect.commands.demo; print('gan' in sys.modules, 'cv2' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["False", "False"]


def test_demo_domain_uses_that_domains_detector(tiny_gan, tmp_path, monkeypatch):
    """``--domain toy`` draws with ``toy_detector``, not the face detector."""
    from lkdetect.network import KeypointNet
    from lkdetect.weights import make_metadata, save_weights

    monkeypatch.setenv("LKDETECT_WEIGHTS_DIR", str(tmp_path))
    (tmp_path / "toy_gan.safetensors").write_bytes(tiny_gan.read_bytes())
    net = KeypointNet("mobilenetv3_small_100", 3, (32, 32), stride=8, upsample=2, head_channels=8, head_depth=1)
    save_weights(tmp_path / "toy_detector.safetensors", net.eval(), make_metadata(net))
    loaded = []
    real_load = demo_mod.load_detector

    def spy(weights, domain="faces"):
        det = real_load(weights, domain)
        loaded.append((weights, domain, det is not None))
        return det

    monkeypatch.setattr(demo_mod, "load_detector", spy)
    r = demo_mod.run_demo(tmp_path / "demo", domain="toy", n_grid=2)
    assert loaded == [(None, "toy", True)] and r.detector


def test_embedding_edit_captions_report_the_measured_change(tiny_gan, tmp_path, monkeypatch):
    """Issue 25 item 7: the captions of the embedding edits state what was measured (recomputed here from gan.edit
    renders), not an effect ("A's pose, B's appearance") the GAN may not show."""
    from gan import edit
    from gan.generator import Latents
    from gan.keypoint_maps import to_pixels

    monkeypatch.setitem(sys.modules, "lkdetect.detector", None)
    result = demo_mod.run_demo(tmp_path / "d", seed=3, gan_path=tiny_gan, n_grid=2)
    page = result.html.read_text()
    assert "appearance" not in page and "hair" not in page
    g, _ = gan.load_generator(tiny_gan)
    lat = gan.sample(g, 2, seed=3).latents
    a, b = lat[0], lat[1]
    kp = to_pixels(a.keypoints[0].float(), 32).numpy()
    (x0, y0), (x1, y1) = kp.min(0) - 4, kp.max(0) + 4  # A's keypoint box, widened by R / 8
    ys, xs = np.mgrid[:32, :32]
    inside = (xs >= x0) & (xs <= x1) & (ys >= y0) & (ys <= y1)
    edits = {
        "edit_swap_embeddings": edit.swap_embeddings(a, b)[0],
        "edit_interpolate_embeddings": edit.interpolate_embeddings(a, b, 0.5),
        "edit_background": edit.swap_background(a, b)[0],
    }
    for name, after in edits.items():
        ia, ib, ir = (im.numpy() * 255 for im in edit.render(g, Latents.cat([a, b, after])))
        d, db = np.abs(ir - ia).mean(0), np.abs(ib - ia).mean(0)
        expect = [d[inside].mean(), d[~inside].mean(), db[inside].mean(), db[~inside].mean()]
        got = [result.measures[f"{name}_{k}"] for k in ("result_in", "result_out", "b_in", "b_out")]
        np.testing.assert_allclose(got, expect, rtol=1e-4, atol=1e-3)
        caption = re.search(rf'src="{name}.png".*?<figcaption>(.*?)</figcaption>', page, re.S).group(1)
        shown = [float(v) for v in re.findall(r"\d+\.\d+", caption.split("Measured:")[1])[:4]]
        assert shown == [round(v, 1) for v in expect], (caption, expect)
        assert f"{100 * expect[0] / expect[2]:.0f} % of the way from A to B inside" in caption
