"""lkdetect: unsupervised keypoint detection through LatentKeypointGAN.

``from lkdetect import Detector``; importing this package for inference loads neither ``gan``, ``evaluation``,
``onnxruntime`` nor ``cv2``.
"""

from __future__ import annotations

__version__ = "0.1.0"
