"""What every detector engine shares: :class:`BaseDetector` (metadata, input handling, batching, test-time
augmentation, refinement, mapping back to image pixels) and :func:`resolve_device`.

The engines (:class:`lkdetect.detector.Detector` on PyTorch, :class:`lkdetect.onnx.OnnxDetector` on onnxruntime)
depend on this module and not on each other.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .images import ImageLike, crop, crop_turned, from_turned, load_region, parse_box, resize, to_image_coordinates
from .keypoints import Keypoints
from .refine import Refine, as_refine, check_reference, refine_boxes, roll_angles, rotation_matrices
from .tta import TTA, as_tta, check_permutation, make_views, merge_views

Box = Sequence[float]


def resolve_device(device: str | torch.device) -> torch.device:
    """``"cpu"`` (default everywhere), ``"cuda"``, ``"cuda:1"``, ... or ``"auto"`` (CUDA when available).

    Raises:
        ValueError: not a device name, or a device this machine does not have (the message lists those it has).
    """
    if isinstance(device, str) and device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as e:
        raise ValueError(f"expected a device such as 'cpu', 'cuda' or 'auto', got {device!r}") from e
    n_cuda = torch.cuda.device_count() if torch.cuda.is_available() else 0
    mps = getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available()
    if (dev.type == "cuda" and (dev.index or 0) >= n_cuda) or (dev.type == "mps" and not mps):
        available = ["cpu"] + [f"cuda:{i}" for i in range(n_cuda)] + (["mps"] if mps else [])
        raise ValueError(f"device {dev} is not available on this machine; available: {', '.join(available)}")
    return dev


class BaseDetector:
    """What every detector engine shares: metadata properties, input handling, batching, mapping back.

    A subclass (:class:`Detector` for PyTorch, :class:`~lkdetect.onnx.OnnxDetector` for onnxruntime) sets
    ``_metadata``, ``_size``, ``_names`` and ``_k`` through :meth:`_init_metadata` and implements :meth:`_run`;
    everything else (``detect``, ``detect_batch``) is written once here; :func:`lkdetect.video.detect_video` runs
    any engine on a video.
    """

    _metadata: dict[str, Any]
    _size: tuple[int, int]
    _names: tuple[str, ...]
    _k: int

    def _init_metadata(self, metadata: dict[str, Any], num_keypoints: int, default_size: Sequence[int]) -> None:
        self._metadata = dict(metadata)
        self._k = int(num_keypoints)
        h, w = metadata.get("input_size", default_size)
        self._size = (int(h), int(w))
        names = metadata.get("keypoint_names") or [f"kp{i}" for i in range(self._k)]
        self._names = tuple(str(n) for n in names)
        self._tta: TTA | None = None
        self._flip_perm: np.ndarray | None = None
        self._refine: Refine | None = None
        self._upright: np.ndarray | None = None

    # ------------------------------------------------------------------------------------------ properties
    @property
    def num_keypoints(self) -> int:
        """K."""
        return self._k

    @property
    def input_size(self) -> tuple[int, int]:
        """(height, width) every image (or box) is resized to."""
        return self._size

    @property
    def keypoint_names(self) -> tuple[str, ...]:
        return self._names

    @property
    def metadata(self) -> dict[str, Any]:
        """A copy of the weights' metadata (plus ``sha256`` and ``path`` of the file when loaded from one)."""
        return dict(self._metadata)

    @property
    def tta(self) -> TTA | None:
        """Test-time augmentation (:mod:`lkdetect.tta`): ``None`` (off, the default) or the views averaged.

        Set it to ``True`` (mirror x scales 0.9, 1.0, 1.1), a :class:`~lkdetect.tta.TTA`, or ``None``/``False``.
        Mirrored views need ``flip_permutation`` in the weights' metadata (``lkdetect add-flip WEIGHTS``).
        """
        return self._tta

    @tta.setter
    def tta(self, value: TTA | bool | None) -> None:
        tta = as_tta(value)
        perm = None
        if tta is not None and tta.flip:
            if "flip_permutation" not in self._metadata:
                raise ValueError(
                    "mirrored test-time augmentation needs the keypoints' flip permutation, which these weights' "
                    "metadata lacks: add it with `lkdetect add-flip WEIGHTS`, or use TTA(flip=False) (--tta-scales)"
                )
            perm = check_permutation(self._metadata["flip_permutation"], self._k)
        self._tta, self._flip_perm = tta, perm

    @property
    def refine(self) -> Refine | None:
        """Scale-normalising refinement (:mod:`lkdetect.refine`): ``None`` (off, the default) or its settings.

        Set it to ``True`` (one more pass on a box 3.5 x the keypoints' spread, turned upright when the weights'
        metadata has ``upright_keypoints``), a number (that box side), a :class:`~lkdetect.refine.Refine`, or
        ``None``/``False``; reading it gives the setting resolved for these weights (``upright`` True or False).
        Combines with :attr:`tta` (every pass uses it).
        A ``box`` given to :meth:`detect` places the first pass only; the refined box may reach outside it.
        :meth:`detect_batch` keeps each batch's decoded images in memory until the last pass (lower
        ``batch_size`` for very large frames).
        """
        return self._refine

    @refine.setter
    def refine(self, value: Refine | bool | float | None) -> None:
        refine = as_refine(value)
        upright = None
        if refine is not None:
            has = "upright_keypoints" in self._metadata
            if not has and refine.upright:
                raise ValueError(
                    "upright refinement needs the keypoints' upright reference, which these weights' metadata "
                    "lacks: add it with `lkdetect add-flip WEIGHTS`, or use Refine(upright=False)"
                )
            if refine.upright is None:
                refine = dataclasses.replace(refine, upright=has)
            if refine.upright:
                upright = check_reference(self._metadata["upright_keypoints"], self._k)
        self._refine, self._upright = refine, upright

    # ----------------------------------------------------------------------------------------- detection
    def _run(self, batch: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
        """(B, 3, S_h, S_w) in [0, 1] -> (xy (B, K, 2), scores (B, K)) float64 in network-input pixels."""
        raise NotImplementedError

    def _infer(self, batch: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
        """:meth:`_run`, averaged over the views of :attr:`tta` when it is set."""
        if self._tta is None:
            return self._run(batch)
        xy, scores = self._run(make_views(batch, self._tta))
        return merge_views(xy, scores, self._tta, self._size, self._flip_perm)

    def _network_input(self, image: torch.Tensor, region: tuple[int, int, int, int]) -> torch.Tensor:
        return resize(crop(image, region), self._size)

    def _detect_regions(self, inputs: list[torch.Tensor], regions: list[tuple[int, int, int, int]]) -> tuple:
        """:meth:`_infer` on network inputs, mapped back to image pixels of their regions: xy (B, K, 2), scores."""
        xy, scores = self._infer(torch.stack(inputs))
        return to_image_coordinates(xy, np.array(regions), self._size), scores

    def _refine_passes(self, images: list[torch.Tensor], xy: np.ndarray, scores: np.ndarray) -> tuple:
        """:attr:`refine`'s extra passes on the full (3, H, W) images, from the keypoints ``xy`` found so far."""
        if self._refine is None:
            return xy, scores
        for _ in range(self._refine.passes):
            if self._upright is not None:
                xy, scores = self._detect_upright(images, xy)
                continue
            regions = [parse_box(b, what="refinement box") for b in refine_boxes(xy, self._refine.side)]
            inputs = [self._network_input(t, r) for t, r in zip(images, regions)]
            xy, scores = self._detect_regions(inputs, regions)
        return xy, scores

    def _detect_upright(self, images: list[torch.Tensor], xy: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """One upright refinement pass: squares as :func:`refine_boxes` places them, turned by each constellation's
        roll from the upright reference; keypoints found there are turned back into image pixels."""
        assert self._refine is not None and self._upright is not None
        sides = refine_boxes(xy, self._refine.side)[:, 2]  # checks the keypoints
        centres = xy.mean(axis=1)
        rotations = rotation_matrices(roll_angles(xy, self._upright))
        inputs = [crop_turned(t, c, s, r, self._size) for t, c, s, r in zip(images, centres, sides, rotations)]
        out, scores = self._infer(torch.stack(inputs))
        return from_turned(out, centres, sides, rotations, self._size), scores

    def detect(self, image: ImageLike, box: Box | None = None, bgr: bool = False) -> Keypoints:
        """Detect the K keypoints of one image.

        Args:
            image: a path, PIL image, numpy array (HxWx3 uint8 RGB, HxW, HxWx4, or float in [0, 1]) or a torch
                tensor (3xHxW / HxW, uint8 or float in [0, 1]); any size, resized to :attr:`input_size`.
            box: optional (x, y, w, h) region in image pixels (rounded to whole pixels; parts outside the image
                are padded black, but it must overlap the image). Detection runs on that region and results map
                back to the whole image.
            bgr: the array/tensor is BGR (OpenCV); files and PIL images are always decoded as RGB.

        Returns:
            Keypoints with xy (K, 2) float64 (x, y) in input-image pixels (pixel centres at integers) and
            scores (K,) in [0, 1].
        """
        t, region = load_region(image, box, bgr, "image")
        xy, scores = self._detect_regions([self._network_input(t, region)], [region])
        xy, scores = self._refine_passes([t], xy, scores)
        return Keypoints(xy[0], scores[0], self._names)

    def detect_batch(
        self,
        images: Iterable[ImageLike] | np.ndarray | torch.Tensor,
        boxes: Sequence[Box | None] | None = None,
        bgr: bool = False,
        batch_size: int = 64,
    ) -> Keypoints:
        """Detect keypoints on many images (of any sizes), ``batch_size`` at a time.

        Args:
            images: a sequence of images (any kinds :meth:`detect` accepts), a (B, H, W, C) numpy array or a
                (B, C, H, W) tensor.
            boxes: optional, one (x, y, w, h) box or ``None`` per image.
            bgr: the arrays/tensors are BGR (OpenCV).
            batch_size: images per network call.

        Returns:
            Keypoints with xy (B, K, 2) and scores (B, K); B may be 0.

        Raises:
            TypeError, ValueError: as :meth:`detect`, naming the offending index (``images[3]: ...``).
        """
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        items = _as_list(images)
        if boxes is not None and len(boxes) != len(items):
            raise ValueError(f"expected one box (or None) per image: {len(items)} images, got {len(boxes)} boxes")
        k = self.num_keypoints
        xys, scores = [np.zeros((0, k, 2))], [np.zeros((0, k))]
        for start in range(0, len(items), batch_size):
            inputs, regions, full = [], [], []
            for i in range(start, min(start + batch_size, len(items))):
                box = boxes[i] if boxes is not None else None
                t, region = load_region(items[i], box, bgr, f"images[{i}]")
                inputs.append(self._network_input(t, region))
                regions.append(region)
                if self._refine is not None:  # refinement crops the full images again
                    full.append(t)
            xy, sc = self._detect_regions(inputs, regions)
            xy, sc = self._refine_passes(full, xy, sc)
            xys.append(xy)
            scores.append(sc)
        return Keypoints(np.concatenate(xys), np.concatenate(scores), self._names)

    def __call__(self, image: ImageLike, box: Box | None = None, bgr: bool = False) -> Keypoints:
        """Same as :meth:`detect`."""
        return self.detect(image, box=box, bgr=bgr)


def _as_list(images: Any) -> list[Any]:
    if images is None:
        raise TypeError(
            "images: expected a sequence of images, a (B, H, W, C) array or a (B, C, H, W) tensor, got None"
        )
    if isinstance(images, (np.ndarray, torch.Tensor)):
        if images.ndim != 4:
            raise ValueError(
                f"images: expected a 4-d batch ((B, H, W, C) array or (B, C, H, W) tensor), got shape "
                f"{tuple(images.shape)}; use detect() for one image"
            )
        return list(images)
    if isinstance(images, (str, Path, bytes)) or not isinstance(images, Iterable):
        raise TypeError(f"images: expected a sequence of images, got {type(images).__name__}; use detect() for one")
    return list(images)
