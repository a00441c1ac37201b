"""Subcommands of the lkdetect CLI, one module each (imported lazily by lkdetect.cli), and what they share: the
``--weights`` / ``--onnx`` detector of the commands that detect, and warnings as log lines."""

from __future__ import annotations

import argparse
import contextlib
import logging
import warnings
from collections.abc import Iterator
from typing import Any

ONNX_HELP = (
    "run on onnxruntime: an .onnx model (lkdetect export), or detector weights (a shipped name such as faces, or "
    "a .safetensors file) exported in memory"
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


def load_engine(args: argparse.Namespace) -> Any:
    """The detector of ``--onnx MODEL`` (onnxruntime, ``--threads`` when the command has it) or else ``--weights``
    (PyTorch on ``--device``; None: the shipped face detector). Imported lazily: plain runs never load onnxruntime.

    Raises:
        ValueError: both given, or ``--onnx`` with a ``--device`` other than cpu.
    """
    weights, model, device = getattr(args, "weights", None), getattr(args, "onnx", None), getattr(args, "device", "cpu")
    if model and weights:
        raise ValueError("give --weights or --onnx, not both")
    if model:
        if device != "cpu":
            raise ValueError(f"--device {device} applies to the PyTorch detector; --onnx runs on the CPU")
        from lkdetect.onnx import OnnxDetector

        return OnnxDetector.load(model, threads=getattr(args, "threads", None) or None)
    from lkdetect.detector import Detector

    return Detector.load(weights, device=device)


def load_detector(args: argparse.Namespace) -> Any:
    """:func:`load_engine`, with ``--tta`` / ``--tta-scales`` and ``--refine``/``--upright`` set on it when given (else
    the detector is left alone)."""
    from lkdetect.refine import refine_from_args
    from lkdetect.tta import tta_from_args

    refine = refine_from_args(args)
    tta = tta_from_args(args)
    detector = load_engine(args)
    if tta is not None:
        detector.tta = tta
    if refine is not None:
        detector.refine = refine
    return detector
