"""Writing annotated video: an mp4v ``cv2.VideoWriter`` on its own thread, so encoding overlaps detection."""

from __future__ import annotations

import queue
import threading
from typing import Any


class BackgroundWriter:
    """A ``cv2.VideoWriter`` (mp4v) fed through a bounded queue by a thread, so encoding overlaps detection
    (OpenCV releases the GIL while encoding). Opened on the first frame; ``close()`` flushes and re-raises
    a failure of the thread."""

    def __init__(self, path: str, fps: float, depth: int = 32) -> None:
        self.path, self.fps = path, fps
        self._queue: queue.Queue = queue.Queue(maxsize=depth)
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None

    def _work(self, writer: Any) -> None:
        try:
            while (frame := self._queue.get()) is not None:
                writer.write(frame)
        except BaseException as e:  # re-raised by close()
            self._error = e
            while self._queue.get() is not None:  # drain so the producer never blocks
                pass
        finally:
            writer.release()

    def write(self, frame: Any) -> None:
        if self._thread is None:
            import cv2

            size = (frame.shape[1], frame.shape[0])
            writer = cv2.VideoWriter(self.path, cv2.VideoWriter_fourcc(*"mp4v"), self.fps, size)
            if not writer.isOpened():
                raise ValueError(f"cannot write a video to {self.path} (mp4v codec, {size[0]}x{size[1]})")
            self._thread = threading.Thread(target=self._work, args=(writer,), name="lkdetect-video-writer")
            self._thread.start()
        if self._error is not None:
            raise self._error
        self._queue.put(frame)

    def close(self) -> None:
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join()
            self._thread = None
        if self._error is not None:
            raise self._error
