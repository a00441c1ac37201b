"""Keypoints on video: frame sources, regions of interest, temporal smoothing, the detection pipeline, the writer.

- :mod:`~lkdetect.video.pipeline`: :func:`detect_video` / :func:`detect_video_frames` stream one
  :class:`FrameResult` per frame from a file, a camera or any iterable of frames, with any detector engine;
- :mod:`~lkdetect.video.roi`: where each frame is detected (full frame, a fixed box, a tracked face);
- :mod:`~lkdetect.video.smoothing`: the One-Euro filter of keypoint tracks;
- :mod:`~lkdetect.video.writer`: the annotated-video writer of ``lkdetect video``.

Drawing a frame's result is :func:`lkdetect.drawing.draw_result`. OpenCV is imported only when a video is read or
written, so ``import lkdetect.video`` does not load ``cv2``.
"""

from __future__ import annotations

from .pipeline import DEFAULT_FPS, FrameResult, detect_video, detect_video_frames
from .writer import BackgroundWriter

__all__ = ["DEFAULT_FPS", "BackgroundWriter", "FrameResult", "detect_video", "detect_video_frames"]
