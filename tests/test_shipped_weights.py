"""The weights shipped in lkdetect/shipped/: every domain's GAN and detector load, agree on K, and the detector
finds the GAN's own keypoints on fresh samples (a seed the detector was not validated on)."""

from __future__ import annotations

import pytest
import torch

from lkdetect import Detector
from lkdetect.models import shipped_gan_path

# shipped detector -> (the domain of its GAN, its K); every file is committed, so a missing one is a failure, not a skip
DETECTORS = {"faces": ("faces", 10), "birds": ("birds", 4), "faces_small": ("faces", 10)}


@pytest.mark.parametrize("name", sorted(DETECTORS))
def test_shipped_detector_finds_its_gans_keypoints(name: str) -> None:
    from gan.checkpoint import load_generator
    from gan.sampling import sample

    domain, k = DETECTORS[name]
    det = Detector.load(name)
    generator, info = load_generator(shipped_gan_path(domain))
    from lkdetect.weights import gan_keypoint_indices

    kept = gan_keypoint_indices(det.metadata)  # the GAN keypoints the detector outputs (a subset for birds)
    assert det.num_keypoints == len(kept) == k and max(kept) < generator.n_keypoints
    assert det.input_size == (generator.resolution, generator.resolution)
    torch.manual_seed(0)
    with torch.no_grad():
        s = sample(generator, 32, seed=12345)
    found = torch.as_tensor(det.detect_batch(s.images.clamp(0, 1)).xy, dtype=torch.float32)
    error = (found - s.keypoints[:, kept]).norm(dim=-1)  # px at the GAN's resolution
    # the model cards report about 2 px on held-out pairs; 4 px median still means "found the keypoints"
    assert error.median() < 4.0, f"{name}: median error {error.median():.2f} px"
