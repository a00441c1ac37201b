"""evaluation.keypoint_parts names each keypoint by its nearest landmark, with the distance in the metric's unit."""

from __future__ import annotations

import numpy as np
import pytest

from evaluation.keypoint_parts import nearest_parts
from evaluation.run import Detections
from evaluation.samples import FACE_LANDMARKS, FACE_OKS_SIGMAS, Benchmark

BENCH = Benchmark("mtfl", [], [], lambda s: None, FACE_LANDMARKS, "iod", False, FACE_OKS_SIGMAS)


def test_keypoints_on_landmarks_get_their_names_and_distances() -> None:
    rng = np.random.default_rng(0)
    base = np.array([[0.35, 0.4], [0.65, 0.4], [0.5, 0.55], [0.38, 0.7], [0.62, 0.7]])
    gt = base + rng.normal(0, 0.01, (50, 5, 2))
    # keypoint 0 on the nose, keypoint 1 a tenth of the inter-ocular distance right of the right eye
    iod = np.linalg.norm(gt[:, 0] - gt[:, 1], axis=-1)[:, None]
    xy = np.stack([gt[:, 2], gt[:, 1] + np.concatenate([0.1 * iod, 0 * iod], axis=1)], axis=1)
    det = Detections(xy, gt, np.ones((50, 5), bool), np.full((50, 2), 80.0), np.full(50, -1))
    r = nearest_parts(det, BENCH)
    assert [x["part"] for x in r] == ["nose", "right_eye"]
    assert r[0]["distance"] == pytest.approx(0.0, abs=1e-9) and r[1]["distance"] == pytest.approx(10.0, rel=1e-6)
    assert r[1]["second"][0] == "nose" and 60 < r[1]["second"][1] < 95  # about 78 %
