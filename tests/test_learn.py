"""``lkdetect learn``: end to end on generated images with the tiny preset, the result in both engines, the report,
the dry run, refusing to write over a run, bad folders, kill -9 and --resume, and the snapshot rule."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import load_file

from lkdetect import Detector
from lkdetect.cli import main as cli
from lkdetect.learn.select import choose, score_row
from lkdetect.network import KeypointNet
from lkdetect.weights import file_sha256, make_metadata, save_weights

REPO = Path(__file__).resolve().parents[1]
# 120 GAN iterations with snapshots every 40: candidates at 80 and 120; the default 6 detector iterations
ARGS = ["--preset", "tiny", "--gan-iterations", "120", "--set", "train.sample_every=40", "--threads", "1"]
ARGS += ["--no-progress"]


def write_images(folder: Path, n: int = 20, size: tuple[int, int] = (40, 48), seed: int = 0) -> Path:
    """``n`` PNGs (width, height = ``size``): a coloured disk at a random place on a dark background."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    w, h = size
    yy, xx = np.mgrid[:h, :w]
    for i in range(n):
        a = np.full((h, w, 3), 40, np.uint8)
        cx, cy, r = rng.uniform(0.3 * w, 0.7 * w), rng.uniform(0.3 * h, 0.7 * h), 0.2 * min(w, h)
        a[(xx - cx) ** 2 + (yy - cy) ** 2 < r * r] = rng.integers(100, 255, 3)
        Image.fromarray(a).save(folder / f"{i:02d}.png")
    return folder


@pytest.fixture(scope="module")
def images(tmp_path_factory) -> Path:
    return write_images(tmp_path_factory.mktemp("data") / "images")


@pytest.fixture(scope="module")
def learned(tmp_path_factory, images) -> Path:
    """A finished learn run (in this process, one thread)."""
    run = tmp_path_factory.mktemp("learn") / "run"
    assert cli(["learn", "--data", str(images), "--out", str(run), *ARGS]) == 0
    return run


def state(run: Path) -> dict:
    return json.loads((run / "learn.json").read_text())


def test_end_to_end_every_stage_done_and_the_chosen_snapshot_kept(learned):
    st = state(learned)
    assert [s for s, v in st["stages"].items() if v["status"] == "done"] == [
        "gan",
        "select",
        "detector",
        "selftrain",
        "flip",
        "export",
        "report",
    ]
    assert st["stages"]["gan"]["iterations"] == 120 and st["stages"]["gan"]["images_seen"] == 120 * 4
    assert st["stages"]["detector"]["iterations"] == 6
    assert st["stages"]["selftrain"]["iterations"] == 4 and st["stages"]["selftrain"]["real_images"] == 20
    select = st["stages"]["select"]
    assert [c["step"] for c in select["candidates"]] == [80, 120]  # the second half only
    assert select["rule"] == "last" and select["step"] == 120  # the default: the last snapshot (scores logged)
    assert all({"score", "alive", "kp_central"} <= set(c) for c in select["candidates"])
    # the chosen snapshot's weights are the learn result's GAN, and the only snapshot file left
    kept = sorted((learned / "gan" / "snapshots").glob("*.safetensors"))
    assert [p.name for p in kept] == [f"step_{select['step']:07d}.safetensors"]
    assert (learned / "gan.safetensors").read_bytes() == kept[0].read_bytes()
    det = Detector.load(learned)
    assert det.num_keypoints == 4 and tuple(det.input_size) == (32, 32)
    assert det.metadata["flip_permutation"] == st["stages"]["flip"]["flip_permutation"]
    assert det.metadata["training"]["gan_file"] == "gan.safetensors"
    # the result is the self-trained detector: it learned from the 20 images, labelled by the detector stage's
    # weights with mirrored TTA and refinement, and started from them
    training = det.metadata["training"]
    teacher_sha = file_sha256(learned / "detector" / "detector.safetensors")
    assert training["real_images"] == 20 and training["teacher_tta"] is True and training["teacher_refine"] == 3.5
    assert training["teacher_sha256"] == teacher_sha == training["init_sha256"] and training["iterations"] == 4


def test_result_loads_in_pytorch_and_onnxruntime_with_the_same_keypoints(learned, images):
    from lkdetect.onnx import OnnxDetector

    photos = [np.asarray(Image.open(p).convert("RGB")) for p in sorted(images.glob("*.png"))[:6]]
    ref = Detector.load(learned).detect_batch(photos)
    by_file = Detector.load(learned / "detector.safetensors").detect_batch(photos)
    assert np.array_equal(ref.xy, by_file.xy)
    for engine in (OnnxDetector.load(learned / "detector.onnx"), OnnxDetector.load(learned)):
        np.testing.assert_allclose(engine.detect_batch(photos).xy, ref.xy, atol=1e-2)
    assert ref.xy.shape == (6, 4, 2)
    assert (ref.xy[..., 0] >= -0.5).all() and (ref.xy[..., 0] <= 39.5).all()  # inside the 40 x 48 images
    assert state(learned)["stages"]["export"]["max_diff_px"] < 1e-2


def test_report_references_its_images_and_plots(learned):
    report = learned / "report"
    page = (report / "index.html").read_text()
    refs = re.findall(r'src="([^"]+)"', page)
    assert {"samples.png", "edits.png", "real.png"} <= set(refs)
    assert len([r for r in refs if r.endswith(".svg")]) == 5
    for ref in refs:
        assert (report / ref).is_file(), ref
    step = state(learned)["stages"]["select"]["step"]
    assert f"step {step}" in page and "onnxruntime" in page
    # the tiny GAN's 32 px samples at 4x: 8 columns of 128 px tiles with 2 px gaps, two grids
    assert Image.open(report / "samples.png").size == (8 * 130 + 2, 2 * (4 * 130 + 2) + 6)
    svg = (report / "locality.svg").read_text()
    lines = dict(re.findall(r'data-series="([^"]+)" points="([^"]+)"', svg))
    assert len(lines["move locality"].split()) == 3  # snapshots at 40, 80, 120
    assert 'class="marker"' in svg
    speed = state(learned)["stages"]["report"]["speed"]
    assert speed["pytorch"]["batch64_images_per_s"] > 0 and speed["onnxruntime"]["single_ms"] > 0


def test_dry_run_prints_plan_and_estimate_and_writes_nothing(tmp_path, images, capsys):
    run = tmp_path / "run"
    assert cli(["learn", "--data", str(images), "--out", str(run), *ARGS, "--dry-run"]) == 0
    out = capsys.readouterr().out
    gan_row = re.search(r"^gan\s+120\s+4\s+480\s+(\d+) s\s+LatentKeypointGAN, K = 4, 32 px, on 20 images", out, re.M)
    assert gan_row, out
    assert re.search(r"^detector\s+6\s+8\s+48\s", out, re.M), out
    assert re.search(r"^selftrain\s+4\s+8\s+32\s+(\d+) s\s+self-training", out, re.M), out
    assert re.search(r"GAN (\d+\.\d+) s/it", out) and float(re.search(r"GAN (\d+\.\d+) s/it", out)[1]) > 0
    for stage in ("select", "flip", "export", "report", "total"):
        assert re.search(rf"^{stage}\s", out, re.M), stage
    assert not run.exists() and not list(tmp_path.rglob("*.pt"))


def test_existing_run_is_refused_without_resume_and_left_alone(learned, tmp_path, images, capsys):
    before = (learned / "learn.json").read_bytes()
    assert cli(["learn", "--data", str(images), "--out", str(learned), *ARGS]) == 2
    assert "is an lkdetect learn run: pass --resume" in capsys.readouterr().err
    assert (learned / "learn.json").read_bytes() == before
    other = tmp_path / "other"
    other.mkdir()
    (other / "notes.txt").write_text("mine")
    assert cli(["learn", "--data", str(images), "--out", str(other), *ARGS]) == 2
    assert "is not empty: pass --resume" in capsys.readouterr().err
    assert [p.name for p in other.iterdir()] == ["notes.txt"]
    assert cli(["learn", "--out", str(learned), "--resume", "--keypoints", "6"]) == 2
    assert re.search(r"these differ: --keypoints \(run: None, given: 6\)", capsys.readouterr().err)
    assert cli(["learn", "--out", str(other), "--resume"]) == 2
    assert "learn.json not found" in capsys.readouterr().err


def _garbage(tmp: Path) -> Path:
    folder = tmp / "garbage"
    folder.mkdir()
    for i in range(20):
        (folder / f"{i}.png").write_bytes(b"not a png")
    return folder


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda d: d / "missing", r"data folder .*missing does not exist"),
        (lambda d: (d / "empty").mkdir() or d / "empty", r"no images found in image folder"),
        (_garbage, r"none of the 20 image files .* is a readable image"),
        (lambda d: write_images(d / "few", n=5), r"has 5 usable images, need at least 16"),
        (
            lambda d: write_images(d / "small", size=(12, 10)),
            r"0 usable images.*20 of the 20 files are smaller than 16",
        ),
    ],
    ids=["missing", "empty", "not-images", "too-few", "too-small"],
)
def test_unusable_folders_exit_2_with_one_line(tmp_path, capsys, make, message):
    data = make(tmp_path)
    run = tmp_path / "run"
    assert cli(["learn", "--data", str(data), "--out", str(run), *ARGS]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("lkdetect learn: error: ") and re.search(message, err[0]), err
    assert not run.exists()


def start_and_signal(images: Path, run: Path, sig: int) -> tuple[int, str]:
    """Start ``lkdetect learn`` in a subprocess, send ``sig`` once the GAN's first checkpoint (step 5 of 120)
    exists; returns (exit status, stderr)."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    cmd = [sys.executable, "-m", "lkdetect.cli", "learn", "--data", str(images), "--out", str(run), *ARGS]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 60
    while not (run / "gan" / "checkpoint.pt").exists():
        assert proc.poll() is None and time.time() < deadline, proc.communicate()[1]
        time.sleep(0.02)
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=60)
    return proc.returncode, err


def test_sigterm_mid_gan_stage_checkpoints_and_exits_130(tmp_path, images):
    run = tmp_path / "run"
    code, err = start_and_signal(images, run, signal.SIGTERM)
    assert code == 130, err
    assert re.search(r"stage gan stopped at step (\d+) of 120 \(checkpointed\); continue with --resume", err), err
    assert state(run)["stages"]["gan"]["status"] == "running" and "select" not in state(run)["stages"]


def test_kill_9_mid_gan_stage_then_resume_finishes_like_an_uninterrupted_run(tmp_path, images, learned):
    run = tmp_path / "run"
    code, _ = start_and_signal(images, run, signal.SIGKILL)
    assert code == -signal.SIGKILL
    assert state(run)["stages"]["gan"]["status"] == "running"  # killed inside the stage
    assert cli(["learn", "--out", str(run), "--resume", "--threads", "1", "--no-progress"]) == 0
    st = state(run)
    assert all(v["status"] == "done" for v in st["stages"].values()) and len(st["stages"]) == 7
    assert 0 < st["stages"]["gan"]["resumed_at"] < 120  # continued from its checkpoint, not from scratch
    steps = [
        r["step"] for r in map(json.loads, (run / "gan" / "stats.jsonl").read_text().splitlines()) if "loss_d" in r
    ]
    assert steps == list(range(1, 121))  # each step logged once
    # the resumed run computes what the uninterrupted one did (exact resume of both trainers)
    a, b = load_file(str(run / "gan.safetensors")), load_file(str(learned / "gan.safetensors"))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert st["stages"]["select"]["step"] == state(learned)["stages"]["select"]["step"]
    photo = np.asarray(Image.open(next(images.glob("*.png"))).convert("RGB"))
    np.testing.assert_allclose(Detector.load(run).detect(photo).xy, Detector.load(learned).detect(photo).xy, atol=1e-4)


def row(step: int, spread_min: float = 2.0, central: float = 1.0, loc=(0.3, 0.1), swap=(0.2, 0.05), app=0.5) -> dict:
    diag = {"kp_spread_min": spread_min, "kp_central": central, "locality": loc[0], "locality_chance": loc[1]}
    metrics = {"swap_locality": swap[0], "swap_locality_chance": swap[1], "app_share_region": app}
    return {"step": step, "diag": diag, "metrics": metrics}


def test_snapshot_rule_on_known_rows():
    s = score_row(row(10, loc=(0.55, 0.1), swap=(0.24, 0.05), app=0.4), resolution=64)
    assert s.alive and s.terms["move_locality"] == pytest.approx(0.5) and s.terms["swap_locality"] == pytest.approx(0.2)
    assert s.score == pytest.approx(0.5 + 0.2 + 0.4)
    assert not score_row(row(10, spread_min=0.9), 64).alive  # below 64 / 64 px: a frozen keypoint
    assert not score_row(row(10, central=0.4), 64).alive
    records = [
        row(100, app=0.99),  # best score, but in the first half of 400 iterations
        {"step": 250, "loss_d": 1.0},  # not a snapshot row
        row(200, app=0.6),
        row(300, spread_min=0.1, app=0.9),  # dead keypoint
        row(400, app=0.6),  # ties with 200: the later wins
    ]
    best, scores = choose(records, total=400, resolution=64)
    assert [x.step for x in scores] == [200, 300, 400] and best.step == 400
    best, _ = choose([row(300, spread_min=0.1, app=0.9), row(400, spread_min=0.1, app=0.2)], 400, 64)
    assert best.step == 300  # none alive: all compete
    nometrics = {"step": 400, "diag": row(400)["diag"]}
    assert score_row(nometrics, 64).score == pytest.approx((0.3 - 0.1) / 0.9)
    with pytest.raises(ValueError, match="no snapshot"):
        choose([row(100)], 400, 64)


def test_detector_load_accepts_a_run_directory(tmp_path):
    net = KeypointNet("mobilenetv3_small_100", 3, (32, 32), stride=8, upsample=2, head_channels=8, head_depth=1)
    run = tmp_path / "run"
    save_weights(run / "detector.safetensors", net.eval(), make_metadata(net))
    image = np.random.default_rng(0).integers(0, 256, (32, 32, 3), dtype=np.uint8)
    by_dir, by_file = Detector.load(run), Detector.load(run / "detector.safetensors")
    assert np.array_equal(by_dir.detect(image).xy, by_file.detect(image).xy) and by_dir.num_keypoints == 3
    with pytest.raises(ValueError, match=r"is a directory, not a file, and holds no detector.safetensors"):
        Detector.load(tmp_path)


def test_dry_run_on_two_folders_lists_each_and_the_total(tmp_path, capsys):
    a = write_images(tmp_path / "a", n=10)
    b = write_images(tmp_path / "b", n=12, seed=1)  # each under 16 images; 22 together
    run = tmp_path / "run"
    assert cli(["learn", "--data", str(a), "--data", str(b), "--out", str(run), *ARGS, "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert re.search(r"^gan\s+120\s+4\s+480\s+\d+ s\s+LatentKeypointGAN, K = 4, 32 px, on 22 images", out, re.M), out
    lines = [x for x in out.splitlines() if x.startswith("data: ")]
    assert lines == [
        f"data: image folder {a}: 10 usable images (0 smaller than 16 px and 0 unreadable skipped)",
        f"data: image folder {b}: 12 usable images (0 smaller than 16 px and 0 unreadable skipped)",
        "data: total: 22 usable images of 22 files in 2 data folders",
    ]
    assert not run.exists()


@pytest.mark.parametrize(
    "second, message",
    [
        ("same", r"data folder .*a is given twice"),
        ("missing", r"data folder .*missing does not exist"),
        ("small", r"image folder .*small has 0 usable images, need at least 1: 20 of the 20 files are smaller"),
        ("few", r"the 2 data folders hold 10 usable images in all, need 16"),
    ],
)
def test_two_folders_bad_second_exits_2_naming_it(tmp_path, capsys, second, message):
    a = write_images(tmp_path / "a", n=5)
    other = {
        "same": tmp_path / "a",
        "missing": tmp_path / "missing",
        "small": write_images(tmp_path / "small", size=(12, 10)),
        "few": write_images(tmp_path / "few", n=5, seed=1),
    }[second]
    run = tmp_path / "run"
    assert cli(["learn", "--data", str(a), "--data", str(other), "--out", str(run), *ARGS]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and re.search(message, err[0]), err
    assert not run.exists()


def test_settings_of_one_root_and_of_several_round_trip_and_old_state_loads(tmp_path, capsys):
    from lkdetect.learn.plan import Settings
    from lkdetect.learn.state import RunState

    several = Settings(data=("/x/a", "/x/b"), preset="tiny")
    assert several.to_dict()["data"] == ["/x/a", "/x/b"]
    assert Settings.from_dict(several.to_dict()) == several and several.data_roots() == ["/x/a", "/x/b"]
    # a learn.json written before several roots were possible: data is one string
    a = write_images(tmp_path / "a", n=16)
    run = tmp_path / "run"
    run.mkdir()
    old = {"format": "lkdetect-learn", "version": 1, "settings": {"data": str(a), "preset": "tiny"}, "stages": {}}
    (run / "learn.json").write_text(json.dumps(old))
    st = RunState.load(run)
    assert st.settings.data == str(a) and st.settings.data_roots() == [str(a)]
    assert st.settings.selftrain_iterations == 0  # nor had it a self-training stage: it resumes without one
    b = write_images(tmp_path / "b", n=16, seed=1)
    resume = ["learn", "--out", str(run), "--resume", "--threads", "1"]
    assert cli([*resume, "--data", str(a), "--data", str(b), "--dry-run"]) == 2
    assert re.search(r"these differ: --data \(run: '.*a', given: \('.*a', '.*b'\)\)", capsys.readouterr().err)
    assert cli([*resume, "--data", str(a), "--dry-run"]) == 0  # one --data: the same setting as the saved string
    assert f"data: image folder {a}: 16 usable images" in capsys.readouterr().out


def test_selftrain_settings_resolve_to_the_stage_config_or_to_none(tmp_path):
    from lkdetect.learn.plan import Settings, resolve, stage_table
    from lkdetect.learn.stages import Context, final_source

    r = resolve(Settings(data=("/x/a", "/x/b"), preset="tiny", classes="4,5"))
    t = r.selftrain.train
    assert t.iterations == 4 and t.real_data == ("/x/a", "/x/b") and t.real_classes == (4, 5)
    assert t.teacher_tta and t.teacher_refine == 3.5 and t.lr == r.detector.train.lr / 4
    assert r.selftrain.network == r.detector.network
    assert resolve(Settings(data="/x/a", preset="tiny", selftrain_iterations=9)).selftrain.train.iterations == 9
    off = resolve(Settings(data="/x/a", preset="tiny", selftrain_iterations=0))
    assert off.selftrain is None and [row["what"] for row in stage_table(off, 10) if row["stage"] == "selftrain"] == [
        "off (--selftrain-iterations 0)"
    ]
    # the flip stage completes the self-trained weights, or without self-training the detector stage's
    on = Context(tmp_path, None, r, None, "cpu", False)
    assert final_source(on) == tmp_path / "selftrain" / "detector.safetensors"
    assert (
        final_source(Context(tmp_path, None, off, None, "cpu", False)) == tmp_path / "detector" / "detector.safetensors"
    )
    with pytest.raises(ValueError, match="selftrain-iterations"):
        resolve(Settings(data="/x/a", preset="tiny", selftrain_iterations=-1))
    # --selftrain-data: self-training labels other roots than the GAN's (the birds release: CUB alone)
    row = {row["stage"]: row["what"] for row in stage_table(r, 10)}["selftrain"]
    assert row.startswith("self-training: the detector labels the training images")
    only_a = resolve(Settings(data=("/x/a", "/x/b"), preset="tiny", selftrain_data="/x/a"))
    assert only_a.selftrain.train.real_data == "/x/a" and only_a.gan == r.gan
    row = {row["stage"]: row["what"] for row in stage_table(only_a, 10)}["selftrain"]
    assert row.startswith("self-training: the detector labels the images of /x/a ")
    two = Settings(data="/x/a", preset="tiny", selftrain_data=("/x/b", "/x/c"))
    assert resolve(two).selftrain.train.real_data == ("/x/b", "/x/c")
    assert Settings.from_dict(two.to_dict()) == two and Settings(data="/x/a").selftrain_roots() == ["/x/a"]


def test_learn_on_two_folders_trains_on_both_and_records_them(tmp_path, capsys):
    from gan.checkpoint import load_generator

    a, b = write_images(tmp_path / "a", n=10), write_images(tmp_path / "b", n=12, seed=1)
    run = tmp_path / "run"
    assert cli(["learn", "--data", str(a), "--data", str(b), "--out", str(run), *ARGS]) == 0
    st = state(run)
    assert st["settings"]["data"] == [str(a), str(b)] and st["stages"]["gan"]["images"] == 22
    assert load_generator(run / "gan.safetensors")[1]["data"] == [str(a), str(b)]
    assert torch.load(run / "gan" / "checkpoint.pt", weights_only=True)["data"] == [str(a), str(b)]
    assert f"<p>Data: {a}; {b}; GAN preset tiny" in (run / "report" / "index.html").read_text()
    capsys.readouterr()
    assert cli(["learn", "--out", str(run), "--resume", "--data", str(a)]) == 2  # the run's data is both folders
    assert "these differ: --data" in capsys.readouterr().err


def test_selftrain_data_labels_only_those_images_and_is_checked_up_front(tmp_path, capsys):
    a, b = write_images(tmp_path / "a", n=10), write_images(tmp_path / "b", n=17, seed=1)
    fast = ["--preset", "tiny", "--gan-iterations", "40", "--set", "train.sample_every=20", "--threads", "1"]
    fast += ["--no-progress"]
    run = tmp_path / "run"
    base = ["learn", "--data", str(a), "--data", str(b), "--out", str(run), *fast]
    assert cli([*base, "--selftrain-data", str(b), "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert f"selftrain data: image folder {b}: 17 usable images" in out
    row = rf"^selftrain\s+4\s+8\s+32\s+(\d+) s\s+self-training: the detector labels the images of {b} "
    assert re.search(row, out, re.M), out
    empty = tmp_path / "empty"
    empty.mkdir()
    assert cli([*base, "--selftrain-data", str(empty)]) == 2  # refused before the GAN trains
    assert "--selftrain-data: " in capsys.readouterr().err and not run.exists()
    assert cli([*base, "--selftrain-data", str(b), "--snapshot", "best"]) == 0
    st = state(run)
    select = st["stages"]["select"]  # --snapshot best: the highest score among the alive candidates
    pool = [c for c in select["candidates"] if c["alive"]] or select["candidates"]
    best = max(pool, key=lambda c: (c["score"], c["step"]))
    assert select["rule"] == "best" and select["step"] == best["step"]
    assert st["settings"]["selftrain_data"] == str(b) and st["stages"]["gan"]["images"] == 27
    assert st["stages"]["selftrain"]["real_images"] == 17
    training = Detector.load(run).metadata["training"]
    assert training["real_images"] == 17 and training["real_data"] == str(b)
    capsys.readouterr()
    assert cli(["learn", "--out", str(run), "--resume", "--selftrain-data", str(a)]) == 2
    assert "these differ: --selftrain-data" in capsys.readouterr().err


def test_learn_snapshot_pruning_spares_what_keep_every_keeps(tmp_path):
    import gan
    from lkdetect.learn.stages import SnapshotTrainer

    over = {"train.sample_every": 2, "train.keep_every": 4, "train.iterations": 10, "train.n_metric_pairs": 0}
    reals = torch.randint(0, 256, (16, 3, 32, 32), dtype=torch.uint8, generator=torch.Generator().manual_seed(1))
    SnapshotTrainer(gan.get_config("tiny", over), reals, tmp_path, rule="last").fit(progress=False)
    kept = sorted(p.name for p in (tmp_path / "snapshots").glob("*.safetensors"))
    assert kept == ["step_0000004.safetensors", "step_0000008.safetensors", "step_0000010.safetensors"]  # + last
