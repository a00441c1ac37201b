"""Detector release weights: round trip, strict loading, name resolution."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from lkdetect import CheckpointError, Detector
from lkdetect.models import resolve_weights
from lkdetect.network import KeypointNet
from lkdetect.weights import (
    FORMAT,
    file_sha256,
    load_weights,
    make_metadata,
    read_metadata,
    save_weights,
)


def tiny_net(k: int = 3, head_channels: int = 8) -> KeypointNet:
    return KeypointNet(
        "mobilenetv3_small_100",
        k,
        (32, 32),
        stride=8,
        upsample=2,
        head_channels=head_channels,
        head_depth=1,
        mean=(0.4, 0.5, 0.6),
        std=(0.2, 0.25, 0.3),
    )


@pytest.fixture
def saved(tmp_path):
    net = tiny_net()
    with torch.no_grad():  # non-default BN statistics, so a round trip that drops buffers would show
        for m in net.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-0.1, 0.1)
    net.eval()
    meta = make_metadata(net, ["eye_l", "eye_r", "nose"], {"iterations": 7}, source_gan_sha256="ab" * 32)
    path = tmp_path / "w.safetensors"
    save_weights(path, net, meta)
    return path, net


def test_round_trip_same_outputs_and_metadata(saved):
    path, net = saved
    loaded, meta = load_weights(path)
    x = torch.rand(2, 3, 32, 32)
    with torch.no_grad():
        assert torch.equal(loaded(x)[0], net(x)[0])
    assert meta["format"] == FORMAT and meta["format_version"] == 1
    assert meta["keypoint_names"] == ["eye_l", "eye_r", "nose"] and meta["num_keypoints"] == 3
    assert meta["input_size"] == [32, 32] and meta["color_order"] == "RGB"
    assert meta["coordinates"] == "xy, pixels, centres at integers"
    assert meta["mean"] == pytest.approx([0.4, 0.5, 0.6]) and meta["std"] == pytest.approx([0.2, 0.25, 0.3])
    assert meta["network"]["backbone"] == "mobilenetv3_small_100" and meta["training"] == {"iterations": 7}
    assert meta["source_gan_sha256"] == "ab" * 32 and meta["lkdetect_version"]
    assert meta["sha256"] == file_sha256(path)
    assert loaded.normalization()["std"] == pytest.approx([0.2, 0.25, 0.3])


def test_expected_k_mismatch_names_both(saved):
    with pytest.raises(CheckpointError, match="expected 10 keypoints, found 3"):
        load_weights(saved[0], num_keypoints=10)


def test_other_format_is_refused(tmp_path):
    path = tmp_path / "gan.safetensors"
    save_file({"w": torch.zeros(2)}, str(path), metadata={"format": "lkdetect-gan", "format_version": "1"})
    with pytest.raises(CheckpointError, match="expected format 'lkdetect-detector', found 'lkdetect-gan'"):
        Detector.load(path)
    save_file({"w": torch.zeros(2)}, str(path))  # no metadata at all
    with pytest.raises(CheckpointError, match="found None"):
        read_metadata(path)


def test_newer_version_and_missing_keys_are_refused(saved, tmp_path):
    path, net = saved
    meta = read_metadata(path)
    for change, pattern in [
        ({"format_version": 99}, "format_version <= 1, found 99"),
        ({"coordinates": "xy, pixels, corners at integers"}, "expected coordinates"),
        ({"keypoint_names": ["a"]}, "expected 3 keypoint names, found 1"),
    ]:
        bad = tmp_path / "bad.safetensors"
        save_file(
            {k: v.contiguous() for k, v in net.state_dict().items()},
            str(bad),
            metadata={k: json.dumps(v) for k, v in {**meta, **change}.items()},
        )
        with pytest.raises(CheckpointError, match=pattern):
            load_weights(bad)


def test_tensors_that_do_not_fit_the_metadata(saved, tmp_path):
    path, _ = saved
    meta = read_metadata(path)
    other = tiny_net(head_channels=16)  # same metadata keys, different head width
    bad = tmp_path / "bad.safetensors"
    save_file(
        {k: v.contiguous() for k, v in other.state_dict().items()},
        str(bad),
        metadata={k: json.dumps(v) for k, v in meta.items()},
    )
    with pytest.raises(CheckpointError, match="wrong shape"):
        load_weights(bad)


def test_corrupt_and_missing_files(saved, tmp_path):
    data = saved[0].read_bytes()
    truncated = tmp_path / "truncated.safetensors"
    truncated.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="not a readable safetensors file"):
        Detector.load(truncated)
    garbage = tmp_path / "garbage.safetensors"
    garbage.write_bytes(np.random.default_rng(0).bytes(1000))
    with pytest.raises(CheckpointError, match="not a readable safetensors file"):
        Detector.load(garbage)
    with pytest.raises(FileNotFoundError, match="not found"):
        Detector.load(tmp_path / "missing.safetensors")


@pytest.fixture
def shipped_faces(saved, tmp_path, monkeypatch):
    """A weights dir (``LKDETECT_WEIGHTS_DIR``) holding the saved detector as ``faces``; returns that file."""
    path, _ = saved
    (tmp_path / "shipped").mkdir()
    target = tmp_path / "shipped" / "faces_detector.safetensors"
    target.write_bytes(path.read_bytes())
    monkeypatch.setenv("LKDETECT_WEIGHTS_DIR", str(tmp_path / "shipped"))
    return target


def test_names_resolve_in_the_weights_dir(shipped_faces):
    target = shipped_faces
    assert resolve_weights(None) == target and resolve_weights("faces") == target
    det = Detector.load()
    assert det.keypoint_names == ("eye_l", "eye_r", "nose") and det.metadata["sha256"] == file_sha256(target)
    with pytest.raises(FileNotFoundError, match=r"no shipped detector 'cats'.*available names: \[.*'faces'"):
        Detector.load("cats")
    with pytest.raises(TypeError, match="got int"):
        resolve_weights(3)


def test_an_old_name_resolves_to_its_new_file_unless_a_file_has_it(shipped_faces):
    """`faces_large` (the name of the large face detector before it became the default) still loads it."""
    target = shipped_faces
    assert resolve_weights("faces_large") == target
    own = target.parent / "faces_large_detector.safetensors"  # a file of that name wins over the alias
    own.write_bytes(target.read_bytes())
    assert resolve_weights("faces_large") == own
