"""``lkdetect export``: write detector weights as one self-describing ONNX model for onnxruntime."""

from __future__ import annotations

import argparse


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--weights", default=None, help="weights file or shipped name (default: the face detector)")
    p.add_argument("--out", required=True, metavar="MODEL.onnx", help="the ONNX model to write")
    p.add_argument("--opset", type=int, default=17, help="ONNX opset version (default 17)")


def run(args: argparse.Namespace) -> int:
    from lkdetect.onnx import export_onnx

    from . import load_engine

    detector = load_engine(args)
    path = export_onnx(detector, detector.metadata, args.out, opset=args.opset)
    h, w = detector.input_size
    print(f"{path}: K = {detector.num_keypoints}, input (N, 3, {h}, {w}) RGB in [0, 1], opset {args.opset}")
    return 0
