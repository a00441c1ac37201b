"""CPU speed of the keypoint detector: batched images/s (batch 64) and single-image latency.

Usage::

    python benchmarks/detect_speed.py                          # shipped weights, else a fresh default network
    python benchmarks/detect_speed.py --weights run/detector.safetensors
    python benchmarks/detect_speed.py --backbones resnet18,mobilenetv3_large_100,regnetx_002   # compare
    python benchmarks/detect_speed.py --threads 1 --engines torch,onnxruntime   # the default: both engines
    python benchmarks/detect_speed.py --tta        # with test-time augmentation (6 views) in the e2e columns
    python benchmarks/detect_speed.py --refine     # with scale-normalising refinement (a second pass) likewise
    python benchmarks/detect_speed.py --refine --no-upright   # axis-aligned refinement boxes (default: upright
                                                              # where the weights carry the reference)

One row per engine: ``torch`` (``Detector``) and ``onnxruntime`` (the same weights exported with
``Detector.export_onnx`` and run by ``OnnxDetector`` with ``--threads`` intra-op threads).

Columns (images are 64x64 uint8 RGB, or the weights' input size):
    net b64 img/s   the network alone on a preprocessed (64, 3, S, S) batch
    e2e b64 img/s   ``detect_batch`` on 64 numpy images (conversion, resize, network, mapping back)
    single ms       ``detect`` on one numpy image, end to end
Each figure is the median of ``--repeats`` timed runs after warm-up; "best" is the fastest run, which is the
better estimate on a machine shared with other jobs.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from lkdetect import Detector
from lkdetect.base import BaseDetector
from lkdetect.models import resolve_weights
from lkdetect.network import KeypointNet, count_parameters
from lkdetect.onnx import export_onnx
from lkdetect.refine import add_refine_argument, refine_from_args
from lkdetect.training.config import get_config, network_kwargs
from lkdetect.tta import TTA
from lkdetect.weights import make_metadata


def timed(fn: Callable[[], object], repeats: int, warmup: int = 3) -> tuple[float, float]:
    """(median, best) seconds of ``fn()``."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times), min(times)


def fresh_detector(backbone: str | None) -> Detector:
    cfg = network_kwargs(get_config("cpu"), num_keypoints=10, input_size=64)
    if backbone:
        cfg["backbone"] = backbone
    net = KeypointNet(**cfg)
    return Detector(net, make_metadata(net))


def columns(det: BaseDetector, net: Callable[[torch.Tensor], object], repeats: int) -> dict[str, float]:
    """The columns of one engine: ``net`` on a preprocessed batch, ``det`` end to end."""
    h, w = det.input_size
    rng = np.random.default_rng(0)
    images = list(rng.integers(0, 256, (64, h, w, 3), dtype=np.uint8))
    batch = torch.rand(64, 3, h, w)
    net_med, net_best = timed(lambda: net(batch), repeats)
    e2e_med, e2e_best = timed(lambda: det.detect_batch(images), repeats)
    one_med, one_best = timed(lambda: det.detect(images[0]), repeats * 10)
    return {
        "net b64 img/s": 64 / net_med,
        "best": 64 / net_best,
        "e2e b64 img/s": 64 / e2e_med,
        "best ": 64 / e2e_best,
        "single ms": 1000 * one_med,
        "best  ": 1000 * one_best,
    }


def torch_engine(det: Detector, repeats: int, threads: int) -> dict[str, float]:
    def net(batch: torch.Tensor) -> object:
        with torch.inference_mode():
            return det.network(batch)

    return columns(det, net, repeats)


def onnxruntime_engine(det: Detector, repeats: int, threads: int) -> dict[str, float]:
    """The detector exported to ONNX, on an onnxruntime CPU session with ``threads`` intra-op threads."""
    from lkdetect.onnx import INPUT, OnnxDetector

    with tempfile.TemporaryDirectory() as tmp:
        onnx_det = OnnxDetector(
            export_onnx(det, det.metadata, Path(tmp) / "model.onnx"), threads=threads, tta=det.tta, refine=det.refine
        )
    return columns(onnx_det, lambda batch: onnx_det.session.run(None, {INPUT: batch.numpy()}), repeats)


# engine name -> function(detector, repeats, threads) -> columns; the rows print side by side.
ENGINES: dict[str, Callable[[Detector, int, int], dict[str, float]]] = {
    "torch": torch_engine,
    "onnxruntime": onnxruntime_engine,
}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--weights", default=None, help="weights file (default: shipped face detector if present)")
    p.add_argument("--backbones", default=None, help="comma-separated timm names: compare fresh default networks")
    p.add_argument("--threads", type=int, default=2, help="torch threads and onnxruntime intra_op_num_threads")
    p.add_argument("--repeats", type=int, default=15)
    p.add_argument("--engines", default=",".join(ENGINES), help=f"comma-separated, of {sorted(ENGINES)}")
    p.add_argument("--tta", action="store_true", help="test-time augmentation in detect/detect_batch (lkdetect.tta)")
    add_refine_argument(p)  # --refine [SIDE], --[no-]upright: refinement in detect/detect_batch
    args = p.parse_args()
    torch.set_num_threads(args.threads)

    if args.backbones:
        detectors = {b: fresh_detector(b) for b in args.backbones.split(",")}
    elif args.weights:
        detectors = {args.weights: Detector.load(args.weights)}
    else:
        try:
            path = resolve_weights(None)
            detectors = {str(path): Detector.load(path)}
        except FileNotFoundError:
            detectors = {"fresh default network": fresh_detector(None)}
    if args.tta:
        for det in detectors.values():
            det.tta = True if "flip_permutation" in det.metadata else TTA(flip=False)
    for det in detectors.values():
        det.refine = refine_from_args(args)
    print(
        f"torch {torch.__version__}, {args.threads} threads, {os.cpu_count()} CPUs visible, "
        f"load average {os.getloadavg()[0]:.1f}"
    )
    header = None
    for label, det in detectors.items():
        cfg = det.network.config
        desc = (
            f"{cfg['backbone']} s{cfg['stride']}/{det.network.heatmap_stride} "
            f"{count_parameters(det.network) / 1e6:.2f}M"
        )
        if det.tta is not None:
            desc += f" TTA {len(det.tta.views)} views"
        if det.refine is not None:
            desc += " refine" + (" upright" if det.refine.upright else "")
        for engine in args.engines.split(","):
            cols = ENGINES[engine](det, args.repeats, args.threads)
            if header is None:
                header = f"{'model':44s} {'engine':12s} " + " ".join(f"{c.strip() or 'best':>13s}" for c in cols)
                print(header)
            print(f"{desc:44s} {engine:12s} " + " ".join(f"{v:13.1f}" for v in cols.values()), flush=True)
        if label != desc:
            print(f"  ({label})")


if __name__ == "__main__":
    main()
