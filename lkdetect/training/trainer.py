"""Training the keypoint detector on (image, keypoints) pairs sampled from a trained LatentKeypointGAN.

Unsupervised keypoint detection through the GAN (He et al., arXiv 2103.15812): every generated image comes with
its K keypoints, so a supervised detector is trained on fresh pairs. Pairs come in shards of ``shard_size``
regenerated every ``shard_every`` iterations (the successor GANSeg regenerates its pairs every epoch); each step
draws a batch from the current shard and augments it (:mod:`lkdetect.training.augment`). Loss: L1 on soft-argmax
coordinates (in units of the image side) plus a small heatmap cross-entropy (Integral regression, Sun et al. 2018).

Every random choice derives from (seed, step) or (seed, shard index), so a resumed run continues exactly. The
run directory holds config.json, stats.jsonl, checkpoint.pt (atomic) and the release weights detector.safetensors.
Fine-tuning (``train.init``) and self-training on unlabelled real images (``train.real_data``, batches that mix GAN
pairs with teacher-labelled real images) are described in :mod:`lkdetect.training.pseudo_labels`. The pairs come
from :mod:`lkdetect.training.pairs`. The release weights carry the keypoints' flip permutation for mirrored
test-time augmentation, estimated on the validation pairs (:mod:`lkdetect.training.flip`).
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import math
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

import gan.checkpoint as gan_checkpoint
from gan.checkpoint import resume_checkpoint
from gan.stats import truncate_stats

from ..errors import CheckpointError
from ..network import KeypointNet, build_network, heatmap_cross_entropy, soft_argmax
from ..weights import atomic_write, file_sha256, load_weights, make_metadata, save_weights
from .augment import Augmenter
from .config import DetectorConfig, network_kwargs
from .flip import flip_metadata
from .gan_weights import GANCheckpointError
from .pairs import VAL_SEED_OFFSET, GanPairs
from .pseudo_labels import PseudoLabels, load_or_make

log = logging.getLogger(__name__)

CHECKPOINT = "checkpoint.pt"
WEIGHTS = "detector.safetensors"


def lr_at(cfg: DetectorConfig, step: int) -> float:
    """Linear warm-up to ``lr``, then cosine decay to ``lr * final_lr_fraction`` at ``iterations``."""
    t = cfg.train
    if step < t.warmup:
        return t.lr * (step + 1) / t.warmup
    progress = min(1.0, (step - t.warmup) / max(1, t.iterations - t.warmup))
    return t.lr * (t.final_lr_fraction + (1 - t.final_lr_fraction) * 0.5 * (1 + math.cos(math.pi * progress)))


def keypoint_loss(
    network: KeypointNet, images: torch.Tensor, keypoints: torch.Tensor, cfg: DetectorConfig
) -> tuple[torch.Tensor, dict[str, float]]:
    """Training loss of a batch.

    Args:
        network: the detector.
        images: (B, 3, S, S) RGB in [0, 1].
        keypoints: (B, K, 2) targets (x, y) in input pixels; those outside the image are left out.

    Returns:
        (scalar loss, {"l1", "heatmap", "error_px"}) where error_px is the mean Euclidean error in pixels.
    """
    t = cfg.train
    size = images.shape[-2:]
    logits = network.heatmap_logits(images)
    xy, _, _ = soft_argmax(logits.float(), size, network.config["temperature"])
    inside = ((keypoints >= -0.5) & (keypoints <= keypoints.new_tensor([size[1], size[0]]) - 0.5)).all(-1).float()
    n = inside.sum().clamp_min(1.0)
    diff = xy - keypoints
    l1 = (diff.abs().sum(-1) * inside).sum() / n / max(size)
    stride = size[-1] / logits.shape[-1]
    hm = heatmap_cross_entropy(
        logits, (keypoints + 0.5) / stride - 0.5, t.heatmap_sigma, network.config["temperature"], inside
    )
    loss = t.coord_weight * l1 + t.heatmap_weight * hm
    err = (diff.detach().norm(dim=-1) * inside).sum() / n
    return loss, {"l1": l1.item(), "heatmap": hm.item(), "error_px": err.item()}


class DetectorTrainer:
    """Owns the network, optimiser, pair source and run directory.

    Args:
        cfg: the run configuration.
        gan_path: GAN release weights to sample pairs from.
        run_dir: where config.json, stats.jsonl, checkpoint.pt and detector.safetensors go.
        resume: continue from ``run_dir/checkpoint.pt``; without it an existing checkpoint is an error.
        device: "cpu" (default), "cuda" or "auto".
    """

    def __init__(
        self, cfg: DetectorConfig, gan_path: str | Path, run_dir: str | Path, resume: bool = False, device: str = "cpu"
    ):
        from gan.train import resolve_amp

        from ..base import resolve_device

        self.run_dir = Path(run_dir)
        self.device = resolve_device(device)
        resuming = resume and (self.run_dir / CHECKPOINT).exists()
        self.cfg = cfg = cfg if resuming else with_init_subset(cfg)
        t = cfg.train
        self.pairs = GanPairs(
            gan_path, cfg.network.input_size or None, t.gan_batch, self.device, keypoints=t.keep_keypoints or None
        )
        torch.manual_seed(t.seed)
        self.network = KeypointNet(**network_kwargs(cfg, self.pairs.num_keypoints, self.pairs.size)).to(self.device)
        self.optimizer = torch.optim.AdamW(self.network.parameters(), lr=t.lr, weight_decay=t.weight_decay)
        self.augment = Augmenter(cfg.augment)
        self.use_amp = resolve_amp(t.amp, self.device)
        self.step, self.images_seen, self.wall_time = 0, 0, 0.0
        self.last_val: float | None = None
        self._shard: tuple[int, np.ndarray, np.ndarray] | None = None
        self._val: tuple[torch.Tensor, torch.Tensor] | None = None
        self.stop_requested = False
        self.init_sha256: str | None = None  # of the train.init weights
        ckpt = resume_checkpoint(self.run_dir / CHECKPOINT, resume, error=CheckpointError)
        if ckpt is not None:
            self.load(ckpt)
        elif t.init:
            self._load_init(t.init)
        self.run_dir.mkdir(parents=True, exist_ok=True)
        (self.run_dir / "config.json").write_text(json.dumps(cfg.to_dict(), indent=2))  # on resume: as now set
        self.real: PseudoLabels | None = None
        self.n_real = 0
        if t.real_data:
            self.real = load_or_make(
                self.run_dir,
                t.real_data,
                self.pairs.size,
                t.teacher or t.init,
                self.pairs.keypoints,
                t.teacher_tta,
                self.device,
                t.teacher_refine,
                t.real_classes,
            )
            self.n_real = round(t.batch_size * t.real_fraction)

    def _load_init(self, path: str) -> None:
        """Start from the weights of another detector (fine-tuning); they must match the configured network."""
        network, meta = load_weights(path)
        try:
            self.network.load_state_dict(network.state_dict())
        except RuntimeError as e:
            raise CheckpointError(
                f"train.init {path}: its network ({meta.get('network')}, K={meta.get('num_keypoints')}) does not "
                f"match this run's configuration and GAN (K={self.pairs.num_keypoints}): {e}"
            ) from e
        self.init_sha256 = file_sha256(path)

    # ------------------------------------------------------------------------------------------------ data
    def shard(self) -> tuple[np.ndarray, np.ndarray]:
        """The current shard of training pairs (regenerated every ``shard_every`` iterations)."""
        t = self.cfg.train
        index = self.step // t.shard_every
        if self._shard is None or self._shard[0] != index:
            t0 = time.time()
            images, kps = self.pairs.get(t.seed, index * t.shard_size, t.shard_size)
            self._shard = (index, images, kps)
            seconds = time.time() - t0
            log.debug("shard %d: %d pairs in %.1fs", index, t.shard_size, seconds)
            self.log_stats(
                {"step": self.step, "shard": index, "pairs": t.shard_size, "shard_seconds": round(seconds, 1)}
            )
        return self._shard[1], self._shard[2]

    def batch(self) -> tuple[torch.Tensor, torch.Tensor]:
        """An augmented batch for this step: ((B, 3, S, S) in [0, 1], (B, K, 2) keypoints in pixels).

        With ``train.real_data`` its last ``round(B * real_fraction)`` rows are pseudo-labelled real images."""
        t = self.cfg.train
        images, kps = self.shard()
        step_seed = int(np.random.SeedSequence([t.seed, self.step]).generate_state(1)[0])
        rng = np.random.default_rng(step_seed)
        idx = rng.choice(len(images), t.batch_size - self.n_real, replace=False)
        images, kps = images[idx], kps[idx]
        if self.real is not None:  # the last n_real rows: real images with their teacher keypoints
            ridx = rng.choice(len(self.real.images), self.n_real, replace=False)
            images = np.concatenate([images, self.real.images[ridx]])
            kps = np.concatenate([kps, self.real.keypoints[ridx]])
        aug_images, aug_kps = self.augment(images, kps, seed=step_seed)
        x = torch.from_numpy(aug_images).permute(0, 3, 1, 2).float().div_(255)
        return x.to(self.device), torch.from_numpy(aug_kps).to(self.device)

    def validation_set(self) -> tuple[torch.Tensor, torch.Tensor]:
        if self._val is None:
            t = self.cfg.train
            images, kps = self.pairs.get(t.seed + VAL_SEED_OFFSET, 0, t.val_size)
            self._val = (torch.from_numpy(images).permute(0, 3, 1, 2).float().div_(255), torch.from_numpy(kps))
        return self._val

    # ------------------------------------------------------------------------------------------------ steps
    def _autocast(self) -> contextlib.AbstractContextManager:
        if not self.use_amp:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=torch.bfloat16)

    def train_step(self, images: torch.Tensor, keypoints: torch.Tensor) -> dict[str, float]:
        """One optimiser step on a batch; returns the losses and the batch's mean pixel error."""
        self.network.train()
        for group in self.optimizer.param_groups:
            group["lr"] = lr_at(self.cfg, self.step)
        with self._autocast():
            loss, stats = keypoint_loss(self.network, images, keypoints, self.cfg)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        self.step += 1
        self.images_seen += images.shape[0]
        return {"loss": loss.item(), **stats}

    @torch.no_grad()
    def evaluate(self) -> float:
        """Mean Euclidean error in pixels on the held-out, unaugmented GAN pairs."""
        self.network.eval()
        images, kps = self.validation_set()
        errors = []
        for s in range(0, len(images), 256):
            xy, _ = self.network(images[s : s + 256].to(self.device))
            errors.append((xy.float().cpu() - kps[s : s + 256]).norm(dim=-1))
        self.last_val = float(torch.cat(errors).mean())
        return self.last_val

    # ------------------------------------------------------------------------------------------ the loop
    def fit(self, iterations: int | None = None, minutes: float | None = None, progress: bool = True) -> None:
        """Train until ``iterations`` (default ``cfg.train.iterations``) steps in total, or ``minutes`` of wall time.

        Checkpoints atomically every ``checkpoint_every`` steps or ``checkpoint_minutes``, on SIGTERM/SIGINT and
        at the end; the release weights are rewritten with every checkpoint (:func:`gan.loop.fit_loop`).
        """
        from gan.loop import Schedule, deadline_after, fit_loop

        t = self.cfg.train
        schedule = Schedule(
            total=iterations if iterations is not None else t.iterations,
            batch_size=t.batch_size,
            log_every=t.log_every,
            eval_every=t.eval_every,
            checkpoint_every=t.checkpoint_every,
            checkpoint_minutes=t.checkpoint_minutes,
            deadline=deadline_after(minutes),
        )
        fit_loop(self, schedule, "train-detector", progress)

    def next_step(self) -> dict[str, float]:
        """One :meth:`train_step` on this step's augmented batch."""
        return self.train_step(*self.batch())

    def step_record(self, stats: dict[str, float]) -> dict[str, Any]:
        return {"lr": lr_at(self.cfg, self.step - 1), **{k: round(v, 5) for k, v in stats.items()}}

    def progress_postfix(self, stats: dict[str, float], images_per_s: float) -> dict[str, str]:
        return dict(err=f"{stats['error_px']:.2f}px", ips=f"{images_per_s:.0f}")

    def periodic_eval(self) -> None:
        self.log_stats({"step": self.step, "val_error_px": round(self.evaluate(), 4)})

    def before_final_save(self) -> None:
        if self.last_val is None:  # a run stopped before its first evaluation
            self.periodic_eval()

    def request_stop(self) -> None:
        """Finish the current step, checkpoint and leave :meth:`fit` (called on SIGTERM/SIGINT)."""
        log.warning("stop requested: finishing this step, checkpointing and stopping")
        self.stop_requested = True

    def log_stats(self, record: dict[str, Any]) -> None:
        with open(self.run_dir / "stats.jsonl", "a") as f:
            f.write(json.dumps({"time": round(self.wall_time, 1), **record}) + "\n")

    # ----------------------------------------------------------------------------------------- checkpoints
    def release_metadata(self) -> dict[str, Any]:
        """Metadata of the release weights: the network, its preprocessing and what it was trained on."""
        training = {
            "source": "LatentKeypointGAN pairs",
            "gan_file": self.pairs.path.name,
            "gan_info": self.pairs.info,
            "gan_resolution": self.pairs.resolution,
            "iterations": self.step,
            "images_seen": self.images_seen,
            "pairs_generated": (self.step // self.cfg.train.shard_every + 1) * self.cfg.train.shard_size,
            "val_error_px": self.last_val,
            "val_pairs": self.cfg.train.val_size,
            "config": self.cfg.to_dict(),
        }
        t = self.cfg.train
        if t.init:
            training["init_sha256"] = self.init_sha256
        if t.keep_keypoints:  # the GAN keypoints it outputs, as lkdetect keep-keypoints records them
            training["keypoint_subset"] = {"kept": list(t.keep_keypoints), "source_sha256": self.pairs.sha256}
        if self.real is not None:
            training.update(
                source="LatentKeypointGAN pairs and teacher-labelled real images (self-training)",
                real_data=t.real_data,
                real_images=len(self.real.images),
                **({"real_classes": list(t.real_classes)} if t.real_classes else {}),
                teacher_sha256=self.real.teacher_sha256,
                teacher_tta=t.teacher_tta,
                teacher_refine=t.teacher_refine,
            )
        names = t.keypoint_names or ([f"kp{i}" for i in t.keep_keypoints] if t.keep_keypoints else None)
        meta = make_metadata(self.network, names, training, self.pairs.sha256)
        return {**meta, **flip_metadata(self.network, self.validation_set()[0])}

    def save(self) -> None:
        """Atomically write checkpoint.pt and detector.safetensors."""
        meta = self.release_metadata()
        state = {
            "config": json.loads(json.dumps(self.cfg.to_dict())),
            "step": self.step,
            "images_seen": self.images_seen,
            "wall_time": self.wall_time,
            "last_val": self.last_val,
            "network": self.network.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "release_metadata": json.dumps(meta),
        }
        atomic_write(self.run_dir / CHECKPOINT, lambda tmp: torch.save(state, tmp))
        save_weights(self.run_dir / WEIGHTS, self.network, meta)

    def load(self, path: Path) -> None:
        state = load_checkpoint(path)
        if state["config"]["network"] != json.loads(json.dumps(self.cfg.to_dict()))["network"]:
            raise CheckpointError(
                f"{path} was trained with network {state['config']['network']}, the config asks "
                f"for {self.cfg.to_dict()['network']}"
            )
        self.network.load_state_dict(state["network"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.step, self.images_seen, self.wall_time = state["step"], state["images_seen"], state["wall_time"]
        self.last_val = state["last_val"]
        self.init_sha256 = json.loads(state["release_metadata"]).get("training", {}).get("init_sha256")
        # Drop what a killed run logged after this checkpoint: records of later steps and the shard record of this
        # step itself (a step's shard is drawn after the checkpoint of the step before); a torn last line too.
        try:
            truncate_stats(self.run_dir / "stats.jsonl", lambda r: _before(r, self.step))
        except gan_checkpoint.CheckpointError as e:
            raise GANCheckpointError(*e.args) from e
        log.info("resumed %s at step %d", path, self.step)


def with_init_subset(cfg: DetectorConfig) -> DetectorConfig:
    """``cfg`` with ``train.keep_keypoints`` taken from its ``train.init`` detector when that one outputs a subset of
    its GAN's keypoints (``lkdetect keep-keypoints``) and the config names none, so that the GAN pairs carry the
    keypoints the detector learned.

    Raises:
        CheckpointError: the config names another subset than the init detector outputs.
    """
    from ..weights import gan_keypoint_indices, read_metadata

    t = cfg.train
    if not t.init:
        return cfg
    meta = read_metadata(t.init)
    if (meta.get("training") or {}).get("keypoint_subset") is None:
        return cfg
    kept = tuple(gan_keypoint_indices(meta))
    if not t.keep_keypoints:
        log.info("train.init %s outputs GAN keypoints %s: training on those", t.init, list(kept))
        return dataclasses.replace(cfg, train=dataclasses.replace(t, keep_keypoints=kept))
    if t.keep_keypoints != kept:
        raise CheckpointError(
            f"train.init {t.init} outputs GAN keypoints {list(kept)}, "
            f"train.keep_keypoints asks {list(t.keep_keypoints)}"
        )
    return cfg


def _before(record: dict[str, Any], step: int) -> bool:
    """Whether a stats.jsonl record was logged before the checkpoint at ``step``."""
    return record.get("step", 0) < step or (record.get("step", 0) == step and "shard" not in record)


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """Load a detector training checkpoint with ``weights_only=True``; raises ``CheckpointError`` if unusable."""
    from gan.checkpoint import load_torch_file

    state = load_torch_file(path, "detector training checkpoint", CheckpointError)
    if not isinstance(state, dict) or not {"config", "network", "release_metadata"} <= set(state):
        raise CheckpointError(f"{path} is not an lkdetect detector training checkpoint")
    return state


def export_weights(run_dir: str | Path, out: str | Path) -> Path:
    """Write release weights from a run's checkpoint.pt to ``out`` (e.g. ``lkdetect/weights/faces_detector...``)."""
    state = load_checkpoint(Path(run_dir) / CHECKPOINT)
    meta = json.loads(state["release_metadata"])
    net = build_network(meta["network"], mean=meta["mean"], std=meta["std"])
    net.load_state_dict(state["network"])
    save_weights(out, net, meta)
    return Path(out)
