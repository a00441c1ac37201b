"""``lkdetect video``: detect keypoints in a video or camera stream; write an annotated video and/or JSON lines."""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

from lkdetect.refine import add_refine_argument

from ..tta import add_tta_arguments
from . import ONNX_HELP, load_detector

log = logging.getLogger(__name__)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("input", metavar="INPUT", help="video file, or a camera index (0, 1, ...)")
    p.add_argument("--out", default=None, help="annotated video to write (.mp4, mp4v codec)")
    p.add_argument("--json", default=None, help="keypoints as JSON lines, one per frame")
    p.add_argument("--roi", default="full", help="region of interest: face, full, or a fixed box x,y,w,h")
    p.add_argument("--no-smooth", action="store_true", help="no temporal (One-Euro) smoothing")
    p.add_argument("--weights", default=None, help="detector weights (.safetensors); default: the shipped detector")
    p.add_argument("--onnx", default=None, metavar="MODEL", help=ONNX_HELP)
    p.add_argument("--min-cutoff", type=float, default=1.0, help="One-Euro minimum cutoff in Hz (lower: smoother)")
    p.add_argument("--beta", type=float, default=0.05, help="One-Euro speed coefficient in 1/px (higher: less lag)")
    p.add_argument("--batch-size", type=int, default=16, help="frames per detector call")
    p.add_argument("--max-frames", type=int, default=None, help="stop after this many frames")
    p.add_argument("--fps", type=float, default=None, help="frame rate (default: the video's)")
    p.add_argument(
        "--track-batch",
        type=int,
        default=1,
        help="--roi face: frames per detector call sharing one box (faster, the box lags)",
    )
    p.add_argument("--threads", type=int, default=0, help="torch (and onnxruntime) threads (0: the default)")
    p.add_argument("--device", default="cpu", help="cpu, cuda or auto")
    add_tta_arguments(p)
    add_refine_argument(p)
    p.add_argument(
        "--allow-partial",
        action="store_true",
        help="exit 0 when a file ends before the frame count its container announces (default: exit 1; the frames "
        "read are written either way)",
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bar")


def _source(text: str) -> int | str:
    return int(text) if text.isdigit() else text


def _video_info(source: int | str) -> tuple[float | None, int | None]:
    """(fps, frame count) of a video file, or (None, None) when unknown."""
    if isinstance(source, int):
        return None, None
    import cv2

    cap = cv2.VideoCapture(source)
    try:
        if not cap.isOpened():
            return None, None
        fps, count = cap.get(cv2.CAP_PROP_FPS), int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
        return (fps if 0 < fps < 1000 else None), (count if count > 0 else None)
    finally:
        cap.release()


def run(args: argparse.Namespace) -> int:
    import torch
    from tqdm import tqdm

    from lkdetect.drawing import draw_result
    from lkdetect.video import DEFAULT_FPS, BackgroundWriter, detect_video_frames

    if args.out is None and args.json is None:
        log.warning("neither --out nor --json given: detecting without writing anything")
    source = _source(args.input)
    if isinstance(source, str) and "://" not in source and Path(source).is_dir():
        raise ValueError(f"{source} is a directory, not a video file")
    if isinstance(source, str) and "://" not in source and not Path(source).is_file():
        raise FileNotFoundError(f"no such video file: {source}")  # before the (slower) detector loads
    file_fps, announced = _video_info(source)
    total = announced
    if args.max_frames is not None:
        total = min(total, args.max_frames) if total else args.max_frames
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.onnx and args.weights:
        raise ValueError("give --weights or --onnx, not both")
    detector = load_detector(args)
    try:
        pairs = detect_video_frames(
            detector,
            source,
            roi=args.roi,
            smooth=not args.no_smooth,
            min_cutoff=args.min_cutoff,
            beta=args.beta,
            batch_size=args.batch_size,
            fps=args.fps,
            max_frames=args.max_frames,
            track_batch=args.track_batch,
        )
    except RuntimeError as e:  # a camera that cannot open
        log.error("%s", e)
        return 2
    writer = BackgroundWriter(args.out, args.fps or file_fps or DEFAULT_FPS) if args.out else None
    jsonl = open(args.json, "w") if args.json else None  # noqa: SIM115 (closed in finally)
    count = 0
    try:
        for frame, result in tqdm(pairs, total=total, unit="frame", disable=args.no_progress):
            if writer is not None:
                writer.write(draw_result(frame, result))  # a fresh decoded frame: draw in place
            if jsonl is not None:
                jsonl.write(json.dumps(result.to_dict()) + "\n")
            count += 1
    finally:
        if writer is not None:
            writer.close()
        if jsonl is not None:
            jsonl.close()
    log.info(
        "%d frames%s%s",
        count,
        f", video: {args.out}" if args.out else "",
        f", keypoints: {args.json}" if args.json else "",
    )
    if announced and total and count < total and not args.allow_partial:  # lkdetect.video warned with the counts
        log.error(
            "partial input: %d of %d frames (what was written is kept); --allow-partial accepts it (exit 0)",
            count,
            total,
        )
        return 1
    return 0
