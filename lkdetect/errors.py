"""Exceptions of lkdetect."""

from __future__ import annotations


class CheckpointError(ValueError):
    """A weights or checkpoint file that is not what was expected (format, version, K, tensors)."""
