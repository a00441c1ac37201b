"""ONNX export and OnnxDetector: checker, metadata_props, parity with PyTorch, dynamic batch, bad files, CLI."""

from __future__ import annotations

import json

import numpy as np
import onnx
import pytest
import torch

from lkdetect import CheckpointError, Detector
from lkdetect.cli import main as cli
from lkdetect.network import KeypointNet
from lkdetect.onnx import FORMAT, OnnxDetector, export_onnx
from lkdetect.video import detect_video
from lkdetect.weights import make_metadata, save_weights

SIZE = (32, 48)  # not square: a swapped H and W fails the tests
NAMES = ["a", "b", "c", "d"]


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    torch.manual_seed(0)
    net = KeypointNet("mobilenetv3_small_100", 4, SIZE, stride=8, upsample=2, head_channels=8, head_depth=1)
    with torch.no_grad():  # sharp, image-dependent heatmaps, so keypoints move and scores differ from image to image
        net.to_heatmaps.weight.mul_(40.0)
    path = tmp_path_factory.mktemp("w") / "tiny.safetensors"
    save_weights(path, net.eval(), make_metadata(net, NAMES, training={"note": "test"}))
    return path


@pytest.fixture(scope="module")
def det(weights):
    return Detector.load(weights)


@pytest.fixture(scope="module")
def model(det, tmp_path_factory):
    return export_onnx(det, det.metadata, tmp_path_factory.mktemp("onnx") / "tiny.onnx")


@pytest.fixture(scope="module")
def onnx_det(model):
    return OnnxDetector(model, threads=1)


def rgb(h, w, seed):
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def test_export_passes_the_checker_and_carries_the_metadata(model, det):
    proto = onnx.load(model)
    onnx.checker.check_model(proto, full_check=True)
    assert {node.domain for node in proto.graph.node} <= {"", "ai.onnx"}  # standard ops only, no ATen fallback
    assert {op.domain: op.version for op in proto.opset_import}.get("", 0) == 17
    props = {p.key: p.value for p in proto.metadata_props}
    assert props["format"] == FORMAT and props["num_keypoints"] == "4"
    assert json.loads(props["input_size"]) == list(SIZE) and json.loads(props["keypoint_names"]) == NAMES
    assert props["color_order"] == "RGB" and props["coordinates"] == det.metadata["coordinates"]
    assert props["lkdetect_version"] and props["source_weights_sha256"] == det.metadata["sha256"]
    full = json.loads(props["metadata"])
    expected = {k: v for k, v in det.metadata.items() if k not in ("path", "sha256")}
    assert full == expected and full["training"] == {"note": "test"}

    def dims(value):
        return [d.dim_param or d.dim_value for d in value.type.tensor_type.shape.dim]

    assert [i.name for i in proto.graph.input] == ["images"] and dims(proto.graph.input[0]) == ["batch", 3, *SIZE]
    assert {o.name: dims(o) for o in proto.graph.output} == {"keypoints": ["batch", 4, 2], "scores": ["batch", 4]}
    assert not [p.name for p in model.parent.iterdir() if p.name != model.name]  # atomic: no temp file left


def test_onnx_detector_reads_its_metadata(onnx_det, det, model):
    assert onnx_det.num_keypoints == 4 and onnx_det.input_size == SIZE and onnx_det.keypoint_names == tuple(NAMES)
    meta = onnx_det.metadata
    assert meta["path"] == str(model) and meta["sha256"] != det.metadata["sha256"] and len(meta["sha256"]) == 64
    assert meta["source_weights_sha256"] == det.metadata["sha256"] and meta["network"] == det.metadata["network"]
    assert "OnnxDetector(tiny.onnx, K=4, input=32x48" in repr(onnx_det)


def test_network_parity_on_a_random_batch(onnx_det, det):
    x = torch.rand(6, 3, *SIZE)
    xy_t, sc_t = det._run(x)
    xy_o, sc_o = onnx_det.session.run(None, {"images": x.numpy()})
    assert xy_o.shape == (6, 4, 2) and sc_o.shape == (6, 4) and xy_o.dtype == np.float32
    assert xy_t.std(axis=0).max() > 0.5 and sc_t.std() > 1e-3  # the outputs depend on the image: parity means something
    np.testing.assert_allclose(xy_o, xy_t, atol=1e-3, rtol=0)
    np.testing.assert_allclose(sc_o, sc_t, atol=1e-4, rtol=0)


def test_detect_batch_parity_on_varied_images(onnx_det, det):
    gray = rgb(40, 40, 3)[..., 0]
    rgba = np.concatenate([rgb(30, 50, 4), np.full((30, 50, 1), 9, np.uint8)], axis=2)
    images = [
        rgb(20, 30, 0),
        rgb(64, 64, 1),
        rgb(100, 50, 2),
        gray,
        rgba,
        torch.from_numpy(rgb(33, 17, 5)).permute(2, 0, 1),
    ]
    boxes = [None, (5, 6, 40, 30), None, (-4, -4, 30, 30), None, None]
    ref, out = (
        det.detect_batch(images, boxes=boxes, batch_size=4),
        onnx_det.detect_batch(images, boxes=boxes, batch_size=4),
    )
    assert out.xy.shape == (6, 4, 2) and out.names == tuple(NAMES)
    np.testing.assert_allclose(out.xy, ref.xy, atol=1e-3, rtol=0)
    np.testing.assert_allclose(out.scores, ref.scores, atol=1e-4, rtol=0)
    one = onnx_det.detect(images[1], box=boxes[1])
    np.testing.assert_allclose(one.xy, ref.xy[1], atol=1e-3, rtol=0)
    np.testing.assert_allclose(onnx_det(images[2][..., ::-1].copy(), bgr=True).xy, ref.xy[2], atol=1e-3, rtol=0)
    assert onnx_det.detect_batch([]).xy.shape == (0, 4, 2)
    with pytest.raises(ValueError, match=r"images\[1\]"):
        onnx_det.detect_batch([rgb(10, 10, 0), np.full((10, 10, 3), 2.0)])


def test_dynamic_batch_sample_alone_equals_sample_in_batch(onnx_det):
    x = np.random.default_rng(0).random((5, 3, *SIZE), dtype=np.float32)
    xy5, sc5 = onnx_det.session.run(None, {"images": x})
    for i in (0, 4):
        xy1, sc1 = onnx_det.session.run(None, {"images": x[i : i + 1]})
        assert xy1.shape == (1, 4, 2)
        np.testing.assert_allclose(xy1[0], xy5[i], atol=1e-5)
        np.testing.assert_allclose(sc1[0], sc5[i], atol=1e-6)


def test_detect_video_on_frames_matches_pytorch(onnx_det, det):
    frames = [rgb(36, 44, i) for i in range(5)]
    ref = list(detect_video(det, frames, smooth=False, batch_size=2))
    out = list(detect_video(onnx_det, frames, smooth=False, batch_size=2))
    assert [r.index for r in out] == list(range(5))
    np.testing.assert_allclose([r.keypoints.xy for r in out], [r.keypoints.xy for r in ref], atol=1e-3)


def test_bad_files_raise_naming_expected_and_found(model, tmp_path):
    with pytest.raises(FileNotFoundError, match="not found"):
        OnnxDetector(tmp_path / "missing.onnx")
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"not a protobuf at all \x00\xff" * 10)
    with pytest.raises(CheckpointError, match="is not a readable ONNX model"):
        OnnxDetector(junk)

    proto = onnx.load(model)
    del proto.metadata_props[:]
    onnx.save(proto, tmp_path / "plain.onnx")
    with pytest.raises(CheckpointError, match=r"format 'lkdetect-onnx'\), found format None"):
        OnnxDetector(tmp_path / "plain.onnx")

    proto = onnx.load(model)
    for p in proto.metadata_props:
        if p.key == "input_size":
            p.value = "[64, 64]"
    onnx.save(proto, tmp_path / "size.onnx")
    with pytest.raises(
        CheckpointError, match=r"expected input 'images' of shape \(N, 3, 64, 64\).*found \['batch', 3, 32, 48\]"
    ):
        OnnxDetector(tmp_path / "size.onnx")

    with pytest.raises(ValueError, match="threads must be >= 1"):
        OnnxDetector(model, threads=0)


def test_load_exports_weights_in_memory(weights, onnx_det, det, model):
    before = sorted(p.name for p in weights.parent.iterdir())
    loaded = OnnxDetector.load(weights, threads=1, refine=True)
    assert sorted(p.name for p in weights.parent.iterdir()) == before  # nothing written next to the weights
    meta = loaded.metadata
    assert meta["path"] == str(weights) and meta["sha256"] == det.metadata["sha256"] == meta["source_weights_sha256"]
    assert meta["network"] == det.metadata["network"] and loaded.refine is not None
    assert "OnnxDetector(tiny.safetensors, K=4, input=32x48" in repr(loaded)
    x = torch.rand(3, 3, *SIZE)
    for a, b in zip(loaded.session.run(None, {"images": x.numpy()}), onnx_det.session.run(None, {"images": x.numpy()})):
        np.testing.assert_array_equal(a, b)  # the same graph as the exported file
    image = rgb(50, 70, 8)
    det.refine = True
    try:
        np.testing.assert_allclose(loaded.detect(image).xy, det.detect(image).xy, atol=1e-3)
    finally:
        det.refine = None
    by_file = OnnxDetector.load(str(model))  # an .onnx path reads the file
    assert by_file.metadata["path"] == str(model)


def test_load_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="detector weights .* not found"):
        OnnxDetector.load(tmp_path / "missing.safetensors")
    with pytest.raises(FileNotFoundError, match="ONNX model .* not found"):
        OnnxDetector.load(tmp_path / "missing.onnx")
    with pytest.raises(FileNotFoundError, match="no shipped detector 'nope'"):
        OnnxDetector.load("nope")
    with pytest.raises(TypeError, match="expected a weights name, a path or None, got int"):
        OnnxDetector.load(3)
    not_weights = tmp_path / "x.safetensors"
    not_weights.write_bytes(b"\x00" * 16)
    with pytest.raises(CheckpointError):
        OnnxDetector.load(not_weights)


def test_export_rejects_metadata_that_does_not_fit(det, tmp_path):
    with pytest.raises(ValueError, match="expected K = 4, found num_keypoints 5"):
        export_onnx(det.network, {**det.metadata, "num_keypoints": 5}, tmp_path / "m.onnx")
    with pytest.raises(ValueError, match="needs the weights' metadata"):
        export_onnx(det.network, None, tmp_path / "m.onnx")
    assert not (tmp_path / "m.onnx").exists()


def test_cli_export_end_to_end(weights, det, tmp_path, capsys):
    out = tmp_path / "sub" / "model.onnx"
    assert cli(["export", "--weights", str(weights), "--out", str(out), "--opset", "18"]) == 0
    assert "K = 4, input (N, 3, 32, 48)" in capsys.readouterr().out
    assert {op.domain: op.version for op in onnx.load(out).opset_import}[""] == 18
    image = rgb(50, 70, 7)
    np.testing.assert_allclose(OnnxDetector(out).detect(image).xy, det.detect(image).xy, atol=1e-3)
    assert cli(["export", "--weights", str(tmp_path / "nope.safetensors"), "--out", str(out)]) == 2
    assert "not found" in capsys.readouterr().err


def test_eval_and_video_commands_load_the_onnx_model(model, weights, tmp_path):
    import argparse

    cv2 = pytest.importorskip("cv2")
    from lkdetect.commands.eval import load_detector

    loaded = load_detector(argparse.Namespace(weights=None, onnx=str(model)))
    assert isinstance(loaded, OnnxDetector) and loaded.num_keypoints == 4

    video = tmp_path / "v.mp4"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"mp4v"), 10.0, (48, 40))
    for i in range(4):
        writer.write(rgb(40, 48, i))
    writer.release()
    results = {}
    for flag, source in (("--onnx", model), ("--weights", weights)):
        js = tmp_path / f"{flag[2:]}.jsonl"
        assert cli(["video", str(video), flag, str(source), "--json", str(js), "--no-smooth", "--no-progress"]) == 0
        results[flag] = [json.loads(line)["xy"] for line in js.read_text().splitlines()]
    assert len(results["--onnx"]) == 4
    np.testing.assert_allclose(results["--onnx"], results["--weights"], atol=1e-3)
    assert cli(["video", str(video), "--onnx", str(model), "--weights", str(weights), "--no-progress"]) == 2
    js = tmp_path / "in_memory.jsonl"  # --onnx also takes weights, exported in memory
    assert cli(["video", str(video), "--onnx", str(weights), "--json", str(js), "--no-smooth", "--no-progress"]) == 0
    in_memory = [json.loads(line)["xy"] for line in js.read_text().splitlines()]
    np.testing.assert_allclose(in_memory, results["--onnx"], atol=1e-5)
    loaded = load_detector(argparse.Namespace(weights=None, onnx=str(weights)))
    assert isinstance(loaded, OnnxDetector) and loaded.metadata["path"] == str(weights)


def test_detect_command_on_onnxruntime(weights, model, det, tmp_path, capsys):
    image = tmp_path / "im.png"
    from PIL import Image

    Image.fromarray(rgb(40, 56, 9)).save(image)
    docs = {}
    for flag, source in (("--weights", weights), ("--onnx", model), ("--onnx", weights)):
        assert cli(["detect", str(image), flag, str(source), "--json", "-"]) == 0
        docs[(flag, str(source))] = json.loads(capsys.readouterr().out)
    ref = np.array(docs[("--weights", str(weights))]["results"][0]["xy"])
    for key, doc in docs.items():
        np.testing.assert_allclose(doc["results"][0]["xy"], ref, atol=1e-3, err_msg=str(key))
    assert docs[("--onnx", str(weights))]["weights_sha256"] == det.metadata["sha256"]
    with pytest.raises(SystemExit) as exit_info:  # argparse's mutually exclusive group
        cli(["detect", str(image), "--onnx", str(model), "--weights", str(weights)])
    assert exit_info.value.code == 2
    assert "not allowed with" in capsys.readouterr().err
    assert cli(["detect", str(image), "--onnx", str(model), "--device", "cuda"]) == 2
    assert "--device cuda applies to the PyTorch detector" in capsys.readouterr().err


def test_shipped_face_detector_parity_on_real_faces(data_root, tmp_path):
    try:
        faces = Detector.load("faces")
    except FileNotFoundError as e:
        pytest.skip(f"shipped face detector not present: {e}")
    root = data_root / "mtfl80"
    listing = root / "testing.txt"
    if not listing.is_file():
        pytest.skip(f"{listing} not found")
    paths = [root / line.split()[0] for line in listing.read_text().splitlines() if line.strip()][:64]
    if len(paths) < 64 or not all(p.is_file() for p in paths):
        pytest.skip("fewer than 64 MTFL test images present")
    onnx_faces = OnnxDetector(export_onnx(faces, faces.metadata, tmp_path / "faces.onnx"), threads=1)
    assert onnx_faces.keypoint_names == faces.keypoint_names
    ref, out = faces.detect_batch(paths), onnx_faces.detect_batch(paths)
    assert ref.xy.shape == (64, faces.num_keypoints, 2)
    np.testing.assert_allclose(out.xy, ref.xy, atol=1e-3, rtol=0)
    np.testing.assert_allclose(out.scores, ref.scores, atol=1e-4, rtol=0)
