"""Configuration of detector training on GAN pairs: frozen dataclasses and a literal table of named presets.

Presets: ``tiny`` (tests: seconds on a CPU, for the 32 px tiny GAN), ``cpu`` (the shipped 64 px detector on a
2-core CPU, the default) and ``gpu`` (a wider backbone, 64k fresh pairs per shard as in the successor GANSeg).
Overrides use dotted keys (``train.lr=1e-3``, ``network.backbone=resnet18``); unknown keys raise. Self-training on
real images: ``train.init=W train.real_data=ROOT``, or several roots ``train.real_data="['A', 'B']"`` (see
:mod:`lkdetect.training.pseudo_labels`).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from gan.config import build_section, parse_overrides, preset_dict  # training path only: gan is installed

__all__ = ["DetectorConfig", "get_config", "parse_overrides", "resume_config", "validate", "network_kwargs"]


@dataclass(frozen=True)
class NetworkConfig:
    """Detector network (see :class:`lkdetect.network.KeypointNet`)."""

    backbone: str = "mobilenetv3_small_100"  # timm name, built with pretrained=False (fastest measured, see benchmarks)
    stride: int = 16  # backbone output stride
    upsample: int = 4  # head up-sampling: heatmap stride = stride / upsample
    head_channels: int = 32
    head_depth: int = 2
    temperature: float = 1.0  # fixed softmax temperature
    confidence_radius: float = 1.5  # heatmap cells around the soft-argmax counted as confident mass
    input_size: int = 0  # square network input side; 0 = the GAN's resolution


@dataclass(frozen=True)
class AugmentConfig:
    """Keypoint-aware augmentation of GAN images (albumentations) so the detector transfers to photos.

    No horizontal flip: it would swap left/right keypoints, whose identity the GAN fixes.
    """

    enabled: bool = True
    p_affine: float = 0.9
    # Wide geometric ranges: GAN keypoints move only a few px across samples, while real crops vary much more
    # (MTFL landmarks spread about 10 px at 64 px; its AFLW test crops are about 1.5x tighter than the training
    # crops, see ../shared/data/README.md), so the detector learns position and scale from augmentation.
    scale: tuple[float, float] = (0.8, 1.6)
    rotate: float = 25.0  # degrees, uniform in +-rotate
    translate: float = 0.15  # fraction of the side, uniform in +-translate
    p_color: float = 0.8
    brightness: float = 0.3
    contrast: float = 0.3
    saturation: float = 0.3
    hue: float = 0.05
    p_gray: float = 0.1
    p_blur: float = 0.2
    p_noise: float = 0.2
    noise_std: tuple[float, float] = (0.02, 0.08)  # fraction of the value range
    p_jpeg: float = 0.2
    jpeg_quality: tuple[int, int] = (40, 95)


@dataclass(frozen=True)
class TrainConfig:
    """Optimisation, data regeneration and bookkeeping."""

    batch_size: int = 64
    iterations: int = 12_000
    lr: float = 2e-3  # AdamW peak learning rate
    weight_decay: float = 1e-4
    warmup: int = 300  # linear warm-up iterations, then cosine decay to lr * final_lr_fraction
    final_lr_fraction: float = 0.02
    coord_weight: float = 1.0  # L1 on soft-argmax coordinates, in units of the image side
    heatmap_weight: float = 0.02  # cross-entropy of the softmax heatmap with a Gaussian around the target
    heatmap_sigma: float = 1.0  # of that Gaussian, in heatmap cells
    shard_size: int = 4096  # GAN pairs per shard
    shard_every: int = 400  # iterations between regenerating the shard (fresh pairs)
    gan_batch: int = 128  # GAN rendering batch
    val_size: int = 512  # held-out GAN pairs (another seed, no augmentation) for the validation error
    eval_every: int = 500
    log_every: int = 20
    checkpoint_every: int = 500
    checkpoint_minutes: float = 5.0
    seed: int = 0
    threads: int = 0  # torch threads; 0 = leave torch's default
    amp: str = "auto"  # "auto": bf16 autocast only on a CPU with native bf16 (or CUDA); "bf16"; "off"
    keypoint_names: tuple[str, ...] = ()  # K names for the metadata; () = kp0 .. kp{K-1}
    # Which of the GAN's keypoints the detector learns, in output order (--set train.keep_keypoints=2,3,6,9);
    # () = all, or the subset of a train.init detector made by ``lkdetect keep-keypoints``.
    keep_keypoints: tuple[int, ...] = ()
    # Fine-tuning and self-training on unlabelled real images (lkdetect.training.pseudo_labels); all off by default.
    init: str = ""  # detector weights to start from instead of random initialisation
    # MTFL / CUB root or image folder, or several as a list ("['A', 'B']" in --set): real images (never their
    # labels) for self-training
    real_data: str | tuple[str, ...] = ""
    real_classes: tuple[int, ...] = ()  # CUB roots of real_data only: the class ids to read; () = all
    real_fraction: float = 0.5  # share of each batch taken from the pseudo-labelled real images
    teacher: str = ""  # weights that label the real images; "" = train.init
    teacher_tta: bool = True  # the teacher averages mirrored x zoomed views (needs flip_permutation)
    # > 0: the teacher refines on a box this many times its keypoints' spread (lkdetect.refine); 0: off
    teacher_refine: float = 0.0


@dataclass(frozen=True)
class DetectorConfig:
    """A detector training run."""

    network: NetworkConfig = field(default_factory=NetworkConfig)
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> DetectorConfig:
        """Rebuild from ``to_dict`` output; unknown keys raise ``KeyError``."""
        unknown = set(d) - set(SECTIONS)
        if unknown:
            raise KeyError(f"unknown config sections {sorted(unknown)}; expected {sorted(SECTIONS)}")
        return cls(**{name: build_section(klass, d.get(name, {}), name) for name, klass in SECTIONS.items()})


SECTIONS: dict[str, type] = {"network": NetworkConfig, "augment": AugmentConfig, "train": TrainConfig}


PRESETS: dict[str, dict[str, dict[str, Any]]] = {
    # Seconds on a CPU, for tests (the 32 px tiny GAN).
    "tiny": {
        "network": dict(backbone="mobilenetv3_small_100", stride=8, upsample=2, head_channels=16, head_depth=1),
        "train": dict(
            batch_size=8,
            iterations=6,
            warmup=2,
            shard_size=32,
            shard_every=4,
            gan_batch=32,
            val_size=16,
            eval_every=3,
            log_every=1,
            checkpoint_every=3,
            lr=3e-3,
        ),
    },
    # The shipped 64 px detector on a 2-core CPU: about 770k augmented views of about 123k fresh GAN pairs.
    "cpu": {},
    # A GPU: wider backbone, 64k fresh pairs per shard (the successor's "64k pairs per epoch").
    "gpu": {
        "network": dict(backbone="resnet18", stride=8, upsample=2, head_channels=64, head_depth=2),
        "train": dict(batch_size=256, iterations=30_000, lr=2e-3, shard_size=65_536, shard_every=1000, gan_batch=512),
    },
}


def get_config(preset: str = "cpu", overrides: dict[str, Any] | None = None) -> DetectorConfig:
    """Resolve a preset plus dotted overrides (``{"train.lr": 1e-3}``) into a validated config."""
    cfg = DetectorConfig.from_dict(preset_dict(PRESETS, preset, overrides, tuple(SECTIONS)))
    validate(cfg)
    return cfg


def resume_config(saved: dict[str, Any], overrides: dict[str, Any] | None = None) -> DetectorConfig:
    """The config of a resumed run: its saved ``config.json`` dict with dotted overrides on top (the rule of
    ``lkdetect train-gan --resume``); the network stays the checkpoint's, so overrides that change it raise."""
    cfg = DetectorConfig.from_dict(preset_dict({"saved": saved}, "saved", overrides, tuple(SECTIONS)))
    validate(cfg)
    before = DetectorConfig.from_dict(saved).network
    if cfg.network != before:
        changed = {k: v for k, v in dataclasses.asdict(cfg.network).items() if getattr(before, k) != v}
        raise ValueError(f"--resume keeps the run's network configuration; a new --out is needed to change {changed}")
    return cfg


def validate(cfg: DetectorConfig) -> None:
    """Raise ``ValueError`` on a configuration that cannot train."""
    n, t = cfg.network, cfg.train
    if n.upsample < 1 or n.stride % n.upsample:
        raise ValueError(f"network.upsample must divide network.stride {n.stride}, got {n.upsample}")
    if n.input_size and n.input_size % n.stride:
        raise ValueError(f"network.input_size {n.input_size} must be a multiple of network.stride {n.stride}")
    if t.batch_size < 1 or t.shard_size < t.batch_size or t.shard_every < 1:
        raise ValueError("need train.batch_size >= 1, train.shard_size >= batch_size and train.shard_every >= 1")
    if t.amp not in ("auto", "bf16", "off"):
        raise ValueError(f"train.amp must be 'auto', 'bf16' or 'off', got {t.amp!r}")
    if t.coord_weight < 0 or t.heatmap_weight < 0 or t.coord_weight + t.heatmap_weight == 0:
        raise ValueError("train.coord_weight and train.heatmap_weight must be >= 0, not both 0")
    if len(set(t.keep_keypoints)) != len(t.keep_keypoints) or any(i < 0 for i in t.keep_keypoints):
        raise ValueError(f"train.keep_keypoints needs distinct indices >= 0, got {list(t.keep_keypoints)}")
    if isinstance(t.real_data, tuple) and not all(t.real_data):
        raise ValueError(f"train.real_data lists an empty folder name: {list(t.real_data)}")
    if t.real_data:
        if not (t.teacher or t.init):
            raise ValueError(
                "train.real_data needs a teacher to label the real images: set train.teacher or train.init"
            )
        if not t.teacher_refine >= 0:
            raise ValueError(f"train.teacher_refine must be 0 (off) or a box side > 0, got {t.teacher_refine}")
        n_real = round(t.batch_size * t.real_fraction)
        if not 0 < n_real < t.batch_size:
            raise ValueError(
                f"train.real_fraction {t.real_fraction} leaves no real or no GAN images in a batch of {t.batch_size}"
                " (GAN pairs keep what each keypoint means)"
            )


def network_kwargs(cfg: DetectorConfig, num_keypoints: int, input_size: int) -> dict[str, Any]:
    """Keyword arguments of :class:`~lkdetect.network.KeypointNet` for this config, K and input side.

    The keys are :data:`lkdetect.network.NETWORK_KEYS`: K and the input size come from the run, the rest from
    ``cfg.network`` (whose fields are those keys but K).
    """
    from ..network import NETWORK_KEYS

    side = cfg.network.input_size or input_size
    per_run = {"num_keypoints": num_keypoints, "input_size": (side, side)}
    return {k: per_run[k] if k in per_run else getattr(cfg.network, k) for k in NETWORK_KEYS}
