"""``lkdetect detect``: detect keypoints on image files; write annotated images and/or JSON."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from lkdetect.refine import add_refine_argument

from ..tta import add_tta_arguments
from . import ONNX_HELP, load_detector


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("images", nargs="+", metavar="IMAGE", help="image files")
    src = p.add_mutually_exclusive_group()
    src.add_argument("--weights", default=None, help="weights file or shipped name (default: the face detector)")
    src.add_argument("--onnx", default=None, metavar="MODEL", help=ONNX_HELP)
    add_tta_arguments(p)
    add_refine_argument(p)
    p.add_argument("--out", default=None, metavar="DIR", help="write annotated images DIR/<name>_keypoints.png")
    p.add_argument("--json", default=None, metavar="FILE", help="write results as JSON ('-' for stdout)")
    p.add_argument("--box", default=None, metavar="X,Y,W,H", help="detect inside this region of every image")
    p.add_argument("--radius", type=float, default=None, help="dot radius in pixels of the annotated images")
    p.add_argument("--device", default="cpu", help="cpu, cuda or auto")


def parse_box(text: str | None) -> tuple[float, ...] | None:
    if text is None:
        return None
    try:
        box = tuple(float(v) for v in text.split(","))
    except ValueError as e:
        raise ValueError(f"--box expects X,Y,W,H numbers, got {text!r}") from e
    if len(box) != 4:
        raise ValueError(f"--box expects X,Y,W,H (4 numbers), got {text!r}")
    return box


def run(args: argparse.Namespace) -> int:
    from PIL import Image

    box = parse_box(args.box)
    detector = load_detector(args)
    results = []
    out_dir = Path(args.out) if args.out else None
    if out_dir:
        out_dir.mkdir(parents=True, exist_ok=True)
    for name in args.images:
        path = Path(name)
        kp = detector.detect(path, box=box)
        results.append({"image": str(path), **kp.to_dict()})
        if out_dir:
            with Image.open(path) as im:
                kp.draw(im.convert("RGB"), radius=args.radius).save(out_dir / f"{path.stem}_keypoints.png")
    doc = {
        "weights": detector.metadata.get("path"),
        "weights_sha256": detector.metadata.get("sha256"),
        "tta": None if detector.tta is None else str(detector.tta),
        "refine": None if detector.refine is None else str(detector.refine),
        "keypoint_names": list(detector.keypoint_names),
        "coordinates": detector.metadata.get("coordinates"),
        "results": results,
    }
    text = json.dumps(doc, indent=1)
    if args.json == "-" or (args.json is None and out_dir is None):
        sys.stdout.write(text + "\n")
    elif args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(text + "\n")
    return 0
