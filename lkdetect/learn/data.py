"""The training images of ``lkdetect learn``: a check of the folders before anything trains, then the images.

Any folder of images (searched recursively), an MTFL root or a CUB-200-2011 root, as ``lkdetect train-gan`` takes
(:func:`gan.data.training_items`), or several of them (``--data A --data B``), concatenated in order. The check
reads image headers only (sizes, no decoding), so it is fast enough for ``--dry-run``. Images whose square crop is
below half the GAN's resolution (more than 2x upsampling) are skipped.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from gan.data import Roots

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


def scan_data(data: Roots, resolution: int, classes: list[int] | None = None) -> list[DataSummary]:
    """Check the training folders from their image headers: one summary per root, in order.

    Raises:
        ValueError: a root given twice or inside another, or missing, or without any image file or readable image,
            or (one root) fewer than :data:`MIN_IMAGES` images of at least ``resolution // 2`` px, or (several) a root
            without any such image or fewer than :data:`MIN_IMAGES` of them in all (one line saying which).
    """
    from gan.data import training_roots

    roots = training_roots(data)  # DatasetError (a ValueError): a root twice
    need = MIN_IMAGES if len(roots) == 1 else 1
    summaries = [scan_root(root, resolution, classes, need) for root in roots]
    usable = sum(s.usable for s in summaries)
    if usable < MIN_IMAGES:
        raise ValueError(f"the {len(roots)} data folders hold {usable} usable images in all, need {MIN_IMAGES}")
    if usable < FEW_IMAGES:
        what = summaries[0].kind if len(roots) == 1 else f"{len(roots)} data folders"
        log.warning("%s: only %d usable images; a GAN learns better from hundreds to thousands", what, usable)
    return summaries


def scan_root(
    root: str | Path, resolution: int, classes: list[int] | None = None, need: int = MIN_IMAGES
) -> DataSummary:
    """Check one training root from its image headers (:func:`scan_data`); fewer than ``need`` usable images raise."""
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
    if usable < need:
        raise ValueError(
            f"{kind} has {usable} usable images, need at least {need}: {small} of the {len(items)} files are "
            f"smaller than {side} px (half the GAN's {resolution} px) and {unreadable} are not readable images"
        )
    return summary


def describe(s: DataSummary) -> str:
    """One line on a :class:`DataSummary`."""
    return (
        f"{s.kind}: {s.usable:,} usable images ({s.small} smaller than {s.min_side} px and {s.unreadable} unreadable "
        "skipped)"
    )


def describe_all(summaries: list[DataSummary]) -> list[str]:
    """One line per root (:func:`describe`) and, for several, a line on their total."""
    lines = [describe(s) for s in summaries]
    if len(summaries) > 1:
        usable, files = sum(s.usable for s in summaries), sum(s.files for s in summaries)
        lines.append(f"total: {usable:,} usable images of {files:,} files in {len(summaries)} data folders")
    return lines


def load_images(data: Roots, resolution: int, classes: list[int] | None = None, progress: bool = True):
    """The usable images (N, 3, R, R) uint8 of every root in order (:func:`gan.data.load_training_sets` with the
    size floor).

    Raises:
        ValueError: fewer than :data:`MIN_IMAGES` images decode.
    """
    from gan.data import load_training_sets, training_roots

    images = load_training_sets(data, resolution, classes, progress=progress, min_side=min_side(resolution))
    if len(images) < MIN_IMAGES:
        where = ", ".join(str(r) for r in training_roots(data))
        raise ValueError(f"only {len(images)} images of {where} decode; need at least {MIN_IMAGES}")
    return images
