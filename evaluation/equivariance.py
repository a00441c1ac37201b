"""Label-free diagnostic of a detector on real images: how far its keypoints are from following the image.

    python -m evaluation.equivariance mtfl --root ../shared/data/mtfl80 [--weights faces] [--limit 1000]
        [--split train] [--refine [SIDE]] [--no-upright] [--out DIR]

A keypoint detector should be equivariant: detect on an image transformed by T, map the keypoints back with
T^-1, and they should land where the detector put them on the original image. On GAN images the detector was
trained to be (augmentation); how much it fails on real images, per family of transforms, says where the
GAN-to-real gap is without a single label. Families (each image is transformed about its centre):

- shift: translations by +-10 % of the side in x and in y;
- scale: zoom 0.67, 0.8, 1.25 and 1.5;
- rotation: in-plane rotations by +-15, +-30, +-60, +-90 and 180 degrees;
- mirror: the horizontal flip, with the keypoints paired by the weights' flip permutation (skipped without one).

Warps use OpenCV with the border replicated; pixel centres are at integer coordinates (OpenCV's and lkdetect's
convention), so the inverse map is exact. The error of one keypoint is the L2 distance between the back-mapped
and the original detection, in % of the original detections' spread (RMS distance of the K keypoints from their
centroid), so that it does not depend on the image size. ``tta_agreement`` is the same distance between each of the
views of test-time augmentation (mirror x zoom 0.9, 1, 1.1) and their average: how much TTA has to average out. Uses the
benchmark reader for its images only; no annotation is read. A diagnostic, not a benchmark score.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from lkdetect.refine import add_refine_argument, refine_from_args

from .benchmarks import BENCHMARKS, load_benchmark, shipped_detector
from .cli import parse_alias

SHIFTS = (0.1,)  # fraction of the side, applied as +-x and +-y
SCALES = (0.67, 0.8, 1.25, 1.5)
ANGLES = (-90.0, -60.0, -30.0, -15.0, 15.0, 30.0, 60.0, 90.0, 180.0)


@dataclass(frozen=True)
class Transform:
    """One transform: its family, a label and the 2x3 affine map (input pixels -> output pixels)."""

    family: str
    label: str
    matrix: np.ndarray
    flip: bool = False


def transforms(width: int, height: int) -> list[Transform]:
    """The transforms of the diagnostic for a ``width`` x ``height`` image, about its centre."""
    import cv2

    c = ((width - 1) / 2.0, (height - 1) / 2.0)
    out = []
    for s in SHIFTS:
        for dx, dy, lab in ((s, 0, f"x+{s:g}"), (-s, 0, f"x-{s:g}"), (0, s, f"y+{s:g}"), (0, -s, f"y-{s:g}")):
            out.append(Transform("shift", lab, np.array([[1, 0, dx * width], [0, 1, dy * height]], np.float64)))
    for z in SCALES:
        out.append(Transform("scale", f"x{z:g}", cv2.getRotationMatrix2D(c, 0.0, z)))
    for a in ANGLES:
        out.append(Transform("rotation", f"{a:+g} deg", cv2.getRotationMatrix2D(c, a, 1.0)))
    out.append(Transform("mirror", "flip", _mirror(width), flip=True))
    return out


def _apply(matrix: np.ndarray, xy: np.ndarray) -> np.ndarray:
    """(..., 2) points through a 2x3 affine map."""
    return xy @ matrix[:, :2].T + matrix[:, 2]


def _invert(matrix: np.ndarray) -> np.ndarray:
    full = np.vstack([matrix, [0.0, 0.0, 1.0]])
    return np.linalg.inv(full)[:2]


def _mirror(width: int) -> np.ndarray:
    """The horizontal flip x -> W - 1 - x as a 2x3 map."""
    return np.array([[-1, 0, width - 1], [0, 1, 0]], np.float64)


def _detect(detector: Any, images: Sequence[np.ndarray], batch_size: int) -> np.ndarray:
    """(N, K, 2) keypoints of ``images`` through ``detector.detect_batch`` in batches."""
    return np.concatenate(
        [
            np.asarray(detector.detect_batch(list(images[i : i + batch_size])).xy, np.float64)
            for i in range(0, len(images), batch_size)
        ]
    )


def _back_mapped(
    detector: Any, images: Sequence[np.ndarray], matrix: np.ndarray, perm: Any, batch_size: int
) -> np.ndarray:
    """Detect on ``images`` warped by ``matrix`` and map the keypoints back with its inverse; ``perm`` (for maps
    that mirror) renames them to their mirror partners, None leaves them."""
    import cv2

    h, w = images[0].shape[:2]
    warped = [
        cv2.warpAffine(im, matrix, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE) for im in images
    ]
    back = _apply(_invert(matrix), _detect(detector, warped, batch_size))
    return back if perm is None else back[:, np.asarray(perm)]


def spread(xy: np.ndarray) -> np.ndarray:
    """(N,) RMS distance of each image's keypoints (N, K, 2) from their centroid."""
    return np.sqrt(((xy - xy.mean(axis=1, keepdims=True)) ** 2).sum(-1).mean(-1))


def measure(detector: Any, images: Sequence[np.ndarray], batch_size: int = 64) -> dict[str, Any]:
    """Equivariance errors of ``detector`` on ``images`` (a list of HxWx3 uint8 RGB arrays of one size).

    Returns:
        ``per_transform``: label -> mean error (% of spread) with its family; ``families``: family -> mean error
        over its transforms (and the median over keypoints and images); ``spread_px``: mean spread of the original
        detections; ``n_images``; ``mirror``: whether the flip was measured.
    """
    if not images:
        raise ValueError("no images to measure")
    h, w = images[0].shape[:2]
    if any(im.shape[:2] != (h, w) for im in images):
        raise ValueError("images must all have the same size (the benchmark's preprocessing gives one)")
    base = _detect(detector, images, batch_size)
    norm = np.maximum(spread(base), 1e-6)
    perm = (getattr(detector, "metadata", None) or {}).get("flip_permutation")
    per_transform: dict[str, dict[str, Any]] = {}
    family_errors: dict[str, list[np.ndarray]] = {}
    for t in transforms(w, h):
        if t.flip and perm is None:
            continue
        back = _back_mapped(detector, images, t.matrix, perm if t.flip else None, batch_size)
        err = np.linalg.norm(back - base, axis=-1) / norm[:, None] * 100.0  # (N, K)
        per_transform[f"{t.family} {t.label}"] = {"family": t.family, "error": float(err.mean())}
        family_errors.setdefault(t.family, []).append(err)
    families = {
        f: {"error": float(np.mean([e.mean() for e in errs])), "median": float(np.median(np.stack(errs)))}
        for f, errs in family_errors.items()
    }
    return {
        "per_transform": per_transform,
        "families": families,
        "spread_px": float(norm.mean()),
        "n_images": len(images),
        "mirror": perm is not None,
        "image_size": [w, h],
    }


def tta_agreement(
    detector: Any, images: Sequence[np.ndarray], scales: Sequence[float] = (0.9, 1.0, 1.1), batch_size: int = 64
) -> float | None:
    """How far the views of test-time augmentation (mirror x ``scales``, as ``lkdetect.tta.TTA``) disagree: mean
    distance (% of spread) of each view's back-mapped keypoints from the views' average. Run it on a detector
    without TTA of its own; None when the weights have no flip permutation."""
    import cv2

    perm = (getattr(detector, "metadata", None) or {}).get("flip_permutation")
    if perm is None:
        return None
    h, w = images[0].shape[:2]
    c = ((w - 1) / 2.0, (h - 1) / 2.0)
    views = []
    for flip in (False, True):
        for s in scales:
            m = cv2.getRotationMatrix2D(c, 0.0, s)
            if flip:  # mirror first, then zoom
                m = m @ np.vstack([_mirror(w), [0, 0, 1]])
            views.append(_back_mapped(detector, images, m, perm if flip else None, batch_size))
    xy_v = np.stack(views)  # (V, N, K, 2)
    mean = xy_v.mean(axis=0)
    return float((np.linalg.norm(xy_v - mean, axis=-1) / np.maximum(spread(mean), 1e-6)[None, :, None]).mean() * 100)


def plot(result: dict[str, Any], path: Path) -> Path:
    """Bar chart of the error per transform, coloured by family."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = list(result["per_transform"])
    values = [result["per_transform"][k]["error"] for k in labels]
    fams = [result["per_transform"][k]["family"] for k in labels]
    colours = {"shift": "tab:blue", "scale": "tab:orange", "rotation": "tab:red", "mirror": "tab:green"}
    fig, ax = plt.subplots(figsize=(9, 3.6))
    ax.bar(range(len(values)), values, color=[colours.get(f, "grey") for f in fams])
    ax.set_xticks(range(len(values)), labels, rotation=60, ha="right", fontsize=8)
    ax.set_ylabel("error, % of keypoint spread")
    ax.set_title(f"equivariance on {result['n_images']} real images (lower is better)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def add_arguments(ap: argparse.ArgumentParser) -> None:
    """The arguments of ``lkdetect equivariance`` (and its alias ``python -m evaluation.equivariance``)."""
    ap.add_argument("benchmark", choices=BENCHMARKS)
    ap.add_argument("--root", required=True, help="dataset folder in its official layout (images only are used)")
    ap.add_argument("--weights", default=None, help="lkdetect weights or shipped name (default: the benchmark's)")
    ap.add_argument("--split", choices=("train", "test"), default="train")
    ap.add_argument("--limit", type=int, default=1000, help="the first N images of the split (default 1000)")
    add_refine_argument(ap)  # --refine [SIDE], --[no-]upright: the detector with refinement
    ap.add_argument("--out", default=None, help="folder for equivariance.json and equivariance.png")


def check_arguments(args: argparse.Namespace) -> None:
    """Raise ``ValueError`` on arguments out of range (before anything loads)."""
    if args.limit < 1:
        raise ValueError(f"--limit must be >= 1, got {args.limit}")
    refine_from_args(args)  # SIDE > 0


def run(args: argparse.Namespace) -> int:
    """Measure the detector's equivariance on the split's first images; print (and with --out write) the report."""
    check_arguments(args)
    from lkdetect import Detector

    bench = load_benchmark(args.benchmark, args.root)
    samples = (bench.train if args.split == "train" else bench.test)[: args.limit]
    images = [bench.load_image(s)[0] for s in samples]
    weights = args.weights or shipped_detector(args.benchmark)
    detector = Detector.load(weights, refine=refine_from_args(args))
    r = measure(detector, images)
    agree = tta_agreement(detector, images)
    options = f", refinement {detector.refine}" if detector.refine else ""
    print(
        f"{bench.name} {args.split}, {r['n_images']} images, weights {weights}{options}; keypoint spread "
        f"{r['spread_px']:.1f} px; error in % of it"
    )
    print("| family | mean % | median % |")
    print("|---|---|---|")
    for fam, v in r["families"].items():
        print(f"| {fam} | {v['error']:.1f} | {v['median']:.1f} |")
    for k, v in r["per_transform"].items():
        print(f"  {k:>18}: {v['error']:.1f}")
    if agree is not None:
        print(f"TTA views from their average: {agree:.1f} %")
    if args.out:
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        (out / "equivariance.json").write_text(
            json.dumps({**r, "tta_agreement": agree, "weights": str(weights), "refine": str(detector.refine)}, indent=1)
        )
        plot(r, out / "equivariance.png")
        print(f"report: {out}")
    return 0


def main(argv: list[str] | None = None) -> int:
    """``python -m evaluation.equivariance``: an alias of ``lkdetect equivariance``."""
    args = parse_alias(__doc__, add_arguments, check_arguments, argv)
    return run(args)


if __name__ == "__main__":
    raise SystemExit(main())
