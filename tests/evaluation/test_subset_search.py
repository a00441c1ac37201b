"""Ranking keypoint subsets by the training-split CV (``lkdetect train-cv --keep-search``)."""

from __future__ import annotations

import numpy as np
import pytest

from evaluation.run import Detections
from evaluation.samples import FACE_LANDMARKS, FACE_OKS_SIGMAS, Benchmark
from evaluation.subset_search import keep, search
from evaluation.train_cv import cross_validate

BENCH = Benchmark("mtfl", [], [], lambda s: None, FACE_LANDMARKS, "iod", False, FACE_OKS_SIGMAS)


def detections(n: int = 240, seed: int = 0) -> Detections:
    """Four keypoints: 0 and 2 follow the landmarks (a shifted copy of the eyes and mouth), 1 and 3 are noise."""
    rng = np.random.default_rng(seed)
    base = np.array([[0.35, 0.4], [0.65, 0.4], [0.5, 0.55], [0.38, 0.7], [0.62, 0.7]])
    gt = base + rng.normal(0, 0.03, (n, 5, 2)) + rng.normal(0, 0.05, (n, 1, 2))
    informative = gt[:, [0, 3]] * 0.9 + 0.05
    xy = np.stack([informative[:, 0], rng.random((n, 2)), informative[:, 1], rng.random((n, 2))], axis=1)
    classes = np.repeat([1, 2, 3], n // 3)
    return Detections(xy, gt, np.ones((n, 5), dtype=bool), np.full((n, 2), 80.0), classes)


def test_the_informative_keypoints_rank_first_overall_and_per_class() -> None:
    det = detections()
    rows = search(det, BENCH, 2)
    assert len(rows) == 6 and rows[0]["keypoints"] == (0, 2)
    assert rows[0]["all"] == pytest.approx(cross_validate(keep(det, (0, 2)), BENCH)["error"])
    assert [r["all"] for r in rows] == sorted(r["all"] for r in rows)
    assert rows[0]["all"] < 0.5 * rows[-1]["all"]
    per = search(det, BENCH, 2, classes=[1, 2, 3])
    assert per[0]["keypoints"] == (0, 2) and per[0]["beating"] == 3
    assert [r["per_class"] for r in per] == sorted(r["per_class"] for r in per)


def test_with_a_flip_permutation_only_subsets_that_keep_each_mirror_are_searched() -> None:
    det = detections()
    rows = search(det, BENCH, 2, flip_permutation=[1, 0, 2, 3])  # 0 and 1 mirror each other, 2 and 3 are central
    assert sorted(r["keypoints"] for r in rows) == [(0, 1), (2, 3)]
    with pytest.raises(ValueError, match="mirror"):
        search(det, BENCH, 1, flip_permutation=[1, 0, 3, 2])


def test_keep_takes_keypoints_in_order_and_bad_sizes_are_refused() -> None:
    det = detections(30)
    np.testing.assert_array_equal(keep(det, (2, 0)).xy, det.xy[:, [2, 0]])
    for size in (0, 5):
        with pytest.raises(ValueError, match="size in 1..4"):
            search(det, BENCH, size)
