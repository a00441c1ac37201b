"""Regression and metric maths on cases with known answers."""

from __future__ import annotations

import logging

import numpy as np
import pytest

from evaluation import metrics
from evaluation.regression import fit_linear, fit_per_part


def face_set(rng: np.random.Generator, n: int) -> np.ndarray:
    """(n, 5, 2) normalised face landmarks with some spread."""
    base = np.array([[0.35, 0.4], [0.65, 0.4], [0.5, 0.55], [0.38, 0.7], [0.62, 0.7]])
    return base + rng.normal(0, 0.03, (n, 5, 2)) + rng.normal(0, 0.05, (n, 1, 2))


# ---------------------------------------------------------------------------------------------------- regression
def test_trimmed_fit_ignores_a_block_of_shifted_annotations() -> None:
    """A quarter of the training landmarks shifted up (as MTFL-80's net_7876 files): plain least squares is
    dragged, the trimmed fit recovers the clean map, drops (almost) only the corrupt faces and keeps the rest."""
    rng = np.random.default_rng(7)
    n = 400
    true = face_set(rng, n)
    x = true + rng.normal(0, 0.01, true.shape)  # detections: the landmarks plus noise
    y = true.copy()
    bad = np.arange(n) < n // 4
    y[bad, :, 1] -= 0.3  # corrupt annotations
    test = face_set(rng, 200)
    plain, trimmed = fit_linear(x, y), fit_linear(x, y, fit="trimmed")
    err_plain = np.abs(plain.predict(test) - test).mean()
    err_trim = np.abs(trimmed.predict(test) - test).mean()
    assert err_plain > 0.03 and err_trim < 0.01
    assert not trimmed.kept[bad].any() and trimmed.kept[~bad].mean() > 0.95
    assert plain.kept.all()
    # on clean data the trimmed fit drops few images and agrees with least squares
    clean = fit_linear(x[~bad], y[~bad], fit="trimmed")
    assert clean.kept.mean() > 0.95
    np.testing.assert_allclose(clean.predict(test), fit_linear(x[~bad], y[~bad]).predict(test), atol=2e-3)
    with pytest.raises(ValueError, match="fit must be one of"):
        fit_linear(x, y, fit="huber")


def test_trimmed_per_part_fit() -> None:
    rng = np.random.default_rng(8)
    n = 300
    x = rng.uniform(0, 1, (n, 4, 2))
    true = x[:, :2] * 0.8 + 0.1 * x[:, 2:]
    y, visible = true.copy(), rng.uniform(size=(n, 2)) > 0.2
    bad = rng.uniform(size=n) < 0.2
    y[bad, 0] += 0.4  # only part 0 corrupt
    reg = fit_per_part(x, y, visible, fit="trimmed")
    np.testing.assert_allclose(reg.predict(x), true, atol=1e-6)
    assert not reg.kept[bad & visible[:, 0], 0].any() and not reg.kept[~visible].any()
    assert reg.kept[visible[:, 1], 1].mean() > 0.95


def test_identity_and_invertible_linear_maps_are_recovered_exactly() -> None:
    rng = np.random.default_rng(0)
    y = face_set(rng, 50)
    np.testing.assert_allclose(fit_linear(y, y).predict(y), y, atol=1e-12)
    a = rng.normal(size=(10, 10)) + 3 * np.eye(10)  # invertible mixing of the 10 coordinates
    x = (y.reshape(50, 10) @ a).reshape(50, 5, 2)
    reg = fit_linear(x, y)
    np.testing.assert_allclose(reg.weights, np.linalg.inv(a), atol=1e-9)
    y_test = face_set(rng, 20)
    np.testing.assert_allclose(reg.predict((y_test.reshape(20, 10) @ a).reshape(20, 5, 2)), y_test, atol=1e-9)


def test_more_keypoints_than_landmarks() -> None:
    rng = np.random.default_rng(1)
    y = face_set(rng, 60)
    x = np.concatenate([y[:, ::-1], rng.uniform(0, 1, (60, 3, 2))], axis=1)  # K = 8: reordered + 3 noise points
    np.testing.assert_allclose(fit_linear(x, y).predict(x), y, atol=1e-9)


def test_bias_needed_for_a_translation() -> None:
    rng = np.random.default_rng(2)
    y = face_set(rng, 80)
    x = y + np.array([0.2, -0.1])  # translated detections: no bias cannot undo a translation exactly
    assert np.abs(fit_linear(x, y, bias=True).predict(x) - y).max() < 1e-9
    assert np.abs(fit_linear(x, y, bias=False).predict(x) - y).max() > 1e-3
    assert fit_linear(x, y, bias=True).weights.shape == (11, 10)


def test_ridge_matches_closed_form_and_shrinks() -> None:
    rng = np.random.default_rng(3)
    x, y = rng.normal(size=(40, 4, 2)), rng.normal(size=(40, 5, 2))
    a = x.reshape(40, 8)
    expected = np.linalg.solve(a.T @ a + 2.0 * np.eye(8), a.T @ y.reshape(40, 10))
    np.testing.assert_allclose(fit_linear(x, y, ridge=2.0).weights, expected, atol=1e-12)
    norms = [np.linalg.norm(fit_linear(x, y, ridge=r).weights) for r in (0.0, 1.0, 100.0, 1e6)]
    assert norms == sorted(norms, reverse=True) and norms[-1] < 1e-3
    with pytest.raises(ValueError, match="ridge"):
        fit_linear(x, y, ridge=-1.0)


def test_per_part_regression_ignores_invisible_parts(caplog: pytest.LogCaptureFixture) -> None:
    rng = np.random.default_rng(4)
    n, parts = 100, 6
    true = rng.uniform(0, 1, (n, parts, 2))
    x = true[:, :4]  # the detector sees parts 0..3; parts 4, 5 are a linear function of them
    true[:, 4] = 0.5 * x[:, 0] + 0.5 * x[:, 1]
    true[:, 5] = x[:, 3] @ np.array([[0, 1], [1, 0]])
    visible = rng.uniform(size=(n, parts)) > 0.3
    visible[:, 2] = False  # part 2 never visible: zero weights and a warning
    y = np.where(visible[..., None], true, 1e3 * rng.normal(size=true.shape))  # garbage where invisible
    with caplog.at_level(logging.WARNING):
        reg = fit_per_part(x, y, visible)
    assert "landmark 2 is visible in no training image" in caplog.text
    pred = reg.predict(x)
    keep = [0, 1, 3, 4, 5]
    np.testing.assert_allclose(pred[:, keep], true[:, keep], atol=1e-9)
    assert (reg.weights[2] == 0).all() and (pred[:, 2] == 0).all()
    # one regressor for all parts fitted on the garbage is far off
    assert np.abs(fit_linear(x, y).predict(x)[:, keep] - true[:, keep]).mean() > 1.0
    # and the metric only looks at visible parts: the per-part fit scores 0 there
    per_image, pooled = metrics.nme_crop(pred, y, visible)
    assert pooled == pytest.approx(0.0, abs=1e-7)


# ------------------------------------------------------------------------------------------------------- metrics
def test_nme_iod_known_offset_and_scaling() -> None:
    gt = np.array([[[10.0, 10.0], [30.0, 10.0], [20.0, 20.0], [12.0, 30.0], [28.0, 30.0]]])  # IOD 20
    np.testing.assert_allclose(metrics.nme_iod(gt + [3.0, 4.0], gt), [25.0])  # 5 px / 20 px
    centre = gt[0].mean(axis=0)
    pred = centre + 1.2 * (gt - centre)  # scaling by 1.2 about the centroid: error 0.2 * distance to it
    expected = 100 * 0.2 * np.linalg.norm(gt[0] - centre, axis=1).mean() / 20
    np.testing.assert_allclose(metrics.nme_iod(pred, gt), [expected])
    two = np.concatenate([gt, 2 * gt])  # same offset, twice the IOD -> half the error
    np.testing.assert_allclose(metrics.nme_iod(two + [3.0, 4.0], two), [25.0, 12.5])
    with pytest.raises(ValueError, match="inter-ocular distance is 0"):
        metrics.nme_iod(gt, np.zeros_like(gt))


def test_nme_crop_pools_visible_parts_only() -> None:
    gt = np.zeros((2, 3, 2))
    pred = np.array([[[0.1, 0.0], [0.0, 0.2], [9.0, 9.0]], [[0.0, 0.3], [5.0, 5.0], [5.0, 5.0]]])
    visible = np.array([[True, True, False], [True, False, False]])
    per_image, pooled = metrics.nme_crop(pred, gt, visible)
    np.testing.assert_allclose(per_image, [15.0, 30.0])  # (10 + 20) / 2, 30 / 1
    assert pooled == pytest.approx((10 + 20 + 30) / 3)  # pooled over the 3 visible parts, not mean of images
    per_image, pooled = metrics.nme_crop(pred * 128, gt, visible, side=128.0)
    assert pooled == pytest.approx(20.0)
    per_image, _ = metrics.nme_crop(pred, gt, np.array([[True, True, False], [False, False, False]]))
    assert np.isnan(per_image[1])


def test_mean_shape_with_visibility() -> None:
    train = np.array([[[0.0, 0.0], [1.0, 1.0]], [[2.0, 4.0], [100.0, 100.0]], [[4.0, 2.0], [3.0, 3.0]]])
    np.testing.assert_allclose(metrics.mean_shape(train), [[2.0, 2.0], [104 / 3, 104 / 3]])
    visible = np.array([[True, True], [True, False], [True, True]])
    np.testing.assert_allclose(metrics.mean_shape(train, visible), [[2.0, 2.0], [2.0, 2.0]])


def test_mean_shape_baseline_toy_error() -> None:
    """Two training faces: the mean is their midpoint; a test face equal to one of them is off by half the gap."""
    a = np.array([[10.0, 10.0], [30.0, 10.0], [20.0, 20.0], [12.0, 30.0], [28.0, 30.0]])
    b = a + [4.0, 0.0]
    mean = metrics.mean_shape(np.stack([a, b]))
    np.testing.assert_allclose(metrics.nme_iod(mean[None], a[None]), [100 * 2.0 / 20])


def test_ced_auc_failure_rate() -> None:
    errors = np.array([0.0, 5.0, 10.0, 20.0, np.nan])
    t, f = metrics.ced(errors, 20.0, num=5)  # thresholds 0, 5, 10, 15, 20
    np.testing.assert_allclose(t, [0, 5, 10, 15, 20])
    np.testing.assert_allclose(f, [0.25, 0.5, 0.75, 0.75, 1.0])
    assert metrics.auc(np.zeros(10), 10.0) == pytest.approx(1.0)
    assert metrics.auc(np.full(10, 5.0), 10.0) == pytest.approx(0.5, abs=1e-3)
    assert metrics.auc(np.full(10, 50.0), 10.0) == 0.0
    assert metrics.failure_rate(errors, 10.0) == pytest.approx(0.25)


def test_coco_ap_perfect_wrong_and_partial() -> None:
    rng = np.random.default_rng(5)
    gt = face_set(rng, 30) * 128
    vis = np.ones((30, 5), bool)
    areas = metrics.interocular(gt) ** 2
    sigmas = (0.025, 0.025, 0.026, 0.025, 0.025)
    sizes = np.full((30, 2), 128.0)
    perfect = metrics.coco_ap(gt, gt, vis, areas, sigmas, sizes)
    assert perfect == {"ap": 1.0, "ap50": 1.0, "ap75": 1.0}
    assert metrics.coco_ap(gt + 60.0, gt, vis, areas, sigmas, sizes)["ap"] == 0.0
    # half the images exact, half far off: AP is strictly between
    pred = gt.copy()
    pred[::2] += 60.0
    ap = metrics.coco_ap(pred, gt, vis, areas, sigmas, sizes)["ap"]
    assert 0.2 < ap < 0.8
    # invisible ground truth does not count: garbage there keeps AP at 1
    vis2 = vis.copy()
    vis2[:, 4] = False
    pred2 = gt.copy()
    pred2[:, 4] += 500.0
    assert metrics.coco_ap(pred2, gt, vis2, areas, sigmas, sizes)["ap"] == 1.0
    with pytest.raises(ValueError, match="5 OKS sigmas"):
        metrics.coco_ap(gt, gt, vis, areas, sigmas[:3], sizes)
