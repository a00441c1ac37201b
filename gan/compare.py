"""Compare train-gan runs at equal images seen: the label-free rows each run logs at its snapshots (``stats.jsonl``:
keypoint diagnostics of :mod:`gan.diagnostics`, swap metrics of :mod:`gan.metrics`, realism when
``train.n_realism`` > 0), side by side at one step.

    lkdetect gan-compare runs/a runs/b [--step N] [--json]

Without ``--step`` the last snapshot step that every run has logged is used, so that runs still training compare at
equal progress. Each row names the images seen at that step (step x the run's batch size, from its config.json):
runs of different batch sizes are flagged, since equal steps are then not equal images.
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path
from typing import Any

from .stats import read_stats, snapshot_rows

# (header, section, key, format): the columns of the table, read from a snapshot row of stats.jsonl
COLUMNS: tuple[tuple[str, str, str, str], ...] = (
    ("spread min px", "diag", "kp_spread_min", "{:.1f}"),
    ("spread mean px", "diag", "kp_spread_mean", "{:.1f}"),
    ("central", "diag", "kp_central", "{:.2f}"),
    ("extent px", "diag", "kp_extent", "{:.1f}"),
    ("layout", "diag", "kp_layout", "{:.2f}"),
    ("move loc x", "diag", "locality_ratio", "{:.1f}"),
    ("appearance", "metrics", "app_share_region", "{:.2f}"),
    ("background", "metrics", "bg_share_region", "{:.2f}"),
    ("swap loc x", "metrics", "swap_locality_ratio", "{:.1f}"),
    ("CPD", "metrics", "cpd", "{:.2f}"),
    ("KID x1000", "metrics", "kid_x1000", "{:.1f}"),
    ("C2ST", "metrics", "c2st_acc", "{:.2f}"),
)


def run_snapshots(run_dir: str | Path) -> dict[int, dict[str, Any]]:
    """step -> the snapshot row (:func:`gan.stats.snapshot_rows`) of a train-gan run.

    Raises:
        FileNotFoundError: ``run_dir`` has no stats.jsonl.
    """
    path = Path(run_dir) / "stats.jsonl"
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: {run_dir} is not a train-gan run directory")
    return {int(r["step"]): r for r in snapshot_rows(read_stats(path))}


def batch_size(run_dir: str | Path) -> int | None:
    """The run's batch size from its config.json (None when it cannot be read)."""
    try:
        return int(json.loads((Path(run_dir) / "config.json").read_text())["train"]["batch_size"])
    except (OSError, KeyError, TypeError, ValueError):
        return None


def values(row: dict[str, Any]) -> dict[str, float | None]:
    """The table's values of one snapshot row (None where the run did not log it)."""
    diag = dict(row.get("diag") or {})
    loc, chance = diag.get("locality"), diag.get("locality_chance")
    if isinstance(loc, (int, float)) and isinstance(chance, (int, float)) and chance > 0:
        diag["locality_ratio"] = loc / chance
    sections = {"diag": diag, "metrics": row.get("metrics") or {}}
    out: dict[str, float | None] = {}
    for _, section, key, _ in COLUMNS:
        v = sections[section].get(key)
        out[key] = float(v) if isinstance(v, (int, float)) and math.isfinite(v) else None
    return out


def compare(run_dirs: list[str | Path], step: int | None = None) -> tuple[int, list[dict[str, Any]]]:
    """The step compared and one record per run: ``run``, ``step``, ``batch_size``, ``images_seen`` and the values.

    Args:
        run_dirs: train-gan run directories.
        step: the snapshot step; None = the last step every run has logged.

    Raises:
        ValueError: no run given, a run without snapshot rows, no step common to all, or ``step`` missing in a run
            (naming the steps it has).
    """
    if not run_dirs:
        raise ValueError("give at least one train-gan run directory")
    rows = {str(d): run_snapshots(d) for d in run_dirs}
    for d, r in rows.items():
        if not r:
            raise ValueError(f"{d}: no snapshot row in its stats.jsonl yet (train.sample_every)")
    if step is None:
        common = set.intersection(*(set(r) for r in rows.values()))
        if not common:
            raise ValueError("the runs share no snapshot step; pass --step")
        step = max(common)
    out = []
    for d, r in rows.items():
        if step not in r:
            have = sorted(r)
            raise ValueError(f"{d} has no snapshot at step {step} (it has {have[0]}..{have[-1]}, {len(have)} steps)")
        b = batch_size(d)
        out.append(
            {"run": d, "step": step, "batch_size": b, "images_seen": None if b is None else b * step, **values(r[step])}
        )
    return step, out


def format_table(step: int, records: list[dict[str, Any]]) -> str:
    """A markdown table of :func:`compare`'s records (``-`` where a run did not log a value)."""
    header = ["run", "images seen", *(c[0] for c in COLUMNS)]
    lines = [f"snapshot step {step}", "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for r in records:
        cells = [r["run"], "-" if r["images_seen"] is None else f"{r['images_seen']:,}"]
        cells += ["-" if r[key] is None else fmt.format(r[key]) for _, _, key, fmt in COLUMNS]
        lines.append("| " + " | ".join(cells) + " |")
    sizes = {r["batch_size"] for r in records}
    if len(sizes) > 1:
        lines.append(f"note: batch sizes differ ({sorted(sizes, key=str)}): equal steps are not equal images")
    return "\n".join(lines)


def add_arguments(ap: argparse.ArgumentParser) -> None:
    ap.add_argument("runs", nargs="+", help="train-gan run directories (their stats.jsonl and config.json)")
    ap.add_argument("--step", type=int, default=None, help="snapshot step (default: the last one all runs have)")
    ap.add_argument("--json", action="store_true", help="one JSON object instead of a table")


def run(args: argparse.Namespace) -> int:
    step, records = compare(args.runs, args.step)
    print(json.dumps({"step": step, "runs": records}) if args.json else format_table(step, records))
    return 0
