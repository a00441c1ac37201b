"""Temporal smoothing of keypoint tracks: the One-Euro filter.

Casiez, Roussel and Vogel, "1 Euro Filter: A Simple Speed-based Low-pass Filter for Noisy Input in Interactive
Systems", CHI 2012. Each coordinate is an exponential low-pass filter whose cutoff frequency grows with the
coordinate's (itself low-passed) speed: ``fc = min_cutoff + beta * |dx_hat|``. At rest the low cutoff removes
jitter; when the point moves fast the cutoff rises and lag falls. ``alpha = 1 / (1 + tau / Te)`` with
``tau = 1 / (2 pi fc)`` and ``Te`` the time since the previous sample.

Implemented from the paper's description, vectorised over any array shape (for keypoints: (K, 2), one
independent filter per coordinate).
"""

from __future__ import annotations

import math

import numpy as np


def smoothing_factor(cutoff: np.ndarray | float, dt: float) -> np.ndarray | float:
    """``alpha = 1 / (1 + tau / dt)`` with ``tau = 1 / (2 pi cutoff)``, the weight of the new sample."""
    tau = 1.0 / (2.0 * math.pi * np.asarray(cutoff, dtype=np.float64))
    return 1.0 / (1.0 + tau / dt)


class OneEuroFilter:
    """A One-Euro filter over arrays of a fixed shape (one independent filter per element).

    Units: ``min_cutoff`` and ``d_cutoff`` in Hz; ``beta`` in 1 / (signal unit), e.g. 1/px for pixel
    coordinates, since it multiplies a speed in signal units per second. Lower ``min_cutoff`` removes more jitter
    at rest; higher ``beta`` reduces lag on fast motion.

    The filter resets itself (its next output equals its input) on the first sample, when the array shape changes
    and when time does not move forward (``t <= previous t``, e.g. a seek backwards). Call :meth:`reset` when the
    signal's source changes, e.g. when a tracked object is re-detected.

    Args:
        min_cutoff: minimum cutoff frequency in Hz (> 0).
        beta: speed coefficient (>= 0); 0 makes it a plain first-order low-pass filter at ``min_cutoff``.
        d_cutoff: cutoff frequency in Hz of the low-pass filter on the speed (> 0).
    """

    def __init__(self, min_cutoff: float = 1.0, beta: float = 0.0, d_cutoff: float = 1.0) -> None:
        if not min_cutoff > 0 or not d_cutoff > 0:
            raise ValueError(f"min_cutoff and d_cutoff must be > 0, got {min_cutoff} and {d_cutoff}")
        if not beta >= 0:
            raise ValueError(f"beta must be >= 0, got {beta}")
        self.min_cutoff = float(min_cutoff)
        self.beta = float(beta)
        self.d_cutoff = float(d_cutoff)
        self.reset()

    def reset(self) -> None:
        """Forget the past: the next sample passes through unchanged."""
        self._x: np.ndarray | None = None
        self._dx: np.ndarray | None = None
        self._t: float | None = None

    def __call__(self, x: np.ndarray, t: float) -> np.ndarray:
        """Filter one sample.

        Args:
            x: the sample, any shape (for keypoints (K, 2) pixels); the shape must stay the same between calls.
            t: its timestamp in seconds.

        Returns:
            The filtered sample, float64, same shape as ``x`` (a new array).
        """
        x = np.array(x, dtype=np.float64)  # a copy: the state never aliases the caller's array
        if self._x is None or self._t is None or x.shape != self._x.shape or not t > self._t:
            self._x, self._dx, self._t = x, np.zeros_like(x), float(t)
            return x.copy()
        dt = float(t) - self._t
        dx = (x - self._x) / dt
        dx_hat = self._dx + smoothing_factor(self.d_cutoff, dt) * (dx - self._dx)
        cutoff = self.min_cutoff + self.beta * np.abs(dx_hat)
        x_hat = self._x + smoothing_factor(cutoff, dt) * (x - self._x)
        # A non-finite value (a missing keypoint) must not poison the state: keep the previous estimate there, and
        # restart an element whose previous estimate was missing.
        bad = ~np.isfinite(x_hat)
        if bad.any():
            restart = bad & np.isfinite(x)
            x_hat[bad] = np.where(restart, x, self._x)[bad]
            dx_hat[bad] = np.where(restart, 0.0, self._dx)[bad]
        self._x, self._dx, self._t = x_hat, dx_hat, float(t)
        return x_hat.copy()
