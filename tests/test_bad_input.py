"""The bad-input suite: every bad image, file, weights file, checkpoint, video and CLI argument we know of, with its
expected outcome, as tables (issue 25 and the cases that already behaved well).

Each table row names what goes in and what must come out: a value (images decode to known pixels), or an exception
type with a message pattern; for the CLI an exit status and one stderr line. Every error message must be one line,
name what it is about and never give torch's advice to unpickle a refused file (``weights_only=False``).
"""

from __future__ import annotations

import json
import logging
import os
import pickle
import re
import shutil
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import gan
from gan.checkpoint import CheckpointError as GanCheckpointError
from gan.checkpoint import load_state
from lkdetect import Detector, commands
from lkdetect.cli import main as cli
from lkdetect.errors import CheckpointError
from lkdetect.images import load_region, to_tensor
from lkdetect.network import KeypointNet
from lkdetect.training.config import get_config
from lkdetect.training.trainer import DetectorTrainer, load_checkpoint
from lkdetect.weights import make_metadata, save_weights

DATA = Path(os.environ.get("LKDETECT_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))
RAMP16 = (np.arange(12 * 10).reshape(12, 10) * 541).astype(np.uint16)  # 0 .. 64379: every byte matters


# ---------------------------------------------------------------------------------------------------- fixtures
@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """Every file the tables refer to, by name."""
    d = tmp_path_factory.mktemp("bad")
    torch.manual_seed(0)
    net = KeypointNet("mobilenetv3_small_100", 3, (32, 32), stride=8, upsample=2, head_channels=8, head_depth=1)
    f = {"weights": d / "w.safetensors", "gan": d / "gan.safetensors", "dir": d / "a_dir", "missing": d / "no.png"}
    save_weights(f["weights"], net.eval(), make_metadata(net, ["l", "r", "n"]))
    gan.save_generator(f["gan"], gan.Generator(gan.get_config("tiny", {"model.kp_divisor": 1.0}).model), {"step": 0})
    f["dir"].mkdir()
    f["sentinel"] = d / "PWNED"  # the malicious pickle creates this file if it is ever unpickled
    payload = pickle.dumps(_Evil(str(f["sentinel"])), protocol=2)
    for name in ("pickle.safetensors", "pickle.pt"):
        (d / name).write_bytes(payload)
    (d / "empty.pt").write_bytes(b"")
    (d / "empty.safetensors").write_bytes(b"")
    (d / "text.pt").write_text("not a checkpoint\n" * 20)
    torch.save({"a": torch.zeros(64)}, d / "good.pt")
    (d / "truncated.pt").write_bytes((d / "good.pt").read_bytes()[:200])
    (d / "truncated.safetensors").write_bytes(f["weights"].read_bytes()[:3000])
    Image.fromarray(RAMP16).save(d / "gray16.png")  # PIL writes a 16-bit grayscale PNG (mode I;16)
    (d / "garbage.png").write_bytes(b"\x89PNG not really")
    (d / "empty.png").write_bytes(b"")
    f.update({p.name: p for p in d.iterdir() if p.is_file() and p.name not in f})
    return f


class _Evil:
    """Unpickled, this opens (creates) a file: proof that a loader ran code from a file."""

    def __init__(self, path: str):
        self.path = path

    def __reduce__(self):
        return (open, (self.path, "w"))


def gray_rgb(a: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.asarray(a, np.float32))[None].expand(3, -1, -1)


def pil(array: np.ndarray, mode: str, fmt: str | None = None) -> Image.Image:
    im = Image.frombytes(mode, array.shape[1::-1], array.tobytes()) if mode == "I;16B" else Image.fromarray(array)
    assert im.mode == mode, (im.mode, mode)
    im.format = fmt  # as if opened from a file of that format
    return im


def read_only(a: np.ndarray) -> np.ndarray:
    a.flags.writeable = False
    return a


def palette_with_transparency() -> tuple[Image.Image, torch.Tensor]:
    """A red image with one transparent blue pixel at (0, 0), and its expected RGB."""
    im = Image.new("P", (6, 4))
    im.putpalette([255, 0, 0, 0, 0, 255] + [0] * 762)
    im.putpixel((0, 0), 1)
    im.info["transparency"] = 1
    rgb = torch.zeros(3, 4, 6)
    rgb[0], rgb[0, 0, 0], rgb[2, 0, 0] = 1.0, 0.0, 1.0
    return im, rgb


# ---------------------------------------------------------------------------------------------------- images
# (id, image or fn(files) -> image, expected: the (3, H, W) float RGB tensor, or (exception, message pattern))
GRAY = (RAMP16 >> 8).astype(np.uint8)
PALETTE, PALETTE_RGB = palette_with_transparency()
IMAGES = [
    # 16-bit and other PIL modes (issue 25 item 3): scaled, not clipped to white
    ("png-16bit-gray", lambda f: f["gray16.png"], gray_rgb(RAMP16 / 65535)),
    ("pil-I;16", pil(RAMP16, "I;16"), gray_rgb(RAMP16 / 65535)),
    ("pil-I;16B", pil(RAMP16.astype(">u2"), "I;16B"), gray_rgb(RAMP16 / 65535)),
    ("pil-I-from-png", pil(RAMP16.astype(np.int32), "I", fmt="PNG"), gray_rgb(RAMP16 / 65535)),  # Pillow < 10
    ("pil-I-unknown-range", pil(RAMP16.astype(np.int32), "I"), (ValueError, r"mode I \(32-bit integers\) has no")),
    ("pil-F-unit", pil((RAMP16 / 65535).astype(np.float32), "F"), gray_rgb(RAMP16 / 65535)),
    ("pil-F-out-of-range", pil(RAMP16.astype(np.float32), "F"), (ValueError, r"float images must be in \[0, 1\]")),
    ("pil-L", pil(GRAY, "L"), gray_rgb(GRAY / 255)),
    ("pil-LA", pil(np.stack([GRAY, GRAY // 2], -1), "LA"), gray_rgb(GRAY / 255)),
    ("pil-1", pil(GRAY >= 128, "1"), gray_rgb(GRAY >= 128)),
    ("pil-P-transparency", PALETTE, PALETTE_RGB),
    ("pil-CMYK", Image.new("CMYK", (4, 3)), torch.ones(3, 3, 4)),
    ("pil-La-unconvertible", Image.new("La", (4, 3)), (ValueError, r"cannot convert a PIL image of mode La to RGB")),
    # numpy
    ("numpy-uint16", RAMP16, gray_rgb(RAMP16 / 65535)),
    ("numpy-uint16-big-endian", np.repeat(RAMP16[..., None], 3, 2).astype(">u2"), gray_rgb(RAMP16 / 65535)),
    ("numpy-int64", RAMP16.astype(np.int64), (TypeError, r"expected uint8, uint16 or float .* got int64")),
    ("numpy-7-channels", np.zeros((9, 10, 7), np.uint8), (ValueError, r"4 channels .*shape \(9, 10, 7\)$")),
    ("numpy-channels-first", np.zeros((3, 9, 10), np.uint8), (ValueError, r"looks channels-first")),
    ("numpy-read-only-HxW", read_only(np.full((9, 10), 255, np.uint8)), torch.ones(3, 9, 10)),
    ("numpy-float-nan", np.full((9, 10), np.nan, np.float32), (ValueError, r"expected finite values")),
    ("numpy-float-0-255", np.full((9, 10, 3), 200.0), (ValueError, r"float images must be in \[0, 1\]")),
    ("numpy-empty", np.zeros((0, 5, 3), np.uint8), (ValueError, r"non-empty image, got shape \(0, 5, 3\)")),
    ("tensor-HxWxC", torch.zeros(9, 10, 3), (ValueError, r"looks HxWxC")),
    ("none", None, (TypeError, r"got None")),
    ("bytes", b"abc", (TypeError, r"got bytes")),
    # files (item 8: a directory is said to be one)
    ("file-directory", lambda f: f["dir"], (ValueError, r"a_dir is a directory, not a file")),
    ("file-missing", lambda f: f["missing"], (FileNotFoundError, r"no.png not found")),
    ("file-garbage", lambda f: f["garbage.png"], (ValueError, r"cannot decode image file .*garbage.png")),
    ("file-zero-bytes", lambda f: f["empty.png"], (ValueError, r"cannot decode image file .*empty.png")),
]


@pytest.mark.parametrize("image, expected", [pytest.param(i, e, id=n) for n, i, e in IMAGES])
def test_image(files, image, expected):
    image = image(files) if callable(image) else image
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # e.g. torch's warning on a read-only array, PIL's on palette transparency
        if isinstance(expected, tuple):
            with pytest.raises(expected[0], match=expected[1]) as info:
                to_tensor(image)
            assert "\n" not in str(info.value)
        else:
            out = to_tensor(image)
            assert out.dtype == torch.float32 and out.shape == expected.shape
            torch.testing.assert_close(out, expected.float(), atol=1e-6, rtol=0)


# (id, image shape, box, warned): a region under 8 px on a side is detected on with a warning (item 8)
SMALL = [
    ("1x1-image", (1, 1, 3), None, True),
    ("7x30-image", (7, 30, 3), None, True),
    ("8x8-image", (8, 8, 3), None, False),
    ("4x4-box", (64, 64, 3), (10, 10, 4, 4), True),
]


@pytest.mark.parametrize("shape, box, warned", [pytest.param(*c[1:], id=c[0]) for c in SMALL])
def test_tiny_region_warns(shape, box, warned, caplog):
    with caplog.at_level(logging.WARNING, logger="lkdetect.images"):
        _, region = load_region(np.zeros(shape, np.uint8), box)
    messages = [r.getMessage() for r in caplog.records if r.name == "lkdetect.images"]
    assert region[2:] == (box[2:] if box else (shape[1], shape[0]))
    kind = "box" if box else "image"
    text = f"image: detecting on a {region[2]}x{region[3]} {kind}, smaller than 8 px on a side: its keypoints carry"
    assert messages == ([f"{text} little information"] if warned else [])


def test_16bit_png_detects_like_its_float_image(files, capsys):
    """Item 3 end to end: the keypoints of a 16-bit PNG are those of its exact [0, 1] float image (not of white)."""
    assert cli(["detect", str(files["gray16.png"]), "--weights", str(files["weights"])]) == 0
    xy = np.array(json.loads(capsys.readouterr().out)["results"][0]["xy"])
    det = Detector.load(files["weights"])
    np.testing.assert_allclose(xy, det.detect((RAMP16 / 65535).astype(np.float32)).xy, atol=1e-9)
    assert np.abs(xy - det.detect(np.full((12, 10), 255, np.uint8)).xy).max() > 1e-3  # white gives other keypoints


# --------------------------------------------------------------------------------------- weights and checkpoints
LOADERS = {
    "detector-weights": Detector.load,
    "gan-weights": gan.load_generator,
    "detector-checkpoint": load_checkpoint,
    "gan-checkpoint": load_state,
}
REFUSED = r"refused by torch's safe loader: it holds more than tensors and plain data"
NOT_SAFETENSORS = r"is not a readable safetensors file"
EMPTY, TORN = r"the file is empty \(0 bytes\)", r"not a readable torch file \(RuntimeError: PytorchStreamReader"
IS_DIR, MISSING = r"a_dir is a directory, not a file", r"no.png not found"
# (loader, file, exception, pattern); every message names the file, is one line, and never advises weights_only=False
# fmt: off
FILES = [
    ("detector-weights", "pickle.safetensors", CheckpointError, NOT_SAFETENSORS),  # a malicious pickle, renamed
    ("detector-weights", "pickle.pt", CheckpointError, NOT_SAFETENSORS),
    ("detector-weights", "empty.safetensors", CheckpointError, NOT_SAFETENSORS),
    ("detector-weights", "truncated.safetensors", CheckpointError, NOT_SAFETENSORS),
    ("detector-weights", "text.pt", CheckpointError, NOT_SAFETENSORS),
    ("detector-weights", "dir", ValueError, IS_DIR),
    ("detector-weights", "missing", FileNotFoundError, MISSING),
    ("gan-weights", "pickle.safetensors", GanCheckpointError, NOT_SAFETENSORS),
    ("gan-weights", "pickle.pt", GanCheckpointError, NOT_SAFETENSORS),
    ("gan-weights", "empty.safetensors", GanCheckpointError, NOT_SAFETENSORS),
    ("gan-weights", "truncated.safetensors", GanCheckpointError, NOT_SAFETENSORS),
    ("gan-weights", "text.pt", GanCheckpointError, NOT_SAFETENSORS),
    ("gan-weights", "dir", GanCheckpointError, IS_DIR),
    ("gan-weights", "missing", GanCheckpointError, MISSING),
    ("detector-checkpoint", "pickle.pt", CheckpointError, REFUSED),
    ("detector-checkpoint", "pickle.safetensors", CheckpointError, r"not a readable torch file \(SafetensorError"),
    ("detector-checkpoint", "empty.pt", CheckpointError, EMPTY),
    ("detector-checkpoint", "truncated.pt", CheckpointError, TORN),
    ("detector-checkpoint", "text.pt", CheckpointError, REFUSED + r" \(Unsupported operand 110\)"),
    ("detector-checkpoint", "good.pt", CheckpointError, r"is not an lkdetect detector training checkpoint"),
    ("detector-checkpoint", "dir", CheckpointError, IS_DIR),
    ("detector-checkpoint", "missing", FileNotFoundError, MISSING),
    ("gan-checkpoint", "pickle.pt", GanCheckpointError, REFUSED),
    ("gan-checkpoint", "pickle.safetensors", GanCheckpointError, r"not a readable torch file \(SafetensorError"),
    ("gan-checkpoint", "empty.pt", GanCheckpointError, EMPTY),
    ("gan-checkpoint", "truncated.pt", GanCheckpointError, TORN),
    ("gan-checkpoint", "text.pt", GanCheckpointError, REFUSED + r" \(Unsupported operand 110\)"),
    ("gan-checkpoint", "good.pt", GanCheckpointError, r"is not an lkdetect GAN training checkpoint"),
    ("gan-checkpoint", "dir", GanCheckpointError, IS_DIR),
    ("gan-checkpoint", "missing", FileNotFoundError, MISSING),
]
# fmt: on


@pytest.mark.parametrize("loader, name, error, pattern", [pytest.param(*c, id=f"{c[0]}-{c[1]}") for c in FILES])
def test_weights_and_checkpoint_files(files, loader, name, error, pattern):
    path = files.get(name) or files["dir"].parent / name
    with pytest.raises(error, match=pattern) as info:
        LOADERS[loader](path)
    message = str(info.value)
    assert "\n" not in message and str(path) in message and "weights_only" not in message
    assert not files["sentinel"].exists()  # nothing was unpickled


# ---------------------------------------------------------------------------------------------------- CLI
def _cuda_gone(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)


DEVICE_LINE = r"device cuda is not available on this machine; available: cpu"
# (id, argv (formatted with the files), exit status, stderr pattern); stderr is one line "lkdetect CMD: error: ..."
CLI = [
    ("detect-device-cuda", "detect {gray16_png} --weights {weights} --device cuda", 2, DEVICE_LINE),
    ("video-device-cuda", "video {gray16_png} --weights {weights} --device cuda", 2, DEVICE_LINE),
    ("train-gan-device-cuda", "train-gan --data {dir} --out {dir}/g --preset tiny --device cuda", 2, DEVICE_LINE),
    (
        "train-detector-device-cuda",
        "train-detector --gan {gan} --out {dir}/d --preset tiny --device cuda",
        2,
        DEVICE_LINE,
    ),
    ("detect-device-nonsense", "detect {gray16_png} --weights {weights} --device gpu0", 2, r"expected a device such"),
    ("detect-directory", "detect {dir} --weights {weights}", 2, r"a_dir is a directory, not a file"),
    ("detect-missing", "detect {missing} --weights {weights}", 2, r"no.png not found"),
    ("detect-weights-pickle", "detect {gray16_png} --weights {pickle_safetensors}", 2, NOT_SAFETENSORS),
    ("detect-weights-directory", "detect {gray16_png} --weights {dir}", 2, r"detector weights .*a_dir is a directory"),
    ("detect-unknown-weights-name", "detect {gray16_png} --weights nosuch", 2, r"no shipped detector 'nosuch'"),
    ("detect-bad-box", "detect {gray16_png} --weights {weights} --box 1,2,3", 2, r"--box expects X,Y,W,H"),
    (
        "set-batch-size-abc-detector",
        "train-detector --out {dir}/d --preset tiny --set train.batch_size=abc --dry-run",
        2,
        r"train.batch_size expects int, got 'abc' \(str\)$",
    ),
    (
        "set-batch-size-abc-gan",
        "train-gan --data {dir} --out {dir}/g --preset tiny --set train.batch_size=abc --dry-run",
        2,
        r"train.batch_size expects int, got 'abc' \(str\)$",
    ),
    (
        "set-tuple-wrong",
        "train-detector --out {dir}/d --preset tiny --set augment.scale=(1,2,3) --dry-run",
        2,
        r"augment.scale expects tuple\[float, float\], got \(1, 2, 3\)",
    ),
    (
        "set-bool-wrong",
        "train-gan --data {dir} --out {dir}/g --preset tiny --set train.flip=1 --dry-run",
        2,
        r"train.flip expects bool, got 1 \(int\)",
    ),
    (
        "set-unknown-section",
        "train-detector --out {dir}/d --set foo.bar=1 --dry-run",
        2,
        r"error: override 'foo.bar' must look like",
    ),  # no stray quotes around a KeyError's message
    ("set-unknown-key", "train-detector --out {dir}/d --set train.nope=1 --dry-run", 2, r"error: unknown TrainConfig"),
    ("unknown-preset", "train-detector --out {dir}/d --preset huge --dry-run", 2, r"error: unknown preset 'huge'"),
]


@pytest.mark.parametrize("argv, status, pattern", [pytest.param(*c[1:], id=c[0]) for c in CLI])
def test_cli(files, argv, status, pattern, capsys, monkeypatch):
    _cuda_gone(monkeypatch)
    names = {k.replace(".", "_"): str(v) for k, v in files.items()}
    assert cli(argv.format(**names).split()) == status
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and re.search(pattern, err[0]), err
    assert err[0].startswith(f"lkdetect {argv.split()[0]}: error: ") and "weights_only" not in err[0]


def test_detector_load_on_a_missing_device_is_a_value_error(files, monkeypatch):
    _cuda_gone(monkeypatch)
    for device in ("cuda", "cuda:1"):
        with pytest.raises(ValueError, match=rf"device {device} is not available on this machine; available: cpu"):
            Detector.load(files["weights"], device=device)
    assert Detector.load(files["weights"], device="auto").device.type == "cpu"


@pytest.fixture
def run_with(files, tmp_path):
    """A run directory whose checkpoint.pt is one of the bad files."""

    def make(name: str) -> Path:
        run = tmp_path / name.replace(".", "_")
        run.mkdir()
        shutil.copy(files[name], run / "checkpoint.pt")
        return run

    return make


@pytest.mark.parametrize(
    "name, pattern",
    [
        pytest.param("pickle.pt", REFUSED, id="pickle"),
        pytest.param("empty.pt", r"the file is empty \(0 bytes\)", id="zero-bytes"),
        pytest.param("truncated.pt", r"not a readable torch file", id="truncated"),
    ],
)
def test_cli_refuses_bad_checkpoints_in_one_line(files, run_with, name, pattern, capsys):
    """Item 6: detector export and GAN resume print one line (the file, why), never torch's unsafe advice."""
    run = run_with(name)
    images = files["dir"].parent / "imgs"
    images.mkdir(exist_ok=True)
    Image.fromarray(np.zeros((40, 40, 3), np.uint8)).save(images / "a.png")
    commands = [
        ["train-detector", "--out", str(run), "--export", str(run / "x.safetensors")],
        ["train-detector", "--gan", str(files["gan"]), "--out", str(run), "--resume", "--no-progress"],
        ["train-gan", "--data", str(images), "--out", str(run), "--preset", "tiny", "--resume", "--no-progress"],
    ]
    for argv in commands:
        assert cli(argv) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and str(run / "checkpoint.pt") in err[0] and re.search(pattern, err[0]), err
        assert "weights_only" not in err[0]
    assert not files["sentinel"].exists()


def test_skipped_images_warn_in_one_line_each(files, tmp_path, caplog, recwarn):
    """Item 8: each unreadable training image is one log line (no source line of the warnings module)."""
    data = tmp_path / "data"
    data.mkdir()
    for i in range(2):
        Image.fromarray(np.full((40, 40, 3), 60 * i, np.uint8)).save(data / f"{i}.png")
    (data / "bad1.png").write_bytes(b"junk")
    (data / "bad2.jpg").write_bytes(b"junk")
    argv = ["train-gan", "--data", str(data), "--out", str(tmp_path / "g"), "--preset", "tiny", "--iterations", "0"]
    with caplog.at_level(logging.WARNING):
        assert cli([*argv, "--no-progress"]) == 0
    skipped = [r.getMessage() for r in caplog.records if "skipping unreadable image" in r.getMessage()]
    assert len(skipped) == 2 and all("\n" not in m and "load_training_images" not in m for m in skipped), skipped
    assert not [w for w in recwarn if "skipping" in str(w.message)]  # logged, not printed by warnings


# ---------------------------------------------------------------------------------------------------- videos
cv2 = pytest.importorskip("cv2")


class _ConstantDetector:
    """Stands in for the network: the video path is under test, not the keypoints."""

    def detect_batch(self, images, boxes=None, bgr=False):
        from lkdetect.keypoints import Keypoints

        return Keypoints(np.zeros((len(images), 2, 2)), np.ones((len(images), 2)), ("a", "b"))


def _write(path: Path, fourcc: str, n: int = 40) -> Path:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*fourcc), 10.0, (64, 48))
    for i in range(n):
        writer.write(np.full((48, 64, 3), (i * 37) % 256, np.uint8))
    writer.release()
    return path


def _truncate(src: Path, dst: Path, keep: int | float) -> Path:
    data = src.read_bytes()
    dst.write_bytes(data[: keep if isinstance(keep, int) else int(len(data) * keep)])
    return dst


def _real_video(tmp_path: Path) -> Path:
    src = DATA / "video" / "face_pexels.mp4"
    if not src.is_file():
        pytest.skip(f"{src} not found")
    return _truncate(src, tmp_path / "face_300k.mp4", 300_000)


# (id, make(tmp_path) -> video, extra args, exit status, frames written, announced frames or None)
VIDEOS = [
    ("avi-complete", lambda t: _write(t / "v.avi", "MJPG"), [], 0, 40, None),
    ("avi-truncated", lambda t: _truncate(_write(t / "v.avi", "MJPG"), t / "cut.avi", 0.5), [], 1, None, 40),
    (
        "avi-truncated-allowed",
        lambda t: _truncate(_write(t / "v.avi", "MJPG"), t / "cut.avi", 0.5),
        ["--allow-partial"],
        0,
        None,
        40,
    ),
    ("mkv-truncated", lambda t: _truncate(_write(t / "v.mkv", "mp4v"), t / "cut.mkv", 0.5), [], 1, None, 40),
    (
        "avi-truncated-max-frames",
        lambda t: _truncate(_write(t / "v.avi", "MJPG"), t / "cut.avi", 0.5),
        ["--max-frames", "3"],
        0,
        3,
        None,
    ),
    ("mp4-real-face-300kB", _real_video, [], 1, 79, 472),
    ("mp4-real-face-300kB-allowed", _real_video, ["--allow-partial"], 0, 79, 472),
]


@pytest.mark.parametrize("make, extra, status, written, announced", [pytest.param(*c[1:], id=c[0]) for c in VIDEOS])
def test_video_partial_input(tmp_path, monkeypatch, caplog, make, extra, status, written, announced):
    """Item 2: a file that ends early keeps its JSON lines, warns with both counts, and exits 1 unless allowed."""
    monkeypatch.setattr(commands, "load_engine", lambda args: _ConstantDetector())
    video, js = make(tmp_path), tmp_path / "kp.jsonl"
    with caplog.at_level(logging.INFO):
        assert cli(["video", str(video), "--json", str(js), "--no-progress", *extra]) == status
    lines = [json.loads(line) for line in js.read_text().splitlines()]  # every line written is whole
    n = len(lines)
    assert [d["index"] for d in lines] == list(range(n)) and 0 < n and (written is None or n == written)
    partial = [r.getMessage() for r in caplog.records if "frames its container announces" in r.getMessage()]
    if announced is None:
        assert partial == []
    else:
        assert (
            partial
            == [f"{video}: read {n} of the {announced} frames its container announces (truncated or corrupt file?)"]
            and n < announced
        )
        failed = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
        assert failed == (
            []
            if status == 0
            else [
                f"partial input: {n} of {announced} frames (what was written is "
                "kept); --allow-partial accepts it (exit 0)"
            ]
        )


@pytest.mark.parametrize(
    "make, pattern",
    [
        pytest.param(
            lambda t: _truncate(_write(t / "v.mp4", "mp4v"), t / "cut.mp4", 0.5),
            r"cannot read .*cut.mp4 as a video",
            id="mp4-truncated-index-at-end",
        ),
        pytest.param(
            lambda t: _truncate(_write(t / "v.avi", "MJPG"), t / "cut.avi", 100),
            r"cannot read .*cut.avi as a video|no frames could be read",
            id="avi-header-only",
        ),
        pytest.param(lambda t: t, r"is a directory, not a video file", id="directory"),
        pytest.param(lambda t: t / "none.mp4", r"no such video file", id="missing"),
    ],
)
def test_video_unreadable(tmp_path, monkeypatch, capsys, make, pattern):
    monkeypatch.setattr(commands, "load_engine", lambda args: _ConstantDetector())
    assert cli(["video", str(make(tmp_path)), "--json", str(tmp_path / "kp.jsonl"), "--no-progress"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and re.search(pattern, err[0]), err


# ------------------------------------------------------------------------------------ detector training resume
def _stats(run: Path) -> list[tuple]:
    return [
        tuple([r["step"], *sorted(set(r) - {"time", "images_per_s", "shard_seconds"})])
        for r in map(json.loads, (run / "stats.jsonl").read_text().splitlines())
    ]


def test_detector_resume_trims_stats_to_the_checkpoint(files, tmp_path, caplog):
    """Item 5: after a kill that logged past the checkpoint (and tore the last line), the resumed run's stats equal
    an uninterrupted run's: no step twice, the shard drawn right after the checkpoint once."""
    cfg = get_config("tiny", {"train.shard_every": 3})  # a shard is drawn at step 3, just after the checkpoint
    DetectorTrainer(cfg, files["gan"], tmp_path / "one").fit(6, progress=False)
    DetectorTrainer(cfg, files["gan"], tmp_path / "two").fit(3, progress=False)
    shutil.copy(tmp_path / "two" / "checkpoint.pt", tmp_path / "step3.pt")
    DetectorTrainer(cfg, files["gan"], tmp_path / "two", resume=True).fit(5, progress=False)  # ... then killed:
    shutil.copy(tmp_path / "step3.pt", tmp_path / "two" / "checkpoint.pt")  # its last checkpoint was at step 3
    with open(tmp_path / "two" / "stats.jsonl", "a") as f:
        f.write('{"time": 1.0, "step": 6, "lo')
    with caplog.at_level(logging.WARNING):
        DetectorTrainer(cfg, files["gan"], tmp_path / "two", resume=True).fit(6, progress=False)
    assert _stats(tmp_path / "two") == _stats(tmp_path / "one")
    assert [s[0] for s in _stats(tmp_path / "one") if "loss" in s] == [1, 2, 3, 4, 5, 6]
    assert any(re.search(r"stats.jsonl: dropping its torn last line \d+", r.getMessage()) for r in caplog.records)


def test_detector_resume_keeps_saved_settings_then_overrides(files, tmp_path, capsys, caplog):
    """Item 5: --resume takes the run's config.json, then --set on top, and rewrites config.json (as train-gan)."""
    run = tmp_path / "run"
    base = ["train-detector", "--gan", str(files["gan"]), "--out", str(run), "--no-progress"]
    assert (
        cli([*base, "--preset", "tiny", "--set", "train.lr=0.005", "--set", "train.log_every=3", "--iterations", "3"])
        == 0
    )
    assert cli([*base, "--resume", "--set", "train.iterations=5", "--set", "train.log_every=1"]) == 0  # no --preset
    saved = json.loads((run / "config.json").read_text())
    assert saved["train"]["lr"] == 0.005 and saved["train"]["iterations"] == 5 and saved["train"]["log_every"] == 1
    assert saved["network"] == get_config("tiny").to_dict()["network"]
    assert json.loads(load_checkpoint(run / "checkpoint.pt")["release_metadata"])["training"]["iterations"] == 5
    with caplog.at_level(logging.WARNING):  # a preset on resume is ignored (it would replace the run's settings)
        assert cli([*base, "--resume", "--preset", "tiny", "--iterations", "6"]) == 0
    assert json.loads((run / "config.json").read_text())["train"]["lr"] == 0.005
    assert any("--preset tiny ignored" in r.getMessage() for r in caplog.records)
    capsys.readouterr()
    assert cli([*base, "--resume", "--set", "network.head_channels=64", "--dry-run"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.endswith(
        "--resume keeps the run's network configuration; a new --out is needed to change {'head_channels': 64}"
    )
    assert cli([*base, "--resume", "--set", "train.lr=fast", "--dry-run"]) == 2
    assert "train.lr expects float, got 'fast' (str)" in capsys.readouterr().err
