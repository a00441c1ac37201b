"""Exceptions of lkdetect, and the check that names a missing file or a directory given for one."""

from __future__ import annotations

from pathlib import Path


class CheckpointError(ValueError):
    """A weights or checkpoint file that is not what was expected (format, version, K, tensors)."""


def check_file(path: str | Path, what: str) -> None:
    """Raise ``FileNotFoundError`` (``"{what} {path} not found"``) unless ``path`` exists, and ``ValueError`` when it
    is a directory rather than a file."""
    path = Path(path)
    if path.is_dir():
        raise ValueError(f"{what} {path} is a directory, not a file")
    if not path.is_file():
        raise FileNotFoundError(f"{what} {path} not found")
