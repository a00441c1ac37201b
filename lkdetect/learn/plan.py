"""The settings of an ``lkdetect learn`` run, the configurations they resolve to, and its stages.

A run is seven stages, each with its own output in the run directory:

======== ================================================================ ===================================
stage    what                                                             output
======== ================================================================ ===================================
gan      train LatentKeypointGAN on the images (:class:`gan.train.Trainer`) ``gan/`` (a train-gan run)
select   the last snapshot (``--snapshot best``: by :mod:`.select`)         ``gan.safetensors``
detector train the detector on the chosen GAN's pairs (train-detector)     ``detector/`` (a train-detector run)
selftrain fine-tune it on the training images it labels itself (TTA)       ``selftrain/`` (a train-detector run)
flip     the keypoints' flip pairing on more GAN pairs (add-flip)          ``detector.safetensors``
export   the ONNX model, checked against PyTorch                           ``detector.onnx``
report   samples, edits, detections, diagnostics over training, speed     ``report/index.html``
======== ================================================================ ===================================

Self-training (:mod:`lkdetect.training.pseudo_labels`) reads the same images as the GAN (or ``--selftrain-data``'s),
never labels: the detector labels them averaging mirrored and zoomed views and refining, then learns from half GAN
pairs, half those images. On CUB one round lowered the training-split CV of the regression from 18.09 to 16.41 %
(birds detector card). ``--selftrain-iterations 0`` leaves it out.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

STAGES = ("gan", "select", "detector", "selftrain", "flip", "export", "report")
# the detector preset that goes with each GAN preset (see lkdetect.training.config)
DETECTOR_PRESET = {"tiny": "tiny", "cpu64": "cpu", "paper128": "gpu"}
# self-training iterations by detector preset (the birds release: 2,000 x 64 on one CPU core, about 11 minutes)
SELFTRAIN_ITERATIONS = {"tiny": 4, "cpu": 2000, "gpu": 2000}
SELFTRAIN_REFINE = 3.5  # the teacher's refinement box, times its keypoints' spread
SNAPSHOT_RULES = ("best", "last")  # best: by lkdetect.learn.select's score; last: the final snapshot
SELECT_WHAT = {
    "last": "the last GAN snapshot (its keypoint checks and scores logged)",
    "best": "a snapshot of the second half of training, by label-free metrics",
}
GAN_WEIGHTS = "gan.safetensors"  # the chosen GAN snapshot
DETECTOR_WEIGHTS = "detector.safetensors"  # the result (lkdetect.models.RUN_WEIGHTS: Detector.load(RUN) reads it)
ONNX_MODEL = "detector.onnx"


@dataclass(frozen=True)
class Settings:
    """Everything that decides what a learn run computes (saved in its learn.json; ``--resume`` keeps it)."""

    data: str | tuple[str, ...]  # image folder, MTFL or CUB root (absolute path), or several in order (a tuple)
    preset: str = "cpu64"  # GAN preset (gan.config.PRESETS)
    keypoints: int | None = None  # K; None = the preset's
    gan_set: tuple[str, ...] = ()  # --set KEY=VALUE overrides of the GAN config
    gan_iterations: int | None = None  # None = the GAN config's train.iterations
    detector_preset: str | None = None  # None = DETECTOR_PRESET[preset]
    detector_set: tuple[str, ...] = ()  # --detector-set overrides of the detector config
    detector_iterations: int | None = None  # None = the detector config's train.iterations
    classes: str | None = None  # CUB roots only: class ids
    snapshot: str = "last"  # SNAPSHOT_RULES (default "last": birds, CV 17.73 % against 19.18 % for "best")
    flip_pairs: int | None = None  # GAN pairs for the flip pairing; None = 4 x the detector's validation pairs
    selftrain_iterations: int | None = None  # None = SELFTRAIN_ITERATIONS of the detector preset; 0 = no self-training
    selftrain_data: str | tuple[str, ...] | None = None  # roots the self-training labels; None = ``data``

    def data_roots(self) -> list[str]:
        """The training roots in order (one for a learn.json written before several were possible)."""
        return [self.data] if isinstance(self.data, str) else list(self.data)

    def selftrain_roots(self) -> list[str]:
        """The roots whose images the self-training stage labels (the training roots unless set)."""
        if self.selftrain_data is None:
            return self.data_roots()
        return [self.selftrain_data] if isinstance(self.selftrain_data, str) else list(self.selftrain_data)

    def to_dict(self) -> dict[str, Any]:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(self).items()}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Settings:
        names = {f.name for f in dataclasses.fields(cls)}
        if set(d) - names:
            raise KeyError(f"unknown learn settings {sorted(set(d) - names)}")
        d = {"selftrain_iterations": 0, **d}  # a learn.json written before the stage existed: without it
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in d.items()})


@dataclass(frozen=True)
class Resolved:
    """The configurations a :class:`Settings` resolves to (validated)."""

    gan: Any  # gan.config.GANConfig (train.iterations set)
    detector: Any  # lkdetect.training.config.DetectorConfig (train.iterations set: its learning-rate schedule)
    selftrain: Any  # the self-training stage's DetectorConfig (train.real_data set; the stage sets train.init), or None
    flip_pairs: int
    classes: list[int] | None
    data_roots: tuple[str, ...] = ()  # the GAN's training roots (Settings.data_roots)
    snapshot: str = "last"  # Settings.snapshot


def resolve(s: Settings) -> Resolved:
    """Resolve and validate both configurations.

    Raises:
        ValueError, KeyError, TypeError: an unknown preset or key, a value of the wrong type or range.
    """
    from gan.config import get_config as gan_config
    from gan.config import parse_overrides
    from gan.data import parse_classes

    from ..training.config import get_config as detector_config

    if s.snapshot not in SNAPSHOT_RULES:
        raise ValueError(f"--snapshot must be one of {SNAPSHOT_RULES}, got {s.snapshot!r}")
    g = parse_overrides(list(s.gan_set))
    if s.keypoints is not None:
        if s.keypoints < 1:
            raise ValueError(f"--keypoints must be >= 1, got {s.keypoints}")
        g["model.n_keypoints"] = s.keypoints
    if s.gan_iterations is not None:
        g["train.iterations"] = s.gan_iterations
    gan_cfg = gan_config(s.preset, g)
    d = parse_overrides(list(s.detector_set))
    if s.detector_iterations is not None:
        d["train.iterations"] = s.detector_iterations
    det_cfg = detector_config(s.detector_preset or DETECTOR_PRESET.get(s.preset, "cpu"), d)
    if gan_cfg.train.iterations < 1 or det_cfg.train.iterations < 1:
        raise ValueError("the GAN and detector iterations must be >= 1")
    flip = s.flip_pairs if s.flip_pairs is not None else 4 * det_cfg.train.val_size
    if flip < 1:
        raise ValueError(f"--flip-pairs must be >= 1, got {flip}")
    classes = parse_classes(s.classes)
    preset = s.detector_preset or DETECTOR_PRESET.get(s.preset, "cpu")
    n = s.selftrain_iterations if s.selftrain_iterations is not None else SELFTRAIN_ITERATIONS.get(preset, 2000)
    if n < 0:
        raise ValueError(f"--selftrain-iterations must be >= 0 (0: no self-training), got {n}")
    selftrain = selftrain_config(det_cfg, n, s.selftrain_roots(), classes)
    return Resolved(gan_cfg, det_cfg, selftrain, flip, classes, tuple(s.data_roots()), s.snapshot)


def selftrain_config(det_cfg: Any, iterations: int, roots: list[str], classes: list[int] | None) -> Any:
    """The self-training stage's config: the detector stage's network and augmentation, fine-tuned from its weights
    (``train.init``: the stage sets it to the run's ``detector/detector.safetensors``, which also labels) on half
    GAN pairs, half the run's images labelled with mirrored TTA and refinement; a quarter of its learning rate,
    with a short warm-up. None when ``iterations`` is 0."""
    if iterations == 0:
        return None
    t = det_cfg.train
    train = dataclasses.replace(
        t,
        iterations=iterations,
        warmup=max(1, min(100, iterations // 20)),
        lr=t.lr / 4,
        real_data=roots[0] if len(roots) == 1 else tuple(roots),
        real_classes=tuple(classes or ()),
        real_fraction=0.5,
        teacher="",
        teacher_tta=True,
        teacher_refine=SELFTRAIN_REFINE,
    )
    return dataclasses.replace(det_cfg, train=train)


def snapshot_steps(total: int, every: int) -> list[int]:
    """The steps at which the GAN trainer takes a snapshot: every ``every`` steps and at ``total``."""
    return sorted(set(range(every, total + 1, every)) | {total})


def detector_pairs(cfg: Any) -> int:
    """GAN pairs the detector stage generates: its shards and its validation pairs."""
    t = cfg.train
    return ((t.iterations - 1) // t.shard_every + 1) * t.shard_size + t.val_size


def stage_table(r: Resolved, images: int) -> list[dict[str, Any]]:
    """One row per stage: name, iterations, batch, images seen and what it does."""
    g, d = r.gan.train, r.detector.train
    m = r.gan.model
    snaps = snapshot_steps(g.iterations, g.sample_every)
    return [
        trained_row(
            "gan",
            g,
            f"LatentKeypointGAN, K = {m.n_keypoints}, {m.resolution} px, on {images:,} images "
            f"({g.iterations * g.batch_size / max(images, 1):.0f} epochs); {len(snaps)} snapshots",
        ),
        dict(stage="select", what=SELECT_WHAT[r.snapshot]),
        trained_row("detector", d, f"{r.detector.network.backbone} on {detector_pairs(r.detector):,} fresh GAN pairs"),
        selftrain_row(r),
        dict(stage="flip", what=f"flip pairing of the keypoints on {r.flip_pairs:,} GAN pairs"),
        dict(stage="export", what="ONNX model, compared with PyTorch"),
        dict(stage="report", what="report/index.html: samples, edits, detections, diagnostics, speed"),
    ]


def trained_row(stage: str, train: Any, what: str) -> dict[str, Any]:
    """The plan row of a stage that trains: its iterations, batch and images seen (``train``: a config's train
    section)."""
    n, b = train.iterations, train.batch_size
    return dict(stage=stage, iterations=n, batch=b, images=n * b, what=what)


def selftrain_row(r: Resolved) -> dict[str, Any]:
    if r.selftrain is None:
        return dict(stage="selftrain", what="off (--selftrain-iterations 0)")
    t = r.selftrain.train
    roots = [t.real_data] if isinstance(t.real_data, str) else list(t.real_data)
    what = "the training images" if tuple(roots) == r.data_roots else "the images of " + ", ".join(roots)
    return trained_row(
        "selftrain",
        t,
        f"self-training: the detector labels {what} (mirrored TTA, refinement) and learns from them, "
        f"{round(t.real_fraction * 100)} % of each batch",
    )


def format_plan(rows: list[dict[str, Any]], seconds: dict[str, float], done: set[str] | None = None) -> str:
    """The plan as a table, with the estimated time of each stage (stages in ``done`` are marked and not counted)."""
    done = done or set()
    lines = [f"{'stage':9s} {'iterations':>10s} {'batch':>6s} {'images seen':>12s} {'estimate':>9s}  what"]
    total = 0.0
    for row in rows:
        name = row["stage"]
        est = "done" if name in done else duration(seconds.get(name, 0.0))
        total += 0.0 if name in done else seconds.get(name, 0.0)
        its = f"{row['iterations']:,}" if "iterations" in row else "-"
        batch = str(row.get("batch", "-"))
        images = f"{row['images']:,}" if "images" in row else "-"
        lines.append(f"{name:9s} {its:>10s} {batch:>6s} {images:>12s} {est:>9s}  {row['what']}")
    lines.append(f"{'total':9s} {'':>10s} {'':>6s} {'':>12s} {duration(total):>9s}")
    return "\n".join(lines)


def duration(seconds: float) -> str:
    """``42 s``, ``12.5 min``, ``3.2 h``."""
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"


def absolute(path: str | Path) -> str:
    return str(Path(path).expanduser().resolve())


def data_setting(roots: list[str]) -> str | tuple[str, ...]:
    """``--data`` given once or repeated -> :attr:`Settings.data`: the absolute path, or a tuple of them in order."""
    paths = tuple(absolute(r) for r in roots)
    return paths[0] if len(paths) == 1 else paths
