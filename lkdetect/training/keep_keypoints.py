"""``lkdetect keep-keypoints``: detector weights that output a subset of a detector's keypoints.

The heatmap head's last 1x1 convolution has one output channel per keypoint and the soft-argmax decodes each channel
on its own, so keeping rows of that convolution gives a detector whose keypoints are exactly the kept ones of the
source (same coordinates, same scores). Used for a benchmark whose protocol fits a regressor on few images (CUB's
single-class sets: 30 training images, two inputs per keypoint), where fewer keypoints over-fit less.

The flip permutation is kept when the subset is closed under it (each kept keypoint's mirror is kept), else it is
dropped: mirrored test-time augmentation then needs ``TTA(flip=False)``.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import torch

from ..models import resolve_weights
from ..network import build_network
from ..weights import gan_keypoint_indices, load_weights, save_weights


def parse_keep(text: str) -> list[int]:
    """``"2,3,6,9"`` -> [2, 3, 6, 9]; raises ``ValueError`` on anything else."""
    try:
        keep = [int(t) for t in text.split(",") if t.strip()]
    except ValueError as e:
        raise ValueError(f"--keep takes comma-separated keypoint indices, got {text!r}") from e
    if not keep:
        raise ValueError("--keep names no keypoint")
    return keep


def keep_keypoints(weights: str | Path, keep: list[int], out: str | Path) -> dict[str, Any]:
    """Write to ``out`` the detector ``weights`` restricted to keypoints ``keep`` (in that order); returns its metadata.

    Raises:
        ValueError: an index out of range or given twice, or ``out`` is the source file.
    """
    src = resolve_weights(weights)
    network, meta = load_weights(src)
    k = network.num_keypoints
    bad = [i for i in keep if not 0 <= i < k]
    if bad or len(set(keep)) != len(keep):
        raise ValueError(f"--keep needs distinct keypoint indices in 0..{k - 1}, got {keep}")
    if Path(out).resolve() == Path(src).resolve():
        raise ValueError(f"--out {out} is the source weights; write the subset to another file")
    config = {**network.config, "num_keypoints": len(keep)}
    gan_indices = gan_keypoint_indices(meta)  # the source's own GAN keypoints (it may be a subset already)
    subset = build_network(config, mean=meta["mean"], std=meta["std"])
    state = network.state_dict()
    index = torch.tensor(keep)
    state["to_heatmaps.weight"] = state["to_heatmaps.weight"][index]
    state["to_heatmaps.bias"] = state["to_heatmaps.bias"][index]
    subset.load_state_dict(state, strict=True)

    dropped = ("sha256", "path", "flip_permutation", "flip_match_px", "upright_keypoints")
    new = {k2: v for k2, v in meta.items() if k2 not in dropped}
    new.update(
        network=dict(subset.config),
        num_keypoints=len(keep),
        keypoint_names=[meta["keypoint_names"][i] for i in keep],
        training={
            **(meta.get("training") or {}),
            "keypoint_subset": {"kept": [gan_indices[i] for i in keep], "source_sha256": meta["sha256"]},
        },
    )
    perm = meta.get("flip_permutation")
    if perm is not None and all(perm[i] in keep for i in keep):
        position = {old: new_i for new_i, old in enumerate(keep)}
        new["flip_permutation"] = [position[perm[i]] for i in keep]
        if meta.get("flip_match_px") is not None:
            new["flip_match_px"] = [meta["flip_match_px"][i] for i in keep]
    if meta.get("upright_keypoints") is not None and len(keep) >= 2:
        new["upright_keypoints"] = [meta["upright_keypoints"][i] for i in keep]
    save_weights(out, subset.eval(), new)
    return new


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The arguments of ``lkdetect keep-keypoints``."""
    p.add_argument("weights", help="detector weights file or shipped name")
    p.add_argument("--keep", required=True, help="comma-separated indices of the keypoints to keep, in output order")
    p.add_argument("--out", required=True, help="weights file to write")


def run(args: argparse.Namespace) -> int:
    """``lkdetect keep-keypoints``: write the subset detector and print what it kept."""
    meta = keep_keypoints(args.weights, parse_keep(args.keep), args.out)
    flip = meta.get("flip_permutation")
    print(
        f"{args.out}: keypoints {meta['keypoint_names']} of {args.weights}; "
        + (f"flip_permutation {flip}" if flip is not None else "no flip permutation (a kept keypoint's mirror is not)")
    )
    return 0
