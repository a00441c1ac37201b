"""MTFL reader (Zhang et al., ECCV 2014): the MTFL / AFLW protocol of
LatentKeypointGAN (He, Wandt, Rhodin, arXiv 2103.15812).

Two layouts, told apart per line by the number of fields:
- official: ``training.txt`` / ``testing.txt`` lines ``path x1..x5 y1..y5 gender smile glasses pose`` (15 fields),
  backslash paths, original resolution;
- the 80x80 variant (../shared/data/mtfl80): ``path x1..x5 y1..y5`` (11 fields), forward slashes.
Points: left eye, right eye, nose, left and right mouth corner ("left" = image left), as MAFL. Images are used as
they are (the detector resizes); the regressor is fitted on ``training.txt`` and scored on ``testing.txt``.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from .samples import (
    FACE_LANDMARKS,
    FACE_OKS_SIGMAS,
    Benchmark,
    Sample,
    check_image,
    expect_fields,
    find_file,
    parse_floats,
    read_rgb,
    read_rows,
)

logger = logging.getLogger(__name__)

SPLIT_FILES = {"train": "training.txt", "test": "testing.txt"}


def read_split(root: str | Path, split: str) -> list[Sample]:
    """Samples of ``split`` ("train" or "test") of an MTFL root (official or 80x80 layout).

    Raises:
        AnnotationError: a malformed line (file and line number in the message).
        FileNotFoundError: a missing list file or image (the image's list line in the message).
    """
    root = Path(root)
    path = find_file(root, SPLIT_FILES[split])
    samples = []
    for lineno, fields in read_rows(path):
        expect_fields(fields, (11, 15), path, lineno, "path x1..x5 y1..y5 [gender smile glasses pose]")
        v = parse_floats(fields[1:11], path, lineno)
        xy = np.stack([v[:5], v[5:10]], axis=1)
        source = f"{path}:{lineno}"
        image = check_image(root / fields[0].replace("\\", "/"), source)
        samples.append(Sample(image, xy, np.ones(5, dtype=bool), source=source))
    if not samples:
        raise ValueError(f"{path} lists no images")
    return samples


def load_image(sample: Sample) -> tuple[np.ndarray, np.ndarray]:
    """The image as it is (RGB) and its landmarks unchanged (MTFL is used at its own resolution)."""
    return read_rgb(sample.path), sample.landmarks.copy()


def read_benchmark(root: str | Path) -> Benchmark:
    """MTFL training -> AFLW test faces, scored by the inter-ocular normalised error."""
    return Benchmark(
        name="mtfl",
        train=read_split(root, "train"),
        test=read_split(root, "test"),
        load_image=load_image,
        landmark_names=FACE_LANDMARKS,
        metric="iod",
        per_part=False,
        oks_sigmas=FACE_OKS_SIGMAS,
        notes={"preprocessing": "images used as they are; the detector resizes"},
    )
