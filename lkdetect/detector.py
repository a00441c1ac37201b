"""``Detector``: load keypoint-detector weights once, detect keypoints on many images.

Built once and called many times (face-alignment style). The detector owns its preprocessing: input size,
mean/std, colour order and coordinate convention come from the weights' metadata. Results are always a
:class:`~lkdetect.keypoints.Keypoints` with (x, y) in input-image pixels, pixel centres at integer coordinates.

Example::

    from lkdetect import Detector
    det = Detector.load()                      # the shipped face detector
    kp = det.detect("face.jpg")                # kp.xy (K, 2), kp.scores (K,)
    kps = det.detect_batch(frames, bgr=True)   # OpenCV frames -> kps.xy (B, K, 2)
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .base import BaseDetector, resolve_device
from .models import resolve_weights
from .network import KeypointNet, fold_for_inference
from .refine import Refine
from .tta import TTA
from .weights import load_weights

log = logging.getLogger(__name__)


class Detector(BaseDetector):
    """A keypoint detector with its preprocessing.

    Args:
        network: the detector network (its mean/std normalisation is inside it).
        metadata: the weights' metadata (see :mod:`lkdetect.weights`); ``keypoint_names`` and ``input_size``
            are read from it.
        device: ``"cpu"`` (default), ``"cuda"`` or ``"auto"``.
        fold: run a copy of ``network`` with its BatchNorms folded into the convolutions (same keypoints to
            float precision, fewer operations: single images run faster); ``network`` itself is not folded.

    Use :meth:`load` rather than the constructor.
    """

    def __init__(
        self, network: KeypointNet, metadata: dict[str, Any], device: str | torch.device = "cpu", fold: bool = True
    ):
        self.device = resolve_device(device)
        network = network.to(self.device).eval().requires_grad_(False)
        network = fold_for_inference(network) if fold else network
        # Channels-last: oneDNN's fast layout for these convolutions; on the project's 2-core CPU the shipped
        # network takes 3.8 instead of 5.8 ms for one image and 25 instead of 46 ms for 64 (benchmarks/).
        self.network = network.to(memory_format=torch.channels_last)
        self._init_metadata(metadata, network.num_keypoints, network.input_size)

    @classmethod
    def load(
        cls,
        name_or_path: str | Path | None = None,
        device: str | torch.device = "cpu",
        tta: TTA | bool | None = None,
        refine: Refine | bool | float | None = None,
    ) -> Detector:
        """Load shipped weights by name or a weights file.

        Args:
            name_or_path: ``None`` for the shipped face detector, a name (``"faces"``, ``"birds"``), the path of
                a ``.safetensors`` file written by ``lkdetect train-detector``, or a run directory of ``lkdetect
                learn`` or ``lkdetect train-detector`` (its ``detector.safetensors``).
            device: ``"cpu"`` (default), ``"cuda"`` or ``"auto"``.
            tta: test-time augmentation (see :attr:`tta`); off by default.
            refine: scale-normalising refinement (see :attr:`refine`); off by default.

        Raises:
            FileNotFoundError: unknown name or missing file.
            ValueError: a directory without ``detector.safetensors``.
            CheckpointError: a file that is not lkdetect detector weights, or is inconsistent.
            ValueError: a device this machine does not have.
        """
        device = resolve_device(device)  # before reading the weights
        path = resolve_weights(name_or_path)
        network, meta = load_weights(path)
        log.debug("loaded %s (%s, K=%d)", path, meta["network"]["backbone"], meta["num_keypoints"])
        detector = cls(network, meta, device=device)
        detector.tta = tta
        detector.refine = refine
        return detector

    def __repr__(self) -> str:
        return (
            f"Detector({self._metadata.get('network', {}).get('backbone', '?')}, K={self.num_keypoints}, "
            f"input={self._size[0]}x{self._size[1]}, device={self.device})"
        )

    @torch.inference_mode()
    def _run(self, batch: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
        """(B, 3, S_h, S_w) in [0, 1] -> (xy (B, K, 2), scores (B, K)) float64 in network-input pixels."""
        xy, scores = self.network(batch.to(self.device, memory_format=torch.channels_last))
        return xy.double().cpu().numpy(), scores.double().cpu().numpy()
