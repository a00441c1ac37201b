"""One-Euro filter maths (lkdetect.video.smoothing) on signals with known answers."""

from __future__ import annotations

import math

import numpy as np
import pytest

from lkdetect.video.smoothing import OneEuroFilter, smoothing_factor

FPS = 30.0


def run_filter(filt: OneEuroFilter, signal: np.ndarray, fps: float = FPS) -> np.ndarray:
    return np.stack([filt(x, i / fps) for i, x in enumerate(signal)])


def test_smoothing_factor_matches_definition():
    dt, fc = 1 / 30, 2.0
    tau = 1 / (2 * math.pi * fc)
    assert smoothing_factor(fc, dt) == pytest.approx(1 / (1 + tau / dt))


@pytest.mark.parametrize("beta", [0.0, 0.5, 10.0])
def test_constant_signal_stays_constant(beta):
    signal = np.full((100, 5, 2), 37.25)
    out = run_filter(OneEuroFilter(min_cutoff=0.5, beta=beta), signal)
    np.testing.assert_allclose(out, signal, rtol=0, atol=1e-12)


def test_step_response_converges_without_overshoot():
    signal = np.where(np.arange(120) < 30, 0.0, 10.0)[:, None]
    out = run_filter(OneEuroFilter(min_cutoff=1.0, beta=0.0), signal)[:, 0]
    assert out[29] == 0.0
    assert 0 < out[30] < 10  # lags the step
    assert np.all(np.diff(out) >= 0) and out.max() <= 10.0  # first-order low-pass: monotone, no overshoot
    assert abs(out[-1] - 10.0) < 1e-3  # 3 s after the step


def test_ramp_lag_is_speed_times_tau_and_beta_reduces_it():
    speed = 120.0  # px/s
    t = np.arange(300) / FPS
    signal = (speed * t)[:, None]
    lag_plain = signal[-1, 0] - run_filter(OneEuroFilter(min_cutoff=1.0, beta=0.0), signal)[-1, 0]
    # steady state of x_hat += alpha (x - x_hat) on a ramp: lag = speed * tau, tau = 1 / (2 pi fc)
    assert lag_plain == pytest.approx(speed / (2 * math.pi * 1.0), rel=1e-6)
    lags = [signal[-1, 0] - run_filter(OneEuroFilter(min_cutoff=1.0, beta=b), signal)[-1, 0] for b in (0.01, 0.1)]
    assert lag_plain > lags[0] > lags[1] > 0
    assert lags[1] < 0.2 * lag_plain


def test_jitter_on_noisy_constant_is_reduced():
    rng = np.random.default_rng(0)
    signal = 50.0 + rng.normal(0.0, 1.0, size=(900, 10, 2))
    out = run_filter(OneEuroFilter(min_cutoff=1.0, beta=0.0), signal)
    jitter_in = np.abs(np.diff(signal, axis=0)).mean()
    jitter_out = np.abs(np.diff(out, axis=0)).mean()
    assert jitter_out < 0.15 * jitter_in
    assert abs(out[100:].mean() - 50.0) < 0.05  # unbiased


def test_vectorised_equals_independent_scalar_filters():
    rng = np.random.default_rng(1)
    signal = np.cumsum(rng.normal(0, 3, size=(60, 4, 2)), axis=0)
    joint = run_filter(OneEuroFilter(0.7, 0.05, 1.5), signal)
    for k in range(4):
        for c in range(2):
            alone = run_filter(OneEuroFilter(0.7, 0.05, 1.5), signal[:, k, c])
            np.testing.assert_allclose(joint[:, k, c], alone, rtol=0, atol=1e-12)


def test_reset_and_backwards_time_restart_the_filter():
    filt = OneEuroFilter(min_cutoff=1.0, beta=0.0)
    filt(np.zeros(3), 0.0)
    assert filt(np.full(3, 10.0), 1 / FPS)[0] < 10.0
    filt.reset()
    np.testing.assert_array_equal(filt(np.full(3, 20.0), 2 / FPS), np.full(3, 20.0))
    np.testing.assert_array_equal(filt(np.full(3, 5.0), 0.0), np.full(3, 5.0))  # time went backwards
    np.testing.assert_array_equal(filt(np.full(3, 7.0), 0.0), np.full(3, 7.0))  # no time passed
    np.testing.assert_array_equal(filt(np.full(4, 1.0), 1.0), np.full(4, 1.0))  # another shape


def test_output_never_aliases_input_or_state():
    filt = OneEuroFilter()
    x = np.ones(2)
    y = filt(x, 0.0)
    y[:] = 100.0
    x[:] = 100.0
    assert filt(np.ones(2), 1 / FPS)[0] == pytest.approx(1.0)


def test_non_finite_samples_keep_the_previous_estimate():
    filt = OneEuroFilter(min_cutoff=1.0)
    filt(np.array([1.0, np.nan]), 0.0)
    out = filt(np.array([np.nan, 4.0]), 1 / FPS)
    assert out[0] == 1.0 and out[1] == 4.0
    out = filt(np.array([1.0, 4.0]), 2 / FPS)
    assert np.all(np.isfinite(out))


@pytest.mark.parametrize(
    "kwargs", [{"min_cutoff": 0.0}, {"d_cutoff": -1.0}, {"beta": -0.1}, {"min_cutoff": float("nan")}]
)
def test_bad_parameters_raise(kwargs):
    with pytest.raises(ValueError):
        OneEuroFilter(**kwargs)
