"""Subcommands of the lkdetect CLI, one module each (imported lazily by lkdetect.cli)."""

from __future__ import annotations

import argparse
import contextlib
import logging
import warnings
from collections.abc import Iterator

from lkdetect.refine import Refine

ONNX_HELP = (
    "run on onnxruntime: an .onnx model (lkdetect export), or detector weights (a shipped name such as faces, or "
    "a .safetensors file) exported in memory"
)
TTA_HELP = "test-time augmentation: average mirrored views x scales 0.9, 1, 1.1 (6 network passes per image)"


def add_refine_argument(p: argparse.ArgumentParser) -> None:
    """``--refine [SIDE]`` (lkdetect.refine): absent -> None (off), bare -> the default side, else SIDE."""
    side = Refine().side
    p.add_argument(
        "--refine",
        nargs="?",
        type=float,
        const=side,
        default=None,
        metavar="SIDE",
        help=f"detect again on a square box around the first keypoints, SIDE times their spread (default {side:g}): "
        "every object reaches the network at the same scale; one more detection per image",
    )


@contextlib.contextmanager
def log_warnings() -> Iterator[None]:
    """Python warnings raised inside (e.g. ``gan.data``'s skipped unreadable images) as one log line each, without
    the source line that ``warnings`` prints under every message."""

    def show(message: Warning | str, *args: object, **kwargs: object) -> None:
        logging.getLogger("py.warnings").warning("%s", message)

    with warnings.catch_warnings():  # restores showwarning on the way out
        warnings.showwarning = show
        yield
