"""Fixtures shared by the detector tests: the shipped face detector and a few odd-sized noise images."""

import numpy as np
import pytest

from lkdetect import Detector


@pytest.fixture(scope="module")
def faces():
    """The shipped default face detector, no options."""
    return Detector.load("faces")


@pytest.fixture(scope="module")
def odd_images():
    """Three noise images of different sizes and aspect ratios (uint8 RGB)."""
    rng = np.random.default_rng(3)
    return [rng.integers(0, 256, (h, w, 3), dtype=np.uint8) for h, w in ((80, 80), (90, 130), (150, 70))]
