"""Benchmarks for lkdetect: dataset readers in their official layouts (MAFL, CelebA in the wild, CUB-200-2011,
MTFL), linear landmark regression, metrics and reports, following the protocols of
LatentKeypointGAN (He, Wandt, Rhodin, arXiv 2103.15812).

``from evaluation import evaluate``; ``lkdetect eval {mafl,celeba-wild,cub,mtfl} --root DIR [--weights W]`` (without
weights: the benchmark's shipped detector, :func:`shipped_detector`).
Uses lkdetect's public API only (a detector's ``detect_batch``, ``num_keypoints`` and ``metadata``).
"""

from __future__ import annotations

from .benchmarks import BENCHMARKS, load_benchmark, shipped_detector
from .run import evaluate
from .samples import AnnotationError, Benchmark, Sample

__all__ = ["BENCHMARKS", "AnnotationError", "Benchmark", "Sample", "evaluate", "load_benchmark", "shipped_detector"]
