"""The keypoints' flip permutation, for mirrored test-time augmentation (:mod:`lkdetect.tta`), and their upright
reference constellation, for upright refinement (:mod:`lkdetect.refine`).

Latent keypoints have no names, so which keypoint is whose mirror image is estimated without labels from the
detector itself (:func:`flip_permutation`): detect on images and on their mirror images, mirror the second
detections back, and pair keypoints (or keep a keypoint as its own partner, one on the symmetry axis) so that
paired keypoints lie closest on average. ``lkdetect train-detector`` stores it in the weights' metadata
(``flip_permutation`` and ``flip_match_px``, the mean distance of each pair in input pixels) from its validation
pairs, with ``upright_keypoints``, the detector's mean keypoints on those upright samples; ``lkdetect add-flip
WEIGHTS`` (:func:`add_flip_permutation`) adds both to older weights, from the source GAN's samples.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..models import resolve_weights, shipped_gan_path
from ..network import KeypointNet
from ..weights import load_weights, save_weights
from .pairs import VAL_SEED_OFFSET, GanPairs

EXACT_MAX_K = 16  # exact pairing (2^K states) up to this K, greedy above


def flip_permutation(xy: np.ndarray, xy_mirrored: np.ndarray, width: int) -> tuple[np.ndarray, np.ndarray]:
    """Pair each keypoint with its mirror image from detections on images and on their mirror images.

    Args:
        xy: (N, K, 2) keypoints detected on N images, in pixels of images ``width`` pixels wide.
        xy_mirrored: (N, K, 2) keypoints detected on the mirrored images, in the mirrored images' pixels.
        width: image width in pixels.

    Returns:
        ``perm`` (K,) with ``perm[perm] == arange(K)``: keypoint i of an image corresponds to keypoint
        ``perm[i]`` of its mirror image; and ``match_px`` (K,), the mean distance between keypoint i and its
        partner mirrored back (small: a clean symmetry; large: the constellation has no mirror image).

    The pairing minimises the total of the symmetrised mean distances (a keypoint may pair with itself: it lies
    on the symmetry axis): exactly, by dynamic programming over subsets, for K <= 16; greedily (closest pair
    first) above that.
    """
    a = np.asarray(xy, dtype=np.float64)
    b = np.asarray(xy_mirrored, dtype=np.float64).copy()
    if a.ndim != 3 or a.shape[-1] != 2 or a.shape != b.shape or a.shape[0] == 0:
        raise ValueError(f"expected two (N, K, 2) arrays of the same shape with N >= 1, got {a.shape} and {b.shape}")
    b[..., 0] = (width - 1) - b[..., 0]
    cost = np.linalg.norm(a[:, :, None] - b[:, None], axis=-1).mean(0)
    sym = 0.5 * (cost + cost.T)
    perm = _best_pairing(sym) if sym.shape[0] <= EXACT_MAX_K else _greedy_pairing(sym)
    return perm, sym[np.arange(len(perm)), perm]


def _best_pairing(cost: np.ndarray) -> np.ndarray:
    """The pairing (involution) of minimum total cost; ``cost[i, i]`` is the cost of i as its own partner."""
    k = cost.shape[0]
    best: dict[int, tuple[float, tuple[tuple[int, int], ...]]] = {(1 << k) - 1: (0.0, ())}

    def solve(used: int) -> tuple[float, tuple[tuple[int, int], ...]]:
        if used in best:
            return best[used]
        i = next(n for n in range(k) if not used >> n & 1)  # the lowest free keypoint pairs now
        options = []
        for j in range(i, k):
            if not used >> j & 1:
                rest_cost, rest = solve(used | 1 << i | 1 << j)
                options.append((cost[i, j] * (1 if i == j else 2) + rest_cost, ((i, j),) + rest))
        best[used] = min(options, key=lambda o: o[0])
        return best[used]

    perm = np.arange(k)
    for i, j in solve(0)[1]:
        perm[i], perm[j] = j, i
    return perm


def _greedy_pairing(cost: np.ndarray) -> np.ndarray:
    k = cost.shape[0]
    perm = -np.ones(k, dtype=np.int64)
    for flat in np.argsort(cost, axis=None, kind="stable"):
        i, j = divmod(int(flat), k)
        if perm[i] < 0 and perm[j] < 0:
            perm[i], perm[j] = j, i
    return perm


@torch.no_grad()
def detect_mirrored(network: torch.nn.Module, images: torch.Tensor, batch_size: int = 256) -> tuple[np.ndarray, ...]:
    """A keypoint network's ((B, 3, H, W) -> (xy px, scores)) keypoints on ``images`` in [0, 1] and on their mirror
    images: two (N, K, 2) float64 arrays, each in its own images' pixels."""
    if images.ndim != 4 or images.shape[0] == 0:
        raise ValueError(f"expected a non-empty (N, 3, H, W) batch, got shape {tuple(images.shape)}")
    device = next(network.parameters()).device
    network.eval()
    a, b = [], []
    for s in range(0, images.shape[0], batch_size):
        x = images[s : s + batch_size].to(device)
        a.append(network(x)[0].double().cpu().numpy())
        b.append(network(x.flip(-1))[0].double().cpu().numpy())
    return np.concatenate(a), np.concatenate(b)


def flip_metadata(network: KeypointNet, images: torch.Tensor) -> dict[str, list]:
    """``flip_permutation``, ``flip_match_px`` and ``upright_keypoints`` of the weights' metadata, from ``network`` on
    ``images`` in [0, 1] (the GAN's upright samples).

    ``upright_keypoints`` (K, 2) is the mean of the network's keypoints on those images, in network-input pixels:
    the constellation upright refinement (:mod:`lkdetect.refine`) turns each detection's box back to.
    """
    a, b = detect_mirrored(network, images)
    perm, match = flip_permutation(a, b, images.shape[-1])
    return {
        "flip_permutation": perm.tolist(),
        "flip_match_px": [round(float(m), 3) for m in match],
        "upright_keypoints": [[round(float(v), 3) for v in p] for p in a.mean(axis=0)],
    }


def add_flip_permutation(weights: str | Path, gan: str | Path | None = None, n: int | None = None) -> dict[str, Any]:
    """Add ``flip_permutation`` (for mirrored test-time augmentation) and ``upright_keypoints`` (for upright
    refinement) to a detector weights file, atomically (:func:`flip_metadata`).

    Estimated on the validation pairs that training would use (its seed; ``n`` pairs, default as many as training
    validated on, else 512) of ``gan``, by default the GAN named in the weights' metadata (``training.gan_file``),
    looked up among the shipped weights.
    """
    path = resolve_weights(weights)
    network, meta = load_weights(path)
    if gan is None:
        name = str((meta.get("training") or {}).get("gan_file", ""))
        if not name.endswith("_gan.safetensors"):
            raise FileNotFoundError(f"{path}: its metadata names no shipped GAN ({name!r}); give --gan")
        gan = shipped_gan_path(name.removesuffix("_gan.safetensors"))
    training = meta.get("training") or {}
    seed = int(((training.get("config") or {}).get("train") or {}).get("seed", 0)) + VAL_SEED_OFFSET
    n = n or int(training.get("val_pairs") or 512)
    images, _ = GanPairs(gan, size=network.input_size[1]).get(seed, 0, n)
    x = torch.from_numpy(images).permute(0, 3, 1, 2).float().div_(255)
    meta = {k: v for k, v in meta.items() if k not in ("sha256", "path")}
    meta.update(flip_metadata(network, x))
    save_weights(path, network, meta)
    return meta


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The arguments of ``lkdetect add-flip``."""
    p.add_argument("weights", help="detector weights file (rewritten in place, atomically)")
    p.add_argument("--gan", default=None, help="GAN weights to sample from (default: the one the metadata names)")
    p.add_argument("-n", type=int, default=None, help="GAN samples (default: as many as training validated on)")


def run(args: argparse.Namespace) -> int:
    """``lkdetect add-flip``: add the flip permutation and upright reference to detector weights and print them."""
    meta = add_flip_permutation(args.weights, args.gan, args.n)
    print(f"{args.weights}: flip_permutation {meta['flip_permutation']}, match px {meta['flip_match_px']}")
    print(f"upright_keypoints {meta['upright_keypoints']}")
    return 0
