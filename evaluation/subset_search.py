"""Which keypoints of a detector the landmark regression reads best: every subset of a given size, cross-validated
inside the training split.

    lkdetect train-cv cub --root ../shared/data/cub --weights W --classes 4,5,...,50 --keep-search 4

The protocol fits a linear regressor from all K keypoints; on CUB's single-class sets (30 training images a class)
2K inputs over-fit, so a detector may ship a subset (``lkdetect keep-keypoints W --keep ...``). This ranks every
subset of ``size`` keypoints by the training-split CV (:func:`evaluation.cv.cross_validate`): per class when
classes are given (the mean over the classes), else over all images. The detections are computed once; each
subset only re-fits the regression. The test split is never read.
"""

from __future__ import annotations

import dataclasses
import itertools
from typing import Any

import numpy as np

from .cv import cross_validate, per_class
from .run import Detections
from .samples import Benchmark

MAX_SUBSETS = 5000


def keep(det: Detections, keypoints: tuple[int, ...]) -> Detections:
    """The detections of ``keypoints`` only, in that order."""
    return dataclasses.replace(det, xy=det.xy[:, list(keypoints)])


def search(
    train: Detections,
    bench: Benchmark,
    size: int,
    classes: list[int] | None = None,
    folds: int = 5,
    fit: str = "lstsq",
    seed: int = 0,
    flip_permutation: list[int] | None = None,
) -> list[dict[str, Any]]:
    """Cross-validate every subset of ``size`` of the detections' keypoints, best first.

    With ``flip_permutation`` only the subsets that hold each kept keypoint's mirror are searched: the detections
    were made with mirrored test-time augmentation, which a subset detector can repeat only then.

    Returns:
        One dict per subset: ``keypoints`` (tuple), ``all`` (CV error over all images, %), and with ``classes``
        ``per_class`` (mean of the per-class CV errors, %) and ``beating`` (classes below their mean shape). Sorted
        by ``per_class`` when classes are given, else by ``all``.

    Raises:
        ValueError: ``size`` outside 1..K, or more than :data:`MAX_SUBSETS` subsets.
    """
    k = train.xy.shape[1]
    if not 1 <= size <= k:
        raise ValueError(f"--keep-search needs a size in 1..{k} (the detector's keypoints), got {size}")
    subsets = list(itertools.combinations(range(k), size))
    if flip_permutation is not None:
        subsets = [s for s in subsets if all(flip_permutation[i] in s for i in s)]
        if not subsets:
            raise ValueError(f"no subset of {size} keypoints holds the mirror of each (flip {flip_permutation})")
    if len(subsets) > MAX_SUBSETS:
        raise ValueError(f"{len(subsets)} subsets of {size} of {k} keypoints; at most {MAX_SUBSETS} are searched")
    rows = []
    for s in subsets:
        det = keep(train, s)
        row: dict[str, Any] = {"keypoints": s, "all": cross_validate(det, bench, folds, fit, None, seed)["error"]}
        if classes:
            per = per_class(det, bench, classes, folds, fit, seed)
            errors = np.array([r["error"] for r in per])
            row["per_class"] = float(errors.mean())
            row["beating"] = int(sum(r["error"] < r["baseline"] for r in per))
        rows.append(row)
    return sorted(rows, key=lambda r: (r["per_class"] if classes else r["all"], r["keypoints"]))


def print_search(rows: list[dict[str, Any]], size: int, top: int = 10, closed: bool = False) -> None:
    """The ``top`` rows of :func:`search` as a markdown table (``closed``: only subsets closed under the flip)."""
    per = "per_class" in rows[0]
    by = "per-class CV mean" if per else "CV over all images"
    which = " that hold each kept keypoint's mirror" if closed else ""
    n = len(rows)
    print(f"\nsubsets of {size} keypoints{which} ({n} searched; the detector's output indices), best by the {by}")
    extra = " per-class CV mean % | classes beating the mean shape |" if per else ""
    print("| rank | keypoints | CV all images % |" + extra)
    print("|---|---|---|" + ("---|---|" if per else ""))
    for i, r in enumerate(rows[:top], 1):
        cells = f"| {i} | {','.join(map(str, r['keypoints']))} | {r['all']:.2f} |"
        print(cells + (f" {r['per_class']:.2f} | {r['beating']} |" if per else ""))
