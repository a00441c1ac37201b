"""Video detection (lkdetect.video, its roi, ``lkdetect video``) with a fake detector that finds a bright dot."""

from __future__ import annotations

import json
import subprocess
import sys
import threading

import numpy as np
import pytest

from lkdetect.drawing import draw_result
from lkdetect.keypoints import Keypoints
from lkdetect.video import FrameResult, detect_video, detect_video_frames
from lkdetect.video.roi import FaceTracker, FixedBox, box_around, check_box, make_roi, visible_fraction

cv2 = pytest.importorskip("cv2")

W, H = 96, 64
OFFSETS = np.array([[-4.0, -3.0], [4.0, -3.0], [0.0, 4.0]])  # keypoints around the dot; extent 8 px


class DotDetector:
    """Keypoints at fixed offsets from the brightest pixel inside each box (full-image pixels); score 1 when a bright
    pixel is inside the box, else 0 (keypoints then sit around the box centre). Records every call."""

    num_keypoints = len(OFFSETS)

    def __init__(self, noise: float = 0.0, seed: int = 0):
        self.calls: list[tuple[int, list | None, bool]] = []
        self.noise = noise
        self.rng = np.random.default_rng(seed)

    def detect_batch(self, images, boxes=None, bgr=False):
        self.calls.append((len(images), None if boxes is None else list(boxes), bgr))
        xy, scores = [], []
        for i, image in enumerate(images):
            x, y, w, h = boxes[i] if boxes is not None else (0, 0, image.shape[1], image.shape[0])
            x0, y0 = max(x, 0), max(y, 0)
            crop = image[y0 : max(y + h, 0), x0 : max(x + w, 0)].astype(int).sum(axis=2)
            if crop.size and crop.max() > 300:
                r, c = np.unravel_index(np.argmax(crop), crop.shape)
                centre, score = np.array([x0 + c, y0 + r], dtype=float), 1.0
            else:
                centre, score = np.array([x + (w - 1) / 2, y + (h - 1) / 2]), 0.0
            xy.append(centre + OFFSETS + self.rng.normal(0, self.noise, OFFSETS.shape))
            scores.append(np.full(len(OFFSETS), score))
        return Keypoints(np.array(xy), np.array(scores), ("a", "b", "c"))


def dot_position(i: int) -> tuple[int, int]:
    return 10 + 2 * (i % 40), 30 + (i % 3)


def dot_frames(n: int, visible=lambda i: True) -> list[np.ndarray]:
    frames = []
    for i in range(n):
        f = np.full((H, W, 3), 20, np.uint8)
        if visible(i):
            x, y = dot_position(i)
            f[y - 1 : y + 2, x - 1 : x + 2] = 200
            f[y, x] = 255  # the unique brightest pixel
        frames.append(f)
    return frames


def write_video(path, frames, fps=10.0):
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (frames[0].shape[1], frames[0].shape[0]))
    assert writer.isOpened()
    for f in frames:
        writer.write(f)
    writer.release()
    return path


# -- frames in memory -------------------------------------------------------------------------------------------


def test_iterable_indices_timestamps_keypoints_and_batching():
    det = DotDetector()
    results = list(detect_video(det, dot_frames(40), smooth=False, batch_size=16, fps=10.0))
    assert [r.index for r in results] == list(range(40))
    np.testing.assert_allclose([r.timestamp for r in results], np.arange(40) / 10.0)
    assert [c[0] for c in det.calls] == [16, 16, 8]
    assert all(c[1] is None and c[2] is False for c in det.calls)  # full frame, RGB by default
    for i, r in enumerate(results):
        assert isinstance(r, FrameResult) and r.region == (0, 0, W, H)
        assert r.keypoints.xy.shape == (3, 2) and r.keypoints.names == ("a", "b", "c")
        np.testing.assert_allclose(r.keypoints.xy, np.array(dot_position(i)) + OFFSETS)
        np.testing.assert_array_equal(r.keypoints.scores, 1.0)


def test_default_fps_and_bgr_flag_for_iterables():
    det = DotDetector()
    results = list(detect_video(det, iter(dot_frames(3)), bgr=True, smooth=False))
    assert results[2].timestamp == pytest.approx(2 / 30)
    assert det.calls[0][2] is True


def test_fixed_box_is_passed_and_results_map_to_full_frame():
    det = DotDetector()
    box = (30, 10, 40, 40)  # contains the whole dot for frames 11..28 (x = 32..66)
    results = list(detect_video(det, dot_frames(30), roi="30,10,40,40", smooth=False, batch_size=8))
    assert all(c[1] == [box] * c[0] for c in det.calls)
    for i, r in enumerate(results):
        assert r.region == box
        x = dot_position(i)[0]
        assert r.keypoints.scores[0] == (1.0 if 30 <= x + 1 and x - 1 < 70 else 0.0)  # any part of the dot
        if 30 <= x < 70:
            np.testing.assert_allclose(r.keypoints.xy, np.array(dot_position(i)) + OFFSETS)


def test_smoothing_reduces_jitter_and_off_is_raw():
    still = [dot_frames(1)[0]] * 90
    raw = np.stack([r.keypoints.xy for r in detect_video(DotDetector(noise=1.0), still, smooth=False)])
    smooth = np.stack([r.keypoints.xy for r in detect_video(DotDetector(noise=1.0), still, min_cutoff=1.0, beta=0.0)])
    exact = np.array(dot_position(0)) + OFFSETS
    np.testing.assert_allclose(smooth[0], raw[0])  # the first frame passes through
    jitter = lambda a: np.linalg.norm(np.diff(a, axis=0), axis=-1).mean()  # noqa: E731
    assert jitter(smooth) < 0.3 * jitter(raw)
    assert np.abs(smooth[30:] - exact).mean() < 0.6 * np.abs(raw[30:] - exact).mean()


def test_max_frames_and_array_source():
    results = list(detect_video(DotDetector(), np.stack(dot_frames(10)), max_frames=4, smooth=False))
    assert [r.index for r in results] == [0, 1, 2, 3]


def test_callable_roi_gets_previous_result():
    seen = []

    def roi(frame, previous):
        seen.append(None if previous is None else previous.index)
        return (0, 0, W // 2 + (0 if previous is None else previous.index), H)

    results = list(detect_video(DotDetector(), dot_frames(5), roi=roi, smooth=False, batch_size=16))
    assert seen == [None, 0, 1, 2, 3]
    assert [r.region[2] for r in results] == [48, 48, 49, 50, 51]


def test_empty_iterable_ends_cleanly():
    assert list(detect_video(DotDetector(), [])) == []


# -- bad input ------------------------------------------------------------------------------------------------


def test_size_change_raises_after_earlier_frames():
    frames = dot_frames(3) + [np.zeros((H + 2, W, 3), np.uint8)]
    it = detect_video(DotDetector(), frames, batch_size=1)
    assert [next(it).index for _ in range(3)] == [0, 1, 2]
    with pytest.raises(ValueError, match="frame 3 is 96x66"):
        next(it)


@pytest.mark.parametrize(
    "frame,error",
    [(np.zeros((H, W, 3), np.float32), TypeError), (np.zeros((H, W, 2), np.uint8), ValueError), ("x", TypeError)],
)
def test_bad_frames_raise(frame, error):
    with pytest.raises(error, match="frame 0"):
        list(detect_video(DotDetector(), [frame]))


def test_gray_and_rgba_frames_are_accepted():
    gray = dot_frames(1)[0][:, :, 0]
    rgba = np.concatenate([dot_frames(1)[0], np.full((H, W, 1), 255, np.uint8)], axis=2)
    for frame in (gray, rgba):
        r = next(detect_video(DotDetector(), [frame], smooth=False))
        np.testing.assert_allclose(r.keypoints.xy, np.array(dot_position(0)) + OFFSETS)


def test_missing_unreadable_and_empty_files(tmp_path):
    with pytest.raises(FileNotFoundError, match="no such video"):
        detect_video(DotDetector(), tmp_path / "missing.mp4")
    text = tmp_path / "notes.mp4"
    text.write_text("not a video\n" * 100)
    with pytest.raises(ValueError):
        detect_video(DotDetector(), text)
    empty = tmp_path / "empty.mp4"
    cv2.VideoWriter(str(empty), cv2.VideoWriter_fourcc(*"mp4v"), 10.0, (W, H)).release()
    with pytest.raises(ValueError):
        detect_video(DotDetector(), empty)


def test_camera_that_cannot_open_raises():
    with pytest.raises(RuntimeError, match="cannot open camera 97"):
        detect_video(DotDetector(), 97)


@pytest.mark.parametrize(
    "kwargs", [{"batch_size": 0}, {"fps": 0.0}, {"max_frames": -1}, {"roi": "face,box"}, {"roi": (0, 0, 0, 5)}]
)
def test_bad_arguments_raise(kwargs):
    with pytest.raises(ValueError):
        detect_video(DotDetector(), dot_frames(2), **kwargs)


# -- video files ----------------------------------------------------------------------------------------------


def test_video_file_end_to_end(tmp_path):
    path = write_video(tmp_path / "dot.mp4", dot_frames(25), fps=10.0)
    det = DotDetector()
    results = list(detect_video(det, path, smooth=False, batch_size=8))
    assert [r.index for r in results] == list(range(25))
    np.testing.assert_allclose([r.timestamp for r in results], np.arange(25) / 10.0, atol=1e-9)
    assert [c[0] for c in det.calls] == [8, 8, 8, 1] and all(c[2] is True for c in det.calls)  # BGR from OpenCV
    err = [np.abs(r.keypoints.xy - (np.array(dot_position(i)) + OFFSETS)).max() for i, r in enumerate(results)]
    assert max(err) <= 1.0  # mp4v blurs the dot a little
    with pytest.raises(ValueError, match="BGR"):
        detect_video(det, path, bgr=False)


def test_video_capture_source_and_early_stop_leave_no_thread(tmp_path):
    path = write_video(tmp_path / "dot.mp4", dot_frames(40))
    cap = cv2.VideoCapture(str(path))
    before = threading.active_count()
    it = detect_video(DotDetector(), cap, batch_size=4, prefetch=2)
    assert [next(it).index for _ in range(3)] == [0, 1, 2]
    it.close()
    assert threading.active_count() == before
    assert cap.isOpened()  # a caller's capture is not released
    ok, frame = cap.read()
    assert ok and frame.shape == (H, W, 3)
    cap.release()


# -- face tracking --------------------------------------------------------------------------------------------


def test_box_helpers():
    assert check_box([1.4, 2.6, 10, 20.2]) == (1, 3, 10, 20)
    assert visible_fraction((-5, 0, 10, 10), 20, 20) == 0.5
    assert box_around(np.array([[10, 10], [30, 20]]), margin=0.5, min_size=4, max_size=100) == (0, -5, 40, 40)
    assert box_around(np.array([[10, 10], [11, 10]]), margin=0.5, min_size=16, max_size=100) == (3, 2, 16, 16)
    assert isinstance(make_roi("1,2,3,4"), FixedBox)


def test_face_tracker_follows_keypoints_and_redetects_when_lost():
    initial_calls = []

    def initial(frame):
        initial_calls.append(1)
        return (0, 0, 40, 40)

    tracker = FaceTracker(initial=initial, margin=1.0, min_size=8, min_score=0.5, retry_interval=1)
    gone = {12, 13}
    frames = dot_frames(20, visible=lambda i: i not in gone)
    det = DotDetector()
    results = list(detect_video(det, frames, roi=tracker, smooth=True, min_cutoff=3.0, beta=0.0))
    assert results[0].region == (0, 0, 40, 40)
    for i in range(1, 12):  # square box of side (1 + 2 margin) * 8 = 24 around the previous (smoothed) keypoints
        xy = results[i - 1].keypoints.xy
        cx, cy = (xy.min(axis=0) + xy.max(axis=0)) / 2
        assert results[i].region == check_box((cx - 12, cy - 12, 24, 24)), i
        assert results[i].keypoints.scores.min() == 1.0  # the dot is inside the tracked box
    # frame 12: tracked (frame 11 was fine) but the dot is gone -> score 0 -> frame 13 re-detects with `initial`
    assert results[12].region != (0, 0, 40, 40) and results[12].keypoints.scores.max() == 0.0
    assert results[13].region == (0, 0, 40, 40) and results[13].keypoints.scores.max() == 0.0
    # still no dot at 13 -> frame 14 re-detects again and finds the dot (x = 38) in the initial box
    assert results[14].region == (0, 0, 40, 40) and results[14].keypoints.scores.min() == 1.0
    assert results[15].region != (0, 0, 40, 40) and results[19].keypoints.scores.min() == 1.0
    assert len(initial_calls) == tracker.detections == 3
    # smoothing was reset at the re-detection: frame 14's result equals the raw detection, with no lag
    np.testing.assert_allclose(results[14].keypoints.xy, np.array(dot_position(14)) + OFFSETS)
    assert np.abs(results[11].keypoints.xy - (np.array(dot_position(11)) + OFFSETS)).max() > 1  # smoothed: lags
    assert all(c[0] == 1 for c in det.calls)  # tracking runs frame by frame by default


def test_low_score_redetects_at_most_every_retry_interval():
    calls = []
    tracker = FaceTracker(initial=lambda frame: calls.append(1) or (0, 0, 8, 8), min_size=8, retry_interval=5)
    results = list(detect_video(DotDetector(), dot_frames(23, visible=lambda i: False), roi=tracker, smooth=False))
    assert len(calls) == tracker.detections == 5  # frames 0, 5, 10, 15, 20
    assert [r.index for r in results if r.region == (0, 0, 8, 8)] == [0, 5, 10, 15, 20]


def test_face_tracker_redetects_when_box_leaves_frame():
    tracker = FaceTracker(initial=lambda frame: (0, 0, 40, 40), min_size=8, min_visible=0.9)
    prev = FrameResult(0, 0.0, Keypoints(np.array([[W - 1.0, 30.0], [W + 5.0, 30.0]]), np.ones(2)), (0, 0, W, H))
    assert tracker(dot_frames(1)[0], prev) == (0, 0, 40, 40) and tracker.redetected
    prev = FrameResult(0, 0.0, Keypoints(np.array([[30.0, 30.0], [34.0, 30.0]]), np.ones(2)), (0, 0, W, H))
    assert tracker(dot_frames(1)[0], prev) != (0, 0, 40, 40) and not tracker.redetected


def test_face_tracker_redetects_a_box_wholly_outside_even_at_min_visible_zero():
    tracker = FaceTracker(initial=lambda frame: (0, 0, 40, 40), min_size=8, min_visible=0.0)
    far = np.array([[W + 30.0, 30.0], [W + 34.0, 30.0]])  # the box around these has no pixel in the frame
    prev = FrameResult(0, 0.0, Keypoints(far, np.ones(2)), (0, 0, W, H))
    assert tracker(dot_frames(1)[0], prev) == (0, 0, 40, 40) and tracker.redetected
    edge = np.array([[W - 1.0, 30.0], [W + 5.0, 30.0]])  # partly inside: kept at min_visible=0
    prev = FrameResult(0, 0.0, Keypoints(edge, np.ones(2)), (0, 0, W, H))
    assert tracker(dot_frames(1)[0], prev) != (0, 0, 40, 40) and not tracker.redetected


def test_face_roi_without_cascade_finds_the_dot_with_the_detector(monkeypatch):
    import lkdetect.video.roi as roi_module

    monkeypatch.setattr(roi_module, "haar_face_box", lambda *a, **k: None)  # as on OpenCV 5.x, or no face found
    det = DotDetector()
    results = list(detect_video(det, dot_frames(6), roi="face", smooth=False))
    # the search ran on frame 0: the whole frame, then boxes around the keypoints; min_size 48 boxes afterwards
    assert det.calls[0][1] == [(0, 0, W, H)]
    for i, r in enumerate(results):
        x, y, w, h = r.region
        dx, dy = dot_position(i)
        assert w == h == 48 and x <= dx < x + w and y <= dy < y + h
        np.testing.assert_allclose(r.keypoints.xy, np.array(dot_position(i)) + OFFSETS)


def test_track_batch_shares_one_box_per_call():
    det = DotDetector()
    tracker = FaceTracker(initial=lambda frame: (0, 0, W, H), min_size=48)
    results = list(detect_video(det, dot_frames(12), roi=tracker, track_batch=4, smooth=False))
    assert [c[0] for c in det.calls] == [4, 4, 4]
    assert [len(set(c[1])) for c in det.calls] == [1, 1, 1]
    assert results[4].region != results[0].region and results[4].region == results[7].region


# -- drawing, CLI, import hygiene -----------------------------------------------------------------------------


def test_draw_result_marks_keypoints():
    frame = np.zeros((H, W, 3), np.uint8)
    r = FrameResult(0, 0.0, Keypoints(np.array([[10.0, 10.0], [50.0, 40.0]]), np.ones(2)), (5, 5, 60, 50))
    out = draw_result(frame, r)
    assert out is frame
    assert frame[10, 10].max() > 200 and frame[40, 50].max() > 200 and frame[5, 30].min() == 255
    assert frame[25, 30].max() == 0


def test_detect_video_frames_pairs_frames_with_results():
    frames = dot_frames(5)
    pairs = list(detect_video_frames(DotDetector(), frames, batch_size=2))
    assert all(f is frames[i] and r.index == i for i, (f, r) in enumerate(pairs))


def test_cli_end_to_end(tmp_path, monkeypatch):
    from lkdetect import cli, commands

    monkeypatch.setattr(commands, "load_engine", lambda args: DotDetector())
    path = write_video(tmp_path / "dot.mp4", dot_frames(12), fps=12.0)
    out, js = tmp_path / "annotated.mp4", tmp_path / "kp.jsonl"
    rc = cli.main(
        ["video", str(path), "--out", str(out), "--json", str(js), "--roi", "0,0,80,64", "--no-smooth", "--no-progress"]
    )
    assert rc == 0
    lines = [json.loads(line) for line in js.read_text().splitlines()]
    assert [d["index"] for d in lines] == list(range(12)) and lines[6]["timestamp"] == pytest.approx(0.5)
    assert lines[3]["region"] == [0, 0, 80, 64] and lines[3]["names"] == ["a", "b", "c"]
    np.testing.assert_allclose(lines[3]["xy"], np.array(dot_position(3)) + OFFSETS, atol=1.0)
    cap = cv2.VideoCapture(str(out))
    assert int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) == 12
    ok, frame = cap.read()
    cap.release()
    assert ok and frame.shape == (H, W, 3)
    assert cli.main(["video", str(tmp_path / "missing.mp4"), "--no-progress"]) == 2


def test_cli_tta_and_refine_reach_the_detector(tmp_path, monkeypatch):
    from lkdetect import cli, commands
    from lkdetect.refine import Refine
    from lkdetect.tta import TTA

    made = []
    monkeypatch.setattr(commands, "load_engine", lambda args: made.append(DotDetector()) or made[-1])
    path = write_video(tmp_path / "dot.mp4", dot_frames(3), fps=12.0)
    assert cli.main(["video", str(path), "--json", str(tmp_path / "a.jsonl"), "--no-progress"]) == 0
    assert not hasattr(made[-1], "tta") and not hasattr(made[-1], "refine")  # off: the detector is left alone
    assert (
        cli.main(["video", str(path), "--json", str(tmp_path / "b.jsonl"), "--no-progress", "--tta", "--refine"]) == 0
    )
    assert made[-1].tta == TTA() and made[-1].refine == Refine(3.5)
    assert cli.main(["video", str(path), "--json", str(tmp_path / "d.jsonl"), "--no-progress", "--tta-scales"]) == 0
    assert made[-1].tta == TTA(flip=False)
    assert cli.main(["video", str(path), "--json", str(tmp_path / "c.jsonl"), "--no-progress", "--refine", "4"]) == 0
    assert made[-1].refine == Refine(4.0)


def test_cli_camera_that_cannot_open_fails_cleanly(monkeypatch):
    from lkdetect import cli, commands

    monkeypatch.setattr(commands, "load_engine", lambda args: DotDetector())
    assert cli.main(["video", "97", "--no-progress"]) == 2


def test_with_an_untrained_tiny_detector(tmp_path):
    torch = pytest.importorskip("torch")
    from lkdetect.detector import Detector
    from lkdetect.network import KeypointNet
    from lkdetect.training.config import get_config, network_kwargs
    from lkdetect.weights import make_metadata

    torch.manual_seed(0)
    net = KeypointNet(**network_kwargs(get_config("tiny"), 4, 32))
    det = Detector(net, make_metadata(net))
    path = write_video(tmp_path / "dot.mp4", dot_frames(6))
    for roi in ("full", "10,5,40,30", "face"):
        results = list(detect_video(det, path, roi=roi, smooth=False, batch_size=4))
        assert [r.index for r in results] == list(range(6))
        for r in results:  # soft-argmax keypoints lie inside the region the network saw
            x, y, w, h = r.region
            assert r.keypoints.xy.shape == (4, 2) and r.keypoints.scores.shape == (4,)
            assert np.all(r.keypoints.xy >= (x - 0.5, y - 0.5)) and np.all(r.keypoints.xy <= (x + w - 0.5, y + h - 0.5))
        if roi == "10,5,40,30":
            assert all(r.region == (10, 5, 40, 30) for r in results)


def test_import_does_not_load_cv2():
    code = (
        "import sys, lkdetect.video, lkdetect.video.roi, lkdetect.video.smoothing, lkdetect.commands.video; "
        "assert 'cv2' not in sys.modules, 'cv2 imported'"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
