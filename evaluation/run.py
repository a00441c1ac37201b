"""Run a benchmark of LatentKeypointGAN (He, Wandt, Rhodin, arXiv 2103.15812): detect keypoints on every train
and test image (batched, through the detector's public ``detect_batch``), fit the linear regressor on train, score
the regressed landmarks on test, next to the mean-shape baseline, COCO keypoint AP and the CED; optionally write
the report files.

CUB with several classes: one row per class (regressor fitted on that class's train images, scored on its test
images, i.e. CUB-001/002/003 style) and one row for all the given classes together (CUB-all style); detection
runs once. The last row is the headline.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from . import metrics
from .benchmarks import load_benchmark
from .regression import fit_linear, fit_per_part
from .samples import Benchmark, Sample, limit_split

logger = logging.getLogger(__name__)

# Threshold of the CED's AUC and of the failure rate, in % of the normaliser [choice]: 10 % of the inter-ocular
# distance for faces (the usual face-alignment threshold), 20 % of the crop side for birds.
CED_THRESHOLD = {"iod": 10.0, "crop": 20.0}


@dataclass(frozen=True)
class Detections:
    """Detections and ground truth of one split, in the preprocessed images.

    Attributes:
        xy: (N, K, 2) detected keypoints, normalised (u = (x + 0.5) / W, v = (y + 0.5) / H).
        gt: (N, L, 2) ground-truth landmarks, normalised alike.
        visible: (N, L) bool.
        sizes: (N, 2) preprocessed image (width, height).
        classes: (N,) class ids (-1 when none).
    """

    xy: np.ndarray
    gt: np.ndarray
    visible: np.ndarray
    sizes: np.ndarray
    classes: np.ndarray

    def subset(self, mask: np.ndarray) -> Detections:
        return Detections(self.xy[mask], self.gt[mask], self.visible[mask], self.sizes[mask], self.classes[mask])

    def to_pixels(self, uv: np.ndarray) -> np.ndarray:
        """Normalised (N, L, 2) -> pixels of the preprocessed images."""
        return uv * self.sizes[:, None, :] - 0.5


def detect(
    detector: Any, bench: Benchmark, samples: list[Sample], batch_size: int = 32, progress: bool = False, desc: str = ""
) -> Detections:
    """Preprocess ``samples`` with the benchmark's ``load_image`` and run ``detector.detect_batch`` on batches."""
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    xy, gt, sizes = [], [], []
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=len(samples), desc=desc, unit="img")
    for start in range(0, len(samples), batch_size):
        batch = samples[start : start + batch_size]
        loaded = [bench.load_image(s) for s in batch]
        images = [im for im, _ in loaded]
        kp = detector.detect_batch(images)
        pts = np.asarray(kp.xy, dtype=np.float64)
        if pts.ndim != 3 or pts.shape[0] != len(images) or pts.shape[2] != 2:
            raise ValueError(
                f"detect_batch on {len(images)} images returned xy of shape {pts.shape}, expected ({len(images)}, K, 2)"
            )
        wh = np.array([[im.shape[1], im.shape[0]] for im in images], dtype=np.float64)
        xy.append((pts + 0.5) / wh[:, None, :])
        gt.append((np.stack([lm for _, lm in loaded]) + 0.5) / wh[:, None, :])
        sizes.append(wh)
        if bar is not None:
            bar.update(len(batch))
    if bar is not None:
        bar.close()
    return Detections(
        np.concatenate(xy),
        np.concatenate(gt),
        np.stack([s.visible for s in samples]),
        np.concatenate(sizes),
        np.array([-1 if s.class_id is None else s.class_id for s in samples]),
    )


def score(
    name: str,
    train: Detections,
    test: Detections,
    bench: Benchmark,
    bias: bool = False,
    ridge: float = 0.0,
    fit: str = "lstsq",
) -> tuple[dict[str, Any], np.ndarray, np.ndarray]:
    """Fit on ``train``, score on ``test`` (every test image, whatever ``fit`` drops from training).

    Returns:
        the row (name, sizes, error %, baseline %, AP, AUC, failure rate), the predicted test landmarks (N, L, 2)
        in pixels of the preprocessed images and the per-image errors (N,) in %.
    """
    if bench.per_part:
        reg = fit_per_part(train.xy, train.gt, train.visible, bias=bias, ridge=ridge, fit=fit)
        used = int(reg.kept.any(axis=1).sum()) if reg.kept is not None else len(train.xy)
    else:
        reg = fit_linear(train.xy, train.gt, bias=bias, ridge=ridge, fit=fit)
        used = int(reg.kept.sum()) if reg.kept is not None else len(train.xy)
    pred = reg.predict(test.xy)
    base = np.broadcast_to(metrics.mean_shape(train.gt, train.visible), test.gt.shape)
    pred_px, base_px, gt_px = test.to_pixels(pred), test.to_pixels(base), test.to_pixels(test.gt)
    if bench.metric == "iod":
        per_image = metrics.nme_iod(pred_px, gt_px)
        error, baseline = float(per_image.mean()), float(metrics.nme_iod(base_px, gt_px).mean())
        areas = metrics.interocular(gt_px) ** 2
    elif bench.metric == "crop":  # normalised coordinates are in units of the crop side
        per_image, error = metrics.nme_crop(pred, test.gt, test.visible)
        baseline = metrics.nme_crop(base, test.gt, test.visible)[1]
        areas = test.sizes[:, 0] * test.sizes[:, 1]
    else:
        raise ValueError(f"unknown metric {bench.metric!r}")
    thr = CED_THRESHOLD[bench.metric]
    ap = metrics.coco_ap(pred_px, gt_px, test.visible, areas, bench.oks_sigmas, test.sizes)
    row = {
        "name": name,
        "n_train": len(train.xy),
        "n_train_fitted": used,
        "n_test": len(test.xy),
        "error": error,
        "baseline": baseline,
        **ap,
        f"auc@{thr:g}": metrics.auc(per_image, thr),
        f"failure@{thr:g}": metrics.failure_rate(per_image, thr),
    }
    return row, pred_px, per_image


def evaluate(
    detector: Any,
    dataset: str | Benchmark,
    root: str | Path | None = None,
    classes: Sequence[int] | None = None,
    bias: bool = False,
    ridge: float = 0.0,
    fit: str = "lstsq",
    out: str | Path | None = None,
    progress: bool = True,
    batch_size: int = 32,
    limit: int | None = None,
) -> dict[str, Any]:
    """Evaluate ``detector`` on a benchmark.

    Args:
        detector: has ``detect_batch(images) -> Keypoints`` (list of HxWx3 uint8 RGB arrays; ``xy`` (B, K, 2) in
            input pixels), ``num_keypoints`` and ``metadata`` (``lkdetect.Detector`` or ``OnnxDetector``).
        dataset: "mafl", "celeba-wild", "cub", "mtfl", or an already read ``Benchmark``.
        root: the dataset's folder (official layout); unused when ``dataset`` is a ``Benchmark``.
        classes: CUB class ids (all classes present when None).
        bias, ridge: regression options (the protocol: no bias, no ridge).
        fit: ``"lstsq"`` (the protocol) or ``"trimmed"`` (drops training images whose annotation disagrees with
            the fit; see :mod:`evaluation.regression`).
        out: folder for report.json, report.md, ced.png and best_worst.png (nothing written when None).
        progress: tqdm progress bars.
        batch_size: images per ``detect_batch`` call.
        limit: use only the first ``limit`` images of each split (quick checks; not the protocol).

    Returns:
        the report: "rows" (one per class and/or "all", the last is the headline), "error", "baseline", "ap"
        (of the headline row), split sizes, K, the detector's name and hash, options, wall time, files written.
    """
    t0 = time.perf_counter()
    bench = dataset if isinstance(dataset, Benchmark) else load_benchmark(dataset, root, classes)
    train_s, test_s = limit_split(bench.train, limit), limit_split(bench.test, limit)
    logger.info("%s: %d train, %d test images", bench.name, len(train_s), len(test_s))
    train = detect(detector, bench, train_s, batch_size, progress, f"{bench.name} train")
    test = detect(detector, bench, test_s, batch_size, progress, f"{bench.name} test")

    rows, outputs = [], []
    subsets: list[tuple[str, np.ndarray | None]] = []
    if bench.name == "cub" and classes is not None:
        subsets += [(f"cub-{c:03d}", np.asarray(c)) for c in classes]
    if len(subsets) != 1:
        subsets.append(("all" if bench.name == "cub" else bench.name, None))
    for name, cls in subsets:
        tr = train if cls is None else train.subset(train.classes == cls)
        te = test if cls is None else test.subset(test.classes == cls)
        if len(tr.xy) == 0 or len(te.xy) == 0:
            raise ValueError(f"{name}: {len(tr.xy)} train and {len(te.xy)} test images; both must be > 0")
        row, pred_px, per_image = score(name, tr, te, bench, bias, ridge, fit)
        rows.append(row)
        outputs.append((te, pred_px, per_image, cls))

    meta = dict(getattr(detector, "metadata", {}) or {})
    head = rows[-1]
    result: dict[str, Any] = {
        "benchmark": bench.name,
        "root": None if root is None else str(root),
        "metric": {"iod": "mean L2 / inter-ocular distance (%)", "crop": "mean L2 / crop side (%)"}[bench.metric],
        "error": head["error"],
        "baseline": head["baseline"],
        "ap": head["ap"],
        "rows": rows,
        "n_train": len(train_s),
        "n_test": len(test_s),
        "num_keypoints": int(train.xy.shape[1]),
        "num_landmarks": bench.num_landmarks,
        "landmarks": list(bench.landmark_names),
        "detector": {
            "name": meta.get("name"),
            "sha256": meta.get("sha256"),
            "type": type(detector).__name__,
            "tta": None if getattr(detector, "tta", None) is None else str(detector.tta),
            "refine": None if getattr(detector, "refine", None) is None else str(detector.refine),
        },
        "options": {
            "bias": bias,
            "ridge": ridge,
            "fit": fit,
            "classes": None if classes is None else list(classes),
            "batch_size": batch_size,
            "limit": limit,
            "coordinates": "normalised to the preprocessed image, u = (x + 0.5) / W, origin at the top-left corner",
        },
        "protocol": dict(bench.notes),
        "oks_sigmas": list(bench.oks_sigmas),
    }
    result["wall_time_s"] = time.perf_counter() - t0  # reading, detection, fitting and scoring; not the plots
    if out is not None:
        from .report import write_report

        te, pred_px, per_image, cls = outputs[-1]
        test_samples = test_s if cls is None else [s for s in test_s if s.class_id == int(cls)]
        result["files"] = write_report(
            result,
            Path(out),
            bench,
            test_samples,
            pred_px,
            {r["name"]: o[2] for r, o in zip(rows, outputs)},
            CED_THRESHOLD[bench.metric],
        )
    logger.info(
        "%s: error %.2f %% (mean-shape baseline %.2f %%), AP %.3f",
        bench.name,
        head["error"],
        head["baseline"],
        head["ap"],
    )
    return result
