"""``lkdetect gan-compare``: train-gan runs side by side at one snapshot step, from their stats.jsonl rows."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from gan.compare import compare, format_table
from lkdetect.cli import main as cli


def fake_run(path: Path, steps: list[int], batch: int = 32, central: float = 0.9, metrics: bool = True) -> Path:
    """A run directory with a config.json and snapshot rows at ``steps`` (plus loss rows between them)."""
    path.mkdir(parents=True)
    (path / "config.json").write_text(json.dumps({"model": {}, "train": {"batch_size": batch}}))
    lines = []
    for s in steps:
        lines.append({"time": 1.0, "step": s - 1, "images": (s - 1) * batch, "loss_g": 1.0})
        row = {
            "time": 2.0,
            "step": s,
            "diag": {
                "kp_spread_min": s / 100,
                "kp_spread_mean": s / 50,
                "kp_central": central,
                "kp_extent": 7.5,
                "kp_layout": 0.45,
                "locality": 0.4,
                "locality_chance": 0.05,
            },
        }
        if metrics:
            row["metrics"] = {"app_share_region": 0.9, "bg_share_region": 0.25, "swap_locality_ratio": 8.0, "cpd": 0.3}
        lines.append(row)
    (path / "stats.jsonl").write_text("".join(json.dumps(r) + "\n" for r in lines))
    return path


def test_compares_at_the_last_common_step_with_images_seen(tmp_path):
    a = fake_run(tmp_path / "a", [500, 1000, 1500])
    b = fake_run(tmp_path / "b", [500, 1000], central=0.5, metrics=False)
    step, rows = compare([a, b])
    assert step == 1000 and [r["images_seen"] for r in rows] == [32_000, 32_000]
    assert rows[0]["kp_spread_min"] == 10.0 and rows[0]["locality_ratio"] == pytest.approx(8.0)
    assert rows[1]["kp_central"] == 0.5 and rows[1]["app_share_region"] is None  # not logged: no value
    table = format_table(step, rows)
    assert "| 32,000 | 10.0 | 20.0 | 0.90 | 7.5 | 0.45 | 8.0 | 0.90 | 0.25 | 8.0 | 0.30 | - | - |" in table
    assert "batch sizes differ" not in table
    assert compare([a, b], step=500)[1][0]["kp_spread_min"] == 5.0


def test_bad_input_exits_2_with_one_line(tmp_path, capsys):
    a = fake_run(tmp_path / "a", [500, 1000])
    b = fake_run(tmp_path / "b", [600], batch=64)
    assert cli(["gan-compare", str(a), str(b)]) == 2
    assert "share no snapshot step; pass --step" in capsys.readouterr().err
    assert cli(["gan-compare", str(a), str(b), "--step", "500"]) == 2
    assert "has no snapshot at step 500 (it has 600..600, 1 steps)" in capsys.readouterr().err
    assert cli(["gan-compare", str(a), str(tmp_path / "missing")]) == 2
    assert "is not a train-gan run directory" in capsys.readouterr().err
    c = fake_run(tmp_path / "c", [600], batch=32)
    assert cli(["gan-compare", str(b), str(c), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["step"] == 600 and [r["images_seen"] for r in out["runs"]] == [38_400, 19_200]
    assert cli(["gan-compare", str(b), str(c)]) == 0
    assert "batch sizes differ" in capsys.readouterr().out
