"""lkdetect: unsupervised keypoint detection through LatentKeypointGAN.

``from lkdetect import Detector``; importing this package for inference loads neither ``gan``, ``evaluation``,
``onnxruntime`` nor ``cv2``.
"""

from __future__ import annotations

__version__ = "0.1.0"

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # for type checkers only; at run time the names load lazily on first access
    from .detector import Detector
    from .errors import CheckpointError
    from .keypoints import Keypoints
    from .onnx import OnnxDetector

# Public name -> module; imported on first attribute access (PEP 562) so `import lkdetect` stays light.
_LAZY = {"Detector": ".detector", "Keypoints": ".keypoints", "CheckpointError": ".errors", "OnnxDetector": ".onnx"}
__all__ = ["CheckpointError", "Detector", "Keypoints", "OnnxDetector", "__version__"]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        value = getattr(importlib.import_module(_LAZY[name], __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'lkdetect' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
