"""Regions of interest for video detection: the whole frame, a fixed box, a tracked face, or any callable.

A region is an ``(x, y, w, h)`` box in frame pixels (ints; it may extend past the frame, the detector pads).
Every region source is called as ``roi(frame, previous) -> box`` with the frame (HxWx3 uint8, in the colour order
of the video source) and the previous frame's :class:`~lkdetect.video.FrameResult` (``None`` at the start), so a
plain function works as a region source for other domains (e.g. a bird detector).

``FaceTracker`` finds the first box with OpenCV's bundled Haar cascade (``haarcascade_frontalface_default.xml``),
then follows the face as a square box around the previous frame's keypoints with a margin, and finds the face
again when the mean keypoint score drops below a threshold or the box leaves the frame. OpenCV 5.x ships neither
``cv2.CascadeClassifier`` nor the cascade files (they moved out of the main package), so where the cascade is
missing the first box comes from the keypoint detector itself: detect on the whole frame, then again on the box
around those keypoints, a few times (coarse to fine). Nothing is downloaded.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from ..images import overlaps, parse_box

log = logging.getLogger(__name__)

Box = tuple[int, int, int, int]
HAAR_FILE = "haarcascade_frontalface_default.xml"


def check_box(box: Any, what: str = "region") -> Box:
    """``box`` as an ``(x, y, w, h)`` tuple of ints with ``w, h > 0``; raises ``ValueError`` otherwise."""
    try:
        values = [float(v) for v in box]
    except (TypeError, ValueError):
        raise ValueError(f"{what} must be (x, y, w, h) numbers, got {box!r}") from None
    if len(values) != 4 or not all(np.isfinite(values)):
        raise ValueError(f"{what} must be 4 finite numbers (x, y, w, h), got {box!r}")
    x, y, w, h = (int(np.floor(v + 0.5)) for v in values)  # halves round up, not to even
    if w <= 0 or h <= 0:
        raise ValueError(f"{what} must have a positive width and height, got {box!r}")
    return x, y, w, h


def visible_fraction(box: Box, width: int, height: int) -> float:
    """The fraction of the box's area inside a ``width`` x ``height`` frame, in [0, 1]."""
    x, y, w, h = box
    iw = max(0, min(x + w, width) - max(x, 0))
    ih = max(0, min(y + h, height) - max(y, 0))
    return iw * ih / float(w * h)


def box_around(xy: np.ndarray, margin: float, min_size: int, max_size: int) -> Box:
    """A square box centred on the bounding box of (K, 2) points, its side ``(1 + 2 margin)`` times the points'
    larger extent, clamped to ``[min_size, max_size]``. Non-finite points are ignored."""
    pts = np.asarray(xy, dtype=np.float64).reshape(-1, 2)
    pts = pts[np.isfinite(pts).all(axis=1)]
    if len(pts) == 0:
        raise ValueError("no finite keypoints to place a box around")
    lo, hi = pts.min(axis=0), pts.max(axis=0)
    centre = (lo + hi) / 2
    side = float(np.clip(max(hi - lo) * (1 + 2 * margin), min_size, max(min_size, max_size)))
    return check_box((centre[0] - side / 2, centre[1] - side / 2, side, side))


class FullFrame:
    """The whole frame (the detector gets no box at all, so it resizes the full frame)."""

    stateful = False

    def __call__(self, frame: np.ndarray, previous: Any = None) -> Box:
        return 0, 0, int(frame.shape[1]), int(frame.shape[0])


class FixedBox:
    """The same ``(x, y, w, h)`` box in every frame."""

    stateful = False

    def __init__(self, box: Sequence[float]) -> None:
        self.box = check_box(box, "fixed box")

    def __call__(self, frame: np.ndarray, previous: Any = None) -> Box:
        return self.box


class CallableRegion:
    """Wraps a user function ``fn(frame, previous) -> (x, y, w, h)``; its output is checked every frame."""

    stateful = True

    def __init__(self, fn: Callable[[np.ndarray, Any], Sequence[float]]) -> None:
        self.fn = fn

    def __call__(self, frame: np.ndarray, previous: Any = None) -> Box:
        return check_box(self.fn(frame, previous), f"box returned by {getattr(self.fn, '__name__', 'roi')}")


@functools.lru_cache(maxsize=1)
def _haar_cascade() -> Any:
    import cv2

    path = getattr(getattr(cv2, "data", None), "haarcascades", "") + HAAR_FILE
    if not hasattr(cv2, "CascadeClassifier"):
        log.info("OpenCV %s has no CascadeClassifier: faces are found with the keypoint detector", cv2.__version__)
        return None
    import os

    if not os.path.exists(path):
        log.info("Haar cascade %s not found: faces are found with the keypoint detector", path)
        return None
    cascade = cv2.CascadeClassifier(path)
    return None if cascade.empty() else cascade


def haar_face_box(frame: np.ndarray, bgr: bool = True, scale: float = 1.3, min_size: int = 32) -> Box | None:
    """The largest frontal face found by OpenCV's bundled Haar cascade, as a square box enlarged by ``scale``
    about its centre (the cascade's box is tight on brows to mouth), or ``None`` (no face, or no cascade)."""
    cascade = _haar_cascade()
    if cascade is None:
        return None
    import cv2

    gray = cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY if bgr else cv2.COLOR_RGB2GRAY)
    faces = cascade.detectMultiScale(gray, scaleFactor=1.1, minNeighbors=5, minSize=(min_size, min_size))
    if len(faces) == 0:
        return None
    x, y, w, h = max((tuple(f) for f in faces), key=lambda f: f[2] * f[3])
    side = max(w, h) * scale
    return check_box((x + w / 2 - side / 2, y + h / 2 - side / 2, side, side))


class FaceTracker:
    """Find a face, then follow it from the previous frame's keypoints; find it again when it is lost.

    Tracking: the box for frame t is the square around frame t-1's keypoints (see :func:`box_around`). Lost: the
    previous mean score is below ``min_score``, or less than ``min_visible`` of the tracked box lies inside the
    frame. After a (re-)detection :attr:`redetected` is True for that frame, so the caller resets its smoothing.
    A low score triggers a re-detection at most every ``retry_interval`` frames (re-detection costs up to
    ``search_steps + 1`` extra detections; a detector that is never confident would otherwise pay it every
    frame); in between, tracking goes on from the low-scored keypoints.

    Args:
        detector: the keypoint detector, used to find the first box where the Haar cascade is missing (OpenCV 5.x)
            or finds nothing: detect on the whole frame, then ``search_steps`` times on the box around the
            keypoints. ``None``: the whole frame is the first box, and tracking starts from its keypoints.
        bgr: colour order of the frames (True for frames from OpenCV).
        margin: box side = ``(1 + 2 margin)`` x the keypoints' larger extent.
        min_size: smallest box side in pixels.
        min_score: re-detect when the previous frame's mean keypoint score is below this.
        min_visible: re-detect when less than this fraction of the tracked box is inside the frame.
        initial: ``fn(frame) -> box | None`` that finds the first box; default: the Haar cascade, then the
            detector search.
        search_steps: refinement detections of the detector search.
        retry_interval: frames between re-detections triggered by a low score.
    """

    stateful = True

    def __init__(
        self,
        detector: Any = None,
        bgr: bool = True,
        margin: float = 0.5,
        min_size: int = 48,
        min_score: float = 0.3,
        min_visible: float = 0.5,
        initial: Callable[[np.ndarray], Sequence[float] | None] | None = None,
        search_steps: int = 2,
        retry_interval: int = 12,
    ) -> None:
        if margin < 0 or min_size < 1 or not 0 <= min_visible <= 1:
            raise ValueError(
                f"need margin >= 0, min_size >= 1, 0 <= min_visible <= 1; got {margin}, {min_size}, {min_visible}"
            )
        self.detector = detector
        self.bgr = bgr
        self.margin = margin
        self.min_size = min_size
        self.min_score = min_score
        self.min_visible = min_visible
        self.initial = initial
        self.search_steps = search_steps
        self.retry_interval = retry_interval
        self._since_detection = 0
        self.redetected = False
        self.detections = 0  # how many times the face was (re-)detected

    def _max_size(self, frame: np.ndarray) -> int:
        return int(2 * max(frame.shape[:2]))

    def find(self, frame: np.ndarray) -> Box:
        """The first box in ``frame``: ``initial``, else the Haar cascade, else the detector search."""
        if self.initial is not None:
            box = self.initial(frame)
            if box is not None:
                return check_box(box, "initial face box")
        else:
            box = haar_face_box(frame, self.bgr, min_size=self.min_size)
            if box is not None:
                return box
        h, w = frame.shape[:2]
        box = (0, 0, w, h)
        if self.detector is None:
            return box
        for _ in range(self.search_steps + 1):
            kps = self.detector.detect_batch([frame], boxes=[box], bgr=self.bgr)[0]
            box = box_around(kps.xy, self.margin, self.min_size, self._max_size(frame))
        return box

    def __call__(self, frame: np.ndarray, previous: Any = None) -> Box:
        h, w = frame.shape[:2]
        box = None
        self._since_detection += 1
        confident = previous is not None and float(np.mean(previous.keypoints.scores)) >= self.min_score
        if previous is not None and (confident or self._since_detection < self.retry_interval):
            try:
                box = box_around(previous.keypoints.xy, self.margin, self.min_size, self._max_size(frame))
            except ValueError:  # no finite keypoints
                box = None
            # a box with no whole pixel inside the frame is lost at any min_visible (detect would refuse it)
            if box is not None and (
                visible_fraction(box, w, h) < self.min_visible or not overlaps(parse_box(box), w, h)
            ):
                box = None
        self.redetected = box is None
        if box is None:
            self.detections += 1
            self._since_detection = 0
            box = self.find(frame)
            log.debug("face (re-)detected: %s", box)
        return box


def make_roi(spec: Any, detector: Any = None, bgr: bool = True) -> Any:
    """A region source from ``"full"``, ``"face"``, an ``(x, y, w, h)`` box or ``"x,y,w,h"``, a region object, or
    a callable ``fn(frame, previous) -> box``. ``detector`` and ``bgr`` configure ``"face"``."""
    if spec is None or (isinstance(spec, str) and spec == "full"):
        return FullFrame()
    if isinstance(spec, str):
        if spec == "face":
            return FaceTracker(detector=detector, bgr=bgr)
        parts = spec.split(",")
        if len(parts) == 4:
            return FixedBox(parts)
        raise ValueError(f"roi must be 'full', 'face', 'x,y,w,h', a box or a callable; got {spec!r}")
    if isinstance(spec, (FullFrame, FixedBox, FaceTracker, CallableRegion)):
        return spec
    if callable(spec):
        return CallableRegion(spec)
    if isinstance(spec, (tuple, list, np.ndarray)):
        return FixedBox(spec)
    raise TypeError(f"roi must be 'full', 'face', 'x,y,w,h', a box or a callable; got {type(spec).__name__}")
