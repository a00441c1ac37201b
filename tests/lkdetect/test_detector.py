"""Detector: every input kind, exact coordinate mapping (resize, box, padding), batches, boundary errors."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from PIL import Image

from lkdetect import Detector, Keypoints
from lkdetect.network import KeypointNet, soft_argmax
from lkdetect.video import detect_video
from lkdetect.weights import file_sha256, make_metadata, save_weights


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    torch.manual_seed(0)
    net = KeypointNet("mobilenetv3_small_100", 4, (32, 32), stride=8, upsample=2, head_channels=8, head_depth=1)
    path = tmp_path_factory.mktemp("w") / "tiny.safetensors"
    save_weights(path, net.eval(), make_metadata(net, ["a", "b", "c", "d"]))
    return path


@pytest.fixture(scope="module")
def det(weights):
    return Detector.load(weights)


@pytest.fixture
def rgb():
    return np.random.default_rng(1).integers(0, 256, (48, 40, 3), dtype=np.uint8)


class BrightSpot(torch.nn.Module):
    """A stand-in network whose one keypoint is the soft-argmax of the image brightness (a known answer)."""

    num_keypoints = 1
    input_size = (32, 32)

    def forward(self, images):
        logits = torch.log(images.mean(1, keepdim=True) + 1e-6)  # probability = brightness: its centroid
        xy, scores, _ = soft_argmax(logits, images.shape[-2:])
        return xy, scores


def blob(h: int, w: int, x: float, y: float, sigma: float) -> np.ndarray:
    gy, gx = np.mgrid[:h, :w]
    g = np.exp(-((gx - x) ** 2 + (gy - y) ** 2) / (2 * sigma**2))
    return np.repeat((g * 255).round().astype(np.uint8)[..., None], 3, axis=2)


def test_properties_and_metadata(det, weights):
    assert det.num_keypoints == 4 and det.input_size == (32, 32) and det.keypoint_names == ("a", "b", "c", "d")
    assert det.metadata["sha256"] == file_sha256(weights) and det.metadata["path"] == str(weights)
    assert det.device == torch.device("cpu") and Detector.load(weights, device="auto").num_keypoints == 4
    with pytest.raises(ValueError, match="expected a device"):
        Detector.load(weights, device="toaster")


def test_every_input_kind_gives_the_same_keypoints(det, rgb, tmp_path):
    ref = det.detect(rgb)
    assert isinstance(ref, Keypoints) and ref.xy.shape == (4, 2) and ref.scores.shape == (4,)
    assert ref.xy.dtype == np.float64 and ref.names == ("a", "b", "c", "d")
    assert ((ref.scores >= 0) & (ref.scores <= 1)).all()
    Image.fromarray(rgb).save(tmp_path / "im.png")
    rgba = np.concatenate([rgb, np.full(rgb.shape[:2] + (1,), 7, np.uint8)], axis=2)
    same = {
        "path str": str(tmp_path / "im.png"),
        "path": tmp_path / "im.png",
        "PIL": Image.fromarray(rgb),
        "PIL RGBA": Image.fromarray(rgba),
        "float64": rgb / 255.0,
        "float32": (rgb / 255.0).astype(np.float32),
        "HxWx4": rgba,
        "tensor uint8": torch.from_numpy(rgb).permute(2, 0, 1),
        "tensor float": torch.from_numpy(rgb).permute(2, 0, 1) / 255.0,
    }
    for kind, image in same.items():
        np.testing.assert_allclose(det.detect(image).xy, ref.xy, atol=1e-5, err_msg=kind)
    np.testing.assert_allclose(det.detect(rgb[..., ::-1].copy(), bgr=True).xy, ref.xy, atol=1e-6)
    np.testing.assert_allclose(
        det.detect(torch.from_numpy(rgb[..., ::-1].copy()).permute(2, 0, 1), bgr=True).xy, ref.xy, atol=1e-6
    )
    assert not np.allclose(det.detect(rgb[..., ::-1].copy()).xy, ref.xy)  # colour order matters
    gray = rgb[..., 0]
    gray_ref = det.detect(np.repeat(gray[..., None], 3, axis=2)).xy
    for image in (gray, gray[..., None], torch.from_numpy(gray), torch.from_numpy(gray)[None], Image.fromarray(gray)):
        np.testing.assert_allclose(det.detect(image).xy, gray_ref, atol=1e-6)


@pytest.mark.parametrize("h,w,x,y", [(32, 32, 10.0, 20.0), (120, 200, 150.0, 60.0), (17, 90, 70.3, 8.6)])
def test_resize_maps_back_exactly(h, w, x, y):
    det = Detector(BrightSpot(), {"input_size": [32, 32]})
    kp = det.detect(blob(h, w, x, y, sigma=min(h, w) / 10))  # well inside: no truncated tails
    # A brightness centroid survives an anti-aliased bilinear resize up to a small fraction of a source pixel.
    np.testing.assert_allclose(kp.xy[0], [x, y], atol=0.02 * max(w / 32, h / 32, 1.0))


def test_box_equals_detecting_the_cropped_image(det, rgb):
    x, y, w, h = 5, 9, 24, 30
    on_box = det.detect(rgb, box=(x, y, w, h))
    on_crop = det.detect(rgb[y : y + h, x : x + w])
    np.testing.assert_allclose(on_box.xy, on_crop.xy + [x, y], atol=1e-9)
    np.testing.assert_allclose(on_box.scores, on_crop.scores, atol=1e-9)


def test_box_outside_the_image_pads_black(det, rgb):
    x, y, w, h = -6, 30, 40, 30  # sticks out left and bottom
    padded = np.zeros((100, 100, 3), np.uint8)
    padded[10:58, 10:50] = rgb
    on_box = det.detect(rgb, box=(x, y, w, h))
    on_padded = det.detect(padded[10 + y : 10 + y + h, 10 + x : 10 + x + w])
    np.testing.assert_allclose(on_box.xy, on_padded.xy + [x, y], atol=1e-9)


def test_batch_equals_single_images(det, rgb):
    rng = np.random.default_rng(2)
    images = [rgb, rng.integers(0, 256, (20, 64, 3), dtype=np.uint8), torch.rand(3, 32, 32), rgb[..., 0]]
    boxes = [None, (3, 2, 10, 12), None, (0, 0, 40, 48)]
    batch = det.detect_batch(images, boxes=boxes, batch_size=3)
    assert batch.xy.shape == (4, 4, 2) and batch.scores.shape == (4, 4) and batch.batched
    for i, (im, box) in enumerate(zip(images, boxes)):
        one = det.detect(im, box=box)
        np.testing.assert_allclose(batch.xy[i], one.xy, atol=1e-5)
        np.testing.assert_allclose(batch.scores[i], one.scores, atol=1e-5)
    stacked = np.stack([rgb, rgb[::-1].copy()])
    np.testing.assert_allclose(
        det.detect_batch(stacked).xy, det.detect_batch(torch.from_numpy(stacked).permute(0, 3, 1, 2)).xy, atol=1e-6
    )
    empty = det.detect_batch([])
    assert empty.xy.shape == (0, 4, 2) and empty.scores.shape == (0, 4)


@pytest.mark.parametrize(
    "image,exc,pattern",
    [
        (None, TypeError, "got None"),
        ("no/such/file.png", FileNotFoundError, "not found"),
        (np.zeros((0, 5, 3), np.uint8), ValueError, r"non-empty image, got shape \(0, 5, 3\)"),  # as given
        (np.zeros((4, 5, 2), np.uint8), ValueError, "1, 3 or 4 channels"),
        (np.zeros((2, 4, 5, 3), np.uint8), ValueError, "HxW, HxWx1, HxWx3 or HxWx4"),
        (np.zeros((3, 8, 8), np.uint8), ValueError, "looks channels-first"),
        (torch.zeros(8, 9, 3), ValueError, "looks HxWxC"),
        (np.full((4, 4, 3), 255.0), ValueError, r"in \[0, 1\], got values in \[255, 255\]"),
        (np.full((4, 4, 3), np.nan), ValueError, "NaN"),
        (np.zeros((4, 4, 3), np.int64), TypeError, "int64"),
        ([[1, 2]], TypeError, "got list"),
    ],
)
def test_bad_inputs_raise_clear_errors(det, image, exc, pattern):
    with pytest.raises(exc, match=pattern):
        det.detect(image)


def test_bad_files_and_boxes(det, rgb, tmp_path):
    bad = tmp_path / "bad.png"
    bad.write_text("not a png")
    with pytest.raises(ValueError, match="cannot decode image file .*bad.png"):
        det.detect(bad)
    for box, pattern in [
        ((1, 2, 3), r"expected \(x, y, w, h\)"),
        ((0, 0, 0, 5), "width and height >= 1"),
        ((0, 0, np.inf, 5), "finite"),
        ((40, 0, 10, 10), r"wholly outside the 40x48 image"),  # starts one column past the right edge
        ((-10, 5, 10, 10), "wholly outside"),  # ends one column before the left edge
        ((5, -20, 10, 20), "wholly outside"),
    ]:
        with pytest.raises(ValueError, match=pattern):
            det.detect(rgb, box=box)


def test_batch_errors_name_the_index(det, rgb):
    with pytest.raises(ValueError, match=r"images\[2\]: float images must be in \[0, 1\]"):
        det.detect_batch([rgb, rgb, rgb * 2.0])
    with pytest.raises(TypeError, match=r"images\[1\]: expected .* got None"):
        det.detect_batch([rgb, None])
    with pytest.raises(ValueError, match=r"images\[0\] box"):
        det.detect_batch([rgb], boxes=[(0, 0, -1, 3)])
    with pytest.raises(ValueError, match=r"images\[1\] box: .* wholly outside"):
        det.detect_batch([rgb, rgb], boxes=[None, (100, 100, 5, 5)])
    with pytest.raises(ValueError, match="one box .* per image"):
        det.detect_batch([rgb, rgb], boxes=[None])
    with pytest.raises(ValueError, match="4-d batch"):
        det.detect_batch(rgb)
    with pytest.raises(TypeError, match="use detect"):
        det.detect_batch("image.png")


def test_detect_video_hook_delegates(det, rgb):
    results = list(detect_video(det, [rgb, rgb], smooth=False))
    assert len(results) == 2
    np.testing.assert_allclose(results[1].keypoints.xy, det.detect(rgb).xy, atol=1e-5)


def test_network_runs_channels_last_with_the_contiguous_result(det):
    """The detector keeps its network channels-last (the fast CPU layout); keypoints equal a contiguous run."""
    conv = next(m for m in det.network.modules() if isinstance(m, torch.nn.Conv2d))
    assert conv.weight.is_contiguous(memory_format=torch.channels_last)
    batch = torch.rand(3, 3, *det.input_size, generator=torch.Generator().manual_seed(0))
    xy, scores = det._run(batch)
    contiguous = copy.deepcopy(det.network).to(memory_format=torch.contiguous_format)
    with torch.inference_mode():
        xy_ref, scores_ref = contiguous(batch)
    assert np.allclose(xy, xy_ref.double().numpy(), atol=1e-3)
    assert np.allclose(scores, scores_ref.double().numpy(), atol=1e-4)
