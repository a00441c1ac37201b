"""The state file of an ``lkdetect learn`` run (``learn.json``): its settings and where each stage stands.

Written atomically (temp file + rename) at the start and end of every stage, so a kill leaves the previous state.
A stage is ``running`` (started; its own checkpoint, if any, tells how far) or ``done`` (its output is complete).
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from ..weights import atomic_write
from .plan import STAGES, Settings

STATE = "learn.json"
FORMAT = "lkdetect-learn"
VERSION = 1


class RunState:
    """``learn.json`` of a run directory.

    Args:
        run_dir: the run directory.
        settings: the run's settings.
        stages: stage name -> {"status": "running" | "done", "seconds": ..., and the stage's results}.
    """

    def __init__(self, run_dir: Path, settings: Settings, stages: dict[str, dict[str, Any]] | None = None):
        self.run_dir = Path(run_dir)
        self.settings = settings
        self.stages: dict[str, dict[str, Any]] = stages or {}

    @property
    def path(self) -> Path:
        return self.run_dir / STATE

    def done(self, stage: str) -> bool:
        return self.stages.get(stage, {}).get("status") == "done"

    def pending(self) -> list[str]:
        return [s for s in STAGES if not self.done(s)]

    def result(self, stage: str) -> dict[str, Any]:
        return self.stages.get(stage, {})

    def start(self, stage: str) -> None:
        self.stages[stage] = {**self.stages.get(stage, {}), "status": "running", "started": round(time.time())}
        self.save()

    def finish(self, stage: str, seconds: float, **results: Any) -> None:
        self.stages[stage] = {"status": "done", "seconds": round(seconds, 1), **results}
        self.save()

    def save(self) -> None:
        d = {"format": FORMAT, "version": VERSION, "settings": self.settings.to_dict(), "stages": self.stages}
        text = json.dumps(d, indent=2)
        atomic_write(self.path, lambda tmp: Path(tmp).write_text(text))

    @classmethod
    def load(cls, run_dir: str | Path) -> RunState:
        """Read a run's state.

        Raises:
            ValueError: no learn.json (nothing to resume), or one that is not an lkdetect learn state.
        """
        path = Path(run_dir) / STATE
        if not path.is_file():
            raise ValueError(f"--resume: {path} not found, so {run_dir} is no lkdetect learn run to continue")
        try:
            d = json.loads(path.read_text())
        except json.JSONDecodeError as e:
            raise ValueError(f"{path} is not valid JSON ({e})") from e
        if not isinstance(d, dict) or d.get("format") != FORMAT:
            raise ValueError(f"{path} is not an lkdetect learn state (format {FORMAT!r})")
        if int(d.get("version", 0)) > VERSION:
            raise ValueError(f"{path}: state version {d['version']} is newer than this lkdetect ({VERSION})")
        return cls(Path(run_dir), Settings.from_dict(d["settings"]), d.get("stages") or {})


def check_new_run(run_dir: Path) -> None:
    """A new run needs a missing or empty directory: never write over earlier work.

    Raises:
        ValueError: ``run_dir`` is a file, or a directory that is not empty.
    """
    if run_dir.exists() and not run_dir.is_dir():
        raise ValueError(f"--out {run_dir} is a file, not a directory")
    if run_dir.is_dir() and any(run_dir.iterdir()):
        what = "an lkdetect learn run" if (run_dir / STATE).exists() else "not empty"
        raise ValueError(
            f"--out {run_dir} is {what}: pass --resume to continue it, or choose a new --out (nothing was changed)"
        )
