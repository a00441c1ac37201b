"""Subcommands of the lkdetect CLI, one module each (imported lazily by lkdetect.cli)."""

from __future__ import annotations

import argparse

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
