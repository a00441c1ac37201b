"""Self-training on unlabelled real images: a teacher detector labels them, a student learns from those labels.

A detector trained only on GAN pairs meets real photos as a new domain (lighting, profiles, backgrounds the GAN
rarely draws). Self-training (Noisy Student, Xie et al. 2020; pseudo-labels in unsupervised landmark learning as in
GANSeg's refinement) closes part of that gap without any annotation: the teacher labels each real training image
once, with test-time augmentation (mirrored x zoomed views averaged, :mod:`lkdetect.tta`), and the student is
fine-tuned on batches that mix fresh GAN pairs (they keep what each keypoint means) with strongly augmented real
images and their teacher keypoints. No landmark annotation is read: the images come from
:func:`gan.data.load_training_images`, the same image-only loader the GAN trains on.

Training path only (imports ``gan``); used by :class:`lkdetect.training.trainer.DetectorTrainer`.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ..errors import CheckpointError
from ..weights import atomic_write, file_sha256, gan_keypoint_indices, read_metadata

log = logging.getLogger(__name__)

PSEUDO_LABELS = "pseudo_labels.npz"


@dataclass(frozen=True)
class PseudoLabels:
    """Real images with teacher keypoints.

    Attributes:
        images: (N, S, S, 3) uint8 RGB at the detector's input size.
        keypoints: (N, K, 2) float32 teacher keypoints (x, y) in input pixels.
        scores: (N, K) float32 teacher confidences.
        teacher_sha256: hash of the teacher weights file.
    """

    images: np.ndarray
    keypoints: np.ndarray
    scores: np.ndarray
    teacher_sha256: str


def real_images(root: str | Path | Sequence[str | Path], size: int, classes: Sequence[int] | None = None) -> np.ndarray:
    """The training images under ``root`` (MTFL or CUB root, or any image folder; or several of those, in order)
    as (N, size, size, 3) uint8; ``classes`` restricts CUB roots to those class ids.

    Raises:
        gan.data.DatasetError: a root is missing or holds no readable image, or is given twice.
    """
    from gan.data import load_training_sets

    return load_training_sets(root, size, classes or None).permute(0, 2, 3, 1).contiguous().numpy()


def teacher_keypoints(
    teacher: str | Path,
    images: np.ndarray,
    tta: bool = True,
    device: str | torch.device = "cpu",
    refine: float = 0.0,
) -> tuple[np.ndarray, np.ndarray]:
    """Keypoints of the ``teacher`` weights on (N, S, S, 3) uint8 images -> ((N, K, 2) xy, (N, K) scores).

    With ``tta`` the teacher averages mirrored x zoomed views; that needs ``flip_permutation`` in its metadata
    (``lkdetect add-flip WEIGHTS`` adds it). ``refine`` > 0 detects again on a box of that many times the
    keypoints' spread (:mod:`lkdetect.refine`); 0 is off. The teacher's input size need not be the images' side
    (a student trained at another input size): it resizes them as it does any image, and its keypoints come back in
    the images' pixels.
    """
    from ..detector import Detector

    det = Detector.load(teacher, device=device, tta=tta, refine=refine or None)
    kp = det.detect_batch(images, batch_size=256)
    return kp.xy.astype(np.float32), kp.scores.astype(np.float32)


def load_or_make(
    run_dir: Path,
    root: str | Path | Sequence[str | Path],
    size: int,
    teacher: str | Path,
    keypoints: Sequence[int],
    tta: bool = True,
    device: str | torch.device = "cpu",
    refine: float = 0.0,
    classes: Sequence[int] | None = None,
) -> PseudoLabels:
    """Pseudo-labels of the run: made once (images from ``root``, keypoints from ``teacher`` with ``tta`` and
    ``refine``) and stored in ``run_dir/pseudo_labels.npz`` so that a resumed run trains on the same labels.

    ``classes`` restricts CUB roots to those class ids. ``keypoints`` are the GAN keypoints the student learns, in
    order; the teacher must output each of them (all of its GAN's, or a subset made by ``lkdetect keep-keypoints``
    that holds them), and only those are kept.

    Raises:
        CheckpointError: the stored labels were made by another teacher, options or images, or the teacher does
            not output one of ``keypoints``.
    """
    num_keypoints = len(keypoints)
    images = real_images(root, size, classes)
    path = run_dir / PSEUDO_LABELS
    options = f"tta={bool(tta)} refine={float(refine):g}"
    if path.exists():
        with np.load(path) as z:
            kps, scores, saved_sha = z["keypoints"], z["scores"], str(z["teacher_sha256"])
            saved_options = str(z["teacher_options"]) if "teacher_options" in z else options  # older runs
        if saved_options != options:
            raise CheckpointError(f"{path} was made with teacher options {saved_options}; this run asks {options}")
        if Path(teacher).is_file():
            sha = file_sha256(teacher)
        else:  # a resumed run on another machine: the stored labels are all it needs
            log.warning("teacher %s not found; reusing the labels stored in %s", teacher, path)
            sha = saved_sha
        if saved_sha != sha or kps.shape != (len(images), num_keypoints, 2):
            raise CheckpointError(
                f"{path} was made by another teacher or for other images (teacher {saved_sha[:12]}, "
                f"{kps.shape[0]} images); now teacher {sha[:12]}, {len(images)} images from {root}"
            )
        return PseudoLabels(images, kps, scores, sha)
    sha = file_sha256(teacher)
    outputs = gan_keypoint_indices(read_metadata(teacher))
    missing = [i for i in keypoints if i not in outputs]
    if missing:
        raise CheckpointError(
            f"teacher {teacher} outputs GAN keypoints {outputs}; the student learns {list(keypoints)} "
            f"({missing} missing)"
        )
    kps, scores = teacher_keypoints(teacher, images, tta=tta, device=device, refine=refine)
    columns = [outputs.index(i) for i in keypoints]
    kps, scores = kps[:, columns], scores[:, columns]

    def write(tmp: str) -> None:
        with open(tmp, "wb") as f:
            np.savez(f, keypoints=kps, scores=scores, teacher_sha256=sha, teacher_options=options)

    atomic_write(path, write)
    log.info("pseudo-labelled %d real images from %s with teacher %s (%s)", len(images), root, teacher, options)
    return PseudoLabels(images, kps, scores, sha)
