"""Keypoint detection on videos: frame sources, batching, regions of interest and One-Euro smoothing.

``detect_video`` streams one :class:`FrameResult` per frame from a file, a camera, a ``cv2.VideoCapture`` or any
iterable of frames, holding at most one batch of frames (plus a small read-ahead queue) in memory, so arbitrarily
long videos run in constant memory. Frames are grouped into ``detect_batch`` calls: with the whole frame or a fixed
box every batch has ``batch_size`` frames; a tracked region (``roi="face"`` or a callable) needs the previous
frame's keypoints for the next box, so it runs ``track_batch`` frames at a time (default 1: exact tracking; larger
values reuse one box for that many frames, faster but the box lags the face by up to ``track_batch`` frames).

A file that ends before the frame count its container announces (a truncated download) yields the frames it has,
with a warning giving both counts.

Keypoints are smoothed over time with a One-Euro filter (:mod:`lkdetect.video.smoothing`), reset whenever the region
source re-detects its object. A video whose frame size changes is an error (``ValueError``): smoothing and
tracking state are in pixels of one frame size.
"""

from __future__ import annotations

import logging
import os
import queue
import threading
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..keypoints import Keypoints
from .roi import Box, FullFrame, make_roi
from .smoothing import OneEuroFilter

log = logging.getLogger(__name__)

DEFAULT_FPS = 30.0  # for iterables of frames and captures that do not report a frame rate
READ_TIMEOUT_MS = 10_000  # OpenCV open/read timeout, so a stalled stream ends instead of hanging


@dataclass(frozen=True)
class FrameResult:
    """Keypoints of one video frame.

    Attributes:
        index: frame number, from 0.
        timestamp: seconds since the start (``index / fps``; wall-clock time for a live camera without ``fps``).
        keypoints: unbatched :class:`Keypoints`, ``xy`` (K, 2) in full-frame pixels (x, y), ``scores`` (K,).
        region: the ``(x, y, w, h)`` box the detector looked at, in frame pixels.
    """

    index: int
    timestamp: float
    keypoints: Keypoints
    region: Box

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable: ``{"index", "timestamp", "region", "names", "xy", "scores"}`` (xy to 1/1000 px)."""
        kp = self.keypoints.to_dict()
        kp["xy"] = np.round(self.keypoints.xy, 3).tolist()
        kp["scores"] = np.round(self.keypoints.scores, 4).tolist()
        return {"index": self.index, "timestamp": round(self.timestamp, 6), "region": list(self.region), **kp}


@dataclass
class _Source:
    frames: Iterator[np.ndarray]
    fps: float
    bgr: bool
    live: bool  # a camera: timestamps from the wall clock unless fps is given
    name: str
    decoded: bool = True  # decoded by OpenCV here (closed when done), not a caller's iterable
    announced: int | None = None  # a file's frame count as its container gives it


def _capture_frames(cap: Any, release: bool) -> Iterator[np.ndarray]:
    try:
        while True:
            ok, frame = cap.read()
            if not ok or frame is None:
                return
            yield frame
    finally:
        if release:
            cap.release()


def _announced_frames(cap: Any) -> int | None:
    """The frame count a file's container announces (None when it gives none)."""
    import cv2

    count = cap.get(cv2.CAP_PROP_FRAME_COUNT)
    return int(count) if np.isfinite(count) and count > 0 else None


def _counted(frames: Iterator[np.ndarray], announced: int, name: str, n: int) -> Iterator[np.ndarray]:
    """``frames`` after the first ``n``, with a warning when all of them end before the count the container
    announces (a truncated file); closes ``frames`` when closed early."""
    try:
        for frame in frames:
            n += 1
            yield frame
        if n < announced:
            log.warning(
                "%s: read %d of the %d frames its container announces (truncated or corrupt file?)",
                name,
                n,
                announced,
            )
    finally:
        close = getattr(frames, "close", None)
        if close is not None:
            close()


def _capture_fps(cap: Any) -> float:
    import cv2

    fps = float(cap.get(cv2.CAP_PROP_FPS) or 0.0)
    return fps if np.isfinite(fps) and 0 < fps < 1000 else DEFAULT_FPS


def open_source(source: Any, bgr: bool | None = None) -> _Source:
    """Open a frame source (see :func:`detect_video`); raises on a missing file or a camera that cannot open."""
    if isinstance(source, (str, os.PathLike)) or (isinstance(source, int) and not isinstance(source, bool)):
        import cv2

        if bgr is False:
            raise ValueError("frames decoded by OpenCV are BGR: leave bgr unset (or True) for files and cameras")
        params = [cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, READ_TIMEOUT_MS, cv2.CAP_PROP_READ_TIMEOUT_MSEC, READ_TIMEOUT_MS]
        if isinstance(source, int):
            cap = cv2.VideoCapture(source, cv2.CAP_ANY, params)
            if not cap.isOpened():
                raise RuntimeError(f"cannot open camera {source}")
            return _Source(_capture_frames(cap, True), _capture_fps(cap), True, True, f"camera {source}")
        path = os.fspath(source)
        if "://" not in path and os.path.isdir(path):
            raise ValueError(f"{path} is a directory, not a video file")
        if "://" not in path and not os.path.isfile(path):
            raise FileNotFoundError(f"no such video file: {path}")
        cap = cv2.VideoCapture(path, cv2.CAP_ANY, params)
        if not cap.isOpened():
            raise ValueError(f"cannot read {path} as a video (unknown format or corrupt file)")
        return _Source(
            _capture_frames(cap, True), _capture_fps(cap), True, False, path, announced=_announced_frames(cap)
        )
    if hasattr(source, "read") and hasattr(source, "isOpened"):  # a cv2.VideoCapture (duck-typed)
        if bgr is False:
            raise ValueError("frames decoded by OpenCV are BGR: leave bgr unset (or True) for a VideoCapture")
        if not source.isOpened():
            raise RuntimeError("the VideoCapture is not open")
        return _Source(_capture_frames(source, False), _capture_fps(source), True, False, "VideoCapture")
    if isinstance(source, np.ndarray) and source.ndim == 4:  # (T, H, W, 3) array
        source = iter(source)
    if isinstance(source, Iterable):
        return _Source(iter(source), DEFAULT_FPS, bool(bgr), False, "frames", decoded=False)
    raise TypeError(
        f"source must be a video path, a camera index, a cv2.VideoCapture or an iterable of frames; "
        f"got {type(source).__name__}"
    )


def _prefetch(frames: Iterator[np.ndarray], depth: int) -> Iterator[np.ndarray]:
    """Decode ahead in a thread (OpenCV releases the GIL), holding at most ``depth`` frames."""
    q: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()
    done = object()

    def put(item: Any) -> bool:
        while not stop.is_set():
            try:
                q.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def work() -> None:
        try:
            for frame in frames:
                if not put(frame):
                    break
        except BaseException as e:  # handed to the consumer
            put(e)
        finally:
            put(done)

    thread = threading.Thread(target=work, name="lkdetect-video-reader", daemon=True)
    thread.start()
    try:
        while True:
            item = q.get()
            if item is done:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        thread.join(timeout=5)
        close = getattr(frames, "close", None)
        if close is not None and not thread.is_alive():
            close()  # releases a capture we opened


def _as_frame(frame: Any, index: int) -> np.ndarray:
    """An HxWx3 uint8 frame from HxWx3, HxWx4 (alpha dropped) or HxW (grayscale) uint8."""
    if not isinstance(frame, np.ndarray) or frame.dtype != np.uint8:
        raise TypeError(
            f"frame {index}: expected a numpy uint8 HxWx3 array, got {getattr(frame, 'dtype', type(frame).__name__)}"
        )
    if frame.ndim == 2:
        return np.repeat(frame[:, :, None], 3, axis=2)
    if frame.ndim == 3 and frame.shape[2] == 4:
        return frame[:, :, :3]
    if frame.ndim != 3 or frame.shape[2] != 3 or frame.shape[0] == 0 or frame.shape[1] == 0:
        raise ValueError(f"frame {index}: expected an HxWx3 uint8 array, got shape {frame.shape}")
    return frame


def detect_video(
    detector: Any,
    source: Any,
    roi: Any = "full",
    smooth: bool = True,
    min_cutoff: float = 1.0,
    beta: float = 0.05,
    d_cutoff: float = 1.0,
    batch_size: int = 16,
    fps: float | None = None,
    bgr: bool | None = None,
    max_frames: int | None = None,
    track_batch: int = 1,
    prefetch: int = 32,
) -> Iterator[FrameResult]:
    """Detect keypoints in every frame of a video; a generator of one :class:`FrameResult` per frame.

    The source is opened (and its first frame read) when this is called, so a missing file, an unreadable or
    empty video and a camera that cannot open raise here; a later frame of another size raises ``ValueError``
    when it is reached.

    Args:
        detector: anything with ``detect_batch(images, boxes=None, bgr=False) -> Keypoints`` (a ``Detector``).
        source: a video file path, a camera index (int), an open ``cv2.VideoCapture`` (not released here), or an
            iterable of HxWx3 uint8 frames (or a (T, H, W, 3) array) in the colour order given by ``bgr``.
        roi: region of interest: ``"full"`` (the whole frame), ``"face"`` (found, then tracked: see
            :class:`lkdetect.video.roi.FaceTracker`), an ``(x, y, w, h)`` box or ``"x,y,w,h"``, or a callable
            ``fn(frame, previous_result) -> (x, y, w, h)``.
        smooth: smooth keypoints over time with a One-Euro filter (per coordinate, in pixels).
        min_cutoff: One-Euro minimum cutoff in Hz; lower is smoother at rest.
        beta: One-Euro speed coefficient in 1/px; higher follows fast motion with less lag.
        d_cutoff: One-Euro cutoff in Hz of the speed estimate.
        batch_size: frames per ``detect_batch`` call for the whole frame or a fixed box.
        fps: frame rate for the timestamps; default: the file's, or 30 for iterables; a live camera without
            ``fps`` uses the wall clock.
        bgr: colour order of an iterable's frames (default False: RGB); files and cameras are always BGR.
        max_frames: stop after this many frames (e.g. for a camera).
        track_batch: frames per ``detect_batch`` call for a tracked region (they share one box).
        prefetch: frames decoded ahead in a thread for files and cameras (0: no thread).

    Yields:
        :class:`FrameResult` in frame order.
    """
    pairs = detect_video_frames(
        detector,
        source,
        roi,
        smooth,
        min_cutoff,
        beta,
        d_cutoff,
        batch_size,
        fps,
        bgr,
        max_frames,
        track_batch,
        prefetch,
    )
    return (result for _, result in pairs)


def detect_video_frames(
    detector: Any,
    source: Any,
    roi: Any = "full",
    smooth: bool = True,
    min_cutoff: float = 1.0,
    beta: float = 0.05,
    d_cutoff: float = 1.0,
    batch_size: int = 16,
    fps: float | None = None,
    bgr: bool | None = None,
    max_frames: int | None = None,
    track_batch: int = 1,
    prefetch: int = 32,
) -> Iterator[tuple[np.ndarray, FrameResult]]:
    """As :func:`detect_video`, yielding ``(frame, result)`` pairs: the HxWx3 uint8 frame in the source's colour
    order (BGR for files and cameras), e.g. to draw on it and write it out."""
    if batch_size < 1 or track_batch < 1:
        raise ValueError(f"batch_size and track_batch must be >= 1, got {batch_size} and {track_batch}")
    if fps is not None and not (np.isfinite(fps) and fps > 0):
        raise ValueError(f"fps must be a positive number, got {fps}")
    if max_frames is not None and max_frames < 0:
        raise ValueError(f"max_frames must be >= 0, got {max_frames}")
    src = open_source(source, bgr)
    region = make_roi(roi, detector=detector, bgr=src.bgr)
    first = next(src.frames, None)
    if first is None and src.decoded:
        raise ValueError(f"no frames could be read from {src.name}: empty or unreadable video")
    frames: Iterator[np.ndarray] = src.frames
    if prefetch > 0 and src.decoded:
        frames = _prefetch(frames, prefetch)
    if src.announced is not None and first is not None:  # counted as consumed, so that max_frames never warns
        frames = _counted(frames, src.announced, src.name, 1)
    rate = fps if fps is not None else src.fps
    filt = OneEuroFilter(min_cutoff, beta, d_cutoff) if smooth else None
    chunk = track_batch if region.stateful else batch_size
    return _run(
        detector, first, frames, region, filt, chunk, rate, src.bgr, src.live and fps is None, max_frames, src.decoded
    )


def _run(
    detector: Any,
    first: np.ndarray | None,
    frames: Iterator[np.ndarray],
    region: Any,
    filt: OneEuroFilter | None,
    chunk: int,
    fps: float,
    bgr: bool,
    wall_clock: bool,
    max_frames: int | None,
    owned: bool,
) -> Iterator[tuple[np.ndarray, FrameResult]]:
    shape: tuple[int, ...] | None = None
    start = time.monotonic()
    previous: FrameResult | None = None
    batch: list[tuple[int, float, np.ndarray]] = []
    index = 0
    stream = frames if first is None else _chain(first, frames)
    try:
        for raw in stream:
            if max_frames is not None and index >= max_frames:
                break
            frame = _as_frame(raw, index)
            if shape is None:
                shape = frame.shape
            elif frame.shape != shape:
                raise ValueError(
                    f"frame {index} is {frame.shape[1]}x{frame.shape[0]}, earlier frames were "
                    f"{shape[1]}x{shape[0]}: a video must keep one frame size"
                )
            t = time.monotonic() - start if wall_clock else index / fps
            batch.append((index, t, frame))
            index += 1
            if len(batch) == chunk:
                for (_, _, image), result in zip(
                    batch, _detect_chunk(detector, batch, region, previous, filt, bgr), strict=True
                ):
                    previous = result
                    yield image, result
                batch = []
        if batch:
            results = _detect_chunk(detector, batch, region, previous, filt, bgr)
            yield from ((image, result) for (_, _, image), result in zip(batch, results, strict=True))
    finally:
        close = getattr(frames, "close", None)
        if owned and close is not None:  # releases the capture we opened; a caller's iterable stays theirs
            close()


def _chain(first: np.ndarray, rest: Iterator[np.ndarray]) -> Iterator[np.ndarray]:
    yield first
    yield from rest


def _detect_chunk(
    detector: Any,
    batch: list[tuple[int, float, np.ndarray]],
    region: Any,
    previous: FrameResult | None,
    filt: OneEuroFilter | None,
    bgr: bool,
) -> list[FrameResult]:
    images = [frame for _, _, frame in batch]
    reset = False
    if isinstance(region, FullFrame):
        boxes = None
        used = [region(images[0])] * len(images)
    elif region.stateful:  # one box for the chunk, from the latest result before it
        box = region(images[0], previous)
        reset = bool(getattr(region, "redetected", False))
        boxes = used = [box] * len(images)
    else:
        boxes = used = [region(image, previous) for image in images]
    kps = detector.detect_batch(images, boxes=boxes, bgr=bgr)
    if len(kps) != len(images) or not kps.batched:
        raise ValueError(f"detect_batch returned {kps.xy.shape} keypoints for {len(images)} images")
    results = []
    for i, (index, t, _) in enumerate(batch):
        xy, scores = kps.xy[i], kps.scores[i]
        if filt is not None:
            if reset and i == 0:
                filt.reset()
            xy = filt(xy, t)
        results.append(FrameResult(index, t, Keypoints(xy, scores, kps.names), used[i]))
    return results
