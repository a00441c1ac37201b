"""The one result type of lkdetect: keypoints with confidences, in input-image pixels."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass(frozen=True)
class Keypoints:
    """Detected keypoints of one image or a batch; the shape never depends on flags.

    Attributes:
        xy: (K, 2) or (B, K, 2) float64, (x, y) in input-image pixels, pixel centres at integer coordinates.
        scores: (K,) or (B, K) float64 confidences in [0, 1].
        names: K keypoint names (from the weights' metadata).
    """

    xy: np.ndarray
    scores: np.ndarray
    names: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.xy.ndim not in (2, 3) or self.xy.shape[-1] != 2:
            raise ValueError(f"xy must be (K, 2) or (B, K, 2), got {self.xy.shape}")
        if self.scores.shape != self.xy.shape[:-1]:
            raise ValueError(f"scores must be {self.xy.shape[:-1]}, got {self.scores.shape}")

    @property
    def batched(self) -> bool:
        return self.xy.ndim == 3

    @property
    def num_keypoints(self) -> int:
        return self.xy.shape[-2]

    def __len__(self) -> int:
        """Batch size of a batched result, K for a single one."""
        return self.xy.shape[0]

    def __getitem__(self, i: int) -> Keypoints:
        """The i-th image of a batched result."""
        if not self.batched:
            raise TypeError("indexing needs a batched Keypoints; a single result has xy of shape (K, 2)")
        return Keypoints(self.xy[i], self.scores[i], self.names)

    def _names(self) -> list[str]:
        return list(self.names) if self.names else [f"kp{i}" for i in range(self.num_keypoints)]

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable: ``{"names", "xy", "scores"}`` with plain lists of floats."""
        return {"names": self._names(), "xy": self.xy.tolist(), "scores": self.scores.tolist()}

    def to_coco(self, image_id: int | list[int], category_id: int = 1) -> list[dict[str, Any]]:
        """COCO keypoint results (``loadRes`` format): one dict per image with ``keypoints`` [x, y, v, ...].

        COCO puts pixel centres at +0.5, so 0.5 is added to x and y. The score is the mean confidence.
        """
        if self.batched:
            ids = image_id if isinstance(image_id, (list, tuple)) else None
            if ids is None or len(ids) != len(self):
                raise ValueError(f"a batched Keypoints needs {len(self)} image ids, got {image_id!r}")
            return [r for i, iid in enumerate(ids) for r in self[i].to_coco(iid, category_id)]
        kps = np.concatenate([self.xy + 0.5, np.full((self.num_keypoints, 1), 2.0)], axis=1)
        return [
            {
                "image_id": int(image_id),
                "category_id": category_id,
                "keypoints": [round(float(v), 3) for v in kps.ravel()],
                "score": float(self.scores.mean()),
            }
        ]

    def draw(self, image: Any, radius: float | None = None) -> Any:
        """Draw on a copy of ``image`` (PIL image or HxWx3 uint8 RGB array); returns the same kind.

        A batched result needs a list of images and returns a list.
        """
        if self.batched:
            return [self[i].draw(im, radius) for i, im in enumerate(image)]
        from .drawing import draw_keypoints

        return draw_keypoints(image, self.xy, self.scores, radius=radius)
