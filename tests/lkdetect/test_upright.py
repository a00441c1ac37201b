"""Upright refinement: the roll estimate, the turned crop and its inverse, the detector pass, settings and CLI."""

from __future__ import annotations

import argparse

import numpy as np
import pytest
import torch

from lkdetect import Detector
from lkdetect.images import crop, crop_turned, from_turned, resize
from lkdetect.refine import (
    Refine,
    add_refine_argument,
    check_reference,
    refine_boxes,
    refine_from_args,
    roll_angles,
    rotation_matrices,
)

REF = np.array([[20.0, 24.0], [44.0, 24.0], [32.0, 36.0], [24.0, 46.0], [40.0, 46.0]])


@pytest.mark.parametrize("degrees", [0, 10, -35, 90, 179, -150])
def test_roll_is_the_rotation_from_the_reference_whatever_the_place_and_scale(degrees):
    a = np.deg2rad(degrees)
    rot = rotation_matrices(np.array([a]))[0]
    xy = 2.5 * (REF - REF.mean(0)) @ rot.T + [300.0, -40.0]
    np.testing.assert_allclose(roll_angles(xy[None], REF), [a], atol=1e-9)


def test_roll_convention_is_clockwise_as_seen_in_image_coordinates():
    # y points down: the rotation by +90 deg takes the right-pointing x axis to the downward one
    np.testing.assert_allclose(rotation_matrices(np.array([np.pi / 2]))[0] @ [1.0, 0.0], [0.0, 1.0], atol=1e-12)


def test_roll_of_a_noisy_constellation_is_the_least_squares_angle():
    rng = np.random.default_rng(0)
    a = np.deg2rad(25.0)
    xy = (REF - REF.mean(0)) @ rotation_matrices(np.array([a]))[0].T + rng.normal(0, 0.5, REF.shape)
    got = roll_angles(xy[None], REF)[0]
    grid = np.deg2rad(np.linspace(15, 35, 2001))
    residual = [
        np.sum(((REF - REF.mean(0)) @ rotation_matrices(np.array([g]))[0].T - (xy - xy.mean(0))) ** 2) for g in grid
    ]
    assert abs(got - grid[int(np.argmin(residual))]) < 2e-4


def test_roll_rejects_mismatched_shapes():
    with pytest.raises(ValueError, match="reference"):
        roll_angles(np.zeros((1, 4, 2)), REF)


def test_turned_crop_without_rotation_is_the_box_crop():
    y, x = np.mgrid[0:90, 0:120].astype(np.float32)
    smooth = 0.5 + 0.25 * np.sin(x / 6.0) + 0.2 * np.cos(y / 4.0 + x / 9.0)  # detail of a few pixels
    image = torch.from_numpy(np.stack([smooth, smooth.T[:90, :90].repeat(2, 1)[:, :120], 1 - smooth]))
    centre, side = np.array([59.5, 44.5]), 64.0  # the box x 28..91, y 13..76 exactly
    got = crop_turned(image, centre, side, np.eye(2), (32, 32))
    want = resize(crop(image, (28, 13, 64, 64)), (32, 32))
    assert (got - want).abs().max() < 0.03
    shifted = resize(crop(image, (29, 13, 64, 64)), (32, 32))  # a pixel off is told apart
    assert (shifted - want).abs().mean() > 3 * (got - want).abs().mean()


@pytest.mark.parametrize("degrees", [0, 30, 90, -120])
def test_turned_crop_shows_a_point_where_from_turned_maps_it_back(degrees):
    """A bright dot at a known image point appears at the network pixel that :func:`from_turned` maps onto it."""
    image = torch.zeros(3, 200, 160)
    dot = np.array([97.0, 71.0])
    image[:, 70:73, 96:99] = 1.0  # 3x3 dot centred on (97, 71)
    centre, side = np.array([80.0, 90.0]), 100.0
    rot = rotation_matrices(np.deg2rad([float(degrees)]))
    net = crop_turned(image, centre, side, rot[0], (64, 64))[0].numpy()
    ys, xs = np.nonzero(net > 0.5 * net.max())
    w = net[ys, xs]
    peak = np.array([(xs * w).sum() / w.sum(), (ys * w).sum() / w.sum()])
    back = from_turned(peak[None, None], centre[None], np.array([side]), rot, (64, 64))[0, 0]
    assert np.linalg.norm(back - dot) < 1.0, (back, dot)


def test_turned_crop_is_black_outside_the_image():
    image = torch.ones(3, 40, 40)
    out = crop_turned(image, (0.0, 0.0), 40.0, rotation_matrices(np.deg2rad([45.0]))[0], (16, 16))
    assert out[:, :2, :2].max() == 0 and out.max() == 1


def test_settings_and_command_line():
    assert Refine(upright=True) == Refine(3.5, 1, True)
    assert Refine().upright is None  # upright where the weights carry the reference
    assert str(Refine(3.0, 2, True)) == "upright box 3 x keypoint spread, 2 passes"
    with pytest.raises(ValueError, match="upright"):
        Refine(upright="yes")
    p = argparse.ArgumentParser()
    add_refine_argument(p)
    assert refine_from_args(p.parse_args([])) is None
    assert refine_from_args(p.parse_args(["--no-upright"])) is None
    assert refine_from_args(p.parse_args(["--refine"])) == Refine()
    assert refine_from_args(p.parse_args(["--refine", "3"])) == Refine(3.0)
    assert refine_from_args(p.parse_args(["--upright"])) == Refine(upright=True)
    assert refine_from_args(p.parse_args(["--refine", "4", "--upright"])) == Refine(4.0, upright=True)
    assert refine_from_args(p.parse_args(["--refine", "--no-upright"])) == Refine(upright=False)
    with pytest.raises(ValueError, match="positive"):
        refine_from_args(p.parse_args(["--refine", "0"]))


def test_reference_is_checked():
    np.testing.assert_array_equal(check_reference(REF.tolist(), 5), REF)
    for bad in (REF[:4], np.full((5, 2), 3.0), np.full((5, 2), np.nan), "x"):
        with pytest.raises(ValueError, match="upright_keypoints"):
            check_reference(bad, 5)


def test_shipped_faces_carry_the_upright_reference(faces):
    ref = check_reference(faces.metadata["upright_keypoints"], faces.num_keypoints)
    assert ((ref >= 0) & (ref <= 63)).all()


def test_upright_pass_is_a_detection_on_the_turned_box(faces, odd_images):
    det = Detector.load("faces", refine=Refine(3.0, upright=True))
    ref = np.asarray(faces.metadata["upright_keypoints"])
    size = faces.input_size
    for im in odd_images:
        first = faces.detect(im).xy
        side = refine_boxes(first[None], 3.0)[0, 2]
        rot = rotation_matrices(roll_angles(first[None], ref))
        net = crop_turned(torch.from_numpy(im).permute(2, 0, 1).float() / 255, first.mean(0), side, rot[0], size)
        xy, _ = faces._infer(net[None])
        want = from_turned(xy, first.mean(0)[None], np.array([side]), rot, size)[0]
        np.testing.assert_allclose(det.detect(im).xy, want, atol=1e-4)


def test_upright_batch_equals_single_images_and_onnx_alike(faces, odd_images, tmp_path):
    from lkdetect.onnx import OnnxDetector, export_onnx

    det = Detector.load("faces", refine=Refine(upright=True))
    batch = det.detect_batch(odd_images, batch_size=2)
    for i, im in enumerate(odd_images):
        np.testing.assert_allclose(batch.xy[i], det.detect(im).xy, atol=1e-3)  # batched convolution rounding
    ort = OnnxDetector(export_onnx(faces, faces.metadata, tmp_path / "m.onnx"), refine=Refine(upright=True))
    np.testing.assert_allclose(ort.detect_batch(odd_images).xy, batch.xy, atol=2e-2)


def test_the_default_follows_the_weights(faces, odd_images, tmp_path):
    """``refine=True`` turns boxes upright on weights with the reference and keeps them axis-aligned on weights
    without it; asking for upright boxes there is refused."""
    from lkdetect.weights import load_weights, save_weights

    network, meta = load_weights(faces.metadata["path"])
    meta = {k: v for k, v in meta.items() if k not in ("sha256", "path", "upright_keypoints")}
    save_weights(tmp_path / "old.safetensors", network, meta)
    old = Detector.load(tmp_path / "old.safetensors", refine=True)
    assert old.refine == Refine(upright=False)
    np.testing.assert_allclose(
        old.detect_batch(odd_images).xy,
        Detector.load("faces", refine=Refine(upright=False)).detect_batch(odd_images).xy,
    )
    with pytest.raises(ValueError, match="add-flip"):
        old.refine = Refine(upright=True)
    assert old.refine == Refine(upright=False)  # unchanged by the refused setting
    new = Detector.load("faces", refine=True)
    assert new.refine == Refine(upright=True)
    np.testing.assert_allclose(
        new.detect_batch(odd_images).xy, Detector.load("faces", refine=Refine(upright=True)).detect_batch(odd_images).xy
    )


def test_rolled_faces_are_read_as_if_upright(faces, data_root):
    """What it is for: on real faces turned 40 degrees, upright refinement agrees with the detections on the faces
    as they are (turned alike) much better than plain refinement does."""
    import cv2
    from PIL import Image

    root = data_root / "mtfl80"
    lines = (root / "training.txt").read_text().split("\n")
    paths = [root / ln.split()[0].replace("\\", "/") for ln in lines[:400:10] if ln.strip()]
    plain = Detector.load("faces", refine=Refine(upright=False))
    upright = Detector.load("faces", refine=Refine(upright=True))
    dev = {"plain": [], "upright": []}
    for i, p in enumerate(paths):
        im = np.asarray(Image.open(p).convert("RGB"))
        h, w = im.shape[:2]
        m = cv2.getRotationMatrix2D(((w - 1) / 2, (h - 1) / 2), 40.0 if i % 2 else -40.0, 1.0)
        turned = cv2.warpAffine(im, m, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT_101)
        target = plain.detect(im).xy @ m[:, :2].T + m[:, 2]
        dev["plain"].append(np.linalg.norm(plain.detect(turned).xy - target, axis=-1).mean())
        dev["upright"].append(np.linalg.norm(upright.detect(turned).xy - target, axis=-1).mean())
    assert np.mean(dev["upright"]) < 0.6 * np.mean(dev["plain"]), {k: np.mean(v) for k, v in dev.items()}
