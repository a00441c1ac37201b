"""Release weights of the keypoint detector: safetensors plus a JSON metadata header.

The header rebuilds the network and its preprocessing (timm ``PretrainedCfg`` style): format name and version,
network config (backbone name and head kwargs, K, input size), mean/std, colour order, coordinate convention,
keypoint names, training data, the source GAN's sha256 and the lkdetect version. Every metadata value is stored
as a JSON string. Loading is strict: any mismatch raises :class:`~lkdetect.errors.CheckpointError` naming what was
expected and what was found. Nothing is ever unpickled.
Shipped weights are found by name in :mod:`lkdetect.models`.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .errors import CheckpointError, check_file

log = logging.getLogger(__name__)

FORMAT = "lkdetect-detector"
FORMAT_VERSION = 1
COLOR_ORDER = "RGB"
COORDINATES = "xy, pixels, centres at integers"
# Keys every file carries; values are JSON.
REQUIRED_KEYS = (
    "format",
    "format_version",
    "network",
    "num_keypoints",
    "input_size",
    "mean",
    "std",
    "color_order",
    "coordinates",
    "keypoint_names",
    "training",
    "source_gan_sha256",
    "lkdetect_version",
)


def atomic_write(path: str | Path, write: Callable[[str], Any]) -> None:
    """Call ``write(tmp_path)`` then rename over ``path``: readers see the old or the new file, never half."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        write(tmp)
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp creates 0600; release files should be readable like any other
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def file_sha256(path: str | Path) -> str:
    """Hex sha256 of a file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def make_metadata(
    network: Any,
    keypoint_names: list[str] | tuple[str, ...] | None = None,
    training: dict[str, Any] | None = None,
    source_gan_sha256: str = "",
) -> dict[str, Any]:
    """The metadata dict of a :class:`~lkdetect.network.KeypointNet` (values are plain JSON types).

    Args:
        network: the network; its config, K, input size and mean/std are recorded.
        keypoint_names: K names; default ``kp0 .. kp{K-1}``.
        training: what it was trained on (GAN file, iterations, validation error ...).
        source_gan_sha256: sha256 of the GAN weights the training pairs came from ("" if none).
    """
    from . import __version__

    k = network.num_keypoints
    names = list(keypoint_names) if keypoint_names else [f"kp{i}" for i in range(k)]
    if len(names) != k:
        raise ValueError(f"expected {k} keypoint names, got {len(names)}: {names}")
    norm = network.normalization()
    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "network": dict(network.config),
        "num_keypoints": k,
        "input_size": list(network.input_size),
        "mean": norm["mean"],
        "std": norm["std"],
        "color_order": COLOR_ORDER,
        "coordinates": COORDINATES,
        "keypoint_names": names,
        "training": training or {},
        "source_gan_sha256": source_gan_sha256,
        "lkdetect_version": __version__,
    }


def save_weights(path: str | Path, network: Any, metadata: dict[str, Any]) -> None:
    """Write release weights atomically: the network's state dict as safetensors with ``metadata`` as header."""
    from safetensors.torch import save_file

    missing = [k for k in REQUIRED_KEYS if k not in metadata]
    if missing:
        raise ValueError(f"metadata lacks {missing}; build it with make_metadata()")
    header = {k: json.dumps(v) for k, v in metadata.items()}
    tensors = {k: v.detach().cpu().contiguous() for k, v in network.state_dict().items()}
    atomic_write(path, lambda tmp: save_file(tensors, tmp, metadata=header))


def read_metadata(path: str | Path) -> dict[str, Any]:
    """The checked metadata header of a weights file (tensors are not read).

    Raises:
        FileNotFoundError: no such file.
        ValueError: a directory.
        CheckpointError: not safetensors, another format or version, or a malformed header.
    """
    from safetensors import SafetensorError, safe_open

    path = Path(path)
    check_file(path, "detector weights")
    try:
        with safe_open(str(path), framework="pt") as f:
            header = f.metadata() or {}
    except (SafetensorError, OSError, ValueError, RuntimeError) as e:
        raise CheckpointError(f"{path} is not a readable safetensors file: {e}") from e
    meta = {k: _json_or_raw(v) for k, v in header.items()}  # raw: other formats store plain strings
    _check_metadata(path, meta)
    return meta


def _json_or_raw(value: str) -> Any:
    try:
        return json.loads(value)
    except json.JSONDecodeError:
        return value


def _check_metadata(path: Path, meta: dict[str, Any]) -> None:
    def expect(key: str, expected: Any) -> None:
        if meta.get(key) != expected:
            raise CheckpointError(f"{path}: expected {key} {expected!r}, found {meta.get(key)!r}")

    expect("format", FORMAT)
    version = meta.get("format_version")
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise CheckpointError(f"{path}: expected format_version <= {FORMAT_VERSION}, found {version!r}")
    missing = [k for k in REQUIRED_KEYS if k not in meta]
    if missing:
        raise CheckpointError(f"{path}: metadata lacks {missing}")
    expect("color_order", COLOR_ORDER)
    expect("coordinates", COORDINATES)
    net, k = meta["network"], meta["num_keypoints"]
    if not isinstance(net, dict) or not isinstance(k, int):
        raise CheckpointError(f"{path}: expected a network dict and an integer num_keypoints, found {net!r}, {k!r}")
    if net.get("num_keypoints") != k:
        raise CheckpointError(f"{path}: expected network num_keypoints {k}, found {net.get('num_keypoints')!r}")
    if len(meta["keypoint_names"]) != k:
        raise CheckpointError(f"{path}: expected {k} keypoint names, found {len(meta['keypoint_names'])}")
    if list(net.get("input_size", [])) != list(meta["input_size"]):
        raise CheckpointError(
            f"{path}: expected network input_size {meta['input_size']}, found {net.get('input_size')!r}"
        )
    for key in ("mean", "std"):
        if not (isinstance(meta[key], list) and len(meta[key]) == 3):
            raise CheckpointError(f"{path}: expected {key} as 3 numbers (RGB), found {meta[key]!r}")
    if "flip_permutation" in meta:
        from .tta import check_permutation

        try:
            check_permutation(meta["flip_permutation"], k)
        except ValueError as e:
            raise CheckpointError(f"{path}: {e}") from e
    if "upright_keypoints" in meta:
        from .refine import check_reference

        try:
            check_reference(meta["upright_keypoints"], k)
        except ValueError as e:
            raise CheckpointError(f"{path}: {e}") from e


def load_weights(path: str | Path, num_keypoints: int | None = None) -> tuple[Any, dict[str, Any]]:
    """Rebuild the network from release weights.

    Args:
        path: a ``.safetensors`` file written by :func:`save_weights`.
        num_keypoints: if given, the K the caller expects.

    Returns:
        (network in eval mode on the CPU, metadata dict plus ``sha256`` and ``path`` of the file).

    Raises:
        FileNotFoundError: no such file.
        CheckpointError: unreadable file, another format, K other than ``num_keypoints``, or tensors that do not
            fit the network the metadata describes.
    """
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    from .network import build_network

    path = Path(path)
    meta = read_metadata(path)
    if num_keypoints is not None and meta["num_keypoints"] != num_keypoints:
        raise CheckpointError(f"{path}: expected {num_keypoints} keypoints, found {meta['num_keypoints']}")
    try:
        net = build_network(meta["network"], mean=meta["mean"], std=meta["std"])
    except (KeyError, TypeError, ValueError) as e:
        raise CheckpointError(f"{path}: cannot build the network from metadata {meta['network']}: {e}") from e
    try:
        tensors = load_file(str(path))
    except (SafetensorError, OSError, ValueError, RuntimeError) as e:
        raise CheckpointError(f"{path} is not a readable safetensors file: {e}") from e
    expected = net.state_dict()
    missing, extra = sorted(set(expected) - set(tensors)), sorted(set(tensors) - set(expected))
    bad = sorted(
        f"{k} (expected {tuple(expected[k].shape)}, found {tuple(tensors[k].shape)})"
        for k in set(expected) & set(tensors)
        if expected[k].shape != tensors[k].shape
    )
    if missing or extra or bad:
        raise CheckpointError(
            f"{path}: tensors do not match network {meta['network']}; missing {missing[:5]}, "
            f"unexpected {extra[:5]}, wrong shape {bad[:5]}"
        )
    net.load_state_dict(tensors, strict=True)
    meta = {**meta, "sha256": file_sha256(path), "path": str(path)}
    return net.eval().requires_grad_(False), meta


def gan_keypoint_indices(metadata: dict[str, Any]) -> list[int]:
    """Which of its GAN's keypoints a detector outputs, in order: all K, or the subset that ``lkdetect
    keep-keypoints`` kept (``training.keypoint_subset.kept``)."""
    kept = ((metadata.get("training") or {}).get("keypoint_subset") or {}).get("kept")
    return list(kept) if kept is not None else list(range(int(metadata["num_keypoints"])))
