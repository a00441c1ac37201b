"""stats.jsonl, the training log of both trainers (one JSON object a line, as stylegan2-ada): reading it back, and
trimming it to a checkpoint on resume.

A kill during a write can leave the last line torn; readers skip it with a warning (the checkpoint is the truth).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .checkpoint import CheckpointError, atomic_write

log = logging.getLogger(__name__)


def stats_lines(path: str | Path, lines: list[str] | None = None) -> list[tuple[str, dict[str, Any]]]:
    """(line, record) of every non-empty line of a stats.jsonl; a torn last line is skipped with a warning.

    Raises:
        CheckpointError: a line other than the last is not JSON (naming the file and line).
    """
    path = Path(path)
    lines = path.read_text().splitlines() if lines is None else lines
    numbered = [(n, x) for n, x in enumerate(lines, 1) if x.strip()]
    out = []
    for i, (n, line) in enumerate(numbered):
        try:
            out.append((line, json.loads(line)))
        except json.JSONDecodeError as e:
            if i < len(numbered) - 1:
                raise CheckpointError(f"{path}:{n} is not a JSON line ({e}); remove or fix that line") from e
            log.warning("%s: dropping its torn last line %d (%s): %.80r", path, n, e, line)
    return out


def read_stats(path: str | Path) -> list[dict[str, Any]]:
    """The records of a stats.jsonl (see :func:`stats_lines`)."""
    return [r for _, r in stats_lines(path)]


def snapshot_rows(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The snapshot rows (those with keypoint diagnostics) of a stats.jsonl's records, one per step (the last one
    logged for a step wins), by step."""
    by_step = {int(r["step"]): r for r in records if "diag" in r and "step" in r}
    return [by_step[s] for s in sorted(by_step)]


def truncate_stats(path: str | Path, keep: Callable[[dict[str, Any]], bool]) -> None:
    """Rewrite a stats.jsonl (atomically) with only the records ``keep`` accepts, e.g. those up to the checkpoint a
    run resumes from, so that a killed run's steps past it do not appear twice; a torn last line is dropped with a
    warning (:func:`stats_lines`). Nothing happens when the file does not exist or keeps every line.

    Raises:
        CheckpointError: a line other than the last is not JSON.
    """
    path = Path(path)
    if not path.exists():
        return
    lines = path.read_text().splitlines()
    kept = [line for line, record in stats_lines(path, lines) if keep(record)]
    if len(kept) != len(lines):
        atomic_write(path, lambda tmp: Path(tmp).write_text("".join(k + "\n" for k in kept)))
