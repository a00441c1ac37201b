"""K-fold cross-validation of the landmark regression inside one split's detections (over all images, or inside
each CUB class): :mod:`evaluation.train_cv` and :mod:`evaluation.subset_search` read detectors with it."""

from __future__ import annotations

from typing import Any

import numpy as np

from .run import Detections, score
from .samples import Benchmark


def cross_validate(
    train: Detections,
    bench: Benchmark,
    folds: int = 5,
    fit: str = "lstsq",
    scored: np.ndarray | None = None,
    seed: int = 0,
    bias: bool = False,
    ridge: float = 0.0,
    scored_on: Detections | None = None,
) -> dict[str, Any]:
    """K-fold cross-validation of the landmark regression on one split's detections.

    Args:
        train: detections and annotations of the training split.
        bench: the benchmark (metric, per-part fitting).
        folds: number of folds (>= 2).
        fit, bias, ridge: regression options, as in :func:`evaluation.run.score`.
        scored: (N,) bool, which images may be scored when held out (all when None); every image is fitted on.
        seed: fixes the random fold assignment.
        scored_on: detections of the same images (same order), e.g. zoomed, to score held-out folds on; the
            regression is always fitted on ``train``. Default: ``train``.

    Returns:
        ``error`` and ``baseline`` (mean-shape) in %, averaged over the folds weighted by their scored images,
        ``per_image`` errors (every scored image once), ``n_scored`` and ``fold_errors``.
    """
    n = len(train.xy)
    if folds < 2 or folds > n:
        raise ValueError(f"folds must be in [2, {n}] for {n} images, got {folds}")
    scored = np.ones(n, dtype=bool) if scored is None else np.asarray(scored, dtype=bool)
    if scored.shape != (n,):
        raise ValueError(f"scored must have shape ({n},), got {scored.shape}")
    scored_on = train if scored_on is None else scored_on
    if scored_on.xy.shape != train.xy.shape or scored_on.gt.shape != train.gt.shape:
        raise ValueError(
            f"scored_on must hold the same images as train: xy {scored_on.xy.shape} / gt {scored_on.gt.shape} "
            f"against {train.xy.shape} / {train.gt.shape}"
        )
    fold = np.random.default_rng(seed).permutation(n) % folds
    errors, baselines, weights, per_image = [], [], [], []
    for f in range(folds):
        held_out = (fold == f) & scored
        if not held_out.any():
            continue
        row, _, per = score(f"fold{f}", train.subset(fold != f), scored_on.subset(held_out), bench, bias, ridge, fit)
        errors.append(row["error"])
        baselines.append(row["baseline"])
        weights.append(int(held_out.sum()))
        per_image.append(per)
    if not weights:
        raise ValueError("no image is scored: every image is excluded by `scored`")
    w = np.asarray(weights, dtype=np.float64)
    return {
        "error": float(np.dot(errors, w) / w.sum()),
        "baseline": float(np.dot(baselines, w) / w.sum()),
        "fold_errors": [float(e) for e in errors],
        "per_image": np.concatenate(per_image),
        "n_scored": int(w.sum()),
    }


def per_class(
    train: Detections,
    bench: Benchmark,
    classes: list[int],
    folds: int = 5,
    fit: str = "lstsq",
    seed: int = 0,
    scored_on: Detections | None = None,
) -> list[dict[str, Any]]:
    """:func:`cross_validate` inside each class's training images (the single-class protocol's proxy): one result
    per class of ``classes``, with its ``class`` id added.

    Raises:
        ValueError: a class has fewer training images than ``folds``.
    """
    out = []
    for c in classes:
        mask = train.classes == c
        if mask.sum() < folds:
            raise ValueError(f"class {c} has {int(mask.sum())} training images, fewer than the {folds} folds")
        on = None if scored_on is None else scored_on.subset(mask)
        out.append({"class": c, **cross_validate(train.subset(mask), bench, folds, fit, None, seed, scored_on=on)})
    return out
