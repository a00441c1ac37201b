"""Cross-validation inside the training split (model selection without the test split)."""

from __future__ import annotations

import numpy as np
import pytest

from evaluation.run import Detections
from evaluation.samples import FACE_LANDMARKS, FACE_OKS_SIGMAS, Benchmark
from evaluation.train_cv import cross_validate


def faces(n: int, corrupt: float, seed: int = 0) -> tuple[Detections, np.ndarray]:
    """Detections that are a fixed linear map of the landmarks plus noise; a share of labels shifted up."""
    rng = np.random.default_rng(seed)
    base = np.array([[0.35, 0.4], [0.65, 0.4], [0.5, 0.55], [0.38, 0.7], [0.62, 0.7]])
    gt = base + rng.normal(0, 0.03, (n, 5, 2)) + rng.normal(0, 0.05, (n, 1, 2))
    xy = np.concatenate((gt, gt[:, :3] * 0.9 + 0.05), axis=1) + rng.normal(0, 0.002, (n, 8, 2))
    bad = rng.random(n) < corrupt
    labels = gt.copy()
    labels[bad, :, 1] -= 0.3
    sizes = np.full((n, 2), 80.0)
    det = Detections(xy, labels, np.ones((n, 5), dtype=bool), sizes, np.full(n, -1))
    return det, bad


BENCH = Benchmark("mtfl", [], [], lambda s: None, FACE_LANDMARKS, "iod", False, FACE_OKS_SIGMAS)


def test_clean_labels_give_a_small_error_and_every_image_is_scored_once() -> None:
    det, _ = faces(300, corrupt=0.0)
    r = cross_validate(det, BENCH, folds=5)
    assert r["n_scored"] == 300 and len(r["per_image"]) == 300 and len(r["fold_errors"]) == 5
    assert r["error"] < 2.0 < r["baseline"]


def test_corrupt_labels_hurt_least_squares_not_the_trimmed_fit() -> None:
    det, bad = faces(400, corrupt=0.25)
    plain = cross_validate(det, BENCH, folds=5, fit="lstsq", scored=~bad)
    trimmed = cross_validate(det, BENCH, folds=5, fit="trimmed", scored=~bad)
    assert plain["n_scored"] == trimmed["n_scored"] == int((~bad).sum())
    assert trimmed["error"] < 2.0 and plain["error"] > 5 * trimmed["error"]


def test_folds_are_seeded_and_bad_arguments_are_refused() -> None:
    det, _ = faces(50, corrupt=0.0)
    a, b = cross_validate(det, BENCH, seed=3), cross_validate(det, BENCH, seed=3)
    assert np.array_equal(a["per_image"], b["per_image"])
    with pytest.raises(ValueError, match="folds"):
        cross_validate(det, BENCH, folds=1)
    with pytest.raises(ValueError, match="scored"):
        cross_validate(det, BENCH, scored=np.ones(3, dtype=bool))
    with pytest.raises(ValueError, match="no image is scored"):
        cross_validate(det, BENCH, scored=np.zeros(50, dtype=bool))


def test_held_out_folds_are_scored_on_the_given_detections() -> None:
    det, _ = faces(200, 0.0)
    plain = cross_validate(det, BENCH, folds=4)
    same = cross_validate(det, BENCH, folds=4, scored_on=det)
    np.testing.assert_array_equal(plain["per_image"], same["per_image"])
    moved = Detections(det.xy.copy(), det.gt.copy(), det.visible, det.sizes, det.classes)
    moved.gt[7, :, 0] += 0.1  # only image 7's scoring labels change; fits use ``det``
    r = cross_validate(det, BENCH, folds=4, scored_on=moved)
    order = np.concatenate([np.flatnonzero(np.random.default_rng(0).permutation(200) % 4 == f) for f in range(4)])
    changed = order[np.flatnonzero(~np.isclose(r["per_image"], plain["per_image"]))]
    assert changed.tolist() == [7]
    with pytest.raises(ValueError, match="same images"):
        cross_validate(det, BENCH, folds=4, scored_on=det.subset(np.arange(200) < 100))


def test_zoomed_benchmark_maps_landmarks_with_the_image() -> None:
    from evaluation.train_cv import zoomed

    image = np.zeros((80, 60, 3), dtype=np.uint8)
    image[30, 40] = 255  # a bright pixel at landmark (x=40, y=30)
    bench = Benchmark("mtfl", [None], [], lambda s: (image, np.array([[40.0, 30.0]])), ("p",), "iod", False, (0.1,))
    for zoom in (1.0, 1.5, 2.0):
        out, lm = zoomed(bench, zoom).load_image(None)
        assert out.shape == image.shape
        y, x = np.unravel_index(out[..., 0].argmax(), out.shape[:2])
        centre = np.array([59, 79]) / 2  # pixel centres at integers: the image centre is at ((W - 1) / 2, (H - 1) / 2)
        np.testing.assert_allclose(lm[0], centre + ([40, 30] - centre) * zoom, atol=1e-9)
        assert abs(x - lm[0, 0]) <= 1 and abs(y - lm[0, 1]) <= 1, (zoom, x, y, lm)
    for zoom in (0.8, 0, float("nan")):
        with pytest.raises(ValueError, match="zoom"):
            zoomed(bench, zoom)


def test_rotated_benchmark_maps_landmarks_with_the_image_each_image_at_its_own_fixed_angle() -> None:
    from types import SimpleNamespace

    from evaluation.train_cv import rotated

    image = np.zeros((80, 60, 3), dtype=np.uint8)
    image[20, 45] = 255  # a bright pixel at landmark (x=45, y=20)
    centre = np.array([59, 79]) / 2
    bench = Benchmark("mtfl", [], [], lambda s: (image, np.array([[45.0, 20.0]])), ("p",), "iod", False, (0.1,))
    samples = [SimpleNamespace(path=f"img_{i}.jpg") for i in range(12)]
    angles = []
    for s in samples:
        out, lm = rotated(bench, 40).load_image(s)
        assert out.shape == image.shape
        x, y = np.rint(lm[0]).astype(int)  # the bright pixel moved there (the reflected border may hold copies of it)
        assert out[y - 1 : y + 2, x - 1 : x + 2, 0].max() >= 60 and out[..., 0].max() >= 60, (s.path, lm)
        before, after = np.array([45.0, 20.0]) - centre, lm[0] - centre
        np.testing.assert_allclose(np.linalg.norm(after), np.linalg.norm(before), atol=1e-9)
        # counter-clockwise as seen (y down) is positive: the angle from `before` to `after` with y flipped
        angles.append(np.degrees(np.arctan2(-after[1], after[0]) - np.arctan2(-before[1], before[0])))
        np.testing.assert_array_equal(rotated(bench, 40).load_image(s)[1], lm)  # the same image, the same angle
    angles = (np.array(angles) + 180) % 360 - 180
    assert np.abs(angles).max() <= 40 + 1e-9 and np.ptp(angles) > 20  # within +-40, and not one angle for all
    other = [rotated(bench, 40, seed=1).load_image(s)[1] for s in samples]
    assert not all(np.allclose(o, rotated(bench, 40).load_image(s)[1]) for o, s in zip(other, samples))
    np.testing.assert_allclose(rotated(bench, 0).load_image(samples[0])[1], [[45.0, 20.0]], atol=1e-9)
    for bad in (-1, 181, float("nan")):
        with pytest.raises(ValueError, match="rotation"):
            rotated(bench, bad)


@pytest.mark.parametrize(
    "flags",
    [["--zoom", "0.5"], ["--refine", "0"], ["--rotate", "200"], ["--rotate", "45", "200"], ["--keep-search", "0"]],
)
def test_cli_refuses_bad_zoom_and_refine_before_loading_anything(flags, capsys) -> None:
    from evaluation.train_cv import main

    with pytest.raises(SystemExit) as e:
        main(["mtfl", "--root", "/nonexistent", *flags])
    assert e.value.code == 2 and flags[0] in capsys.readouterr().err


def test_per_class_cv_fits_each_class_on_its_own_images() -> None:
    from evaluation.train_cv import per_class

    a, _ = faces(40, 0.0, seed=1)
    b, _ = faces(40, 0.0, seed=2)
    b.xy[:] = b.xy[:, :, ::-1]  # class 8: the detector's x and y are swapped, one fit for both classes fails
    det = Detections(
        np.concatenate([a.xy, b.xy]),
        np.concatenate([a.gt, b.gt]),
        np.ones((80, 5), dtype=bool),
        np.full((80, 2), 80.0),
        np.repeat([5, 8], 40),
    )
    rows = per_class(det, BENCH, [5, 8])
    assert [r["class"] for r in rows] == [5, 8] and [r["n_scored"] for r in rows] == [40, 40]
    assert max(r["error"] for r in rows) < 2.0 < cross_validate(det, BENCH)["error"]
    alone = cross_validate(det.subset(det.classes == 8), BENCH)
    np.testing.assert_array_equal(rows[1]["per_image"], alone["per_image"])
    with pytest.raises(ValueError, match="class 9 has 0 training images"):
        per_class(det, BENCH, [5, 9])
