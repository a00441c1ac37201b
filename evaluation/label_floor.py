"""What the MTFL-80 training labels cost every detector: the protocol's regression fitted for a perfect detector.

    python -m evaluation.label_floor --root ../shared/data/mtfl80 [--suspect net_7876/_]

A perfect detector's keypoints are the true landmarks. On the test split those are its labels. On the training
split they are the labels too, except for the images whose path contains ``--suspect`` (MTFL-80's
``net_7876/_`` faces, whose landmarks sit about 28 px too high, ``evaluation/README.md``): there the true
landmarks are taken as the labels moved down by the mean vertical offset between those images and the rest of
their folder. The no-bias regression is then fitted, as the protocol does, from these keypoints to the labels as
given, and scored on the test split. A diagnostic of the annotations (it reads test labels as detections), not a
score of any detector.
"""

from __future__ import annotations

import argparse
from typing import Any

import numpy as np

from . import metrics
from .benchmarks import load_benchmark
from .regression import fit_linear


def label_floor(root: str, suspect: str = "net_7876/_", size: float = 80.0) -> dict[str, Any]:
    """NME (%) on the test split of a perfect detector through each fit, and the offset used (px)."""
    bench = load_benchmark("mtfl", root)
    train = np.stack([s.landmarks for s in bench.train])
    test = np.stack([s.landmarks for s in bench.test])
    paths = [s.path.as_posix() for s in bench.train]
    bad = np.array([suspect in p for p in paths])
    folder = suspect.rsplit("/", 1)[0] + "/"
    peers = np.array([folder in p for p in paths]) & ~bad
    if not bad.any() or not peers.any():
        raise ValueError(f"no training image (or no peer in {folder!r}) matches {suspect!r} under {root}")
    offset = float(train[peers, :, 1].mean() - train[bad, :, 1].mean())
    keypoints = train.copy()
    keypoints[bad, :, 1] += offset
    out: dict[str, Any] = {"suspect": int(bad.sum()), "offset_px": offset}
    for fit in ("lstsq", "trimmed"):
        reg = fit_linear((keypoints + 0.5) / size, (train + 0.5) / size, fit=fit)
        pred = reg.predict((test + 0.5) / size).reshape(test.shape) * size - 0.5
        out[fit] = float(metrics.nme_iod(pred, test).mean())
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--root", required=True, help="MTFL-80 folder (training.txt, testing.txt)")
    ap.add_argument("--suspect", default="net_7876/_", help="path substring of the training images with bad labels")
    args = ap.parse_args(argv)
    r = label_floor(args.root, args.suspect)
    print(f"{r['suspect']} suspect training faces, moved down by {r['offset_px']:.1f} px as their true landmarks")
    print(f"a perfect detector on the test split: lstsq {r['lstsq']:.2f} %, trimmed {r['trimmed']:.2f} %")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
