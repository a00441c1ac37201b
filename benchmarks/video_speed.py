"""Video detection speed and jitter on a real face video (../shared/data/video/face_pexels.mp4, 640x360, 24 fps).

    python benchmarks/video_speed.py [--weights W] [--roi face] [--batch-size 16] [--threads 2] [--refine]
        [--video PATH]

Reports frames/s end to end (decode, detect, draw, encode to mp4v), frames/s of the pipeline without drawing and
encoding, frames/s inside ``detect_batch`` alone, and jitter: the mean frame-to-frame keypoint displacement in
pixels, with and without One-Euro smoothing (lower is steadier; a still face should be near 0). Target: >= 60
frames/s end to end at 640x360 on 2 cores.

Detector: ``--weights`` if given, else the shipped one (``Detector.load()``); without either, an untrained
``Detector`` with the network of the ``--preset`` detector preset (same preprocessing and cost as a trained one),
so the pipeline's speed can be measured before weights exist; its jitter numbers mean nothing.

On a 2-core machine that is busy with something else, use ``--threads 1``: two torch threads competing with
another process for two cores run several times slower than one.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from lkdetect.drawing import draw_result
from lkdetect.video import BackgroundWriter, detect_video_frames

DEFAULT_VIDEO = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "video" / "face_pexels.mp4"


def random_detector(preset: str = "cpu", num_keypoints: int = 10, size: int = 64):
    """An untrained ``Detector`` with the network of a detector preset (same preprocessing and cost as trained)."""
    from lkdetect.detector import Detector
    from lkdetect.network import KeypointNet
    from lkdetect.training.config import get_config, network_kwargs
    from lkdetect.weights import make_metadata

    torch.manual_seed(0)
    net = KeypointNet(**network_kwargs(get_config(preset), num_keypoints, size))
    return Detector(net, make_metadata(net))


class Timed:
    """Wraps a detector and sums the wall time spent in ``detect_batch``."""

    def __init__(self, detector) -> None:
        self.detector = detector
        self.seconds = 0.0
        self.num_keypoints = getattr(detector, "num_keypoints", None)

    def detect_batch(self, images, boxes=None, bgr=False):
        start = time.perf_counter()
        out = self.detector.detect_batch(images, boxes=boxes, bgr=bgr)
        self.seconds += time.perf_counter() - start
        return out


def load_detector(weights: str | None, preset: str):
    from lkdetect.detector import Detector

    if weights:
        return Detector.load(weights), f"Detector.load({weights!r})"
    try:
        return Detector.load(), "shipped detector (Detector.load())"
    except FileNotFoundError as e:
        print(f"no shipped detector ({e})")
    return random_detector(preset), f"untrained '{preset}' preset network (speed only: its jitter means nothing)"


def jitter(xy: np.ndarray) -> float:
    """Mean frame-to-frame keypoint displacement in pixels of (T, K, 2) tracks."""
    return float(np.linalg.norm(np.diff(xy, axis=0), axis=-1).mean())


def run(
    detector,
    video: Path,
    roi: str,
    smooth: bool,
    batch_size: int,
    track_batch: int,
    out: Path | None,
    max_frames: int | None = None,
) -> dict:
    timed = Timed(detector)
    writer = BackgroundWriter(str(out), 24.0) if out is not None else None
    xy = []
    start = time.perf_counter()
    pairs = detect_video_frames(
        timed, video, roi=roi, smooth=smooth, batch_size=batch_size, track_batch=track_batch, max_frames=max_frames
    )
    for frame, result in pairs:
        if writer is not None:
            writer.write(draw_result(frame, result))  # decoded frames are ours: draw in place
        xy.append(result.keypoints.xy)
    if writer is not None:
        writer.close()
    total = time.perf_counter() - start
    n = len(xy)
    return {"frames": n, "fps": n / total, "detect_fps": n / timed.seconds, "jitter": jitter(np.stack(xy))}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--video", default=str(DEFAULT_VIDEO))
    ap.add_argument("--weights", default=None)
    ap.add_argument("--preset", default="cpu", help="detector preset of the untrained fallback network")
    ap.add_argument("--roi", default="face", help="face, full or x,y,w,h")
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--track-batch", type=int, default=1, help="frames per detector call when tracking a face")
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    ap.add_argument("--refine", action="store_true", help="refinement in every detection (lkdetect.refine)")
    args = ap.parse_args()
    video = Path(args.video)
    if not video.is_file():
        print(f"skipped: {video} not found (the shared data is not present)")
        return
    if args.threads:
        torch.set_num_threads(args.threads)
    detector, name = load_detector(args.weights, args.preset)
    if args.refine:
        detector.refine = True
        name += ", refinement"
    print(
        f"video {video.name}; detector: {name}; roi {args.roi}; batch {args.batch_size}; "
        f"track batch {args.track_batch}; "
        f"torch threads {torch.get_num_threads()}"
    )
    run(detector, video, args.roi, True, args.batch_size, args.track_batch, None, max_frames=48)  # warm-up
    print(f"{'pass':<38} {'frames':>6} {'frames/s':>9} {'detect f/s':>10} {'jitter px':>9}")
    with tempfile.TemporaryDirectory() as tmp:
        for label, smooth, out in [
            ("end to end (decode+detect+draw+encode)", True, Path(tmp) / "annotated.mp4"),
            ("pipeline, smoothing on", True, None),
            ("pipeline, smoothing off", False, None),
        ]:
            r = run(detector, video, args.roi, smooth, args.batch_size, args.track_batch, out)
            print(f"{label:<38} {r['frames']:>6} {r['fps']:>9.1f} {r['detect_fps']:>10.1f} {r['jitter']:>9.3f}")


if __name__ == "__main__":
    main()
