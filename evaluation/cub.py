"""CUB-200-2011 reader: the bird protocol of LatentKeypointGAN (He, Wandt, Rhodin, arXiv 2103.15812)
(CUB-001/002/003 and CUB-all).

Official layout: ``images.txt`` (id path), ``bounding_boxes.txt`` (id x y w h), ``train_test_split.txt``
(id is_training_image: 1 = train, 0 = test), ``image_class_labels.txt`` (id class), ``parts/part_locs.txt``
(``image_id part_id x y visible``, 15 parts, 1-based ids), optional ``parts/parts.txt`` (part names).
The root may be the ``CUB_200_2011`` folder or its parent.

Preprocessing (crop on the box centre, as AutoLink's, without its crop of the image to a multiple of 16 pixels):
the box (x, y, w, h) is read as pixel edges, [x, x + w] x [y, y + h]; the crop is the square of side max(w, h)
on the box centre, clipped to the image [0, W] x [0, H] (so a clipped crop is no longer square), kept in floating
point (no rounding: the crop and the bilinear resize to 128x128 are one exact resampling, see
``samples.resize_crop``). Part coordinates map as x' = (x + 0.5 - x0) * 128 / (x1 - x0) - 0.5. Visibility is kept
as annotated (a visible part outside the crop stays visible). Error: mean L2 over visible test parts in units of
the crop side (x100 = %).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from .samples import (
    CUB_OKS_SIGMA,
    AnnotationError,
    Benchmark,
    Sample,
    check_image,
    expect_fields,
    find_file,
    parse_floats,
    read_rgb,
    read_rows,
    resize_crop,
)

logger = logging.getLogger(__name__)

CROP_SIZE = 128
NUM_PARTS = 15


def cub_root(root: str | Path) -> Path:
    """The folder holding ``images.txt``: ``root`` itself or ``root/CUB_200_2011``."""
    root = Path(root)
    for cand in (root, root / "CUB_200_2011"):
        if (cand / "images.txt").is_file():
            return cand
    raise FileNotFoundError(f"images.txt not found in {root} or {root / 'CUB_200_2011'} (CUB-200-2011 layout)")


def _read_table(path: Path, ncols: int, what: str) -> dict[int, tuple[list[str], int]]:
    """{image id: (remaining fields, line number)} of a CUB ``id ...`` table."""
    out = {}
    for lineno, fields in read_rows(path):
        expect_fields(fields, (ncols,), path, lineno, what)
        try:
            image_id = int(fields[0])
        except ValueError:
            raise AnnotationError(f"{path}:{lineno}: image id must be an integer, got {fields[0]!r}") from None
        out[image_id] = (fields[1:], lineno)
    return out


def part_names(root: Path) -> tuple[str, ...]:
    path = root / "parts" / "parts.txt"
    if not path.is_file():
        return tuple(f"part{i}" for i in range(1, NUM_PARTS + 1))
    names = [" ".join(f[1:]).replace(" ", "_") for _, f in read_rows(path)]
    if len(names) != NUM_PARTS:
        raise AnnotationError(f"{path}: expected {NUM_PARTS} parts, got {len(names)}")
    return tuple(names)


def read_parts(path: Path, ids: set[int]) -> dict[int, tuple[np.ndarray, np.ndarray]]:
    """``part_locs.txt`` -> {image id: ((15, 2) xy, (15,) visible)} for the images in ``ids``."""
    out: dict[int, tuple[np.ndarray, np.ndarray]] = {}
    for lineno, fields in read_rows(path):
        expect_fields(fields, (5,), path, lineno, "image_id part_id x y visible")
        v = parse_floats(fields, path, lineno)
        image_id, part, vis = int(v[0]), int(v[1]), v[4]
        if image_id not in ids:
            continue
        if not 1 <= part <= NUM_PARTS or v[1] != part:
            raise AnnotationError(f"{path}:{lineno}: part id must be an integer in 1..{NUM_PARTS}, got {fields[1]}")
        if vis not in (0.0, 1.0):
            raise AnnotationError(f"{path}:{lineno}: visible must be 0 or 1, got {fields[4]}")
        xy, visible = out.setdefault(image_id, (np.zeros((NUM_PARTS, 2)), np.zeros(NUM_PARTS, dtype=bool)))
        xy[part - 1] = v[2:4]
        visible[part - 1] = vis == 1.0
    return out


def read_samples(root: str | Path, classes: Sequence[int] | None = None) -> dict[str, list[Sample]]:
    """{"train": [...], "test": [...]} of the given classes (all classes present when None), in image-id order."""
    root = cub_root(root)
    images = _read_table(root / "images.txt", 2, "image_id path")
    files = {
        "bounding_boxes.txt": (5, "image_id x y width height"),
        "train_test_split.txt": (2, "image_id is_training_image"),
        "image_class_labels.txt": (2, "image_id class_id"),
    }
    tables = {name: _read_table(find_file(root, name), n, what) for name, (n, what) in files.items()}
    for name, table in tables.items():
        missing = set(images) - set(table)
        if missing:
            raise AnnotationError(f"{root / name}: no line for image id {min(missing)} (of {len(missing)} missing)")
    labels = {i: int(f[0]) for i, (f, _) in tables["image_class_labels.txt"].items()}
    wanted = set(classes) if classes is not None else set(labels.values())
    ids = sorted(i for i in images if labels[i] in wanted)
    absent = wanted - {labels[i] for i in ids}
    if absent:
        raise ValueError(
            f"CUB classes {sorted(absent)} have no images in {root} (present: {sorted(set(labels.values()))[:10]}...)"
        )
    parts_path = root / "parts" / "part_locs.txt"
    if not parts_path.is_file():
        raise FileNotFoundError(f"{parts_path} not found (CUB-200-2011 part annotations)")
    parts = read_parts(parts_path, set(ids))
    out: dict[str, list[Sample]] = {"train": [], "test": []}
    for i in ids:
        (rel,), lineno = images[i]
        source = f"{root / 'images.txt'}:{lineno}"
        path = check_image(root / "images" / rel, source)
        if i not in parts:
            raise AnnotationError(f"{parts_path}: no part line for image id {i} ({source})")
        box_fields, box_line = tables["bounding_boxes.txt"][i]
        x, y, w, h = parse_floats(box_fields, root / "bounding_boxes.txt", box_line)
        if w <= 0 or h <= 0:
            raise AnnotationError(f"{root / 'bounding_boxes.txt'}:{box_line}: box width and height must be > 0")
        (is_train,), split_line = tables["train_test_split.txt"][i]
        if is_train not in ("0", "1"):
            raise AnnotationError(f"{root / 'train_test_split.txt'}:{split_line}: expected 0 or 1, got {is_train!r}")
        xy, visible = parts[i]
        out["train" if is_train == "1" else "test"].append(
            Sample(path, xy, visible, box=(x, y, w, h), class_id=labels[i], source=source)
        )
    return out


def crop_box(box: tuple[float, float, float, float], width: int, height: int) -> tuple[float, float, float, float]:
    """(x0, y0, x1, y1): the square of side max(w, h) on the box centre, clipped to the image (pixel edges)."""
    x, y, w, h = box
    cx, cy, half = x + w / 2, y + h / 2, max(w, h) / 2
    return max(0.0, cx - half), max(0.0, cy - half), min(float(width), cx + half), min(float(height), cy + half)


def load_image(sample: Sample) -> tuple[np.ndarray, np.ndarray]:
    """The box-centred square crop resized to 128x128 and the part coordinates in its pixels."""
    if sample.box is None:
        raise ValueError(f"CUB sample {sample.path} has no bounding box")
    image = read_rgb(sample.path)
    h, w = image.shape[:2]
    crop, transform = resize_crop(image, crop_box(sample.box, w, h), (CROP_SIZE, CROP_SIZE))
    return crop, transform(sample.landmarks)


def read_benchmark(root: str | Path, classes: Sequence[int] | None = None) -> Benchmark:
    """CUB-200-2011 restricted to ``classes`` (all present when None)."""
    splits = read_samples(root, classes)
    return Benchmark(
        name="cub",
        train=splits["train"],
        test=splits["test"],
        load_image=load_image,
        landmark_names=part_names(cub_root(root)),
        metric="crop",
        per_part=True,
        oks_sigmas=(CUB_OKS_SIGMA,) * NUM_PARTS,
        notes={
            "preprocessing": "square crop of side max(w, h) on the box centre, clipped to the image, "
            "float box (no rounding), bilinear resize to 128x128",
            "classes": "all present" if classes is None else ",".join(str(c) for c in classes),
        },
    )
