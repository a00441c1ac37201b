"""The training images of ``lkdetect learn``: a check of the folder before anything trains, then the images.

Any folder of images (searched recursively), an MTFL root or a CUB-200-2011 root, as ``lkdetect train-gan`` takes
(:func:`gan.data.training_items`). The check reads image headers only (sizes, no decoding), so it is fast enough for
``--dry-run``. Images whose square crop is below half the GAN's resolution (more than 2x upsampling) are skipped.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

MIN_IMAGES = 16  # fewer usable images than this is an error
FEW_IMAGES = 500  # below this a warning: a GAN needs hundreds to thousands of images


def min_side(resolution: int) -> int:
    """The smallest square crop (px) used for a GAN of ``resolution`` px: at most 2x upsampling."""
    return resolution // 2


@dataclass(frozen=True)
class DataSummary:
    """What a training folder holds."""

    kind: str  # e.g. "image folder DIR", "CUB-200-2011 training split at DIR"
    files: int  # image files listed
    usable: int  # readable, and large enough
    small: int  # readable, but the crop is below min_side
    unreadable: int  # not an image (header unreadable)
    min_side: int


def scan_data(root: str | Path, resolution: int, classes: list[int] | None = None) -> DataSummary:
    """Check a training folder from its image headers.

    Raises:
        ValueError: the folder is missing, holds no image file, no readable image, or fewer than
            :data:`MIN_IMAGES` images of at least ``resolution // 2`` px (one line saying which).
    """
    from PIL import Image, UnidentifiedImageError

    from gan.data import training_items

    items, kind = training_items(root, classes)  # DatasetError (a ValueError): missing folder, no image files
    side = min_side(resolution)
    usable = small = unreadable = 0
    for path, crop in items:
        try:
            with Image.open(path) as img:
                left, top, right, bottom = crop(img)
        except (OSError, UnidentifiedImageError, ValueError, Image.DecompressionBombError):
            unreadable += 1
            continue
        if min(right - left, bottom - top) < side:
            small += 1
        else:
            usable += 1
    summary = DataSummary(kind, len(items), usable, small, unreadable, side)
    if usable + small == 0:
        raise ValueError(f"none of the {len(items)} image files in {kind} is a readable image")
    if usable < MIN_IMAGES:
        raise ValueError(
            f"{kind} has {usable} usable images, need at least {MIN_IMAGES}: {small} of the {len(items)} files are "
            f"smaller than {side} px (half the GAN's {resolution} px) and {unreadable} are not readable images"
        )
    if usable < FEW_IMAGES:
        log.warning("%s: only %d usable images; a GAN learns better from hundreds to thousands", kind, usable)
    return summary


def describe(s: DataSummary) -> str:
    """One line on a :class:`DataSummary`."""
    return (
        f"{s.kind}: {s.usable:,} usable images ({s.small} smaller than {s.min_side} px and {s.unreadable} unreadable "
        "skipped)"
    )


def load_images(root: str | Path, resolution: int, classes: list[int] | None = None, progress: bool = True):
    """The usable images (N, 3, R, R) uint8 (:func:`gan.data.load_training_images` with the size floor).

    Raises:
        ValueError: fewer than :data:`MIN_IMAGES` images decode.
    """
    from gan.data import load_training_images

    images = load_training_images(root, resolution, classes, progress=progress, min_side=min_side(resolution))
    if len(images) < MIN_IMAGES:
        raise ValueError(f"only {len(images)} images of {root} decode; need at least {MIN_IMAGES}")
    return images
