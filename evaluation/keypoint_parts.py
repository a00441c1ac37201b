"""Which annotated part each discovered keypoint tends to sit on: for model cards, not a score.

    python -m evaluation.keypoint_parts mtfl --root ../shared/data/mtfl80 [--weights faces] [--limit 2000]

Latent keypoints have no names. This detects them on a benchmark's training images and reports, per keypoint,
the annotated landmark it is nearest to on average and that mean distance, in the benchmark's normaliser
(inter-ocular distance for faces, crop side for birds, in %), over the images where that landmark is visible.
A keypoint far from every landmark (say > 50 %) sits on something the annotation does not name (forehead, chin,
hair, background).
"""

from __future__ import annotations

import argparse
from typing import Any

import numpy as np

from . import metrics
from .benchmarks import BENCHMARKS, load_benchmark, shipped_detector
from .cli import parse_alias
from .run import Detections, detect
from .samples import Benchmark


def nearest_parts(det: Detections, bench: Benchmark) -> list[dict[str, Any]]:
    """Per keypoint: ``part`` (the nearest landmark's name), ``distance`` (mean, % of the normaliser) and
    ``second`` (the runner-up's name and distance)."""
    xy, gt = det.to_pixels(det.xy), det.to_pixels(det.gt)  # (N, K, 2), (N, L, 2)
    norm = metrics.interocular(gt) if bench.metric == "iod" else det.sizes[:, 0]
    d = np.linalg.norm(xy[:, :, None, :] - gt[:, None, :, :], axis=-1) / norm[:, None, None] * 100  # (N, K, L)
    vis = np.broadcast_to(det.visible[:, None, :], d.shape)
    seen = vis.sum(0)  # (K, L)
    mean = np.where(vis, d, 0).sum(0) / np.maximum(seen, 1)
    mean[seen == 0] = np.inf
    out = []
    for k in range(mean.shape[0]):
        order = np.argsort(mean[k])
        first, second = order[0], order[1] if len(order) > 1 else order[0]
        out.append(
            {
                "keypoint": k,
                "part": bench.landmark_names[first],
                "distance": float(mean[k, first]),
                "second": (bench.landmark_names[second], float(mean[k, second])),
            }
        )
    return out


def add_arguments(ap: argparse.ArgumentParser) -> None:
    """The arguments of ``lkdetect keypoint-parts`` (and its alias ``python -m evaluation.keypoint_parts``)."""
    ap.add_argument("benchmark", choices=BENCHMARKS)
    ap.add_argument("--root", required=True)
    ap.add_argument("--weights", default=None, help="lkdetect weights or shipped name (default: the benchmark's)")
    ap.add_argument("--limit", type=int, default=2000, help="the first N training images (default 2000)")


def run(args: argparse.Namespace) -> int:
    """Print, for each keypoint, the annotated landmark it sits nearest to."""
    from lkdetect import Detector

    bench = load_benchmark(args.benchmark, args.root)
    weights = args.weights or shipped_detector(args.benchmark)
    det = detect(Detector.load(weights), bench, bench.train[: args.limit], 64)
    unit = "inter-ocular distance" if bench.metric == "iod" else "crop side"
    print(f"{weights} on {len(det.xy)} {bench.name} training images; mean distance in % of the {unit}")
    print("| keypoint | nearest landmark | distance % | next | distance % |")
    print("|---|---|---|---|---|")
    for r in nearest_parts(det, bench):
        print(f"| {r['keypoint']} | {r['part']} | {r['distance']:.0f} | {r['second'][0]} | {r['second'][1]:.0f} |")
    return 0


def main(argv: list[str] | None = None) -> int:
    """``python -m evaluation.keypoint_parts``: an alias of ``lkdetect keypoint-parts``."""
    args = parse_alias(__doc__, add_arguments, None, argv)
    return run(args)


if __name__ == "__main__":
    raise SystemExit(main())
