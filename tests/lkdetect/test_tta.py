"""Test-time augmentation: the flip pairing, the views' inverse maps, the Detector/ONNX switch and bad input."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

from lkdetect import Detector
from lkdetect.base import BaseDetector
from lkdetect.errors import CheckpointError
from lkdetect.network import KeypointNet
from lkdetect.onnx import export_onnx
from lkdetect.training.flip import _best_pairing, _greedy_pairing, flip_permutation
from lkdetect.tta import TTA, check_permutation, make_views
from lkdetect.weights import make_metadata, save_weights


def involutions(k: int):
    """Every pairing of range(k) (keypoints paired or alone), as permutation arrays."""

    def rec(rest: tuple[int, ...]):
        if not rest:
            yield {}
            return
        i, others = rest[0], rest[1:]
        for sub in rec(others):
            yield {i: i, **sub}
        for n, j in enumerate(others):
            for sub in rec(others[:n] + others[n + 1 :]):
                yield {i: j, j: i, **sub}

    for d in rec(tuple(range(k))):
        yield np.array([d[i] for i in range(k)])


def total(cost: np.ndarray, perm: np.ndarray) -> float:
    return float(cost[np.arange(len(perm)), perm].sum())


def test_best_pairing_is_the_exact_minimum():
    rng = np.random.default_rng(0)
    for _ in range(20):
        c = rng.random((6, 6))
        c = c + c.T
        brute = min(involutions(6), key=lambda p: total(c, p))
        assert np.isclose(total(c, _best_pairing(c)), total(c, brute))


def test_best_pairing_beats_greedy_where_a_cheap_self_pair_misleads():
    # keypoint 1 alone is cheapest (0.5), but pairing 0 with 1 (1.0 each) beats 0 alone (5.0) + 1 alone (0.5)
    c = np.array([[5.0, 1.0], [1.0, 0.5]])
    assert _greedy_pairing(c).tolist() == [0, 1]
    assert _best_pairing(c).tolist() == [1, 0]


def test_flip_permutation_recovers_mirror_pairs_from_detections():
    rng = np.random.default_rng(1)
    w = 64
    # a symmetric face-like constellation: 0/1 eyes, 2 nose (on the axis), 3/4 mouth corners
    base = np.array([[20.0, 24], [43, 24], [31.5, 36], [24, 46], [39, 46]])
    truth = np.array([1, 0, 2, 4, 3])
    xy = base + rng.normal(0, 3, (200, 1, 2)) + rng.normal(0, 0.7, (200, 5, 2))
    mirrored = xy.copy()
    mirrored[..., 0] = (w - 1) - mirrored[..., 0]
    det_on_mirror = mirrored[:, truth] + rng.normal(0, 0.5, mirrored.shape)  # keypoint i lands on its partner
    perm, match = flip_permutation(xy, det_on_mirror, w)
    assert perm.tolist() == truth.tolist()
    assert match.max() < 1.5
    with pytest.raises(ValueError, match="same shape"):
        flip_permutation(xy, det_on_mirror[:, :4], w)


def test_check_permutation_rejects_non_pairings():
    assert check_permutation([1, 0, 2], 3).tolist() == [1, 0, 2]
    with pytest.raises(ValueError, match="permutation of 0..2"):
        check_permutation([0, 0, 1], 3)
    with pytest.raises(ValueError, match="own inverse"):
        check_permutation([1, 2, 0], 3)
    with pytest.raises(ValueError, match="positive"):
        TTA(scales=(1.0, 0.0))


class CentroidDetector(BaseDetector):
    """K = 2 keypoints: the brightness centroids of the left and of the right half of the input.

    Mirroring swaps the halves, so the flip permutation is [1, 0]; the centroids move with flips and zooms.
    """

    def __init__(self, perm: list[int] | None, size: int = 48):
        meta = {"flip_permutation": perm} if perm is not None else {}
        self._init_metadata(meta, 2, (size, size))

    def _run(self, batch: torch.Tensor):
        g = batch.double().mean(1)  # (B, H, W)
        h, w = g.shape[-2:]
        ys, xs = torch.meshgrid(torch.arange(h, dtype=torch.double), torch.arange(w, dtype=torch.double), indexing="ij")
        out = []
        for half in (xs < (w - 1) / 2, xs > (w - 1) / 2):
            m = g * half
            s = m.sum((1, 2))
            out.append(torch.stack([(m * xs).sum((1, 2)) / s, (m * ys).sum((1, 2)) / s], -1))
        xy = torch.stack(out, 1).numpy()
        return xy, np.ones(xy.shape[:2])


def two_blobs(size: int = 48) -> np.ndarray:
    gy, gx = np.mgrid[:size, :size]
    img = sum(np.exp(-((gx - x) ** 2 + (gy - y) ** 2) / (2 * 2.0**2)) for x, y in ((15.0, 20.0), (33.0, 28.0)))
    return np.repeat((np.clip(img, 0, 1) * 255).round().astype(np.uint8)[..., None], 3, axis=2)


def test_views_map_back_onto_the_plain_detection():
    det = CentroidDetector([1, 0])
    img = two_blobs()
    plain = det.detect(img).xy
    assert np.allclose(plain, [[15, 20], [33, 28]], atol=0.05)
    det.tta = TTA(scales=(0.9, 1.0, 1.15), flip=True)
    assert np.allclose(det.detect(img).xy, plain, atol=0.1)
    batch = det.detect_batch([img, img[:, ::-1].copy()]).xy
    assert np.allclose(batch[0], plain, atol=0.1)
    # a wrong pairing (identity) puts the left-half keypoint half-way to the right blob
    wrong = CentroidDetector([0, 1])
    wrong.tta = True
    assert np.abs(wrong.detect(img).xy - plain).max() > 5


def test_views_are_flipped_and_zoomed_about_the_centre():
    x = torch.zeros(1, 3, 9, 9)
    x[..., 4, 6] = 1.0  # a point 2 px right of the centre
    v = make_views(x, TTA(scales=(1.0, 2.0), flip=True))
    assert v.shape == (4, 3, 9, 9)
    assert v[0, 0].argmax().item() == 4 * 9 + 6
    assert v[1, 0, 4].argmax().item() == 8  # zoom 2: 2 px right of the centre -> 4 px
    assert v[2, 0].argmax().item() == 4 * 9 + 2  # mirrored


def test_flip_needs_the_permutation_and_is_off_by_default(tmp_path):
    net = KeypointNet("mobilenetv3_small_100", 2, (32, 32), stride=8, upsample=2, head_channels=8, head_depth=1)
    path = tmp_path / "w.safetensors"
    save_weights(path, net.eval(), make_metadata(net))
    det = Detector.load(path)
    assert det.tta is None
    with pytest.raises(ValueError, match="flip permutation"):
        Detector.load(path, tta=True)
    det.tta = TTA(flip=False)  # scales alone need no pairing
    assert det.detect(np.zeros((20, 30, 3), np.uint8)).xy.shape == (2, 2)
    with pytest.raises(TypeError, match="tta"):
        det.tta = "yes"
    meta = make_metadata(net)
    meta["flip_permutation"] = [1, 0]
    save_weights(path, net.eval(), meta)
    with_perm = Detector.load(path, tta=True)
    assert str(with_perm.tta) == "mirror x scales 0.9, 1, 1.1"
    meta["flip_permutation"] = [0, 0]
    save_weights(path, net.eval(), meta)
    with pytest.raises(CheckpointError, match="flip_permutation"):
        Detector.load(path)


def test_onnx_detector_averages_the_same_views(tmp_path):
    pytest.importorskip("onnxruntime")
    from lkdetect.onnx import OnnxDetector

    torch.manual_seed(0)
    net = KeypointNet("mobilenetv3_small_100", 2, (32, 32), stride=8, upsample=2, head_channels=8, head_depth=1)
    meta = make_metadata(net)
    meta["flip_permutation"] = [1, 0]
    path = tmp_path / "w.safetensors"
    save_weights(path, net.eval(), meta)
    det = Detector.load(path, tta=True)
    onnx = OnnxDetector(export_onnx(det, det.metadata, tmp_path / "w.onnx"), tta=True)
    img = np.random.default_rng(0).integers(0, 255, (40, 50, 3), dtype=np.uint8)
    assert np.allclose(onnx.detect(img).xy, det.detect(img).xy, atol=1e-3)
    assert not np.allclose(Detector.load(path).detect(img).xy, det.detect(img).xy, atol=1e-3)


def test_involutions_helper_counts_pairings():
    # telephone numbers: 1, 2, 4, 10, 26 pairings of 1..5 items
    assert [sum(1 for _ in involutions(k)) for k in range(1, 6)] == [1, 2, 4, 10, 26]
    for p in itertools.islice(involutions(5), 26):
        assert np.array_equal(p[p], np.arange(5))
