"""evaluation.equivariance on detectors with known answers: an exactly equivariant one and a constant one."""

from __future__ import annotations

import numpy as np
import pytest

from evaluation.equivariance import measure, transforms, tta_agreement
from lkdetect.keypoints import Keypoints


class ColourCentroids:
    """Keypoint k = the intensity centroid of colour channel k: equivariant under every affine map."""

    def __init__(self, flip: bool = True):
        self.metadata = {"flip_permutation": [0, 1]} if flip else {}

    def detect_batch(self, images):
        out = []
        for im in images:
            f = im.astype(np.float64)
            ys, xs = np.mgrid[: im.shape[0], : im.shape[1]]
            out.append(
                [[(f[..., c] * xs).sum() / f[..., c].sum(), (f[..., c] * ys).sum() / f[..., c].sum()] for c in (0, 1)]
            )
        xy = np.asarray(out, np.float32)
        return Keypoints(xy, np.ones(xy.shape[:2], np.float32))


class Constant(ColourCentroids):
    def detect_batch(self, images):
        xy = np.tile(np.array([[30.0, 40.0], [50.0, 40.0]], np.float32), (len(images), 1, 1))
        return Keypoints(xy, np.ones(xy.shape[:2], np.float32))


def blobs(n: int, size: int = 80, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    ys, xs = np.mgrid[:size, :size]
    images = []
    for _ in range(n):
        im = np.zeros((size, size, 3), np.float64)
        for c in (0, 1):
            cx, cy = rng.uniform(0.35, 0.65, 2) * size
            im[..., c] = 255 * np.exp(-((xs - cx) ** 2 + (ys - cy) ** 2) / (2 * 4.0**2))
        images.append(im.astype(np.uint8))
    return images


def test_an_equivariant_detector_scores_near_zero_and_a_constant_one_does_not() -> None:
    images = blobs(6)
    good = measure(ColourCentroids(), images)
    assert set(good["families"]) == {"shift", "scale", "rotation", "mirror"} and good["n_images"] == 6
    assert max(v["error"] for v in good["per_transform"].values()) < 3.0, good["per_transform"]
    bad = measure(Constant(), images)
    assert bad["families"]["shift"]["error"] > 30 and bad["families"]["rotation"]["error"] > 30
    assert tta_agreement(ColourCentroids(), images) < 1.0
    assert tta_agreement(Constant(), images) > 5.0


def test_without_a_flip_permutation_the_mirror_is_skipped_and_bad_input_is_refused() -> None:
    r = measure(ColourCentroids(flip=False), blobs(2))
    assert "mirror" not in r["families"] and r["mirror"] is False
    assert tta_agreement(ColourCentroids(flip=False), blobs(2)) is None
    with pytest.raises(ValueError, match="no images"):
        measure(ColourCentroids(), [])
    with pytest.raises(ValueError, match="same size"):
        measure(ColourCentroids(), [np.zeros((8, 8, 3), np.uint8), np.zeros((9, 8, 3), np.uint8)])


def test_transform_matrices_map_the_centre_as_expected() -> None:
    by = {f"{t.family} {t.label}": t.matrix for t in transforms(81, 81)}
    centre = np.array([40.0, 40.0])
    for name in ("scale x1.5", "rotation +90 deg", "rotation +180 deg"):
        np.testing.assert_allclose(by[name][:, :2] @ centre + by[name][:, 2], centre, atol=1e-9)
    np.testing.assert_allclose(by["mirror flip"][:, :2] @ [10.0, 5.0] + by["mirror flip"][:, 2], [70.0, 5.0])
    np.testing.assert_allclose(by["shift x+0.1"][:, 2], [8.1, 0.0])
