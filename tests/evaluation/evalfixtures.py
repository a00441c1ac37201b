"""Helpers for the evaluation tests: small synthetic datasets written in each official layout, and fake detectors
that return the true landmarks (or a known function of them) looked up by image content."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image

from lkdetect.keypoints import Keypoints


def data_root() -> Path:
    """The shared real data: $LKDETECT_DATA, else ../shared/data relative to the repository root."""
    env = os.environ.get("LKDETECT_DATA")
    return Path(env) if env else Path(__file__).resolve().parents[2] / ".." / "shared" / "data"


def save_image(path: Path, image: np.ndarray) -> None:
    """Lossless (PNG content, whatever the extension) so tests can read exact pixels back."""
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(image).save(path, format="PNG")


def noise_image(rng: np.random.Generator, w: int, h: int) -> np.ndarray:
    return rng.integers(0, 256, (h, w, 3), dtype=np.uint8)


def face_landmarks(rng: np.random.Generator, w: float, h: float) -> np.ndarray:
    """(5, 2) plausible face landmarks (eyes, nose, mouth corners) inside a w x h image."""
    cx, cy, s = w * rng.uniform(0.4, 0.6), h * rng.uniform(0.4, 0.6), min(w, h) * rng.uniform(0.15, 0.25)
    base = np.array([[-1, -0.8], [1, -0.8], [0, 0.1], [-0.8, 0.9], [0.8, 0.9]])
    return np.array([cx, cy]) + s * (base + rng.normal(0, 0.08, base.shape))


def fmt(v: float) -> str:
    return f"{v:.3f}"


def write_mtfl(
    root: Path, n_train: int = 24, n_test: int = 12, official: bool = False, seed: int = 0
) -> dict[str, list[tuple[str, np.ndarray]]]:
    """MTFL in the 80x80 layout (``path x1..x5 y1..y5``) or the official one (backslash paths, 4 attribute columns,
    various image sizes). Returns {split: [(relative path, (5, 2) landmarks)]}."""
    rng = np.random.default_rng(seed)
    out: dict[str, list[tuple[str, np.ndarray]]] = {}
    for split, n, fname, folder in (
        ("train", n_train, "training.txt", "lfw_5590"),
        ("test", n_test, "testing.txt", "AFLW"),
    ):
        lines, rows = [], []
        for i in range(n):
            w, h = (int(rng.integers(60, 120)), int(rng.integers(60, 120))) if official else (80, 80)
            rel = f"{folder}/img_{i:04d}.jpg"
            save_image(root / rel, noise_image(rng, w, h))
            lm = face_landmarks(rng, w, h)
            rows.append((rel, lm))
            coords = " ".join(fmt(v) for v in [*lm[:, 0], *lm[:, 1]])
            if official:
                lines.append(f" {rel.replace('/', chr(92))} {coords} 1 2 2 3")
            else:
                lines.append(f"{rel} {coords}")
        (root / fname).write_text("\n".join(lines) + "\n")
        out[split] = rows
    return out


def write_cub(
    root: Path, classes: tuple[int, ...] = (1, 2), per_class: int = 10, seed: int = 0, invisible_fraction: float = 0.2
) -> Path:
    """A CUB_200_2011 folder in the official layout (image ids from 101, classes in order, even images train).

    Parts 1-3 are random points in the box and always visible; parts 4-15 are fixed affine combinations of them
    (weights summing to 1), so they stay linear functions of parts 1-3 in any cropped and resized frame; they are
    invisible (written as 0 0 0, as CUB does) with probability ``invisible_fraction``.
    """
    rng = np.random.default_rng(seed)
    mix = rng.normal(size=(12, 3))
    mix = mix - (mix.sum(axis=1, keepdims=True) - 1) / 3  # each row sums to 1
    cub = root / "CUB_200_2011"
    images, boxes, split, labels, parts = [], [], [], [], []
    image_id = 100
    for c in classes:
        for j in range(per_class):
            image_id += 1
            w, h = int(rng.integers(80, 140)), int(rng.integers(80, 140))
            rel = f"{c:03d}.Bird_{c}/Bird_{c}_{j:04d}_{image_id}.jpg"
            save_image(cub / "images" / rel, noise_image(rng, w, h))
            bw, bh = rng.uniform(0.3, 0.7) * w, rng.uniform(0.3, 0.7) * h
            bx, by = rng.uniform(0, w - bw), rng.uniform(0, h - bh)
            images.append(f"{image_id} {rel}")
            boxes.append(f"{image_id} {bx:.1f} {by:.1f} {bw:.1f} {bh:.1f}")
            split.append(f"{image_id} {1 if j % 2 == 0 else 0}")
            labels.append(f"{image_id} {c}")
            anchors = np.array([bx, by]) + rng.uniform(0.1, 0.9, (3, 2)) * [bw, bh]
            xy = np.concatenate([anchors, mix @ anchors])
            for p in range(1, 16):
                vis = p <= 3 or rng.uniform() > invisible_fraction
                x, y = xy[p - 1] if vis else (0.0, 0.0)
                parts.append(f"{image_id} {p} {x:.6f} {y:.6f} {int(vis)}")
    (cub / "parts").mkdir(parents=True, exist_ok=True)
    for name, lines in (
        ("images.txt", images),
        ("bounding_boxes.txt", boxes),
        ("train_test_split.txt", split),
        ("image_class_labels.txt", labels),
        ("parts/part_locs.txt", parts),
    ):
        (cub / name).write_text("\n".join(lines) + "\n")
    names = [
        "back",
        "beak",
        "belly",
        "breast",
        "crown",
        "forehead",
        "left eye",
        "left leg",
        "left wing",
        "nape",
        "right eye",
        "right leg",
        "right wing",
        "tail",
        "throat",
    ]
    (cub / "parts" / "parts.txt").write_text("".join(f"{i + 1} {n}\n" for i, n in enumerate(names)))
    return cub


def celeba_header(n: int, columns: str) -> str:
    return f"{n}\n{columns}\n"


class OracleDetector:
    """A fake detector: looks each image up by content and returns ``transform`` of its true landmarks.

    ``transform`` maps (L, 2) normalised landmarks (u = (x + 0.5) / W) to (K, 2) normalised keypoints; the
    detector returns them in input pixels, as ``detect_batch`` must.
    """

    def __init__(self, bench, samples, transform: Callable[[np.ndarray], np.ndarray] | None = None):
        self.table: dict[str, np.ndarray] = {}
        for s in samples:
            image, lm = bench.load_image(s)
            wh = np.array([image.shape[1], image.shape[0]], dtype=np.float64)
            self.table[self.key(image)] = (lm + 0.5) / wh
        self.transform = transform or (lambda uv: uv)
        self.num_keypoints = self.transform(next(iter(self.table.values()))).shape[0]
        self.metadata = {"name": "oracle", "sha256": "0" * 64}
        self.calls = 0

    @staticmethod
    def key(image: np.ndarray) -> str:
        return hashlib.sha1(np.ascontiguousarray(image).tobytes()).hexdigest()

    def detect_batch(self, images, boxes=None) -> Keypoints:
        self.calls += 1
        xy = []
        for im in images:
            wh = np.array([im.shape[1], im.shape[0]], dtype=np.float64)
            xy.append(self.transform(self.table[self.key(im)]) * wh - 0.5)
        xy = np.stack(xy)
        return Keypoints(xy, np.ones(xy.shape[:2]))


class ConstantDetector:
    """Returns the same normalised keypoints for every image (carries no information)."""

    num_keypoints = 4
    metadata: dict = {"name": "constant"}

    def detect_batch(self, images, boxes=None) -> Keypoints:
        uv = np.array([[0.2, 0.3], [0.7, 0.3], [0.5, 0.6], [0.4, 0.9]])
        xy = np.stack([uv * [im.shape[1], im.shape[0]] - 0.5 for im in images])
        return Keypoints(xy, np.ones(xy.shape[:2]))
