"""``evaluate`` end to end on synthetic MTFL and CUB fixtures with fake detectors, and ``lkdetect eval``."""

from __future__ import annotations

import json
import sys
import types
from pathlib import Path

import numpy as np
import pytest
from evalfixtures import ConstantDetector, OracleDetector, write_cub, write_mtfl

from evaluation import evaluate, load_benchmark
from lkdetect.keypoints import Keypoints
from lkdetect.refine import Refine


@pytest.fixture
def mtfl_root(tmp_path: Path) -> Path:
    write_mtfl(tmp_path / "mtfl", n_train=24, n_test=12)
    return tmp_path / "mtfl"


def oracle_for(name: str, root: Path, transform=None, classes=None) -> OracleDetector:
    bench = load_benchmark(name, root, classes)
    return OracleDetector(bench, bench.train + bench.test, transform)


def test_perfect_detector_scores_zero_and_writes_report(mtfl_root: Path, tmp_path: Path) -> None:
    det = oracle_for("mtfl", mtfl_root)
    out = tmp_path / "report"
    r = evaluate(det, "mtfl", mtfl_root, out=out, progress=False, batch_size=5)
    assert det.calls == 5 + 3  # ceil(24 / 5) + ceil(12 / 5): batched
    assert r["error"] == pytest.approx(0.0, abs=1e-6)
    assert r["ap"] == 1.0 and r["rows"][0]["auc@10"] > 0.99 and r["rows"][0]["failure@10"] == 0.0
    assert r["baseline"] > 5.0  # the mean shape is not a perfect prediction
    assert (r["n_train"], r["n_test"], r["num_keypoints"], r["num_landmarks"]) == (24, 12, 5, 5)
    for name in ("report.json", "report.md", "ced.png", "best_worst.png"):
        assert (out / name).stat().st_size > 0
    saved = json.loads((out / "report.json").read_text())
    assert saved["detector"] == {
        "name": "oracle",
        "sha256": "0" * 64,
        "type": "OracleDetector",
        "tta": None,
        "refine": None,
    }
    assert saved["error"] == pytest.approx(r["error"]) and saved["baseline"] == pytest.approx(r["baseline"])
    assert saved["options"]["bias"] is False and saved["options"]["ridge"] == 0.0 and saved["wall_time_s"] > 0
    assert saved["rows"][0]["n_test"] == 12 and saved["oks_sigmas"][2] == 0.026
    md = (out / "report.md").read_text()
    assert "| mtfl | 24 | 12 | 5 | 0.00 |" in md and "test-time augmentation" not in md
    det.tta = "mirror x scales 1"  # what a Detector with TTA reports
    evaluate(det, "mtfl", mtfl_root, out=out, progress=False)
    assert json.loads((out / "report.json").read_text())["detector"]["tta"] == "mirror x scales 1"
    assert "test-time augmentation: mirror x scales 1" in (out / "report.md").read_text()


def test_invertible_linear_detector_scores_zero(mtfl_root: Path) -> None:
    rng = np.random.default_rng(7)
    a = rng.normal(size=(10, 16)) * 0.2  # 5 landmarks -> K = 8 keypoints, injective linear map
    det = oracle_for("mtfl", mtfl_root, lambda uv: (uv.reshape(10) @ a).reshape(8, 2))
    r = evaluate(det, "mtfl", mtfl_root, progress=False)
    assert r["num_keypoints"] == 8 and r["error"] == pytest.approx(0.0, abs=1e-6)


def test_translation_needs_bias(mtfl_root: Path) -> None:
    det = oracle_for("mtfl", mtfl_root, lambda uv: uv + [0.3, -0.2])
    assert evaluate(det, "mtfl", mtfl_root, bias=True, progress=False)["error"] == pytest.approx(0.0, abs=1e-6)
    assert evaluate(det, "mtfl", mtfl_root, bias=False, progress=False)["error"] > 0.5


def test_uninformative_detector_equals_mean_shape_baseline(mtfl_root: Path) -> None:
    """Constant keypoints: least squares on a constant feature predicts the training mean, i.e. the baseline."""
    for bias in (False, True):
        r = evaluate(ConstantDetector(), "mtfl", mtfl_root, bias=bias, progress=False)
        assert r["error"] == pytest.approx(r["baseline"], rel=1e-9) and r["error"] > 5.0


def test_limit_and_bad_detector_output(mtfl_root: Path) -> None:
    r = evaluate(oracle_for("mtfl", mtfl_root), "mtfl", mtfl_root, limit=10, progress=False)
    assert (r["n_train"], r["n_test"], r["options"]["limit"]) == (10, 10, 10)

    class Broken:
        metadata: dict = {}

        def detect_batch(self, images, boxes=None):
            return Keypoints(np.zeros((1, 4, 2)), np.ones((1, 4)))

    with pytest.raises(ValueError, match=r"returned xy of shape \(1, 4, 2\), expected \(3, K, 2\)"):
        evaluate(Broken(), "mtfl", mtfl_root, batch_size=3, progress=False)


def test_cub_per_class_rows_and_visibility(tmp_path: Path) -> None:
    write_cub(tmp_path, classes=(1, 2, 3), per_class=24, invisible_fraction=0.25)
    det = oracle_for("cub", tmp_path, lambda uv: uv[:3], classes=[1, 2])  # K = 3: the anchor parts
    out = tmp_path / "report"
    r = evaluate(det, "cub", tmp_path, classes=[1, 2], out=out, progress=False)
    assert [row["name"] for row in r["rows"]] == ["cub-001", "cub-002", "all"]
    assert [(row["n_train"], row["n_test"]) for row in r["rows"]] == [(12, 12), (12, 12), (24, 24)]
    for row in r["rows"]:  # invisible parts are (0, 0) in the files: only per-part fits on visible ones give 0
        assert row["error"] == pytest.approx(0.0, abs=1e-4) and row["ap"] == 1.0  # parts written to 1e-6 px
        assert row["baseline"] > 5.0
    assert r["num_landmarks"] == 15 and r["options"]["classes"] == [1, 2]
    assert "| cub-002 | 12 | 12 | 3 | 0.00 |" in (out / "report.md").read_text()
    single = evaluate(det, "cub", tmp_path, classes=[2], progress=False)
    assert [row["name"] for row in single["rows"]] == ["cub-002"]


# ---------------------------------------------------------------------------------------------------------- CLI
def test_cli_end_to_end(
    mtfl_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    from lkdetect import cli
    from lkdetect.commands import eval as eval_cmd

    det = oracle_for("mtfl", mtfl_root)
    seen = {}

    def fake_loader(args):
        seen["weights"] = args.weights
        return det

    monkeypatch.setattr(eval_cmd, "load_detector", fake_loader)
    out = tmp_path / "cli_report"
    rc = cli.main(
        [
            "eval",
            "mtfl",
            "--root",
            str(mtfl_root),
            "--weights",
            "w.safetensors",
            "--out",
            str(out),
            "--batch-size",
            "7",
            "--no-progress",
        ]
    )
    assert rc == 0 and seen["weights"] == "w.safetensors"
    printed = capsys.readouterr().out
    assert "| benchmark | train | test | K | error % | mean-shape % |" in printed
    assert "| mtfl | 24 | 12 | 5 | 0.00 |" in printed
    assert json.loads((out / "report.json").read_text())["options"]["batch_size"] == 7

    rc = cli.main(["eval", "mtfl", "--root", str(mtfl_root), "--weights", "w", "--classes", "1,2"])
    assert rc == 2 and "--classes applies to cub only" in capsys.readouterr().err
    # without --weights or --onnx: the benchmark's shipped detector (faces for the face benchmarks, birds for cub)
    assert cli.main(["eval", "mtfl", "--root", str(mtfl_root), "--no-progress"]) == 0 and seen["weights"] == "faces"
    capsys.readouterr()
    write_cub(tmp_path / "cub", classes=(4,), per_class=8)
    cub_det = oracle_for("cub", tmp_path / "cub", lambda uv: uv[:3], classes=[4])
    monkeypatch.setattr(eval_cmd, "load_detector", lambda args: seen.update(weights=args.weights) or cub_det)
    assert cli.main(["eval", "cub", "--root", str(tmp_path / "cub"), "--no-progress"]) == 0
    assert seen["weights"] == "birds"
    with pytest.raises(SystemExit):
        cli.main(["eval", "mtfl", "--root", str(mtfl_root), "--weights", "w", "--onnx", "m.onnx"])


def test_cli_cub_classes_table(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture) -> None:
    from lkdetect import cli
    from lkdetect.commands import eval as eval_cmd

    write_cub(tmp_path, classes=(4, 5), per_class=24)
    det = oracle_for("cub", tmp_path, lambda uv: uv[:3], classes=[4, 5])
    monkeypatch.setattr(eval_cmd, "load_detector", lambda args: det)
    assert (
        cli.main(["eval", "cub", "--root", str(tmp_path), "--onnx", "m.onnx", "--classes", "4,5", "--no-progress"]) == 0
    )
    lines = [ln for ln in capsys.readouterr().out.splitlines() if ln.startswith("| ")]
    assert [ln.split(" | ")[:5] for ln in lines[1:]] == [
        ["| cub-004", "12", "12", "3", "0.00"],
        ["| cub-005", "12", "12", "3", "0.00"],
        ["| all", "24", "24", "3", "0.00"],
    ]


def test_load_detector_contract(monkeypatch: pytest.MonkeyPatch) -> None:
    """--weights -> Detector.load(W, device=D); --onnx -> OnnxDetector.load(M, threads=T), from lkdetect.detector /
    lkdetect.onnx, lazily; --tta and --refine are set on the detector only when given (one helper for every command)."""
    import argparse

    from lkdetect.commands import load_detector
    from lkdetect.tta import TTA

    class Loaded:
        def __init__(self, *how):
            self.how = how

    torch_mod, onnx_mod = types.ModuleType("lkdetect.detector"), types.ModuleType("lkdetect.onnx")
    torch_mod.Detector = type("Detector", (), {"load": staticmethod(lambda w, device: Loaded("torch", w, device))})
    onnx_mod.OnnxDetector = type(
        "OnnxDetector", (), {"load": staticmethod(lambda m, threads: Loaded("onnx", m, threads))}
    )
    monkeypatch.setitem(sys.modules, "lkdetect.detector", torch_mod)
    monkeypatch.setitem(sys.modules, "lkdetect.onnx", onnx_mod)
    det = load_detector(argparse.Namespace(weights="a.safetensors", onnx=None, tta=False, refine=None))
    assert det.how == ("torch", "a.safetensors", "cpu") and not hasattr(det, "tta") and not hasattr(det, "refine")
    det = load_detector(argparse.Namespace(weights=None, onnx="b.onnx", tta=True, refine=3.5, threads=2))
    assert det.how == ("onnx", "b.onnx", 2) and det.tta == TTA() and det.refine == Refine(3.5)
    det = load_detector(argparse.Namespace(weights="a", onnx=None, tta_scales=True, refine=None))
    assert det.tta == TTA(flip=False)  # --tta-scales: the scales alone
    with pytest.raises(ValueError, match="not both"):
        load_detector(argparse.Namespace(weights="a", onnx="b"))
    with pytest.raises(ValueError, match="--onnx runs on the CPU"):
        load_detector(argparse.Namespace(weights=None, onnx="b", device="cuda"))
