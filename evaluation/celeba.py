"""CelebA readers: MAFL (aligned faces) and CelebA in the wild, the face protocols of
LatentKeypointGAN (He, Wandt, Rhodin, arXiv 2103.15812).

MAFL: CelebA ``img_align_celeba/`` (178x218), ``list_landmarks_align_celeba.txt``, MAFL ``training.txt`` (19,000
names) / ``testing.txt`` (1,000). Preprocessing as IMM (Jakab et al. 2018, whose loader the later papers reuse):
the whole image is resized to 160x160 (both axes, bilinear, so the aspect ratio changes: 178->160 wide,
218->160 high), then the central 128x128 is cropped (offset 16 on both axes). Landmarks follow:
x' = (x + 0.5) * 160 / 178 - 0.5 - 16, y' = (y + 0.5) * 160 / 218 - 0.5 - 16.

CelebA in the wild: ``img_celeba/``, ``list_landmarks_celeba.txt``, ``list_bbox_celeba.txt``. Kept: images whose
face box (w * h) covers at least 30 % of the image area (width x height read from the image file), as AutoLink's
preprocessing. The whole image is resized to 128x128 (both axes, bilinear). Split: MAFL ``training.txt`` /
``testing.txt`` (names) when present, as AutoLink; otherwise CelebA ``list_eval_partition.txt`` (0 = train,
2 = test; validation unused). Both files have 2 header lines (count, column names).

Official layouts nest the files (``Img/``, ``Anno/``, ``Eval/``, ``MAFL/``); a flat root works too.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from .samples import (
    FACE_LANDMARKS,
    FACE_OKS_SIGMAS,
    AnnotationError,
    Benchmark,
    Sample,
    check_image,
    expect_fields,
    find_file,
    image_size,
    parse_floats,
    read_rgb,
    read_rows,
    resize_crop,
)

logger = logging.getLogger(__name__)

MAFL_RESIZE = 160
MAFL_CROP = 128
WILD_SIZE = 128
WILD_MIN_BOX_FRACTION = 0.3
HEADER_LINES = 2


def read_landmarks(path: Path) -> dict[str, tuple[np.ndarray, int]]:
    """CelebA landmark list -> {image name: ((5, 2) xy, line number)}."""
    out = {}
    for lineno, fields in read_rows(path, skip=HEADER_LINES):
        expect_fields(fields, (11,), path, lineno, "name x1 y1 ... x5 y5")
        out[fields[0]] = (np.array(parse_floats(fields[1:], path, lineno)).reshape(5, 2), lineno)
    if not out:
        raise AnnotationError(f"{path}: no landmark lines after the {HEADER_LINES} header lines")
    return out


def read_boxes(path: Path) -> dict[str, tuple[float, float, float, float]]:
    """CelebA ``list_bbox_celeba.txt`` -> {image name: (x, y, w, h)}."""
    out = {}
    for lineno, fields in read_rows(path, skip=HEADER_LINES):
        expect_fields(fields, (5,), path, lineno, "image_id x_1 y_1 width height")
        x, y, w, h = parse_floats(fields[1:], path, lineno)
        out[fields[0]] = (x, y, w, h)
    return out


def read_names(path: Path) -> list[tuple[int, str]]:
    """A MAFL list (one image name per line) -> [(line number, name)]."""
    rows = []
    for lineno, fields in read_rows(path):
        expect_fields(fields, (1,), path, lineno, "image name")
        rows.append((lineno, fields[0]))
    return rows


def _samples(
    names: list[tuple[int, str]], list_path: Path, image_dir: Path, landmarks: dict, landmark_path: Path
) -> list[Sample]:
    samples = []
    for lineno, name in names:
        if name not in landmarks:
            raise AnnotationError(f"{list_path}:{lineno}: image {name} has no line in {landmark_path}")
        xy, lm_line = landmarks[name]
        source = f"{list_path}:{lineno}"
        path = check_image(image_dir / name, source)
        samples.append(Sample(path, xy, np.ones(5, dtype=bool), source=f"{landmark_path}:{lm_line}"))
    return samples


# ---------------------------------------------------------------------------------------------------------- MAFL
def load_mafl_image(sample: Sample) -> tuple[np.ndarray, np.ndarray]:
    """Resize to 160x160, centre-crop 128x128; landmarks transformed alike (module docstring)."""
    image = read_rgb(sample.path)
    h, w = image.shape[:2]
    resized, transform = resize_crop(image, (0.0, 0.0, float(w), float(h)), (MAFL_RESIZE, MAFL_RESIZE))
    m = (MAFL_RESIZE - MAFL_CROP) // 2
    return np.ascontiguousarray(resized[m : m + MAFL_CROP, m : m + MAFL_CROP]), transform(sample.landmarks) - m


def read_mafl(root: str | Path) -> Benchmark:
    """MAFL: fit on training.txt (19,000), score on testing.txt (1,000), inter-ocular normalised error."""
    root = Path(root)
    lm_path = find_file(root, "list_landmarks_align_celeba.txt", ("", "Anno"))
    landmarks = read_landmarks(lm_path)
    image_dir = find_file(root, "img_align_celeba", ("", "Img"))
    splits = {}
    for split, fname in (("train", "training.txt"), ("test", "testing.txt")):
        list_path = find_file(root, fname, ("", "MAFL"))
        splits[split] = _samples(read_names(list_path), list_path, image_dir, landmarks, lm_path)
    return Benchmark(
        name="mafl",
        train=splits["train"],
        test=splits["test"],
        load_image=load_mafl_image,
        landmark_names=FACE_LANDMARKS,
        metric="iod",
        per_part=False,
        oks_sigmas=FACE_OKS_SIGMAS,
        notes={"preprocessing": "aligned 178x218 resized to 160x160 (both axes), centre crop 128x128 (IMM)"},
    )


# --------------------------------------------------------------------------------------------- CelebA in the wild
def _wild_split_names(root: Path) -> tuple[dict[str, list[tuple[int, str]]], dict[str, Path], str]:
    train_list = find_file(root, "training.txt", ("", "MAFL"), required=False)
    test_list = find_file(root, "testing.txt", ("", "MAFL"), required=False)
    if train_list is not None and test_list is not None:
        return (
            {"train": read_names(train_list), "test": read_names(test_list)},
            {"train": train_list, "test": test_list},
            "MAFL training.txt / testing.txt",
        )
    path = find_file(root, "list_eval_partition.txt", ("", "Eval"))
    names: dict[str, list[tuple[int, str]]] = {"train": [], "test": []}
    for lineno, fields in read_rows(path):
        expect_fields(fields, (2,), path, lineno, "image_name partition")
        if fields[1] not in ("0", "1", "2"):
            raise AnnotationError(f"{path}:{lineno}: partition must be 0, 1 or 2, got {fields[1]!r}")
        if fields[1] != "1":
            names["train" if fields[1] == "0" else "test"].append((lineno, fields[0]))
    return names, {"train": path, "test": path}, "CelebA list_eval_partition.txt (0 = train, 2 = test)"


def read_celeba_wild(root: str | Path) -> Benchmark:
    """CelebA in the wild: unaligned images whose face box covers >= 30 % of the image, resized to 128x128."""
    root = Path(root)
    lm_path = find_file(root, "list_landmarks_celeba.txt", ("", "Anno"))
    box_path = find_file(root, "list_bbox_celeba.txt", ("", "Anno"))
    image_dir = find_file(root, "img_celeba", ("", "Img"))
    landmarks, boxes = read_landmarks(lm_path), read_boxes(box_path)
    names, list_paths, split_source = _wild_split_names(root)
    splits = {}
    for split, rows in names.items():
        samples = _samples(rows, list_paths[split], image_dir, landmarks, lm_path)
        kept = []
        for s, (lineno, name) in zip(samples, rows):
            if name not in boxes:
                raise AnnotationError(f"{list_paths[split]}:{lineno}: image {name} has no line in {box_path}")
            box = boxes[name]
            w, h = image_size(s.path)
            if box[2] * box[3] >= WILD_MIN_BOX_FRACTION * w * h:
                kept.append(Sample(s.path, s.landmarks, s.visible, box=box, source=s.source))
        logger.info(
            "celeba-wild %s: kept %d of %d images (face box >= 30 %% of the image)", split, len(kept), len(samples)
        )
        splits[split] = kept
    return Benchmark(
        name="celeba-wild",
        train=splits["train"],
        test=splits["test"],
        load_image=load_wild_image,
        landmark_names=FACE_LANDMARKS,
        metric="iod",
        per_part=False,
        oks_sigmas=FACE_OKS_SIGMAS,
        notes={
            "preprocessing": "images whose face box covers >= 30 % of the image; whole image resized to 128x128",
            "split": split_source,
        },
    )


def load_wild_image(sample: Sample) -> tuple[np.ndarray, np.ndarray]:
    """The whole image resized to 128x128 (both axes); landmarks transformed alike."""
    image = read_rgb(sample.path)
    h, w = image.shape[:2]
    resized, transform = resize_crop(image, (0.0, 0.0, float(w), float(h)), (WILD_SIZE, WILD_SIZE))
    return resized, transform(sample.landmarks)
