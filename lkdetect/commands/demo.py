"""``lkdetect demo``: pictures of what the shipped GAN does (samples, keypoints, edits, animations, index.html)."""

from __future__ import annotations

import argparse


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", default="lkdetect_demo", help="output folder (default: ./lkdetect_demo)")
    p.add_argument("--seed", type=int, default=0, help="sampling seed (default 0)")
    p.add_argument("--domain", default="faces", help="shipped weights to use: faces (default) or birds")
    p.add_argument("--gan", default=None, metavar="PATH", help="GAN weights (safetensors) instead of the shipped ones")
    p.add_argument(
        "--weights",
        default=None,
        metavar="PATH",
        help="detector weights instead of the shipped detector (the demo runs without a detector)",
    )
    p.add_argument("--mp4", action="store_true", help="also write MP4 videos (needs opencv)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    from lkdetect.demo import run_demo

    result = run_demo(
        args.out,
        seed=args.seed,
        domain=args.domain,
        gan_path=args.gan,
        detector_weights=args.weights,
        mp4=args.mp4,
        progress=not args.no_progress,
    )
    print(f"open {result.html}")
    return 0
