"""Training images for the GAN: any folder of images, or an MTFL or CUB-200-2011 root (images only, no labels), or
several of them concatenated (:func:`load_training_sets`, ``--data A --data B``).

Everything is decoded once into a uint8 tensor in memory (10,000 faces at 64 px are 120 MB), so training
batches are drawn by index with a seeded generator and a resumed run sees exactly the same data.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp")
Box = tuple[float, float, float, float]  # x, y, w, h in pixels


class DatasetError(ValueError):
    """A data folder that cannot be used for training."""


def find_cub_root(root: Path) -> Path | None:
    """The CUB-200-2011 folder at or directly under ``root`` (it holds images.txt and bounding_boxes.txt)."""
    for cand in (root, root / "CUB_200_2011"):
        if (cand / "images.txt").is_file() and (cand / "bounding_boxes.txt").is_file():
            return cand
    return None


def is_mtfl_root(root: Path) -> bool:
    return (root / "training.txt").is_file() and (root / "testing.txt").is_file()


def mtfl_image_paths(root: Path, split: str = "train") -> list[Path]:
    """Image paths listed in MTFL's ``training.txt`` / ``testing.txt`` (official backslash paths accepted)."""
    listing = root / ("training.txt" if split == "train" else "testing.txt")
    paths = []
    for line in listing.read_text().splitlines():
        if line.strip():
            paths.append(root / line.split()[0].replace("\\", "/"))
    return paths


def cub_square_box(box: Box, width: int, height: int) -> tuple[int, int, int, int]:
    """The CUB protocol crop: a square of side max(w, h) on the box centre, clipped to the image.

    Returns:
        (left, top, right, bottom) integer pixel bounds, right/bottom exclusive.
    """
    x, y, w, h = box
    side = max(w, h)
    cx, cy = x + w / 2, y + h / 2
    left, top = max(0, round(cx - side / 2)), max(0, round(cy - side / 2))
    right, bottom = min(width, round(cx + side / 2)), min(height, round(cy + side / 2))
    return left, top, right, bottom


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


def cub_training_items(cub: Path, classes: Iterable[int] | None = None) -> list[tuple[Path, Box]]:
    """(image path, bounding box) of the CUB training split, optionally restricted to class ids."""
    images = dict(_pairs(cub / "images.txt"))
    is_train = dict(_pairs(cub / "train_test_split.txt"))
    labels = dict(_pairs(cub / "image_class_labels.txt"))
    boxes = {i: tuple(float(v) for v in rest.split()) for i, rest in _pairs(cub / "bounding_boxes.txt")}
    wanted = None if classes is None else {int(c) for c in classes}
    items = []
    for img_id, rel in images.items():
        if is_train.get(img_id) != "1" or (wanted is not None and int(labels[img_id]) not in wanted):
            continue
        items.append((cub / "images" / rel, boxes[img_id]))
    return items


def _pairs(path: Path) -> list[tuple[str, str]]:
    out = []
    for n, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip():
            continue
        key, _, rest = line.strip().partition(" ")
        if not rest:
            raise DatasetError(f"{path}:{n}: expected 'id value', got {line!r}")
        out.append((key, rest.strip()))
    return out


def _center_square(img: Image.Image) -> tuple[int, int, int, int]:
    w, h = img.size
    s = min(w, h)
    return (w - s) // 2, (h - s) // 2, (w - s) // 2 + s, (h - s) // 2 + s


class ImageTooSmall(ValueError):
    """An image whose crop is smaller than asked for (``load_image``'s ``min_side``)."""


def load_image(
    path: Path, resolution: int, crop: Callable[[Image.Image], tuple[int, int, int, int]], min_side: int = 0
) -> np.ndarray:
    """Decode, convert to RGB (grayscale, palette and alpha images included), crop, resize -> (R, R, 3) uint8.

    Raises:
        ImageTooSmall: the crop is narrower or lower than ``min_side`` pixels (checked before decoding).
    """
    with Image.open(path) as img:
        left, top, right, bottom = crop(img)
        if min(right - left, bottom - top) < min_side:
            raise ImageTooSmall(f"its {right - left}x{bottom - top} crop is smaller than {min_side} px")
        img.load()
        if img.mode != "RGB":
            log.debug("%s: converting %s to RGB", path, img.mode)
            img = img.convert("RGB")
        img = img.crop(crop(img)).resize((resolution, resolution), Image.Resampling.BICUBIC, reducing_gap=2.0)
        return np.asarray(img, dtype=np.uint8)


def training_items(
    root: str | Path, classes: Iterable[int] | None = None
) -> tuple[list[tuple[Path, Callable[[Image.Image], tuple[int, int, int, int]]]], str]:
    """The training images under ``root`` (see :func:`load_training_images`) before decoding: (path, crop) pairs,
    where ``crop(img)`` gives the (left, top, right, bottom) square to keep, and a description of the source.

    Raises:
        DatasetError: ``root`` is missing or holds no image file.
    """
    root = Path(root)
    if not root.is_dir():
        raise DatasetError(f"data folder {root} does not exist or is not a folder")
    cub = find_cub_root(root)
    items: list[tuple[Path, Callable]]
    if cub is not None:
        items = [(p, lambda img, b=box: cub_square_box(b, *img.size)) for p, box in cub_training_items(cub, classes)]
        kind = f"CUB-200-2011 training split at {cub}"
    elif is_mtfl_root(root):
        items = [(p, _center_square) for p in mtfl_image_paths(root, "train")]
        kind = f"MTFL training list at {root}"
    else:
        files = sorted(p for p in root.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
        items = [(p, _center_square) for p in files]
        kind = f"image folder {root}"
    if not items:
        raise DatasetError(f"no images found in {kind} (looked for {', '.join(IMAGE_SUFFIXES)})")
    return items, kind


def load_training_images(
    root: str | Path,
    resolution: int,
    classes: Iterable[int] | None = None,
    progress: bool = False,
    min_side: int = 0,
) -> torch.Tensor:
    """All training images under ``root`` as a uint8 tensor (N, 3, R, R).

    ``root`` is an MTFL root (its training.txt list), a CUB-200-2011 root (training split, square crop on the
    bounding box, optionally restricted to ``classes``), or any folder searched recursively for images
    (centre square crop). Unreadable files are skipped with a warning, and so are images whose square crop is
    smaller than ``min_side`` pixels (0: keep every size).

    Raises:
        DatasetError: ``root`` is missing or holds no readable image (of at least ``min_side`` px).
    """
    items, kind = training_items(root, classes)
    it: Iterable = items
    if progress:
        from tqdm import tqdm

        it = tqdm(items, desc="loading images", unit="img", leave=False)
    arrays, skipped = [], []
    for path, crop in it:
        try:
            arrays.append(load_image(path, resolution, crop, min_side))
        except (OSError, UnidentifiedImageError, ValueError, Image.DecompressionBombError) as e:
            skipped.append(path)
            what = "small" if isinstance(e, ImageTooSmall) else "unreadable"
            warnings.warn(f"skipping {what} image {path}: {e}", stacklevel=2)
    if not arrays:
        size = f" of at least {min_side} px" if min_side else ""
        raise DatasetError(f"none of the {len(items)} files in {kind} could be read as an image{size}")
    log.info("loaded %d images from %s (%d skipped)", len(arrays), kind, len(skipped))
    return torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2).contiguous()


Roots = str | Path | Sequence[str | Path]  # one training root, or several in order


def training_roots(data: Roots) -> list[Path]:
    """The training roots of ``--data`` given once (a path) or repeated (a sequence of paths), in order.

    Raises:
        DatasetError: no root, or the same folder twice, or one root inside another (its images would count twice).
    """
    roots = [Path(data)] if isinstance(data, (str, Path)) else [Path(r) for r in data]
    if not roots:
        raise DatasetError("no data folder given")
    resolved = [r.expanduser().resolve() for r in roots]
    for i, a in enumerate(resolved):
        for j in range(i):
            b = resolved[j]
            if a == b:
                raise DatasetError(f"data folder {roots[i]} is given twice: its images would count twice")
            if a.is_relative_to(b) or b.is_relative_to(a):
                inner, outer = (roots[i], roots[j]) if a.is_relative_to(b) else (roots[j], roots[i])
                raise DatasetError(f"data folder {inner} is inside {outer}, also given: its images would count twice")
    return roots


def data_record(data: Roots) -> str | list[str]:
    """How a run records its training data: the absolute path of its one root (a string, as before several roots
    were possible), or the list of the absolute paths of its roots."""
    roots = [str(r.expanduser().resolve()) for r in training_roots(data)]
    return roots[0] if len(roots) == 1 else roots


def load_training_sets(
    data: Roots,
    resolution: int,
    classes: Iterable[int] | None = None,
    progress: bool = False,
    min_side: int = 0,
) -> torch.Tensor:
    """The training images of one or several roots, concatenated in the order given: uint8 (N, 3, R, R).

    Each root is read by :func:`load_training_images` (which logs one line on how many images it gave);
    ``classes`` restricts the CUB roots only (image folders and MTFL roots have no classes).

    Raises:
        DatasetError: no root, a root given twice or inside another (:func:`training_roots`), or a root that is
            missing or holds no readable image (the error names it).
    """
    roots = training_roots(data)
    classes = None if classes is None else list(classes)
    parts = [load_training_images(root, resolution, classes, progress, min_side) for root in roots]
    if len(parts) == 1:
        return parts[0]
    counts = ", ".join(f"{root}: {len(x)}" for root, x in zip(roots, parts))
    log.info("%d training images from %d data folders (%s)", sum(len(x) for x in parts), len(parts), counts)
    return torch.cat(parts)
