"""``lkdetect detect`` end to end: annotated images and JSON that match the Python API."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from lkdetect import Detector
from lkdetect.cli import main as cli
from lkdetect.network import KeypointNet
from lkdetect.tta import TTA
from lkdetect.weights import load_weights, make_metadata, save_weights


@pytest.fixture
def weights(tmp_path):
    net = KeypointNet("mobilenetv3_small_100", 3, (32, 32), stride=8, upsample=2, head_channels=8, head_depth=1)
    path = tmp_path / "w.safetensors"
    save_weights(path, net.eval(), make_metadata(net, ["l", "r", "n"]))
    return path


def test_detect_writes_annotated_images_and_json(weights, tmp_path):
    rng = np.random.default_rng(0)
    files = []
    for i, shape in enumerate([(40, 30, 3), (64, 64, 3)]):
        files.append(tmp_path / f"im{i}.png")
        Image.fromarray(rng.integers(0, 256, shape, dtype=np.uint8)).save(files[-1])
    out, js = tmp_path / "out", tmp_path / "res.json"
    assert cli(["detect", *map(str, files), "--weights", str(weights), "--out", str(out), "--json", str(js)]) == 0
    doc = json.loads(js.read_text())
    det = Detector.load(weights)
    assert doc["keypoint_names"] == ["l", "r", "n"] and doc["weights_sha256"] == det.metadata["sha256"]
    assert [r["image"] for r in doc["results"]] == [str(f) for f in files]
    for f, r in zip(files, doc["results"]):
        np.testing.assert_allclose(r["xy"], det.detect(f).xy, atol=1e-9)
        annotated = np.asarray(Image.open(out / f"{f.stem}_keypoints.png"))
        assert annotated.shape == np.asarray(Image.open(f)).shape
        assert not np.array_equal(annotated, np.asarray(Image.open(f)))  # dots were drawn


def test_detect_box_and_stdout(weights, tmp_path, capsys):
    f = tmp_path / "im.png"
    image = np.random.default_rng(1).integers(0, 256, (50, 60, 3), dtype=np.uint8)
    Image.fromarray(image).save(f)
    assert cli(["detect", str(f), "--weights", str(weights), "--box", "5,6,30,32"]) == 0
    doc = json.loads(capsys.readouterr().out)
    np.testing.assert_allclose(doc["results"][0]["xy"], Detector.load(weights).detect(image, box=(5, 6, 30, 32)).xy)


def test_detect_errors_are_one_line(weights, tmp_path, capsys):
    assert cli(["detect", str(tmp_path / "missing.png"), "--weights", str(weights)]) == 2
    assert "missing.png" in capsys.readouterr().err
    assert cli(["detect", str(weights), "--weights", str(weights), "--box", "1,2,3"]) == 2
    assert "X,Y,W,H" in capsys.readouterr().err
    assert cli(["detect", "x.png", "--weights", str(tmp_path / "nope.safetensors")]) == 2
    assert "nope.safetensors not found" in capsys.readouterr().err


def test_detect_tta_matches_the_api_and_errors_without_a_pairing(weights, tmp_path, capsys):
    f = tmp_path / "im.png"
    Image.fromarray(np.random.default_rng(2).integers(0, 256, (50, 60, 3), dtype=np.uint8)).save(f)
    assert cli(["detect", str(f), "--weights", str(weights), "--tta"]) == 2  # these weights have no flip pairing
    assert "--tta-scales" in capsys.readouterr().err
    # the scales alone need no pairing
    assert cli(["detect", str(f), "--weights", str(weights), "--tta-scales"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["tta"] == "scales 0.9, 1, 1.1"
    scales = Detector.load(weights, tta=TTA(flip=False)).detect(f).xy
    np.testing.assert_allclose(doc["results"][0]["xy"], scales, atol=1e-9)
    with pytest.raises(SystemExit):  # one or the other
        cli(["detect", str(f), "--weights", str(weights), "--tta", "--tta-scales"])
    assert "not allowed with argument" in capsys.readouterr().err
    net, meta = load_weights(weights)
    meta = {k: v for k, v in meta.items() if k not in ("sha256", "path")}
    meta["flip_permutation"] = [1, 0, 2]  # l <-> r, n on the axis
    save_weights(weights, net, meta)
    assert cli(["detect", str(f), "--weights", str(weights), "--tta"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["tta"] == "mirror x scales 0.9, 1, 1.1"
    np.testing.assert_allclose(doc["results"][0]["xy"], Detector.load(weights, tta=True).detect(f).xy, atol=1e-9)
    assert not np.allclose(doc["results"][0]["xy"], Detector.load(weights).detect(f).xy, atol=1e-6)


def test_detect_refine_matches_the_api_and_rejects_bad_sides(weights, tmp_path, capsys):
    f = tmp_path / "im.png"
    Image.fromarray(np.random.default_rng(4).integers(0, 256, (50, 60, 3), dtype=np.uint8)).save(f)
    for flag, side in ((["--refine"], 3.5), (["--refine", "2.5"], 2.5)):
        assert cli(["detect", str(f), "--weights", str(weights), *flag]) == 0
        doc = json.loads(capsys.readouterr().out)
        assert doc["refine"] == f"axis-aligned box {side:g} x keypoint spread, 1 pass"  # no upright reference
        expected = Detector.load(weights, refine=side).detect(f).xy
        np.testing.assert_allclose(doc["results"][0]["xy"], expected, atol=1e-9)
    assert cli(["detect", str(f), "--weights", str(weights), "--refine", "0"]) == 2
    assert "--refine SIDE must be a positive number" in capsys.readouterr().err
