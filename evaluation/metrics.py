"""Landmark error metrics of LatentKeypointGAN (He, Wandt, Rhodin, arXiv 2103.15812), plus secondary ones.

- Faces (MAFL, CelebA in the wild, MTFL/AFLW): mean L2 error / inter-ocular distance (distance between ground-truth
  landmarks 0 and 1), in %, per image and the mean over images.
- CUB: L2 error over visible test parts in units of the crop side, x100; the headline number pools all visible
  (image, part) pairs (sum of errors / number of visible parts), as AutoLink; per image: mean over its visible parts.
- Mean-shape baseline: predict the training mean landmarks (per landmark over the images where it is visible).
- Cumulative error distribution (CED), its area up to a threshold (AUC) and the failure rate above it.
- COCO keypoint AP (secondary) through pycocotools' COCOeval with per-landmark OKS sigmas; the object scale is the
  inter-ocular distance for faces (area = IOD^2) and the crop side for CUB (area = side^2), so OKS depends on the
  same normalised error as the headline metric. Sigmas: see ``samples.FACE_OKS_SIGMAS`` / ``CUB_OKS_SIGMA``.
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Sequence

import numpy as np


def interocular(gt: np.ndarray, eyes: tuple[int, int] = (0, 1)) -> np.ndarray:
    """(N,) distance between ground-truth landmarks ``eyes`` of (N, L, 2) landmarks; raises if any is 0."""
    d = np.linalg.norm(gt[:, eyes[0]] - gt[:, eyes[1]], axis=-1)
    bad = np.flatnonzero(~(d > 0))
    if len(bad):
        raise ValueError(f"inter-ocular distance is 0 (or NaN) for {len(bad)} image(s), first index {bad[0]}")
    return d


def nme_iod(pred: np.ndarray, gt: np.ndarray, eyes: tuple[int, int] = (0, 1)) -> np.ndarray:
    """Per-image mean L2 error / inter-ocular distance, in %.

    Args:
        pred, gt: (N, L, 2) landmarks in the same pixel units (x, y).
        eyes: indices of the two landmarks whose ground-truth distance normalises the error.

    Returns:
        (N,) errors in % (100 * mean_l ||pred - gt|| / ||gt_eye0 - gt_eye1||).
    """
    return 100.0 * np.linalg.norm(pred - gt, axis=-1).mean(axis=1) / interocular(gt, eyes)


def nme_crop(
    pred: np.ndarray, gt: np.ndarray, visible: np.ndarray, side: float | np.ndarray = 1.0
) -> tuple[np.ndarray, float]:
    """L2 error over visible landmarks in units of the crop side, in %.

    Args:
        pred, gt: (N, L, 2) landmarks in pixels of the crop (or normalised, with ``side`` = 1).
        visible: (N, L) bool; only visible landmarks count.
        side: crop side in the same units (scalar or (N,)).

    Returns:
        per-image errors (N,) in % (NaN for an image without visible landmarks) and the pooled error in %
        (sum of all visible errors / number of visible landmarks).
    """
    visible = np.asarray(visible, dtype=bool)
    if not visible.any():
        raise ValueError("no visible landmark in the test set")
    err = np.linalg.norm(pred - gt, axis=-1) / np.reshape(side, (-1, 1)) * 100.0
    err = np.where(visible, err, 0.0)
    count = visible.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        per_image = np.where(count > 0, err.sum(axis=1) / count, np.nan)
    return per_image, float(err.sum() / visible.sum())


def mean_shape(train: np.ndarray, visible: np.ndarray | None = None) -> np.ndarray:
    """(L, 2) mean of (N, L, 2) training landmarks, each over the images where it is visible (0 if never)."""
    if visible is None:
        return train.mean(axis=0)
    w = np.asarray(visible, dtype=np.float64)[..., None]
    return (train * w).sum(axis=0) / np.maximum(w.sum(axis=0), 1.0)


def ced(errors: np.ndarray, max_error: float, num: int = 201) -> tuple[np.ndarray, np.ndarray]:
    """Cumulative error distribution: thresholds in [0, max_error] and the fraction of images at or below each.

    NaN errors (images without a visible landmark) are left out.
    """
    e = np.asarray(errors, dtype=np.float64)
    e = e[~np.isnan(e)]
    t = np.linspace(0.0, max_error, num)
    return t, (e[None, :] <= t[:, None]).mean(axis=1)


def auc(errors: np.ndarray, threshold: float, num: int = 1001) -> float:
    """Area under the CED on [0, threshold], divided by ``threshold`` (1 = every error is 0)."""
    t, f = ced(errors, threshold, num)
    return float(np.sum((f[1:] + f[:-1]) / 2 * np.diff(t)) / threshold)


def failure_rate(errors: np.ndarray, threshold: float) -> float:
    """Fraction of images whose error exceeds ``threshold`` (NaN errors left out)."""
    e = np.asarray(errors, dtype=np.float64)
    e = e[~np.isnan(e)]
    return float((e > threshold).mean())


def coco_ap(
    pred: np.ndarray,
    gt: np.ndarray,
    visible: np.ndarray,
    areas: np.ndarray,
    sigmas: Sequence[float],
    sizes: np.ndarray | None = None,
) -> dict[str, float]:
    """COCO keypoint AP of one predicted landmark set per image.

    Args:
        pred, gt: (N, L, 2) landmarks in pixels (x, y), pixel centres at integer coordinates (0.5 is added for
            COCO's convention; OKS only sees differences, so this changes nothing but the files' meaning).
        visible: (N, L) bool ground-truth visibility; invisible landmarks do not count.
        areas: (N,) object scale s^2 of each image: OKS = exp(-d^2 / (2 s^2 (2 sigma)^2)).
        sigmas: (L,) per-landmark sigmas.
        sizes: (N, 2) image (width, height) for the ground-truth boxes; defaults to the landmarks' extent.

    Returns:
        {"ap", "ap50", "ap75"} in [0, 1] (all predictions score 1.0; COCOeval's maxDets 20 and area "all").
    """
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    n, num_lm = gt.shape[:2]
    if len(sigmas) != num_lm:
        raise ValueError(f"need {num_lm} OKS sigmas, got {len(sigmas)}")
    vis = np.asarray(visible, dtype=bool)
    if sizes is None:
        sizes = np.ceil(np.maximum(gt.max(axis=1), pred.max(axis=1)) + 1).clip(1)
    images, anns, dets = [], [], []
    for i in range(n):
        kp = np.concatenate([gt[i] + 0.5, np.where(vis[i], 2.0, 0.0)[:, None]], axis=1)
        kp[~vis[i], :2] = 0.0
        w, h = float(sizes[i][0]), float(sizes[i][1])
        images.append({"id": i + 1, "width": w, "height": h})
        anns.append(
            {
                "id": i + 1,
                "image_id": i + 1,
                "category_id": 1,
                "keypoints": kp.ravel().tolist(),
                "num_keypoints": int(vis[i].sum()),
                "area": float(areas[i]),
                "bbox": [0.0, 0.0, w, h],
                "iscrowd": 0,
            }
        )
        dk = np.concatenate([pred[i] + 0.5, np.ones((num_lm, 1))], axis=1)
        dets.append({"image_id": i + 1, "category_id": 1, "keypoints": dk.ravel().tolist(), "score": 1.0})
    with contextlib.redirect_stdout(io.StringIO()):  # pycocotools prints its progress
        coco_gt = COCO()
        coco_gt.dataset = {
            "images": images,
            "annotations": anns,
            "categories": [{"id": 1, "name": "object", "keypoints": [f"lm{j}" for j in range(num_lm)], "skeleton": []}],
        }
        coco_gt.createIndex()
        coco_dt = coco_gt.loadRes(dets)
        ev = COCOeval(coco_gt, coco_dt, iouType="keypoints")
        ev.params.kpt_oks_sigmas = np.asarray(sigmas, dtype=np.float64)
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    return {"ap": float(ev.stats[0]), "ap50": float(ev.stats[1]), "ap75": float(ev.stats[2])}
