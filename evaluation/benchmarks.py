"""The benchmarks by name: ``load_benchmark("mafl" | "celeba-wild" | "cub" | "mtfl", root)`` (the protocols of
LatentKeypointGAN, He, Wandt, Rhodin, arXiv 2103.15812, and of MTFL; the readers and their preprocessing
live in celeba.py, cub.py and mtfl.py)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from . import celeba, cub, mtfl
from .samples import Benchmark

BENCHMARKS = ("mafl", "celeba-wild", "cub", "mtfl")
# the shipped detector (lkdetect.Detector.load name) that scores a benchmark when no weights are given
SHIPPED_DETECTOR = {"mafl": "faces", "celeba-wild": "faces", "cub": "birds", "mtfl": "faces"}


def shipped_detector(name: str) -> str:
    """The shipped detector's name for benchmark ``name``: faces for the face benchmarks, birds for CUB."""
    try:
        return SHIPPED_DETECTOR[name]
    except KeyError:
        raise ValueError(f"unknown benchmark {name!r}; expected one of {', '.join(BENCHMARKS)}") from None


def parse_classes(text: str | None) -> list[int] | None:
    """``--classes 1,2,3`` (CUB class ids) -> [1, 2, 3]; None or "" -> None (all classes).

    Raises:
        ValueError: not comma-separated integers.
    """
    if not text:
        return None
    try:
        return [int(c) for c in text.split(",") if c.strip()]
    except ValueError:
        raise ValueError(f"--classes must be comma-separated integers, got {text!r}") from None


def load_benchmark(name: str, root: str | Path, classes: Sequence[int] | None = None) -> Benchmark:
    """Read a benchmark's train and test splits from ``root`` (official layout). ``classes``: CUB only."""
    if classes is not None and name != "cub":
        raise ValueError(f"classes apply to cub only, not {name}")
    if name == "mafl":
        return celeba.read_mafl(root)
    if name == "celeba-wild":
        return celeba.read_celeba_wild(root)
    if name == "cub":
        return cub.read_benchmark(root, classes)
    if name == "mtfl":
        return mtfl.read_benchmark(root)
    raise ValueError(f"unknown benchmark {name!r}; expected one of {', '.join(BENCHMARKS)}")
