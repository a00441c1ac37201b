"""Where the shipped models are: detector weights by name and the GAN weights they came from, in one place.

Shipped files are found by name (``"faces"`` -> ``faces_detector.safetensors`` and ``faces_gan.safetensors``) in,
in order: the directory in ``$LKDETECT_WEIGHTS_DIR``, the package's own ``lkdetect/shipped/`` (installed as
package data, so it works after a plain ``pip install .`` as well as in an editable install) and, in a source
checkout, the repository's ``weights/``. Only paths here: loading is :mod:`lkdetect.weights` (detectors) and
:mod:`lkdetect.training.gan_weights` (GANs).
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from .errors import check_file

DEFAULT_NAME = "faces"
# names of earlier releases -> the shipped name that now holds that detector (used only when no file has the old name)
ALIASES = {"faces_large": "faces"}
SUFFIX = "_detector.safetensors"
GAN_SUFFIX = "_gan.safetensors"
RUN_WEIGHTS = "detector.safetensors"  # the detector of a run directory (lkdetect learn, train-detector)


def weights_dirs() -> list[Path]:
    """Directories searched for shipped weights, in order (see the module docstring)."""
    dirs = []
    if os.environ.get("LKDETECT_WEIGHTS_DIR"):
        dirs.append(Path(os.environ["LKDETECT_WEIGHTS_DIR"]))
    here = Path(__file__).resolve().parent
    dirs += [here / "shipped", here.parent / "weights"]
    return dirs


def resolve_weights(name_or_path: str | Path | None = None) -> Path:
    """Map ``None`` (the face detector), a name (``"faces"``, ``"faces_small"``, ``"birds"``; an old name in
    :data:`ALIASES`), a path to a weights file, or a run directory holding ``detector.safetensors`` (of ``lkdetect
    learn`` or ``lkdetect train-detector``) to a file.

    Raises:
        FileNotFoundError: a path that does not exist, or a name with no file in :func:`weights_dirs`.
        ValueError: a directory without ``detector.safetensors``.
    """
    if name_or_path is None:
        name_or_path = DEFAULT_NAME
    if isinstance(name_or_path, str) and re.fullmatch(r"[a-z0-9_]+", name_or_path):
        candidates = [d / f"{name_or_path}{SUFFIX}" for d in weights_dirs()]
        for c in candidates:
            if c.is_file():
                return c
        if name_or_path in ALIASES:
            return resolve_weights(ALIASES[name_or_path])
        available = sorted({p.name[: -len(SUFFIX)] for d in weights_dirs() if d.is_dir() for p in d.glob(f"*{SUFFIX}")})
        raise FileNotFoundError(
            f"no shipped detector {name_or_path!r}: looked for {[str(c) for c in candidates]}; available names: "
            f"{available or 'none'}. Train one with `lkdetect train-detector` or pass a weights file path"
        )
    if not isinstance(name_or_path, (str, Path)):
        raise TypeError(f"expected a weights name, a path or None, got {type(name_or_path).__name__}")
    path = Path(name_or_path)
    if path.is_dir() and (path / RUN_WEIGHTS).is_file():
        return path / RUN_WEIGHTS
    if path.is_dir():
        raise ValueError(f"detector weights {path} is a directory, not a file, and holds no {RUN_WEIGHTS}")
    check_file(path, "detector weights")
    return path


def shipped_gan_path(domain: str = "faces") -> Path:
    """Path of the shipped GAN weights ``<domain>_gan.safetensors``, searched where the shipped detectors are
    (:func:`weights_dirs`: ``$LKDETECT_WEIGHTS_DIR``, package data, the checkout's ``weights/``).

    Raises:
        ValueError: a domain name other than lower-case letters, digits and underscores.
        FileNotFoundError: no such file (the message lists the places searched).
    """
    if not re.fullmatch(r"[a-z0-9_]+", domain):
        raise ValueError(f"domain must be lower-case letters, digits or '_', got {domain!r}")
    candidates = [d / f"{domain}{GAN_SUFFIX}" for d in weights_dirs()]
    for path in candidates:
        if path.is_file():
            return path
    raise FileNotFoundError(
        f"no shipped GAN weights for domain {domain!r}; looked in "
        f"{', '.join(str(p) for p in candidates)}; pass --gan PATH"
    )
