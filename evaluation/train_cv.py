"""Cross-validation inside a benchmark's training split: compare detectors or fits without the test split.

    lkdetect train-cv mtfl --root ../shared/data/mtfl80 [--weights faces] [--folds 5] [--zoom 1.5] [--rotate 45 [180]]
        [--fit lstsq [trimmed]] [--tta | --tta-scales] [--refine [SIDE]] [--[no-]upright]
        [--keep-search N [--keep-top M]]

The training images are detected once, split into folds at random (seeded), and for each fold the regression is
fitted on the other folds and scored on it, with the benchmark's own metric and the protocol's fit
(``evaluation.run.score``; ``--fit trimmed`` adds the robust fit's reading). This
uses training annotations only, which the protocol already gives to the regression, so it is the place to choose
between detectors, GAN snapshots or fits; the test split is then scored once, for the report.

CUB with ``--classes``: also the single-class protocol's proxy. Each given class is cross-validated on its own
training images (about 30; the regression fitted per class, as ``lkdetect eval cub --classes`` fits per class), one
row per class, then the mean over the classes and in how many the regression beats the mean shape.

``--zoom Z`` scores each held-out fold on its images zoomed by ``Z`` about the image centre (the central 1/Z of
each side, resized back; landmarks mapped alike), while the regression is still fitted on the images as they
are: a train/test scale shift like MTFL's (inter-ocular distance about 16 px in training, 24 px in the AFLW test
faces, data README), made from training data only. Both the unzoomed and the zoomed CV are printed.

``--rotate D`` adds a reading on held-out folds rotated in the image plane, each image by its own angle drawn
uniformly in +-D degrees (fixed by the seed and the image's path) about the image centre, the border reflected,
landmarks mapped alike: the AFLW test faces include faces rotated far in the image plane (data README), the
training faces hardly any. Several values give one reading each.

``--keep-search N`` ranks every subset of N of the detector's keypoints by this CV (:mod:`evaluation.subset_search`);
with ``--tta`` only the subsets that keep each keypoint's mirror (a subset detector can repeat mirrored TTA only then).
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import zlib
from typing import Any

import numpy as np

from lkdetect.refine import add_refine_argument, refine_from_args
from lkdetect.tta import add_tta_arguments, tta_from_args

from .benchmarks import BENCHMARKS, load_benchmark, parse_classes, shipped_detector
from .cli import parse_alias
from .cv import cross_validate, per_class
from .regression import FITS
from .run import Detections, detect
from .samples import Benchmark, Sample, resize_crop
from .subset_search import print_search, search

logger = logging.getLogger(__name__)


def zoomed(bench: Benchmark, zoom: float) -> Benchmark:
    """``bench`` with every image zoomed by ``zoom`` about its centre after the protocol's preprocessing: the
    central (W / zoom) x (H / zoom) region resized back to W x H, landmarks mapped alike. ``zoom`` >= 1 (zooming
    out would need padding, which the protocols' images never have)."""
    if not zoom >= 1:
        raise ValueError(f"zoom must be >= 1, got {zoom}")

    def load_image(sample: Sample) -> tuple[Any, Any]:
        image, landmarks = bench.load_image(sample)
        h, w = image.shape[:2]
        cx, cy, hw, hh = w / 2, h / 2, w / (2 * zoom), h / (2 * zoom)
        out, transform = resize_crop(image, (cx - hw, cy - hh, cx + hw, cy + hh), (w, h))
        return out, transform(landmarks)

    return dataclasses.replace(bench, load_image=load_image)


def rotated(bench: Benchmark, degrees: float, seed: int = 0) -> Benchmark:
    """``bench`` with every image rotated about its centre ((W - 1) / 2, (H - 1) / 2; pixel centres at integers)
    by an angle uniform in +-``degrees`` (counter-clockwise positive, as seen), drawn from ``seed`` and the
    sample's path, so each image keeps its angle across calls and detectors. The border is reflected, the size
    kept, landmarks mapped alike. ``degrees`` between 0 and 180."""
    if not 0 <= degrees <= 180:
        raise ValueError(f"rotation must be between 0 and 180 degrees, got {degrees}")
    import cv2

    def load_image(sample: Sample) -> tuple[Any, Any]:
        image, landmarks = bench.load_image(sample)
        key = zlib.crc32(str(getattr(sample, "path", "")).encode())
        angle = float(np.random.default_rng([seed, key]).uniform(-degrees, degrees))
        h, w = image.shape[:2]
        m = cv2.getRotationMatrix2D(((w - 1) / 2, (h - 1) / 2), angle, 1.0)
        out = cv2.warpAffine(image, m, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT_101)
        lm = np.asarray(landmarks, dtype=np.float64)
        return out, lm @ m[:, :2].T + m[:, 2]

    return dataclasses.replace(bench, load_image=load_image)


def add_arguments(ap: argparse.ArgumentParser) -> None:
    """The arguments of ``lkdetect train-cv`` (and its alias ``python -m evaluation.train_cv``)."""
    ap.add_argument("benchmark", choices=BENCHMARKS)
    ap.add_argument("--root", required=True, help="dataset folder in its official layout")
    ap.add_argument("--weights", default=None, help="lkdetect weights file or shipped name (default: the benchmark's)")
    ap.add_argument("--classes", default=None, help="CUB only: comma-separated class ids")
    ap.add_argument("--folds", type=int, default=5)
    ap.add_argument(
        "--fit", nargs="+", default=["lstsq"], choices=FITS, help="lstsq: the protocol (default); trimmed: robust fit"
    )
    ap.add_argument("--zoom", type=float, default=None, help="also score held-out folds zoomed by this factor")
    ap.add_argument(
        "--rotate",
        type=float,
        nargs="+",
        default=None,
        metavar="D",
        help="also score held-out folds rotated by up to +-D degrees (one reading per value)",
    )
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--batch-size", type=int, default=64)
    add_tta_arguments(ap)
    add_refine_argument(ap)
    ap.add_argument(
        "--keep-search",
        type=int,
        default=None,
        metavar="N",
        help="also rank every subset of N of the detector's keypoints by this CV (per class with --classes), for "
        "lkdetect keep-keypoints",
    )
    ap.add_argument("--keep-top", type=int, default=10, metavar="M", help="rows of --keep-search printed (0: all)")


def check_arguments(args: argparse.Namespace) -> None:
    """Raise ``ValueError`` on arguments out of range (before anything loads)."""
    if args.zoom is not None and not args.zoom >= 1:
        raise ValueError(f"--zoom must be >= 1, got {args.zoom}")
    for d in args.rotate or ():
        if not 0 <= d <= 180:
            raise ValueError(f"--rotate must be between 0 and 180 degrees, got {d:g}")
    refine_from_args(args)  # SIDE > 0
    if args.keep_search is not None and args.keep_search < 1:
        raise ValueError(f"--keep-search needs a subset size >= 1, got {args.keep_search}")


def run(args: argparse.Namespace) -> int:
    """Detect the training split once, cross-validate and print one table row per view and fit."""
    check_arguments(args)
    from lkdetect.detector import Detector

    classes = parse_classes(args.classes)
    bench = load_benchmark(args.benchmark, args.root, classes)
    weights = args.weights or shipped_detector(args.benchmark)
    detector = Detector.load(weights, tta=tta_from_args(args), refine=refine_from_args(args))
    train = detect(detector, bench, bench.train, args.batch_size, progress=True, desc=f"{bench.name} train")
    views = [("as they are", None)]
    if args.zoom is not None:
        zb = zoomed(bench, args.zoom)
        views.append((f"zoomed x{args.zoom:g}", detect(detector, zb, zb.train, args.batch_size, True, "zoomed")))
    for d in args.rotate or ():
        rb = rotated(bench, d, args.seed)
        views.append((f"rotated +-{d:g} deg", detect(detector, rb, rb.train, args.batch_size, True, "rotated")))
    tta = f", test-time augmentation {detector.tta}" if detector.tta else ""
    tta += f", refinement {detector.refine}" if detector.refine else ""
    print(f"{bench.name} training split, {args.folds}-fold CV, weights {weights}{tta}")
    print("| scored on | fit | scored images | error % | mean-shape % | median % | < 10 % |")
    print("|---|---|---|---|---|---|---|")
    for view, scored_on in views:
        for fit in args.fit:
            r = cross_validate(train, bench, args.folds, fit, None, args.seed, scored_on=scored_on)
            per = r["per_image"]
            print(
                f"| {view} | {fit} | {r['n_scored']} | {r['error']:.2f} | {r['baseline']:.2f} | {np.median(per):.2f} "
                f"| {(per < 10).mean():.3f} |"
            )
    if bench.name == "cub" and classes is not None:
        print_per_class(train, views, bench, classes, args)
    if args.keep_search is not None:
        # with mirrored TTA only the subsets that keep each keypoint's mirror can repeat it
        perm = detector.metadata.get("flip_permutation") if detector.tta and detector.tta.flip else None
        rows = search(train, bench, args.keep_search, classes, args.folds, args.fit[0], args.seed, perm)
        print_search(rows, args.keep_search, args.keep_top or len(rows), closed=perm is not None)
    return 0


def print_per_class(
    train: Detections, views: list[tuple[str, Detections | None]], bench: Benchmark, classes: list[int], args
) -> None:
    """The per-class rows of ``lkdetect train-cv cub --classes``, then their mean per view and fit."""
    print(f"\nper class: {args.folds}-fold CV inside each class's training images, regression fitted per class")
    print("| class | scored on | fit | scored images | error % | mean-shape % |")
    print("|---|---|---|---|---|---|")
    summary = []
    for view, scored_on in views:
        for fit in args.fit:
            rows = per_class(train, bench, classes, args.folds, fit, args.seed, scored_on)
            for r in rows:
                cells = f"{r['class']:03d} | {view} | {fit} | {r['n_scored']} | {r['error']:.2f} | {r['baseline']:.2f}"
                print(f"| {cells} |")
            err = np.array([r["error"] for r in rows])
            base = np.array([r["baseline"] for r in rows])
            summary.append(
                f"| {view} | {fit} | {len(rows)} | {err.mean():.2f} | {np.median(err):.2f} | {base.mean():.2f} "
                f"| {(err < base).sum()} |"
            )
    print("\n| scored on | fit | classes | per-class mean % | median % | mean-shape mean % | classes beating it |")
    print("|---|---|---|---|---|---|---|")
    print("\n".join(summary))


def main(argv: list[str] | None = None) -> int:
    """``python -m evaluation.train_cv``: an alias of ``lkdetect train-cv``."""
    args = parse_alias(__doc__, add_arguments, check_arguments, argv)
    logging.basicConfig(level=logging.WARNING)
    return run(args)


if __name__ == "__main__":
    raise SystemExit(main())
