"""``lkdetect eval``: score a detector on a landmark benchmark (MAFL, CelebA in the wild, CUB-200-2011, MTFL) with the
linear-regression protocol of LatentKeypointGAN (He, Wandt, Rhodin, arXiv 2103.15812: landmarks
regressed linearly from the detected keypoints, without bias); prints a table, writes a report with ``--out``."""

from __future__ import annotations

import argparse

from evaluation.benchmarks import BENCHMARKS, parse_classes  # light: numpy and the readers, no torch
from lkdetect.refine import add_refine_argument

from ..tta import add_tta_arguments
from . import ONNX_HELP, load_detector


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("benchmark", choices=BENCHMARKS, help="benchmark protocol")
    p.add_argument("--root", required=True, help="dataset folder in its official layout")
    src = p.add_mutually_exclusive_group()
    src.add_argument(
        "--weights",
        help="lkdetect weights (.safetensors) or a shipped name for the PyTorch detector (default: the benchmark's "
        "shipped detector: faces for mafl, celeba-wild and mtfl, birds for cub)",
    )
    src.add_argument("--onnx", metavar="MODEL", help=ONNX_HELP)
    p.add_argument("--classes", default=None, help="CUB only: comma-separated class ids, e.g. 1,2,3 (default: all)")
    p.add_argument("--out", default=None, help="folder for report.json, report.md, ced.png, best_worst.png")
    p.add_argument("--bias", action="store_true", help="regression with a bias term (the protocol has none)")
    p.add_argument("--ridge", type=float, default=0.0, help="ridge penalty of the regression (default 0)")
    p.add_argument(
        "--fit",
        choices=("lstsq", "trimmed"),
        default="lstsq",
        help="lstsq: least squares on every training image (the protocol, default); trimmed: a robust fit that "
        "refits without the training images whose annotation disagrees with the fit (not the protocol)",
    )
    add_tta_arguments(p)
    add_refine_argument(p)
    p.add_argument("--batch-size", type=int, default=32, help="images per detector call")
    p.add_argument("--limit", type=int, default=None, help="only the first N images of each split (quick check)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    from evaluation import evaluate, shipped_detector
    from evaluation.report import markdown_table

    if not args.onnx and not args.weights:
        args.weights = shipped_detector(args.benchmark)

    classes = parse_classes(args.classes)
    if classes is not None and args.benchmark != "cub":
        raise ValueError("--classes applies to cub only")
    if args.limit is not None and args.limit < 1:
        raise ValueError(f"--limit must be >= 1, got {args.limit}")
    detector = load_detector(args)
    result = evaluate(
        detector,
        args.benchmark,
        args.root,
        classes=classes,
        bias=args.bias,
        ridge=args.ridge,
        fit=args.fit,
        out=args.out,
        progress=not args.no_progress,
        batch_size=args.batch_size,
        limit=args.limit,
    )
    print(f"{result['benchmark']}: {result['metric']}, K = {result['num_keypoints']}")
    print(markdown_table(result))
    if args.out:
        print(f"report: {args.out}")
    return 0
