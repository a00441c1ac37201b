"""Common pieces of the benchmark readers: the ``Sample`` and ``Benchmark`` types, annotation parsing that names
the file and line of any problem, image loading and the resize / crop transforms of landmarks.

Coordinate convention (the same as ``lkdetect.Keypoints``): (x, y) in pixels, pixel centres at integer
coordinates, so pixel i covers [i - 0.5, i + 0.5). Annotations are read as given in this convention; a resize of
an image of width W to width W' maps x to (x + 0.5) * W' / W - 0.5, which is exact for the image resampling.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

logger = logging.getLogger(__name__)

FACE_LANDMARKS = ("left_eye", "right_eye", "nose", "left_mouth", "right_mouth")
# Per-landmark OKS sigmas (COCO keypoint evaluation, secondary metric) [choice]: faces use the COCO person sigmas
# of the eyes (0.025) and nose (0.026), mouth corners as eyes; with the object scale set to the inter-ocular
# distance (see metrics.coco_ap) OKS is then exp(-(NME/0.05)^2 / 2). Bird parts: 0.05 of the crop size for every
# part (OKS 0.61 at 10 % error, 0.14 at 20 %).
FACE_OKS_SIGMAS = (0.025, 0.025, 0.026, 0.025, 0.025)
CUB_OKS_SIGMA = 0.05


@dataclass(frozen=True)
class Sample:
    """One annotated image of a benchmark split.

    Attributes:
        path: image file.
        landmarks: (L, 2) float64, (x, y) in original-image pixels, pixel centres at integer coordinates.
        visible: (L,) bool; False marks an unannotated (invisible) landmark, whose coordinates are meaningless.
        box: optional object box (x, y, w, h) in original-image pixels (CelebA face box, CUB bird box).
        class_id: optional class (CUB).
        source: "file:line" of the annotation, for error messages.
    """

    path: Path
    landmarks: np.ndarray
    visible: np.ndarray
    box: tuple[float, float, float, float] | None = None
    class_id: int | None = None
    source: str = ""

    @property
    def name(self) -> str:
        return self.path.name


# load_image(sample) -> (image HxWx3 uint8 RGB after the protocol preprocessing, (L, 2) landmarks in its pixels)
LoadImage = Callable[[Sample], "tuple[np.ndarray, np.ndarray]"]


@dataclass(frozen=True)
class Benchmark:
    """A benchmark: train and test splits, the protocol's preprocessing and how it is scored.

    Attributes:
        name: benchmark name ("mafl", "celeba-wild", "cub", "mtfl").
        train, test: the splits.
        load_image: the protocol preprocessing (see ``LoadImage``).
        landmark_names: L names.
        metric: "iod" (mean L2 / inter-ocular distance between landmarks 0 and 1) or "crop" (mean L2 over visible
            landmarks / side of the preprocessed square crop).
        per_part: one regressor per landmark fitted on the images where it is visible (CUB).
        oks_sigmas: (L,) per-landmark sigmas for COCO keypoint AP.
        notes: protocol details worth recording in the report.
    """

    name: str
    train: list[Sample]
    test: list[Sample]
    load_image: LoadImage
    landmark_names: tuple[str, ...]
    metric: str
    per_part: bool
    oks_sigmas: tuple[float, ...]
    notes: dict[str, str] = field(default_factory=dict)

    @property
    def num_landmarks(self) -> int:
        return len(self.landmark_names)


class AnnotationError(ValueError):
    """A malformed annotation line; the message names the file and the line number."""


def find_file(root: Path, name: str, subdirs: Sequence[str] = ("",), required: bool = True) -> Path | None:
    """``root/<subdir>/name`` for the first subdir where it exists (official layouts nest files differently)."""
    for sub in subdirs:
        p = root / sub / name
        if p.exists():
            return p
    if required:
        where = ", ".join(str(root / s / name) for s in subdirs)
        raise FileNotFoundError(f"{name} not found under {root} (looked for {where})")
    return None


def read_rows(path: Path, skip: int = 0) -> Iterator[tuple[int, list[str]]]:
    """Yield (1-based line number, whitespace-split fields) of the non-empty lines of ``path`` after ``skip`` lines."""
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, start=1):
            if lineno <= skip:
                continue
            fields = line.split()
            if fields:
                yield lineno, fields


def parse_floats(fields: Sequence[str], path: Path, lineno: int) -> list[float]:
    """Fields as floats, or an ``AnnotationError`` naming ``path:lineno``."""
    try:
        return [float(v) for v in fields]
    except ValueError as e:
        raise AnnotationError(f"{path}:{lineno}: expected numbers, got {' '.join(fields)!r} ({e})") from None


def expect_fields(fields: Sequence[str], counts: Sequence[int], path: Path, lineno: int, what: str) -> None:
    if len(fields) not in counts:
        want = " or ".join(str(c) for c in counts)
        raise AnnotationError(f"{path}:{lineno}: expected {want} fields ({what}), got {len(fields)}")


def check_image(path: Path, source: str) -> Path:
    """Raise ``FileNotFoundError`` naming the image and the annotation line that refers to it."""
    if not path.is_file():
        raise FileNotFoundError(f"image {path} (listed at {source}) does not exist")
    return path


def read_rgb(path: Path) -> np.ndarray:
    """Image file -> HxWx3 uint8 RGB (grayscale expanded, alpha dropped)."""
    from PIL import Image

    with Image.open(path) as im:
        return np.asarray(im.convert("RGB"))


def image_size(path: Path) -> tuple[int, int]:
    """(width, height) from the file header, without decoding the pixels."""
    from PIL import Image

    with Image.open(path) as im:
        return im.size


def resize_crop(
    image: np.ndarray, box: tuple[float, float, float, float], size: tuple[int, int]
) -> tuple[np.ndarray, Callable[[np.ndarray], np.ndarray]]:
    """Crop ``box`` = (x0, y0, x1, y1) (pixel-edge coordinates, floats, no rounding) and resize it to ``size``.

    The crop and the bilinear resize are one resampling (PIL ``resize(box=...)``), so a fractional box is sampled
    exactly. Returns the new image and the function mapping (L, 2) pixel coordinates of ``image`` to the new image:
    x' = (x + 0.5 - x0) * W' / (x1 - x0) - 0.5, and likewise for y.
    """
    from PIL import Image

    x0, y0, x1, y1 = box
    w, h = size
    out = np.asarray(Image.fromarray(image).resize((w, h), Image.BILINEAR, box=(x0, y0, x1, y1)))
    scale = np.array([w / (x1 - x0), h / (y1 - y0)])
    origin = np.array([x0, y0])

    def transform(xy: np.ndarray) -> np.ndarray:
        return (np.asarray(xy, dtype=np.float64) + 0.5 - origin) * scale - 0.5

    return out, transform


def limit_split(samples: list[Sample], limit: int | None) -> list[Sample]:
    """The first ``limit`` samples (all when None), for quick runs."""
    if limit is not None and limit < len(samples):
        logger.info("using the first %d of %d samples", limit, len(samples))
        return samples[:limit]
    return samples
