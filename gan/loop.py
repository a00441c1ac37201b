"""The training loop shared by the GAN trainer (:mod:`gan.train`) and the detector trainer (lkdetect's training).

One ``next_step`` per iteration (minGPT ``Trainer``): a tqdm bar from the current step, SIGTERM/SIGINT routed to a
graceful stop, wall time of the steps, an images/s window, a record in stats.jsonl every ``log_every`` steps, the
trainer's evaluation every ``eval_every`` steps, and an atomic checkpoint every ``checkpoint_every`` steps or
``checkpoint_minutes``, on a stop and at the end. What a step, a record, an evaluation and a checkpoint are is the
trainer's (:class:`Trainee`).
"""

from __future__ import annotations

import contextlib
import math
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol


@dataclass(frozen=True)
class Schedule:
    """When the loop stops, logs, evaluates and checkpoints."""

    total: int  # stop when this many steps are done in total
    batch_size: int  # images per step (for images/s)
    log_every: int  # a stats.jsonl record every this many steps and at ``total``
    eval_every: int  # the trainer's evaluation every this many steps and at ``total``
    checkpoint_every: int  # a checkpoint every this many steps ...
    checkpoint_minutes: float  # ... or after this many minutes since the last one
    deadline: float = math.inf  # stop at this ``time.time()``


class Trainee(Protocol):
    """What :func:`fit_loop` needs of a trainer."""

    step: int  # steps done; ``next_step`` advances it
    images_seen: int
    wall_time: float  # seconds spent in steps; the loop adds to it
    stop_requested: bool  # set by ``request_stop``; the loop leaves after the current step

    def request_stop(self) -> None: ...

    def next_step(self) -> dict[str, float]:
        """One training step on a fresh batch; returns its statistics."""
        ...

    def step_record(self, stats: dict[str, float]) -> dict[str, Any]:
        """The fields of a step's stats.jsonl record after step, images and images_per_s."""
        ...

    def progress_postfix(self, stats: dict[str, float], images_per_s: float) -> dict[str, str]: ...

    def periodic_eval(self) -> None: ...

    def before_final_save(self) -> None: ...

    def save(self) -> None: ...

    def log_stats(self, record: dict[str, Any]) -> None:
        """Append a record to stats.jsonl."""
        ...


def fit_loop(trainer: Trainee, schedule: Schedule, desc: str, progress: bool = True) -> None:
    """Train ``trainer`` until ``schedule.total`` steps, a stop request or the deadline; checkpoint on the way.

    Args:
        trainer: the trainer (its step counter may start above 0 on resume).
        schedule: when to stop, log, evaluate and checkpoint.
        desc: the progress bar's label.
        progress: show a tqdm progress bar.
    """
    s = schedule
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=s.total, initial=trainer.step, unit="it", dynamic_ncols=True, desc=desc)
    old_handlers = install_stop_handlers(trainer.request_stop)
    last_ckpt, window_t, window_n = time.time(), time.time(), 0
    try:
        while trainer.step < s.total and not trainer.stop_requested and time.time() < s.deadline:
            t0 = time.time()
            stats = trainer.next_step()
            trainer.wall_time += time.time() - t0
            window_n += s.batch_size
            if bar is not None:
                bar.update(1)
            if trainer.step % s.log_every == 0 or trainer.step == s.total:
                ips = window_n / max(time.time() - window_t, 1e-9)
                window_t, window_n = time.time(), 0
                trainer.log_stats(
                    {
                        "step": trainer.step,
                        "images": trainer.images_seen,
                        "images_per_s": round(ips, 1),
                        **trainer.step_record(stats),
                    }
                )
                if bar is not None:
                    bar.set_postfix(**trainer.progress_postfix(stats, ips))
            if trainer.step % s.eval_every == 0 or trainer.step == s.total:
                trainer.periodic_eval()
            if trainer.step % s.checkpoint_every == 0 or time.time() - last_ckpt > 60 * s.checkpoint_minutes:
                trainer.save()
                last_ckpt = time.time()
        trainer.before_final_save()
        trainer.save()
    finally:
        for sig, h in old_handlers.items():
            signal.signal(sig, h)
        if bar is not None:
            bar.close()


def deadline_after(minutes: float | None) -> float:
    """The ``Schedule.deadline`` of a time limit: ``time.time()`` plus ``minutes``, or no deadline for None.

    Raises:
        ValueError: ``minutes`` given but not > 0 (0 would otherwise read as "no limit").
    """
    if minutes is None:
        return math.inf
    if not minutes > 0:
        raise ValueError(f"minutes must be > 0, got {minutes}")
    return time.time() + 60 * minutes


def install_stop_handlers(stop: Callable[[], None]) -> dict:
    """Route SIGTERM/SIGINT to ``stop()`` (a graceful stop after the current step); returns the old handlers
    (restore them with ``signal.signal``). Does nothing outside the main thread."""
    handlers = {}
    with contextlib.suppress(ValueError):  # signal handlers can only be set in the main thread
        for sig in (signal.SIGTERM, signal.SIGINT):
            handlers[sig] = signal.signal(sig, lambda signum, frame: stop())
    return handlers
