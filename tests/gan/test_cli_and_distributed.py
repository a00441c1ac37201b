"""``lkdetect train-gan`` end to end, its errors, and the data-parallel run under torchrun (gloo, 2 CPU processes)."""

import json
import logging
import os
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from lkdetect.cli import main


@pytest.fixture
def image_dir(tmp_path):
    rng = np.random.default_rng(0)
    d = tmp_path / "imgs"
    d.mkdir()
    for i in range(8):
        Image.fromarray(rng.integers(0, 255, (40, 40, 3), dtype=np.uint8)).save(d / f"{i}.png")
    return d


def test_train_gan_cli_and_resume(image_dir, tmp_path, capsys):
    out = tmp_path / "run"
    args = ["train-gan", "--data", str(image_dir), "--preset", "tiny", "--out", str(out), "--no-progress"]
    assert main(args + ["--iterations", "4"]) == 0
    assert (out / "checkpoint.pt").is_file() and (out / "generator_ema.safetensors").is_file()
    # running again without --resume must not overwrite the run
    assert main(args + ["--iterations", "4"]) == 2
    assert "--resume" in capsys.readouterr().err
    assert main(args + ["--iterations", "6", "--resume"]) == 0
    steps = [json.loads(x)["step"] for x in (out / "stats.jsonl").read_text().splitlines()]
    assert max(steps) == 6


def test_dry_run_prints_resolved_config(image_dir, tmp_path, capsys):
    assert (
        main(
            [
                "train-gan",
                "--data",
                str(image_dir),
                "--out",
                str(tmp_path / "r"),
                "--preset",
                "tiny",
                "--set",
                "model.tau=0.03",
                "--dry-run",
            ]
        )
        == 0
    )
    cfg = json.loads(capsys.readouterr().out)
    assert cfg["model"]["tau"] == 0.03
    assert not (tmp_path / "r").exists()


def test_clear_errors(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    assert main(["train-gan", "--data", str(tmp_path / "empty"), "--out", str(tmp_path / "r"), "--preset", "tiny"]) == 2
    assert "no images" in capsys.readouterr().err
    assert main(["train-gan", "--data", str(tmp_path), "--out", str(tmp_path / "r"), "--set", "model.bogus=1"]) == 2
    assert "bogus" in capsys.readouterr().err


def test_torchrun_two_cpu_processes_gloo(image_dir, tmp_path):
    out = tmp_path / "ddp"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node",
        "2",
        "-m",
        "lkdetect.cli",
        "train-gan",
        "--data",
        str(image_dir),
        "--preset",
        "tiny",
        "--out",
        str(out),
        "--no-progress",
        "--iterations",
        "4",
    ]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, proc.stderr[-3000:]
    import torch

    state = torch.load(out / "checkpoint.pt", weights_only=True)
    assert state["world"] == 2 and state["step"] == 4 and len(state["rng"]) == 2
    # the two ranks drew different batches: their generator states differ
    assert not torch.equal(state["rng"][0], state["rng"][1])


def test_train_gan_resume_keeps_saved_settings_then_overrides(image_dir, tmp_path, capsys):
    """The --resume --set rule of both trainers (train-detector's twin is in tests/test_bad_input.py): --resume takes
    the run's config.json, --set applies on top, --preset is not used, model changes are refused."""
    out = tmp_path / "run"
    base = ["train-gan", "--data", str(image_dir), "--out", str(out), "--no-progress"]
    assert main([*base, "--preset", "tiny", "--set", "train.lr_g=0.005", "--iterations", "2"]) == 0
    capsys.readouterr()
    assert main([*base, "--preset", "cpu64", "--resume", "--set", "train.log_every=1", "--dry-run"]) == 0
    resolved = json.loads(capsys.readouterr().out)
    saved = json.loads((out / "config.json").read_text())
    assert resolved["train"]["lr_g"] == 0.005 and resolved["train"]["log_every"] == 1
    assert resolved["model"] == saved["model"]  # the tiny run's model, not cpu64's
    assert main([*base, "--resume", "--set", "model.tau=0.5", "--dry-run"]) == 2
    assert "model configuration" in capsys.readouterr().err


def test_train_gan_on_two_folders_records_both(image_dir, tmp_path, caplog):
    import torch

    from gan.checkpoint import load_generator
    from gan.release import release

    rng = np.random.default_rng(1)
    second = tmp_path / "more"
    second.mkdir()
    for i in range(3):
        Image.fromarray(rng.integers(0, 255, (40, 40, 3), dtype=np.uint8)).save(second / f"{i}.png")
    out = tmp_path / "run"
    args = ["train-gan", "--data", str(image_dir), "--data", str(second), "--preset", "tiny", "--out", str(out)]
    with caplog.at_level(logging.INFO, logger="gan.data"):
        assert main([*args, "--no-progress", "--iterations", "2"]) == 0
    both = [str(image_dir.resolve()), str(second.resolve())]
    assert f"11 training images from 2 data folders ({image_dir}: 8, {second}: 3)" in caplog.text
    assert torch.load(out / "checkpoint.pt", weights_only=True)["data"] == both
    assert load_generator(out / "generator_ema.safetensors")[1]["data"] == both
    w = release(out, "toy", "two folders", out=tmp_path / "weights", n_pairs=4)
    assert load_generator(w)[1]["data"] == both
    assert f"| data folders | `{both[0]}`; `{both[1]}` |" in (tmp_path / "weights" / "toy_gan.md").read_text()
    # resuming on other data continues, with a warning, and records the data it now trains on
    caplog.clear()
    one = ["train-gan", "--data", str(image_dir), "--out", str(out), "--no-progress", "--iterations", "3", "--resume"]
    assert main(one) == 0
    assert f"was trained on {both}; it continues on {both[0]}" in caplog.text
    assert torch.load(out / "checkpoint.pt", weights_only=True)["data"] == both[0]  # one root: a string


def test_train_gan_resumes_a_checkpoint_that_recorded_no_data(image_dir, tmp_path):
    import torch

    out = tmp_path / "run"
    args = ["train-gan", "--data", str(image_dir), "--preset", "tiny", "--out", str(out), "--no-progress"]
    assert main([*args, "--iterations", "2"]) == 0
    state = torch.load(out / "checkpoint.pt", weights_only=True)
    assert state.pop("data") == str(image_dir.resolve())
    torch.save(state, out / "checkpoint.pt")  # as written before the data was recorded
    assert main([*args, "--iterations", "3", "--resume"]) == 0
    state = torch.load(out / "checkpoint.pt", weights_only=True)
    assert state["step"] == 3 and state["data"] == str(image_dir.resolve())


def test_train_gan_minutes_stops_by_time_with_a_checkpoint(image_dir, tmp_path, monkeypatch):
    """--minutes (for a lent machine): the run stops at the deadline, checkpointed, long before its iterations."""
    import gan.loop

    clock = {"t": 1000.0}

    def fake_time():
        clock["t"] += 1.0  # every clock read is one second later
        return clock["t"]

    monkeypatch.setattr(gan.loop.time, "time", fake_time)
    out = tmp_path / "run"
    args = ["train-gan", "--data", str(image_dir), "--preset", "tiny", "--out", str(out), "--no-progress"]
    assert main(args + ["--iterations", "100000", "--minutes", "0.5"]) == 0
    state = json.loads((out / "config.json").read_text())
    assert state["train"]["iterations"] == 20  # the tiny preset's: --minutes changes no setting
    steps = [json.loads(x)["step"] for x in (out / "stats.jsonl").read_text().splitlines()]
    assert 0 < max(steps) < 30  # 30 s of a clock that ticks at least once a step
    from gan.checkpoint import load_generator

    assert load_generator(out / "generator_ema.safetensors")[1]["step"] == max(steps)
    assert main(args + ["--resume", "--minutes", "0"]) == 2  # not > 0: a usage error


def test_deadline_after_refuses_a_limit_that_is_no_limit():
    """One time-limit rule for train-gan and train-detector --minutes: None is no deadline, 0 or less an error."""
    import math
    import time

    from gan.loop import deadline_after

    assert deadline_after(None) == math.inf
    assert 59 < deadline_after(1) - time.time() <= 60
    for bad in (0, -1.0, float("nan")):
        with pytest.raises(ValueError, match="minutes must be > 0"):
            deadline_after(bad)
