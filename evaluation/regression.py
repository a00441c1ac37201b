"""Linear landmark regression, the standard evaluation of unsupervised keypoints (Thewlis et al. 2017, IMM, AutoLink;
and the protocol of LatentKeypointGAN, He, Wandt, Rhodin, arXiv 2103.15812).

A linear map from the 2K detected coordinates to the 2L annotated ones, fitted in closed form by least squares,
WITHOUT bias by default (``bias=True`` adds a constant feature; ``ridge`` adds lambda * ||W||^2, the bias column
not penalised). CUB: one regressor per landmark (2K -> 2), fitted only on the images where it is visible.

Coordinates: both sides are normalised to the preprocessed image, u = (x + 0.5) / W, v = (y + 0.5) / H, i.e. in
[0, 1] with the origin at the image's top-left corner, as AutoLink's evaluation. Without bias the origin matters
(the map cannot translate); the corner origin is the convention of the published numbers.

Fitting: ``fit="lstsq"`` (the protocol) is plain least squares on every training image. ``fit="trimmed"`` is a
robust option for training sets that may hold wrong annotations: it refits on the images whose residual is at most
``median + 3 * 1.4826 * MAD`` of all residuals until that set stops changing (a trimmed least-squares
estimator). Only training data decide what is dropped; every test image is scored. It is not the protocol, and
reports say which fit a number comes from. (It found the 2,350 MTFL-80 training faces whose landmarks sat about
28 px above the face before the data's README corrected them.)
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

logger = logging.getLogger(__name__)


def _features(x: np.ndarray, bias: bool) -> np.ndarray:
    f = np.asarray(x, dtype=np.float64).reshape(len(x), -1)
    return np.concatenate([f, np.ones((len(f), 1))], axis=1) if bias else f


FITS = ("lstsq", "trimmed")
TRIM_K = 3.0  # residuals beyond median + TRIM_K robust standard deviations (1.4826 MAD) are dropped
TRIM_MAX_ITER = 20


def _solve(a: np.ndarray, y: np.ndarray, ridge: float, bias: bool) -> np.ndarray:
    """argmin_W ||A W - Y||^2 + ridge ||W'||^2 (W' = W without the bias row)."""
    if ridge < 0:
        raise ValueError(f"ridge must be >= 0, got {ridge}")
    if ridge == 0:
        return np.linalg.lstsq(a, y, rcond=None)[0]  # minimum-norm solution when A is rank deficient
    penalty = np.eye(a.shape[1]) * ridge
    if bias:
        penalty[-1, -1] = 0.0
    return np.linalg.solve(a.T @ a + penalty, a.T @ y)


def _row_residuals(a: np.ndarray, w: np.ndarray, y: np.ndarray, points: int) -> np.ndarray:
    """(N,) mean L2 distance between each row's predicted and given points."""
    return np.linalg.norm((a @ w - y).reshape(len(a), points, 2), axis=-1).mean(axis=1)


def _solve_trimmed(
    a: np.ndarray, y: np.ndarray, ridge: float, bias: bool, points: int
) -> tuple[np.ndarray, np.ndarray]:
    """Trimmed least squares: (W, kept rows). ``y`` rows hold ``points`` (x, y) pairs; a row's residual is the
    mean L2 distance over its points.

    It starts from the better half of the rows under the plain fit (a concentration step, as in FAST-LTS): the
    plain fit is dragged towards a large block of corrupt rows, and iterating the outlier rule from it alone can
    settle with that block kept; the better half of its residuals holds (almost) no corrupt row while they are a
    minority."""
    w = _solve(a, y, ridge, bias)
    r = _row_residuals(a, w, y, points)
    kept = r <= np.median(r)
    if kept.sum() < a.shape[1]:  # too few rows for a fit on half of them: start from all
        kept[:] = True
    for _ in range(TRIM_MAX_ITER):
        w = _solve(a[kept], y[kept], ridge, bias)
        r = _row_residuals(a, w, y, points)
        med = np.median(r)
        new = r <= med + TRIM_K * 1.4826 * np.median(np.abs(r - med))
        if new.sum() < a.shape[1] or np.array_equal(new, kept):  # too few rows left to fit, or converged
            break
        kept = new
    return w, kept


def _check_fit(fit: str) -> None:
    if fit not in FITS:
        raise ValueError(f"fit must be one of {FITS}, got {fit!r}")


@dataclass(frozen=True)
class LinearRegressor:
    """Detected keypoints (N, K, 2) -> landmarks (N, L, 2), one linear map for all landmarks.

    Attributes:
        weights: (2K [+1], 2L); features are the flattened (x0, y0, x1, y1, ...) [, 1].
        bias: whether a constant feature is appended.
        kept: (N,) training images the fit used (all of them unless ``fit="trimmed"``).
    """

    weights: np.ndarray
    bias: bool
    kept: np.ndarray | None = None

    def predict(self, x: np.ndarray) -> np.ndarray:
        return (_features(x, self.bias) @ self.weights).reshape(len(x), -1, 2)


@dataclass(frozen=True)
class PerPartRegressor:
    """One 2K [+1] -> 2 map per landmark (CUB). ``weights``: (L, 2K [+1], 2); ``kept``: (N, L) the (image,
    landmark) pairs the fits used (the visible ones, less those trimmed with ``fit="trimmed"``)."""

    weights: np.ndarray
    bias: bool
    kept: np.ndarray | None = None

    def predict(self, x: np.ndarray) -> np.ndarray:
        return np.einsum("nf,lfc->nlc", _features(x, self.bias), self.weights)


def fit_linear(
    x: np.ndarray, y: np.ndarray, bias: bool = False, ridge: float = 0.0, fit: str = "lstsq"
) -> LinearRegressor:
    """Fit on detected keypoints ``x`` (N, K, 2) and landmarks ``y`` (N, L, 2), normalised coordinates.

    ``fit``: ``"lstsq"`` (the protocol) or ``"trimmed"`` (see the module docstring).
    """
    _check_fit(fit)
    if len(x) != len(y) or len(x) == 0:
        raise ValueError(f"need as many (>0) detections as landmark sets, got {len(x)} and {len(y)}")
    a = _features(x, bias)
    yy = np.asarray(y, dtype=np.float64).reshape(len(y), -1)
    if fit == "trimmed":
        w, kept = _solve_trimmed(a, yy, ridge, bias, yy.shape[1] // 2)
        logger.info("trimmed fit: kept %d of %d training images", kept.sum(), len(kept))
        return LinearRegressor(w, bias, kept)
    return LinearRegressor(_solve(a, yy, ridge, bias), bias, np.ones(len(a), dtype=bool))


def fit_per_part(
    x: np.ndarray, y: np.ndarray, visible: np.ndarray, bias: bool = False, ridge: float = 0.0, fit: str = "lstsq"
) -> PerPartRegressor:
    """One regressor per landmark l, fitted on the images with ``visible[:, l]`` (N, L) True.

    A landmark never visible in training gets zero weights (it predicts the origin, as AutoLink), with a warning.
    ``fit="trimmed"`` trims each landmark's fit separately.
    """
    _check_fit(fit)
    a = _features(x, bias)
    y = np.asarray(y, dtype=np.float64)
    visible = np.asarray(visible, dtype=bool)
    weights = np.zeros((y.shape[1], a.shape[1], 2))
    kept = visible.copy()
    for part in range(y.shape[1]):
        rows = visible[:, part]
        if not rows.any():
            logger.warning("landmark %d is visible in no training image; it gets zero weights", part)
            continue
        if fit == "trimmed":
            weights[part], keep = _solve_trimmed(a[rows], y[rows, part], ridge, bias, 1)
            kept[rows, part] = keep
        else:
            weights[part] = _solve(a[rows], y[rows, part], ridge, bias)
    return PerPartRegressor(weights, bias, kept)
