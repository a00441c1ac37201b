"""How long an ``lkdetect learn`` run will take here: a few real training steps of the resolved GAN and detector
configurations on this machine (random images: the cost of a step does not depend on their content), timed and
extrapolated to the planned iterations, snapshots, checkpoints and GAN pairs. Nothing is written outside a
temporary directory."""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import math
import os
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import torch

from .data import DataSummary
from .plan import Resolved, detector_pairs, snapshot_steps

TEACHER_PASSES = 12  # the self-training teacher: 6 views (mirrored x 3 scales), then as many on its refined boxes
FIXED_SECONDS = {"select": 1.0, "export": 3.0, "report": 10.0}  # not measured: a few seconds each


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """The measuring trainers' log lines (snapshot diagnostics of random weights) held back."""
    loggers = [logging.getLogger(n) for n in ("gan", "lkdetect.training")]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.WARNING)
    try:
        yield
    finally:
        for lg, level in zip(loggers, levels):
            lg.setLevel(level)


def timed(fn: Callable[[], object]) -> float:
    """Seconds of one call of ``fn``."""
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def _mean_step(step: Callable[[], object], budget: float, max_steps: int = 20) -> float:
    """Mean seconds of ``step()`` over at least one call, until ``budget`` seconds or ``max_steps`` calls."""
    times: list[float] = []
    while not times or (sum(times) < budget and len(times) < max_steps):
        times.append(timed(step))
    return sum(times) / len(times)


def gan_seconds(r: Resolved, tmp: Path, device: str, budget: float) -> tuple[dict[str, float], Path]:
    """Measured costs of the GAN stage (s/it with the gradient penalty's share, a snapshot, a checkpoint) and the
    path of the measuring GAN's weights (for the detector's measurement)."""
    from gan.train import Trainer

    cfg, t = r.gan, r.gan.train
    res = cfg.model.resolution
    images = torch.randint(0, 256, (max(64, t.batch_size), 3, res, res), dtype=torch.uint8)
    trainer = Trainer(cfg, images, tmp / "gan", device=device)
    trainer.step = 1  # warm-up on a step without the penalty, then the plain steps
    trainer.next_step()
    plain = _mean_step(trainer.next_step, budget)
    per_it = plain
    if t.gp_weight > 0:
        trainer.step = t.gp_every  # a step with the lazy gradient penalty
        gp = timed(trainer.next_step)
        per_it = ((t.gp_every - 1) * plain + gp) / t.gp_every
    snapshot = timed(trainer.snapshot)
    checkpoint = timed(trainer.save)
    return {"per_it": per_it, "snapshot": snapshot, "checkpoint": checkpoint}, tmp / "gan" / "generator_ema.safetensors"


def detector_seconds(r: Resolved, gan_path: Path, tmp: Path, device: str, budget: float) -> dict[str, float]:
    """Measured costs of the detector stage: s/it, a checkpoint, GAN pairs per second, and one image's detection
    (``per_image``, one network pass)."""
    from ..training.pairs import GanPairs
    from ..training.trainer import DetectorTrainer

    t = r.detector.train
    small = dataclasses.replace(
        r.detector, train=dataclasses.replace(t, shard_size=t.batch_size, shard_every=10**9, val_size=16, init="")
    )
    trainer = DetectorTrainer(small, gan_path, tmp / "detector", device=device)
    trainer.next_step()  # draws its small shard
    per_it = _mean_step(trainer.next_step, budget)
    checkpoint = timed(trainer.save)
    images, _ = trainer.batch()
    with torch.no_grad():
        trainer.network.eval()
        trainer.network(images)  # warm-up
        per_image = timed(lambda: trainer.network(images)) / len(images)
    pairs = GanPairs(gan_path, r.detector.network.input_size or None, t.gan_batch)
    n = min(t.gan_batch, 128)
    pairs.get(t.seed, 0, 4)  # warm-up
    per_pair = timed(lambda: pairs.get(t.seed, 0, n)) / n
    return {"per_it": per_it, "checkpoint": checkpoint, "per_pair": per_pair, "per_image": per_image}


def load_seconds(roots: list[str], summaries: list[DataSummary], resolution: int, classes: list[int] | None) -> float:
    """Seconds to decode the images of every root, from the first 16 of each."""
    from gan.data import load_image, training_items

    total = 0.0
    for root, summary in zip(roots, summaries):
        items, _ = training_items(root, classes)
        sample = items[:16]
        seconds = 0.0
        for path, crop in sample:
            try:
                seconds += timed(lambda p=path, c=crop: load_image(p, resolution, c))
            except (OSError, ValueError):
                pass
        total += seconds / max(len(sample), 1) * summary.files
    return total


def estimate(
    r: Resolved,
    summaries: list[DataSummary],
    roots: list[str],
    device: str = "cpu",
    budget: float = 1.0,
    selftrain_images: int | None = None,
) -> tuple[dict[str, float], str]:
    """Estimated seconds per stage, and a line on what was measured.

    Args:
        r: the resolved configurations.
        summaries: the data check of each root (image counts).
        roots: the data folders (a few images of each are decoded to time loading).
        device: where training will run.
        budget: seconds of timed steps per trainer (after a warm-up step, at least one more each).
        selftrain_images: usable images of ``--selftrain-data`` (None: self-training labels the training images).
    """
    g, d = r.gan.train, r.detector.train
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="lkdetect-learn-estimate-") as name, _quiet():
        tmp = Path(name)
        gm, gan_path = gan_seconds(r, tmp, device, budget)
        dm = detector_seconds(r, gan_path, tmp, device, budget)
    load = load_seconds(roots, summaries, r.gan.model.resolution, r.classes)
    images = sum(s.usable for s in summaries)
    snaps = len(snapshot_steps(g.iterations, g.sample_every))
    gan_ckpts = math.ceil(g.iterations / g.checkpoint_every)
    det_ckpts = math.ceil(d.iterations / d.checkpoint_every)
    seconds = {
        "gan": load + gm["per_it"] * g.iterations + gm["snapshot"] * snaps + gm["checkpoint"] * gan_ckpts,
        "detector": dm["per_it"] * d.iterations
        + dm["per_pair"] * detector_pairs(r.detector)
        + dm["checkpoint"] * det_ckpts,
        "selftrain": selftrain_seconds(r, dm, load, images, images if selftrain_images is None else selftrain_images),
        "flip": dm["per_pair"] * r.flip_pairs,
        **FIXED_SECONDS,
    }
    note = (
        f"measured here ({device}, {torch.get_num_threads()} torch threads): GAN {gm['per_it']:.3f} s/it, "
        f"snapshot {gm['snapshot']:.1f} s x {snaps}, loading {load:.0f} s; detector {dm['per_it']:.3f} s/it, "
        f"GAN pairs {1 / max(dm['per_pair'], 1e-9):,.0f}/s; select, export and report not measured "
        f"({sum(FIXED_SECONDS.values()):.0f} s assumed); measuring took {time.perf_counter() - t0:.0f} s"
    )
    return seconds, note + load_note()


def selftrain_seconds(r: Resolved, dm: dict[str, float], load: float, images: int, labelled: int) -> float:
    """The self-training stage from the detector's measured costs: loading its ``labelled`` images (at the rate the
    ``images`` of the training roots took ``load`` seconds), labelling each with :data:`TEACHER_PASSES` network
    passes, then its iterations, pairs and checkpoints."""
    if r.selftrain is None:
        return 0.0
    t = r.selftrain.train
    return (
        load * labelled / max(images, 1)
        + dm["per_image"] * TEACHER_PASSES * labelled
        + dm["per_it"] * t.iterations
        + dm["per_pair"] * detector_pairs(r.selftrain)
        + dm["checkpoint"] * math.ceil(t.iterations / t.checkpoint_every)
    )


def load_note() -> str:
    """A warning when other jobs keep the CPUs busy (the measured speed then holds for that load only)."""
    cores = os.cpu_count() or 1
    try:
        load = os.getloadavg()[0]
    except OSError:
        return ""
    if load < 0.5 * cores:
        return ""
    return (
        f"\nnote: load average {load:.1f} on {cores} cores: other jobs share the CPUs, so the estimate holds for this "
        "load only (fewer --threads than busy cores can be much faster)"
    )


def describe_machine() -> str:
    from gan.release import machine_description

    return machine_description()
