"""lkdetect keep-keypoints: a detector restricted to some keypoints detects exactly those of its source."""

import numpy as np
import pytest

from lkdetect import Detector
from lkdetect.cli import main
from lkdetect.models import resolve_weights
from lkdetect.training.keep_keypoints import keep_keypoints, parse_keep
from lkdetect.weights import read_metadata


def frames(n=4):
    rng = np.random.default_rng(0)
    return [rng.integers(0, 256, (72, 90, 3), dtype=np.uint8) for _ in range(n)]


def test_subset_detects_the_kept_keypoints_of_its_source(tmp_path):
    keep = [9, 2, 5]
    out = tmp_path / "subset.safetensors"
    keep_keypoints("faces", keep, out)
    full, sub = Detector.load("faces").detect_batch(frames()), Detector.load(out).detect_batch(frames())
    for a, b in zip(full, sub):
        assert b.xy.shape == (3, 2)
        np.testing.assert_allclose(b.xy, a.xy[keep], atol=1e-4)
        np.testing.assert_allclose(b.scores, a.scores[keep], atol=1e-5)
    meta = read_metadata(out)
    source = read_metadata(resolve_weights("faces"))
    assert meta["num_keypoints"] == 3 and meta["keypoint_names"] == [source["keypoint_names"][i] for i in keep]
    assert meta["training"]["keypoint_subset"]["kept"] == keep
    assert meta["upright_keypoints"] == [source["upright_keypoints"][i] for i in keep]
    Detector.load(out, refine=True).detect(frames(1)[0])  # upright refinement on the subset's reference


def test_flip_permutation_kept_only_when_the_subset_is_closed(tmp_path):
    perm = read_metadata(resolve_weights("faces"))["flip_permutation"]
    a = 2
    b = perm[a]  # a mirror pair of the shipped face detector
    closed = keep_keypoints("faces", [b, a], tmp_path / "closed.safetensors")
    assert closed["flip_permutation"] == [1, 0]
    Detector.load(tmp_path / "closed.safetensors", tta=True).detect(frames(1)[0])  # mirrored TTA works
    open_ = keep_keypoints("faces", [a], tmp_path / "open.safetensors")
    assert perm[a] != a and "flip_permutation" not in open_


@pytest.mark.parametrize("keep", [[10], [-1], [1, 1]])
def test_bad_indices_are_refused(tmp_path, keep):
    with pytest.raises(ValueError, match="distinct keypoint indices"):
        keep_keypoints("faces", keep, tmp_path / "x.safetensors")


def test_parse_and_cli(tmp_path, capsys):
    assert parse_keep("2, 3,6") == [2, 3, 6]
    with pytest.raises(ValueError):
        parse_keep("a,b")
    out = tmp_path / "s.safetensors"
    assert main(["keep-keypoints", "faces", "--keep", "0,7", "--out", str(out)]) == 0
    assert "flip_permutation [1, 0]" in capsys.readouterr().out  # the shipped pair (0, 7)
    assert read_metadata(out)["num_keypoints"] == 2
    assert main(["keep-keypoints", "faces", "--keep", "0,99", "--out", str(out)]) == 2
    src = resolve_weights("faces")
    assert main(["keep-keypoints", str(src), "--keep", "0", "--out", str(src)]) == 2


def test_demo_and_editor_place_a_subset_detectors_keypoints_at_their_gan_indices(tmp_path):
    """The demo colours each detection as its GAN keypoint; the keypoints a subset detector lacks are NaN rows,
    which the editor sends as null (valid JSON)."""
    import json

    import torch

    from lkdetect.demo import load_detector

    keep = [7, 2]
    out = tmp_path / "subset.safetensors"
    keep_keypoints("faces", keep, out)
    images = torch.rand(2, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    full, sub = load_detector(None, "faces")(images), load_detector(out)(images)
    assert sub.shape == (2, 8, 2)
    torch.testing.assert_close(sub[:, keep], full[:, keep], atol=1e-4, rtol=0)
    missing = [i for i in range(8) if i not in keep]
    assert torch.isnan(sub[:, missing]).all()

    from gan.checkpoint import load_generator
    from lkdetect.editor.session import Session, gan_identity
    from lkdetect.models import shipped_gan_path

    gan_path = shipped_gan_path("faces")
    generator, _ = load_generator(gan_path)
    view = Session(generator, gan_identity(gan_path, "faces"), load_detector(out)).view(detect=True)
    dets = json.loads(json.dumps(view, allow_nan=False))["detections"]
    assert [i for i, p in enumerate(dets) if p is not None] == sorted(keep) and len(dets) == 8
