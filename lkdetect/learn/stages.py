"""Running and resuming the stages of ``lkdetect learn`` (see :mod:`lkdetect.learn.plan` for the stages).

Each stage reuses the library function that does its job (the GAN and detector trainers, add-flip, the ONNX
export) and writes its output atomically; ``learn.json`` (:mod:`.state`) records when a stage starts and ends. On
``--resume`` the finished stages are skipped, the GAN and detector stages continue from their own checkpoints
(bit-identically, as ``train-gan --resume`` and ``train-detector --resume`` do) and the others run again.
"""

from __future__ import annotations

import logging
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from gan.checkpoint import atomic_write, save_generator
from gan.stats import read_stats
from gan.train import CHECKPOINT, Trainer, snapshot_path

from .plan import DETECTOR_WEIGHTS, GAN_WEIGHTS, ONNX_MODEL, STAGES, Resolved, Settings, duration, resolve
from .select import choose, is_candidate
from .state import RunState, check_new_run

log = logging.getLogger(__name__)


class Interrupted(Exception):
    """A trainer stopped before its iterations were done (SIGTERM / SIGINT: it checkpointed first)."""


def _check_finished(stage: str, step: int, total: int) -> None:
    if step < total:
        raise Interrupted(f"stage {stage} stopped at step {step} of {total} (checkpointed); continue with --resume")


class SnapshotTrainer(Trainer):
    """:class:`gan.train.Trainer` that also keeps the EMA generator of the candidate snapshots (the second half of
    training, :func:`.select.is_candidate`) in ``snapshots/``: after each one, only the weights of the snapshot
    ``rule`` picks among all rows so far and of the one it picks among the rows up to the last checkpoint stay (a
    resumed run restarts from that checkpoint), so at most three files exist besides those ``train.keep_every``
    keeps. A snapshot's weights are written after its stats.jsonl row and before the checkpoint of its step."""

    def __init__(self, *args: Any, rule: str = "best", **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.rule = rule
        self.saved_step = self.step  # step of the last checkpoint (the resumed one at first)

    def save(self) -> None:
        super().save()
        self.saved_step = self.step

    def snapshot(self) -> dict[str, Any]:
        diag = super().snapshot()
        total, res = self.cfg.train.iterations, self.cfg.model.resolution
        if self.rank == 0 and is_candidate(self.step, total):
            if not self.keeps_snapshot(self.step):  # else Trainer.snapshot has just written it
                save_generator(snapshot_path(self.run_dir, self.step), self.G_ema, self.weights_info())
            records = read_stats(self.run_dir / "stats.jsonl")
            saved = [r for r in records if r.get("step", 0) <= self.saved_step]
            keep = {chosen_step(records, total, res, self.rule), chosen_step(saved, total, res, self.rule)}
            keep |= {s for s in range(0, self.step + 1, self.cfg.train.sample_every) if self.keeps_snapshot(s)}
            kept = {snapshot_path(self.run_dir, s) for s in keep if s is not None}
            for f in (self.run_dir / "snapshots").glob("step_*.safetensors"):
                if f not in kept:
                    f.unlink()
        return diag


def chosen_step(records: list[dict[str, Any]], total: int, resolution: int, rule: str) -> int | None:
    """The step of the snapshot ``rule`` picks among stats.jsonl ``records`` (``last``: the latest candidate);
    None when no candidate snapshot is among them."""
    try:
        best, scores = choose(records, total, resolution)
    except ValueError:
        return None
    return max(s.step for s in scores) if rule == "last" else best.step


@dataclass
class Context:
    """What the stages share."""

    run_dir: Path
    settings: Settings
    resolved: Resolved
    state: RunState
    device: str
    progress: bool


def _fresh_or_resumed(stage_dir: Path) -> bool:
    """Whether a trainer's run directory holds a checkpoint to resume; a start killed before its first checkpoint
    left nothing worth keeping and is removed."""
    if (stage_dir / CHECKPOINT).exists():
        return True
    if stage_dir.exists():
        shutil.rmtree(stage_dir)
    return False


def stage_gan(ctx: Context) -> tuple[dict[str, Any], str]:
    from gan.data import data_record

    from .data import load_images

    cfg = ctx.resolved.gan
    gan_dir = ctx.run_dir / "gan"
    resume = _fresh_or_resumed(gan_dir)
    roots = ctx.settings.data_roots()
    images = load_images(roots, cfg.model.resolution, ctx.resolved.classes, ctx.progress)
    trainer = SnapshotTrainer(
        cfg, images, gan_dir, resume=resume, device=ctx.device, rule=ctx.settings.snapshot, data=data_record(roots)
    )
    start = trainer.step
    trainer.fit(progress=ctx.progress)
    _check_finished("gan", trainer.step, cfg.train.iterations)
    out = {"images": len(images), "iterations": trainer.step, "images_seen": trainer.images_seen}
    out["resumed_at"] = start
    resumed = f", resumed at step {start}" if resume else ""
    return out, f"{trainer.step} iterations on {len(images)} images ({trainer.images_seen:,} seen{resumed})"


def stage_select(ctx: Context) -> tuple[dict[str, Any], str]:
    cfg = ctx.resolved.gan
    gan_dir = ctx.run_dir / "gan"
    records = read_stats(gan_dir / "stats.jsonl")
    _, scores = choose(records, cfg.train.iterations, cfg.model.resolution)  # ValueError: no candidate
    step = chosen_step(records, cfg.train.iterations, cfg.model.resolution, ctx.settings.snapshot)
    chosen = next(s for s in scores if s.step == step)
    src = snapshot_path(gan_dir, step)
    if not src.is_file():
        raise FileNotFoundError(f"the weights of the chosen GAN snapshot {src} are missing")
    atomic_write(ctx.run_dir / GAN_WEIGHTS, lambda tmp: shutil.copyfile(src, tmp))
    for f in src.parent.glob("step_*.safetensors"):  # the GAN is done: the other kept snapshot can go
        if f != src:
            f.unlink()
    out = {
        "rule": ctx.settings.snapshot,
        "step": step,
        "score": round(chosen.score, 4),
        "alive": chosen.alive,
        "candidates": [s.to_dict() for s in scores],
    }
    checks = "" if chosen.alive else "; its keypoints did not pass the checks (spread, central share)"
    return (
        out,
        f"step {step} of {len(scores)} candidates (rule {ctx.settings.snapshot}, score {chosen.score:.3f}{checks})",
    )


def stage_detector(ctx: Context) -> tuple[dict[str, Any], str]:
    from ..training.trainer import DetectorTrainer

    det_dir = ctx.run_dir / "detector"
    resume = _fresh_or_resumed(det_dir)
    trainer = DetectorTrainer(ctx.resolved.detector, ctx.run_dir / GAN_WEIGHTS, det_dir, resume, ctx.device)
    start = trainer.step
    trainer.fit(progress=ctx.progress)
    _check_finished("detector", trainer.step, ctx.resolved.detector.train.iterations)
    out = {"iterations": trainer.step, "images_seen": trainer.images_seen, "val_error_px": trainer.last_val}
    out["resumed_at"] = start
    resumed = f", resumed at step {start}" if resume else ""
    return out, f"{trainer.step} iterations, validation error {trainer.last_val:.2f} px{resumed}"


def stage_selftrain(ctx: Context) -> tuple[dict[str, Any], str]:
    import dataclasses

    from ..training.trainer import DetectorTrainer

    cfg = ctx.resolved.selftrain
    if cfg is None:
        return {"skipped": True}, "off (--selftrain-iterations 0)"
    run_dir = ctx.run_dir / "selftrain"
    resume = _fresh_or_resumed(run_dir)
    init = str(ctx.run_dir / "detector" / DETECTOR_WEIGHTS)  # the teacher too (train.teacher is empty)
    cfg = dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, init=init))
    trainer = DetectorTrainer(cfg, ctx.run_dir / GAN_WEIGHTS, run_dir, resume, ctx.device)
    start = trainer.step
    trainer.fit(progress=ctx.progress)
    _check_finished("selftrain", trainer.step, cfg.train.iterations)
    n_real = len(trainer.real.images) if trainer.real is not None else 0
    out = {
        "iterations": trainer.step,
        "images_seen": trainer.images_seen,
        "real_images": n_real,
        "val_error_px": trainer.last_val,
        "resumed_at": start,
    }
    resumed = f", resumed at step {start}" if resume else ""
    line = f"{trainer.step} iterations on {n_real:,} self-labelled images, validation error {trainer.last_val:.2f} px"
    return out, line + resumed


def final_source(ctx: Context) -> Path:
    """The trained weights the flip stage completes: the self-trained detector, or without self-training the
    detector stage's."""
    stage = "detector" if ctx.resolved.selftrain is None else "selftrain"
    return ctx.run_dir / stage / DETECTOR_WEIGHTS


def stage_flip(ctx: Context) -> tuple[dict[str, Any], str]:
    from ..training.flip import add_flip_permutation
    from ..weights import load_weights

    src = final_source(ctx)
    tmp = ctx.run_dir / f".{DETECTOR_WEIGHTS}.flip.tmp"
    shutil.copyfile(src, tmp)
    try:
        meta = add_flip_permutation(tmp, gan=ctx.run_dir / GAN_WEIGHTS, n=ctx.resolved.flip_pairs)
        os.replace(tmp, ctx.run_dir / DETECTOR_WEIGHTS)
    finally:
        tmp.unlink(missing_ok=True)
    before = load_weights(src)[1].get("flip_permutation")
    out = {
        "pairs": ctx.resolved.flip_pairs,
        "flip_permutation": meta["flip_permutation"],
        "flip_match_px": meta["flip_match_px"],
        "trainer_flip_permutation": before,
    }
    return out, f"permutation {meta['flip_permutation']} on {ctx.resolved.flip_pairs} pairs"


def stage_export(ctx: Context) -> tuple[dict[str, Any], str]:
    from ..detector import Detector
    from ..onnx import OnnxDetector, export_onnx
    from ..training.pairs import GanPairs

    det = Detector.load(ctx.run_dir / DETECTOR_WEIGHTS, device="cpu")
    path = export_onnx(det, det.metadata, ctx.run_dir / ONNX_MODEL)
    engine = OnnxDetector.load(path, threads=torch.get_num_threads())
    images, _ = GanPairs(ctx.run_dir / GAN_WEIGHTS, det.input_size[0]).get(seed=1, start=0, n=16)
    diff = float(abs(det.detect_batch(list(images)).xy - engine.detect_batch(list(images)).xy).max())
    if diff > 0.05:
        log.warning("ONNX and PyTorch keypoints differ by up to %.3f px on 16 GAN images", diff)
    return {"onnx": ONNX_MODEL, "max_diff_px": round(diff, 5)}, f"{path.name}; max keypoint difference {diff:.4f} px"


def stage_report(ctx: Context) -> tuple[dict[str, Any], str]:
    from .report import write_report

    out = write_report(ctx.run_dir, ctx.state, ctx.resolved, ctx.progress)
    return out, f"{out['html']}"


RUNNERS = {
    "gan": stage_gan,
    "select": stage_select,
    "detector": stage_detector,
    "selftrain": stage_selftrain,
    "flip": stage_flip,
    "export": stage_export,
    "report": stage_report,
}


def open_run(run_dir: str | Path, settings: Settings | None, resume: bool) -> RunState:
    """The state of a new run (``run_dir`` missing or empty; written now) or of the run to resume.

    Raises:
        ValueError: a new run on a non-empty directory, or ``resume`` without a learn.json.
    """
    run_dir = Path(run_dir)
    if resume:
        return RunState.load(run_dir)
    check_new_run(run_dir)
    if settings is None:
        raise ValueError("a new run needs its settings")
    state = RunState(run_dir, settings)
    state.save()
    return state


def run_stages(state: RunState, device: str = "cpu", progress: bool = True) -> RunState:
    """Run the stages not yet done, in order; returns the final state."""
    ctx = Context(state.run_dir, state.settings, resolve(state.settings), state, device, progress)
    for i, name in enumerate(STAGES, 1):
        tag = f"stage {i}/{len(STAGES)} {name}"
        if state.done(name):
            log.info("%s: done earlier", tag)
            continue
        again = " (again: it was interrupted)" if name in state.stages else ""
        log.debug("%s: starting%s", tag, again)
        state.start(name)
        t0 = time.perf_counter()
        results, line = RUNNERS[name](ctx)
        seconds = time.perf_counter() - t0
        state.finish(name, seconds, **results)
        log.info("%s: %s in %s%s", tag, line, duration(seconds), again)
    return state
