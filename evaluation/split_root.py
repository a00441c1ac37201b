"""An MTFL root whose training split is cut in two: train on one part, score on faces never trained on.

    python -m evaluation.split_root --root ../shared/data/mtfl80 --out runs/mtfl8k [--train 8000] [--seed 0]

Self-trained and distilled detectors learn from the training images (never their landmarks), so the training-set
CV scores images they saw. This writes a root with the same image folders (symlinked) whose ``training.txt`` is a
fixed random ``--train`` of the training faces and whose ``testing.txt`` is the rest: run the self-training on
``OUT`` (it reads only ``training.txt``), then ``lkdetect eval mtfl --root OUT`` fits the regression on those and
scores the faces left out. The split is ``numpy.random.default_rng(seed).permutation`` of the training lines.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np


def split_root(root: Path, out: Path, n_train: int = 8000, seed: int = 0) -> tuple[int, int]:
    """Write the split root ``out`` from the MTFL root ``root``; returns (training, testing) sizes.

    Raises:
        FileNotFoundError: ``root`` has no ``training.txt``.
        ValueError: ``n_train`` not between 1 and the number of training faces - 1; ``out`` exists and is not
            empty (nothing is overwritten).
    """
    lines = [ln for ln in (root / "training.txt").read_text().splitlines() if ln.strip()]
    if not 0 < n_train < len(lines):
        raise ValueError(f"--train must be between 1 and {len(lines) - 1}, got {n_train}")
    if out.exists() and any(out.iterdir()):
        raise ValueError(f"{out} exists and is not empty")
    order = np.random.default_rng(seed).permutation(len(lines))
    out.mkdir(parents=True, exist_ok=True)
    for entry in root.iterdir():
        if entry.is_dir():
            (out / entry.name).symlink_to(entry.resolve(), target_is_directory=True)
    (out / "training.txt").write_text("".join(lines[i] + "\n" for i in order[:n_train]))
    (out / "testing.txt").write_text("".join(lines[i] + "\n" for i in order[n_train:]))
    return n_train, len(lines) - n_train


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--root", type=Path, required=True, help="an MTFL root (training.txt and its image folders)")
    p.add_argument("--out", type=Path, required=True, help="the new root (must not exist or be empty)")
    p.add_argument("--train", type=int, default=8000, help="training faces kept for training (default 8000)")
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args(argv)
    n_train, n_test = split_root(a.root, a.out, a.train, a.seed)
    print(f"{a.out}: {n_train} training, {n_test} testing faces (seed {a.seed})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
