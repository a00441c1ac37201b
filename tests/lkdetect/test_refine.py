"""Scale-normalising refinement: box geometry, settings, the Detector/ONNX switch, and what it is for."""

from __future__ import annotations

import numpy as np
import pytest

from lkdetect import Detector
from lkdetect.onnx import export_onnx
from lkdetect.refine import MIN_SIDE_PX, Refine, as_refine, refine_boxes, spread


def test_boxes_are_squares_of_side_times_rms_spread_on_the_centroid():
    xy = np.array([[[10.0, 20.0], [14.0, 20.0], [12.0, 26.0]], [[0.0, 0.0], [3.0, 4.0], [-3.0, -4.0]]])
    rms = np.sqrt((np.array([[-2, -2], [2, -2], [0, 4]]) ** 2).sum(1).mean())
    np.testing.assert_allclose(spread(xy), [rms, np.sqrt(50 / 3)])
    boxes = refine_boxes(xy, 3.0)
    side = 3 * np.array([rms, np.sqrt(50 / 3)])
    np.testing.assert_allclose(boxes[:, 2], side)
    np.testing.assert_allclose(boxes[:, 3], side)
    np.testing.assert_allclose(boxes[:, :2] + side[:, None] / 2, [[12.0, 22.0], [0.0, 0.0]])


def test_degenerate_keypoints_get_the_minimum_box():
    boxes = refine_boxes(np.full((1, 4, 2), 7.0), 3.5)
    np.testing.assert_allclose(boxes, [[7 - MIN_SIDE_PX / 2, 7 - MIN_SIDE_PX / 2, MIN_SIDE_PX, MIN_SIDE_PX]])


@pytest.mark.parametrize("xy", [np.zeros((3, 2)), np.zeros((1, 0, 2)), np.zeros((1, 3, 3))])
def test_boxes_reject_wrong_shapes(xy):
    with pytest.raises(ValueError, match="shape"):
        refine_boxes(xy, 3.5)


def test_boxes_reject_non_finite_keypoints():
    xy = np.zeros((1, 3, 2))
    xy[0, 1, 0] = np.nan
    with pytest.raises(ValueError, match="non-finite"):
        refine_boxes(xy, 3.5)


def test_settings():
    assert as_refine(None) is None and as_refine(False) is None
    assert as_refine(True) == Refine(3.5, 1)
    assert as_refine(4) == Refine(4.0, 1)
    assert as_refine(Refine(3.0, 2)) == Refine(3.0, 2)
    assert str(Refine(3.0, 2, False)) == "axis-aligned box 3 x keypoint spread, 2 passes"
    assert str(Refine(3.0)) == "box (upright where the weights allow) 3 x keypoint spread, 1 pass"
    for side in (0, -1, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="side"):
            Refine(side)
    for passes in (0, 1.5, True):
        with pytest.raises(ValueError, match="passes"):
            Refine(3.5, passes)
    with pytest.raises(TypeError, match="refine"):
        as_refine("yes")


def test_refined_detection_is_a_second_detection_on_the_box(faces, odd_images):
    refined = Detector.load("faces", refine=Refine(3.0, 1, upright=False))
    for im in odd_images:
        first = faces.detect(im)
        box = refine_boxes(first.xy[None], 3.0)[0]
        expected = faces.detect(im, box=box)
        got = refined.detect(im)
        np.testing.assert_allclose(got.xy, expected.xy, atol=1e-4)
        np.testing.assert_allclose(got.scores, expected.scores, atol=1e-6)
        assert np.abs(got.xy - first.xy).max() > 0.5  # the second pass did change something


def test_passes_repeat_and_user_boxes_start_the_first_pass(faces, odd_images):
    im = odd_images[1]
    two = Detector.load("faces", refine=Refine(3.5, 2, upright=False))
    xy = faces.detect(im, box=(10, 5, 60, 70)).xy
    for _ in range(2):
        xy = faces.detect(im, box=refine_boxes(xy[None], 3.5)[0]).xy
    np.testing.assert_allclose(two.detect(im, box=(10, 5, 60, 70)).xy, xy, atol=1e-4)


def test_batch_equals_single_images(odd_images):
    det = Detector.load("faces", refine=Refine(upright=False))  # upright boxes: tests/lkdetect/test_upright.py
    batch = det.detect_batch(odd_images, batch_size=2)
    for i, im in enumerate(odd_images):
        np.testing.assert_allclose(batch.xy[i], det.detect(im).xy, atol=1e-4)
    assert det.detect_batch([]).xy.shape == (0, det.num_keypoints, 2)


def test_switch_on_and_off(faces, odd_images):
    det = Detector.load("faces")
    assert det.refine is None
    det.refine = 3.0
    assert det.refine == Refine(3.0, upright=True)  # resolved: the shipped faces carry the upright reference
    det.refine = None
    np.testing.assert_array_equal(det.detect(odd_images[0]).xy, faces.detect(odd_images[0]).xy)


def test_onnx_detector_refines_alike(faces, odd_images, tmp_path):
    from lkdetect.onnx import OnnxDetector

    ort = OnnxDetector(export_onnx(faces, faces.metadata, tmp_path / "m.onnx"), refine=True)
    ref = Detector.load("faces", refine=True)
    np.testing.assert_allclose(ort.detect_batch(odd_images).xy, ref.detect_batch(odd_images).xy, atol=2e-2)


def test_small_faces_in_a_large_frame_are_found_as_if_cropped(faces, data_root):
    """What refinement is for: an 80 px face pasted into a 240 px black frame reaches the network at a third of
    its scale; refined keypoints agree with those found on the face alone much better than unrefined ones."""
    from PIL import Image

    root = data_root / "mtfl80"
    lines = (root / "training.txt").read_text().split("\n")
    paths = [root / ln.split()[0].replace("\\", "/") for ln in lines[:400:10] if ln.strip()]
    crops = [np.asarray(Image.open(p).convert("RGB")) for p in paths]
    frames = []
    for face in crops:
        frame = np.zeros((240, 240, 3), np.uint8)
        frame[100:180, 60:140] = face
        frames.append(frame)
    alone = faces.detect_batch(crops).xy + [60, 100]
    unrefined = faces.detect_batch(frames).xy
    refined = Detector.load("faces", refine=True).detect_batch(frames).xy
    dev_plain = np.linalg.norm(unrefined - alone, axis=-1).mean()
    dev_refined = np.linalg.norm(refined - alone, axis=-1).mean()
    assert dev_refined < 0.5 * dev_plain, (dev_refined, dev_plain)
