"""Training checkpoints and release weights of the GAN.

- Training state (G, D, EMA, optimisers, step, RNG states, config): ``torch.save`` of plain tensors and
  dicts, loaded with ``weights_only=True``, written atomically (temp file + fsync + rename).
- Release weights: the EMA generator as safetensors with a JSON metadata header that rebuilds it; loading is
  strict and never unpickles anything.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import tempfile
import warnings
from pathlib import Path
from typing import Any

import torch

from .config import GANConfig, ModelConfig, build_section
from .generator import Generator

FORMAT = "lkdetect-gan"
FORMAT_VERSION = 1


class CheckpointError(ValueError):
    """A checkpoint or weights file that does not fit what was asked for."""


def atomic_write(path: str | Path, write: Any) -> None:
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
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp (and some writers) create 0600; give the usual permissions
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def resume_checkpoint(path: str | Path, resume: bool, error: type = CheckpointError) -> Path | None:
    """The training checkpoint to resume from (``path`` when ``resume``), or None for a new run.

    Raises:
        error: ``path`` exists without ``resume`` (a new run would overwrite it), or ``resume`` without ``path``.
    """
    path = Path(path)
    if path.exists() and not resume:
        raise error(f"{path} exists: pass --resume to continue that run, or choose another --out")
    if resume and not path.exists():
        raise error(f"--resume given but {path} does not exist")
    return path if resume else None


def save_state(path: str | Path, state: dict[str, Any]) -> None:
    atomic_write(path, lambda tmp: torch.save(state, tmp))


def load_torch_file(path: str | Path, what: str = "training checkpoint", error: type = CheckpointError) -> Any:
    """``torch.load(path, weights_only=True)`` on the CPU. A file it refuses raises ``error`` with one line naming
    the file and why: never torch's advice to load it with ``weights_only=False`` (that would run its code)."""
    if Path(path).is_dir():
        raise error(f"{what} {path} is a directory, not a file")
    if not Path(path).exists():
        raise FileNotFoundError(f"{what} {path} not found")
    try:
        with warnings.catch_warnings():  # e.g. torch's note on the pickle protocol of a refused file
            warnings.simplefilter("ignore")
            return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # torch raises several types for corrupt files
        raise error(f"cannot read {what} {path}: {_load_failure(path, e)}") from e


def _load_failure(path: str | Path, e: Exception) -> str:
    if os.path.getsize(path) == 0:
        return "the file is empty (0 bytes)"
    paragraphs = [" ".join(p.split()) for p in re.split(r"\n\s*\n", str(e))]
    if not any("weights_only" in p or "WeightsUnpickler" in p for p in paragraphs):
        first = next((p for p in paragraphs if p), "truncated or not a torch file").split(". ")[0]
        return f"not a readable torch file ({type(e).__name__}: {first})"
    # torch's own words on what it refused, without its advice (weights_only=False, allow-listing globals)
    kept = [p for p in paragraphs if p and "weights_only" not in p and "Check the documentation" not in p]
    detail = re.split(r"\s*Please use", re.sub(r"^.*?WeightsUnpickler error:\s*", "", " ".join(kept)))[0]
    detail = f" ({detail.rstrip('.')})" if detail else ""
    return f"refused by torch's safe loader: it holds more than tensors and plain data{detail}"


def load_state(path: str | Path, cfg: GANConfig | None = None) -> dict[str, Any]:
    """Load a training state; with ``cfg``, refuse one written for another model configuration."""
    state = load_torch_file(path)
    if not isinstance(state, dict) or "config" not in state or "G" not in state:
        raise CheckpointError(f"{path} is not an lkdetect GAN training checkpoint")
    # model options added after the checkpoint was written take their defaults, which are the old behaviour
    state["config"]["model"] = {**_jsonable(ModelConfig().__dict__), **state["config"]["model"]}
    if cfg is not None and state["config"]["model"] != _jsonable(cfg.to_dict())["model"]:
        diff = {
            k: (v, state["config"]["model"].get(k))
            for k, v in _jsonable(cfg.to_dict())["model"].items()
            if state["config"]["model"].get(k) != v
        }
        raise CheckpointError(
            f"checkpoint {path} was trained with another model configuration; (expected, found): {diff}"
        )
    return state


def _jsonable(d: Any) -> Any:
    return json.loads(json.dumps(d))


def file_sha256(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def save_generator(path: str | Path, generator: Generator, info: dict[str, Any] | None = None) -> None:
    """Write release weights: safetensors with metadata (format, version, model config, ``info``)."""
    from safetensors.torch import save_file

    meta = {
        "format": FORMAT,
        "format_version": str(FORMAT_VERSION),
        "model_config": json.dumps(_jsonable(generator.cfg.__dict__)),
        "info": json.dumps(info or {}),
    }
    tensors = {k: v.detach().cpu().contiguous() for k, v in generator.state_dict().items()}
    atomic_write(path, lambda tmp: save_file(tensors, tmp, metadata=meta))


def read_weights(path: str | Path) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """The tensors and metadata of a generator weights file (release or snapshot), its format checked.

    Raises:
        CheckpointError: missing, not a safetensors file, another format or a newer format version.
    """
    from safetensors import SafetensorError
    from safetensors.torch import load_file, safe_open

    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"GAN weights {path} {'is a directory, not a file' if path.is_dir() else 'not found'}")
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
        tensors = load_file(str(path))
    except (SafetensorError, OSError, ValueError) as e:
        raise CheckpointError(f"{path} is not a readable safetensors file: {e}") from e
    if meta.get("format") != FORMAT:
        raise CheckpointError(f"{path}: expected format {FORMAT!r}, found {meta.get('format')!r}")
    if int(meta.get("format_version", -1)) > FORMAT_VERSION:
        raise CheckpointError(f"{path}: format version {meta['format_version']} is newer than {FORMAT_VERSION}")
    return tensors, meta


def load_generator(path: str | Path) -> tuple[Generator, dict[str, Any]]:
    """Rebuild the generator from release weights; returns (generator in eval mode, info dict).

    The generator comes in channels-last memory order, its fast layout on CPUs (sampling 256 faces: 2.1-2.3 s
    contiguous, 1.2-1.3 s channels-last on the project's 2-core machine).

    Raises:
        CheckpointError: not a safetensors file, another format, or tensors that do not match the config.
    """
    tensors, meta = read_weights(path)
    cfg = build_section(ModelConfig, json.loads(meta["model_config"]))
    g = Generator(cfg)
    expected = g.state_dict()
    missing, extra = set(expected) - set(tensors), set(tensors) - set(expected)
    bad = [k for k in set(expected) & set(tensors) if expected[k].shape != tensors[k].shape]
    if missing or extra or bad:
        raise CheckpointError(
            f"{path}: tensors do not match the model config; missing {sorted(missing)[:5]}, "
            f"unexpected {sorted(extra)[:5]}, wrong shape {sorted(bad)[:5]}"
        )
    g.load_state_dict(tensors, strict=True)
    g = g.to(memory_format=torch.channels_last)
    return g.eval().requires_grad_(False), json.loads(meta.get("info", "{}"))


def load_matching(generator: Generator, path: str | Path, min_share: float = 0.5) -> dict[str, Any]:
    """Copy into ``generator`` every tensor of the weights file at ``path`` whose name and shape match its own (a
    warm start from another model configuration); the others keep their values. Returns what happened: the file
    and its sha256, ``kept`` (names taken from the file), ``fresh`` (the generator's names it did not supply) and
    ``dropped`` (the file's names the generator has not, or has in another shape) and ``kept_share`` (of the
    generator's numbers).

    Raises:
        CheckpointError: an unreadable file, or one that fills less than ``min_share`` of the generator's numbers
            (another model: a few biases of three channels always fit).
    """
    tensors, _ = read_weights(path)
    own = generator.state_dict()
    kept = sorted(k for k in own if k in tensors and tensors[k].shape == own[k].shape)
    share = sum(own[k].numel() for k in kept) / sum(v.numel() for v in own.values())
    if share < min_share:
        raise CheckpointError(
            f"{path}: its tensors that fit this generator hold {share:.0%} of its numbers, less than {min_share:.0%}"
            " (another model configuration)"
        )
    with torch.no_grad():
        for k in kept:
            own[k].copy_(tensors[k])
    return {
        "file": str(path),
        "sha256": file_sha256(path),
        "kept": kept,
        "fresh": sorted(set(own) - set(kept)),
        "dropped": sorted(set(tensors) - set(kept)),
        "kept_share": round(share, 4),
    }
