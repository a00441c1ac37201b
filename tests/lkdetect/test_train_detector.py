"""Detector training on GAN pairs: augmentation geometry, config, train + exact resume, overfitting, export, CLI."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch
from PIL import Image

import gan
from lkdetect import Detector
from lkdetect.cli import main as cli
from lkdetect.errors import CheckpointError
from lkdetect.network import KeypointNet
from lkdetect.training.augment import Augmenter
from lkdetect.training.config import AugmentConfig, get_config, parse_overrides
from lkdetect.training.flip import add_flip_permutation
from lkdetect.training.pairs import GanPairs
from lkdetect.training.pseudo_labels import load_or_make, real_images
from lkdetect.training.trainer import DetectorTrainer, export_weights, lr_at
from lkdetect.weights import file_sha256, load_weights, make_metadata, save_weights


@pytest.fixture(scope="module")
def gan_file(tmp_path_factory):
    """A tiny untrained GAN (32 px, K=4) whose keypoints spread over the image (kp_divisor 1)."""
    torch.manual_seed(0)
    g = gan.Generator(gan.get_config("tiny", {"model.kp_divisor": 1.0}).model)
    path = tmp_path_factory.mktemp("gan") / "g.safetensors"
    gan.save_generator(path, g, {"step": 0})
    return path


def blob_image(x: float, y: float, size: int = 64, sigma: float = 2.5) -> np.ndarray:
    gy, gx = np.mgrid[:size, :size]
    g = np.exp(-((gx - x) ** 2 + (gy - y) ** 2) / (2 * sigma**2))
    return np.repeat((g * 255).round().astype(np.uint8)[..., None], 3, axis=2)


def test_augmented_keypoints_follow_the_image():
    geometry_only = AugmentConfig(p_affine=1.0, p_color=0, p_gray=0, p_blur=0, p_noise=0, p_jpeg=0)
    aug = Augmenter(geometry_only)
    points = np.array([[[40.0, 22.0]], [[25.5, 33.0]], [[30.0, 41.2]]], np.float32)
    images = np.stack([blob_image(*p[0]) for p in points])
    out_images, out_points = aug(images, points, seed=3)
    gy, gx = np.mgrid[:64, :64]
    moved = 0
    for im, p, p0 in zip(out_images, out_points, points):
        w = im[..., 0].astype(float)
        centroid = np.array([(w * gx).sum() / w.sum(), (w * gy).sum() / w.sum()])
        np.testing.assert_allclose(p[0], centroid, atol=0.1)  # same pixel-centre convention as the image
        moved += np.linalg.norm(p[0] - p0[0]) > 1
    assert moved >= 2  # the geometry did change


def test_augmentation_is_reproducible_from_the_seed():
    aug = Augmenter(AugmentConfig())
    images = np.random.default_rng(0).integers(0, 256, (4, 32, 32, 3), dtype=np.uint8)
    kps = np.full((4, 2, 2), 16.0, np.float32)
    a, b, c = aug(images, kps, seed=5), aug(images, kps, seed=5), aug(images, kps, seed=6)
    assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])
    assert not np.array_equal(a[0], c[0])


def test_config_presets_overrides_and_schedule():
    cfg = get_config("tiny", parse_overrides(["train.lr=0.01", "network.backbone=resnet18"]))
    assert cfg.train.lr == 0.01 and cfg.network.backbone == "resnet18" and cfg.train.batch_size == 8
    with pytest.raises(KeyError, match="unknown TrainConfig keys"):
        get_config("tiny", {"train.lrr": 1})
    with pytest.raises(KeyError, match="unknown preset"):
        get_config("huge")
    with pytest.raises(ValueError, match="upsample must divide"):
        get_config("tiny", {"network.upsample": 3})
    c = get_config("cpu")
    assert lr_at(c, 0) == pytest.approx(c.train.lr / c.train.warmup)
    assert lr_at(c, c.train.warmup) == pytest.approx(c.train.lr)
    assert lr_at(c, c.train.iterations) == pytest.approx(c.train.lr * c.train.final_lr_fraction)


def test_gan_pairs_resize_keeps_keypoints_exact(gan_file):
    native, resized = GanPairs(gan_file), GanPairs(gan_file, size=64)
    im32, kp32 = native.get(0, 0, 3)
    im64, kp64 = resized.get(0, 0, 3)
    assert im32.shape == (3, 32, 32, 3) and im64.shape == (3, 64, 64, 3) and im64.dtype == np.uint8
    np.testing.assert_allclose(kp64, (kp32 + 0.5) * 2 - 0.5, atol=1e-5)
    assert native.num_keypoints == 4 and len(native.sha256) == 64


def test_train_then_resume_equals_one_run(gan_file, tmp_path):
    cfg = get_config("tiny")
    one = DetectorTrainer(cfg, gan_file, tmp_path / "one")
    one.fit(6, progress=False)
    two = DetectorTrainer(cfg, gan_file, tmp_path / "two")
    two.fit(3, progress=False)
    with pytest.raises(Exception, match="--resume"):
        DetectorTrainer(cfg, gan_file, tmp_path / "two")
    resumed = DetectorTrainer(cfg, gan_file, tmp_path / "two", resume=True)
    assert resumed.step == 3
    resumed.fit(6, progress=False)
    for k, v in one.network.state_dict().items():
        assert torch.equal(v, resumed.network.state_dict()[k]), k
    stats = [json.loads(line) for line in (tmp_path / "one" / "stats.jsonl").read_text().splitlines()]
    assert [s["step"] for s in stats if "loss" in s] == [1, 2, 3, 4, 5, 6]
    assert any("val_error_px" in s for s in stats)
    det = Detector.load(tmp_path / "one" / "detector.safetensors")
    meta = det.metadata
    assert meta["num_keypoints"] == 4 and meta["input_size"] == [32, 32]
    assert meta["source_gan_sha256"] == GanPairs(gan_file).sha256 and meta["training"]["iterations"] == 6
    assert meta["training"]["config"]["network"]["backbone"] == "mobilenetv3_small_100"
    assert sorted(meta["flip_permutation"]) == [0, 1, 2, 3] and len(meta["flip_match_px"]) == 4  # for mirrored TTA
    assert np.asarray(meta["upright_keypoints"]).shape == (4, 2)  # for upright refinement
    # older weights without them get the same pairing and reference from the same validation pairs
    net, stripped = load_weights(tmp_path / "one" / "detector.safetensors")
    dropped = ("sha256", "path", "flip_permutation", "flip_match_px", "upright_keypoints")
    stripped = {k: v for k, v in stripped.items() if k not in dropped}
    save_weights(tmp_path / "old.safetensors", net, stripped)
    added = add_flip_permutation(tmp_path / "old.safetensors", gan_file)
    assert added["flip_permutation"] == meta["flip_permutation"]
    np.testing.assert_allclose(added["upright_keypoints"], meta["upright_keypoints"], atol=2e-3)
    assert Detector.load(tmp_path / "old.safetensors").metadata["flip_match_px"] == meta["flip_match_px"]
    out = export_weights(tmp_path / "one", tmp_path / "exported.safetensors")
    assert np.allclose(
        Detector.load(out).detect(np.zeros((32, 32, 3), np.uint8)).xy, det.detect(np.zeros((32, 32, 3), np.uint8)).xy
    )


def test_overfits_a_fixed_set_of_gan_pairs(gan_file, tmp_path):
    cfg = get_config(
        "tiny",
        {
            "augment.enabled": False,
            "train.lr": 3e-3,
            "train.warmup": 10,
            "train.iterations": 150,
            "train.heatmap_weight": 0.0,
        },
    )
    trainer = DetectorTrainer(cfg, gan_file, tmp_path / "run")
    images, kps = trainer.pairs.get(0, 0, 16)
    x = torch.from_numpy(images).permute(0, 3, 1, 2).float() / 255
    y = torch.from_numpy(kps)

    def error() -> float:
        trainer.network.eval()
        with torch.no_grad():
            return float((trainer.network(x)[0] - y).norm(dim=-1).mean())

    before = error()
    for _ in range(150):
        trainer.train_step(x, y)
    after = error()
    assert before > 4.0  # keypoints spread over the 32 px image; an untrained net predicts near the centre
    assert after < 0.15 * before and after < 1.5, (before, after)  # measured: 14.5 px -> 0.8 px


def test_cli_train_detector_dry_run_resume_and_export(gan_file, tmp_path, capsys):
    assert (
        cli(
            ["train-detector", "--out", str(tmp_path / "r"), "--preset", "tiny", "--dry-run", "--set", "train.lr=0.005"]
        )
        == 0
    )
    assert json.loads(capsys.readouterr().out)["train"]["lr"] == 0.005
    base = ["train-detector", "--gan", str(gan_file), "--out", str(tmp_path / "r"), "--preset", "tiny", "--no-progress"]
    assert cli(base + ["--iterations", "2"]) == 0
    assert cli(base + ["--iterations", "4", "--resume", "--export", str(tmp_path / "x.safetensors")]) == 0
    assert Detector.load(tmp_path / "x.safetensors").metadata["training"]["iterations"] == 4
    assert cli(base + ["--iterations", "2"]) == 2  # exists without --resume: a one-line error
    assert "--resume" in capsys.readouterr().err
    assert cli(["train-detector", "--out", str(tmp_path / "r")]) == 2


@pytest.fixture(scope="module")
def teacher_and_real(gan_file, tmp_path_factory):
    """A briefly trained tiny detector (the teacher) and a folder of 10 real-like images of another size."""
    root = tmp_path_factory.mktemp("selftrain")
    DetectorTrainer(get_config("tiny"), gan_file, root / "teacher").fit(3, progress=False)
    real = root / "real"
    real.mkdir()
    rng = np.random.default_rng(0)
    for i in range(10):
        Image.fromarray(rng.integers(0, 256, (40, 48, 3), dtype=np.uint8)).save(real / f"{i}.png")
    return root / "teacher" / "detector.safetensors", real


def test_self_training_mixes_gan_pairs_with_teacher_labelled_real_images(gan_file, teacher_and_real, tmp_path):
    shared_teacher, real = teacher_and_real
    teacher = tmp_path / "teacher.safetensors"
    shutil.copy(shared_teacher, teacher)
    cfg = get_config("tiny", {"train.init": str(teacher), "train.real_data": str(real), "augment.enabled": False})
    trainer = DetectorTrainer(cfg, gan_file, tmp_path / "student")
    teacher_net, _ = load_weights(teacher)
    for k, v in teacher_net.state_dict().items():  # starts from the teacher's weights
        assert torch.equal(v, trainer.network.state_dict()[k]), k
    # the labels are the teacher's own test-time-augmented detections of the real images (no annotation exists)
    images = real_images(real, 32)
    assert images.shape == (10, 32, 32, 3)
    expected = Detector.load(teacher, tta=True).detect_batch(images)
    np.testing.assert_allclose(trainer.real.keypoints, expected.xy, atol=1e-4)
    assert not np.allclose(trainer.real.keypoints, Detector.load(teacher).detect_batch(images).xy, atol=1e-3)

    x, y = trainer.batch()  # batch 8, real_fraction 0.5: 4 GAN pairs, then 4 real images with their labels
    assert trainer.n_real == 4 and x.shape == (8, 3, 32, 32)
    shard_images, shard_kps = trainer.shard()
    as_u8 = (x.permute(0, 2, 3, 1) * 255).round().to(torch.uint8).numpy()
    for row in range(8):
        pool, labels = (shard_images, shard_kps) if row < 4 else (images, trainer.real.keypoints)
        j = [i for i in range(len(pool)) if np.array_equal(pool[i], as_u8[row])]
        assert len(j) == 1, row
        np.testing.assert_allclose(y[row].numpy(), labels[j[0]])

    trainer.fit(4, progress=False)
    meta = Detector.load(tmp_path / "student" / "detector.safetensors").metadata["training"]
    sha = file_sha256(teacher)
    assert meta["real_images"] == 10 and meta["teacher_sha256"] == sha and meta["init_sha256"] == sha
    assert meta["teacher_tta"] is True and meta["real_data"] == str(real) and "real images" in meta["source"]
    teacher.unlink()  # resuming needs only the stored labels, not the teacher file
    resumed = DetectorTrainer(cfg, gan_file, tmp_path / "student", resume=True)
    assert resumed.step == 4 and resumed.init_sha256 == sha and resumed.real.teacher_sha256 == sha
    np.testing.assert_array_equal(resumed.real.keypoints, trainer.real.keypoints)


def test_self_training_teacher_can_refine(gan_file, teacher_and_real, tmp_path):
    teacher, real = teacher_and_real
    over = {"train.init": str(teacher), "train.real_data": str(real), "train.teacher_refine": 3.0}
    trainer = DetectorTrainer(get_config("tiny", over), gan_file, tmp_path / "s")
    images = real_images(real, 32)
    expected = Detector.load(teacher, tta=True, refine=3.0).detect_batch(images)
    np.testing.assert_allclose(trainer.real.keypoints, expected.xy, atol=1e-4)
    assert not np.allclose(trainer.real.keypoints, Detector.load(teacher, tta=True).detect_batch(images).xy, atol=1e-3)
    trainer.fit(1, progress=False)
    assert Detector.load(tmp_path / "s" / "detector.safetensors").metadata["training"]["teacher_refine"] == 3.0
    # the stored labels are not reused under other teacher options
    with pytest.raises(CheckpointError, match="teacher options"):
        load_or_make(tmp_path / "s", real, 32, teacher, range(4), tta=True, refine=0.0)
    with pytest.raises(ValueError, match="teacher_refine"):
        get_config("tiny", {**over, "train.teacher_refine": -1.0})


def test_distillation_a_teacher_of_another_network_labels_the_real_images(gan_file, teacher_and_real, tmp_path):
    """train.teacher other than train.init (how the shipped `faces_small` learns from `faces`): the student keeps
    its own network and starts from its init weights, the labels are the other network's detections."""
    student_init, real = teacher_and_real
    wide = get_config("tiny", {"network.head_channels": 32, "network.head_depth": 2})
    DetectorTrainer(wide, gan_file, tmp_path / "wide").fit(2, progress=False)
    teacher = tmp_path / "wide" / "detector.safetensors"
    over = {"train.init": str(student_init), "train.teacher": str(teacher), "train.real_data": str(real)}
    trainer = DetectorTrainer(get_config("tiny", {**over, "train.real_fraction": 0.75}), gan_file, tmp_path / "s")
    init_net, _ = load_weights(student_init)
    for k, v in init_net.state_dict().items():
        assert torch.equal(v, trainer.network.state_dict()[k]), k
    images = real_images(real, 32)
    np.testing.assert_allclose(
        trainer.real.keypoints, Detector.load(teacher, tta=True).detect_batch(images).xy, atol=1e-4
    )
    assert not np.allclose(trainer.real.keypoints, Detector.load(student_init, tta=True).detect_batch(images).xy)
    assert trainer.n_real == 6  # 0.75 of a batch of 8
    trainer.fit(1, progress=False)
    meta = Detector.load(tmp_path / "s" / "detector.safetensors").metadata["training"]
    assert meta["teacher_sha256"] == file_sha256(teacher) and meta["init_sha256"] == file_sha256(student_init)


def test_self_training_a_student_at_another_input_size(gan_file, teacher_and_real, tmp_path):
    """network.input_size other than the teacher's (how the 80 px face detector learns from the 64 px one): the
    student starts from the teacher's weights (the network takes any size), the real images and GAN pairs come at
    the student's side, and the labels are the teacher's detections in those images' pixels."""
    teacher, real = teacher_and_real
    over = {"train.init": str(teacher), "train.real_data": str(real), "network.input_size": 48}
    trainer = DetectorTrainer(get_config("tiny", over), gan_file, tmp_path / "s")
    assert trainer.network.input_size == (48, 48) and Detector.load(teacher).input_size == (32, 32)
    images = real_images(real, 48)
    np.testing.assert_allclose(
        trainer.real.keypoints, Detector.load(teacher, tta=True).detect_batch(images).xy, atol=1e-4
    )
    small = Detector.load(teacher, tta=True).detect_batch(real_images(real, 32)).xy
    assert np.abs(trainer.real.keypoints - small * 1.5).mean() < np.abs(trainer.real.keypoints - small).mean()
    x, y = trainer.batch()
    assert x.shape == (8, 3, 48, 48) and y.shape == (8, 4, 2)
    trainer.fit(1, progress=False)
    assert Detector.load(tmp_path / "s" / "detector.safetensors").input_size == (48, 48)


def test_self_training_on_several_real_folders(gan_file, teacher_and_real, tmp_path):
    teacher, real = teacher_and_real
    other = tmp_path / "more"
    other.mkdir()
    for i in range(3):
        Image.fromarray(np.full((36, 36, 3), 40 * i, np.uint8)).save(other / f"{i}.png")
    # a list given on the command line (--set train.real_data="['A', 'B']") arrives as a Python literal
    over = parse_overrides([f"train.real_data={[str(real), str(other)]!r}", f"train.init={teacher}"])
    cfg = get_config("tiny", over)
    assert cfg.train.real_data == (str(real), str(other))
    trainer = DetectorTrainer(cfg, gan_file, tmp_path / "s")
    np.testing.assert_array_equal(trainer.real.images, np.concatenate([real_images(real, 32), real_images(other, 32)]))
    trainer.fit(1, progress=False)
    meta = Detector.load(tmp_path / "s" / "detector.safetensors").metadata["training"]
    assert meta["real_images"] == 13 and meta["real_data"] == [str(real), str(other)]
    twice = get_config("tiny", {**over, "train.real_data": (str(real), str(real))})
    with pytest.raises(ValueError, match="twice"):
        DetectorTrainer(twice, gan_file, tmp_path / "t")
    with pytest.raises(ValueError, match="empty folder name"):
        get_config("tiny", {**over, "train.real_data": (str(real), "")})
    with pytest.raises(TypeError, match="train.real_data"):
        get_config("tiny", {**over, "train.real_data": 3})


def test_self_training_a_detector_that_keeps_some_gan_keypoints(gan_file, teacher_and_real, tmp_path):
    """train.init a subset detector (lkdetect keep-keypoints; the shipped birds detector keeps GAN keypoints 2, 3,
    6, 9): the GAN pairs and the teacher's labels carry those keypoints, in that order, and the student says so."""
    from lkdetect.training.keep_keypoints import keep_keypoints

    full, real = teacher_and_real
    subset = tmp_path / "k31.safetensors"
    keep_keypoints(full, [3, 1], subset)
    over = {"train.init": str(subset), "train.real_data": str(real), "train.teacher_tta": False}
    trainer = DetectorTrainer(get_config("tiny", over), gan_file, tmp_path / "s")
    assert trainer.cfg.train.keep_keypoints == (3, 1) and trainer.pairs.num_keypoints == 2
    _, shard_kps = trainer.shard()
    np.testing.assert_array_equal(shard_kps, GanPairs(gan_file).get(0, 0, len(shard_kps))[1][:, [3, 1]])
    images = real_images(real, 32)
    np.testing.assert_allclose(trainer.real.keypoints, Detector.load(subset).detect_batch(images).xy, atol=1e-4)
    trainer.fit(1, progress=False)
    meta = Detector.load(tmp_path / "s" / "detector.safetensors").metadata
    assert meta["training"]["keypoint_subset"]["kept"] == [3, 1] and meta["keypoint_names"] == ["kp3", "kp1"]
    # resumed from its saved config; a subset of that subset still names GAN keypoints
    assert DetectorTrainer(trainer.cfg, gan_file, tmp_path / "s", resume=True).pairs.keypoints == [3, 1]
    keep_keypoints(tmp_path / "s" / "detector.safetensors", [1], tmp_path / "k1.safetensors")
    assert Detector.load(tmp_path / "k1.safetensors").metadata["training"]["keypoint_subset"]["kept"] == [1]

    # a teacher of all K labels the student's keypoints only
    over_full = {**over, "train.teacher": str(full)}
    labelled = DetectorTrainer(get_config("tiny", over_full), gan_file, tmp_path / "t").real.keypoints
    np.testing.assert_allclose(labelled, Detector.load(full).detect_batch(images).xy[:, [3, 1]], atol=1e-4)
    # a teacher that lacks one of them, another subset than the init's, an index the GAN lacks
    with pytest.raises(CheckpointError, match=r"\[3\] missing"):
        load_or_make(tmp_path / "u", real, 32, tmp_path / "k1.safetensors", [3, 1], tta=False)
    with pytest.raises(CheckpointError, match="keep_keypoints asks"):
        DetectorTrainer(get_config("tiny", {**over, "train.keep_keypoints": (1, 3)}), gan_file, tmp_path / "v")
    with pytest.raises(ValueError, match="cannot keep"):
        DetectorTrainer(get_config("tiny", {"train.keep_keypoints": (0, 4)}), gan_file, tmp_path / "w")
    with pytest.raises(ValueError, match="distinct"):
        get_config("tiny", parse_overrides(["train.keep_keypoints=1,1"]))


def test_self_training_bad_settings(gan_file, teacher_and_real, tmp_path):
    teacher, real = teacher_and_real
    with pytest.raises(ValueError, match="teacher"):
        get_config("tiny", {"train.real_data": str(real)})
    for fraction in (0.0, 1.0, 0.01):
        with pytest.raises(ValueError, match="real_fraction"):
            get_config(
                "tiny", {"train.init": str(teacher), "train.real_data": str(real), "train.real_fraction": fraction}
            )
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ValueError, match="no images"):
        DetectorTrainer(
            get_config("tiny", {"train.init": str(teacher), "train.real_data": str(empty)}), gan_file, tmp_path / "a"
        )
    other = KeypointNet("mobilenetv3_small_100", 3, (32, 32), stride=8, upsample=2, head_channels=16, head_depth=1)
    save_weights(tmp_path / "k3.safetensors", other, make_metadata(other))
    with pytest.raises(CheckpointError, match="train.init"):
        DetectorTrainer(get_config("tiny", {"train.init": str(tmp_path / "k3.safetensors")}), gan_file, tmp_path / "b")
    # stored labels of one teacher are not reused with another
    cfg = get_config("tiny", {"train.init": str(teacher), "train.real_data": str(real)})
    DetectorTrainer(cfg, gan_file, tmp_path / "c").fit(1, progress=False)
    with pytest.raises(CheckpointError, match="another teacher"):
        load_or_make(tmp_path / "c", real, 32, tmp_path / "k3.safetensors", range(4))


def test_a_broken_gan_file_is_both_an_lkdetect_and_a_gan_checkpoint_error(tmp_path):
    """lkdetect loads GANs through training.gan_weights: ``except lkdetect.CheckpointError`` catches a broken GAN
    file (issue 23), and ``except gan.CheckpointError`` still does."""
    import gan
    import lkdetect
    from lkdetect.training.gan_weights import load_gan

    bad = tmp_path / "g.safetensors"
    bad.write_bytes(b"not safetensors")
    with pytest.raises(lkdetect.CheckpointError, match="not a readable safetensors file"):
        load_gan(bad)
    with pytest.raises(gan.CheckpointError, match="not a readable safetensors file"):
        load_gan(bad)
    with pytest.raises(lkdetect.CheckpointError, match="not a readable safetensors file"):
        GanPairs(bad)
