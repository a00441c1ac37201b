"""Training loop of LatentKeypointGAN: one ``train_step`` per iteration, atomic checkpoints, exact resume.

Per iteration (DCGAN-style reuse of the fake batch): G step on ``softplus(-D(G(z)))``, then D step on the same
fakes (detached) and a real batch with ``softplus(D(fake)) + softplus(-D(real))``, plus every ``gp_every``-th
step a gradient penalty on the reals (lazy regularisation). EMA of G for sampling.

Data parallel over processes: under ``torchrun`` every rank draws its own share of the batch and gradients
are averaged with ``torch.distributed.all_reduce`` (gloo on CPUs, NCCL on GPUs). Like stylegan2-ada we
average gradients explicitly instead of wrapping in ``DistributedDataParallel``, whose hooks do not support
the double backward of the gradient penalty.

All randomness (batches, flips, noise) comes from one ``torch.Generator`` per rank whose state is saved,
so a resumed run continues bit-identically.
"""

from __future__ import annotations

import contextlib
import copy
import json
import logging
import os
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist

from .checkpoint import (
    CheckpointError,
    load_matching,
    load_state,
    resume_checkpoint,
    save_generator,
    save_state,
)
from .config import GANConfig
from .diagnostics import keypoint_report
from .diffaug import diff_augment, parse_policy
from .discriminator import Discriminator
from .generator import Generator, Latents
from .loop import Schedule, deadline_after, fit_loop
from .losses import (
    configuration_minor_shortfall,
    d_logistic_loss,
    equivariance_loss,
    g_nonsaturating_loss,
    gradient_penalty,
    keypoint_spread_excess,
)
from .malloc import retain_freed_memory
from .metrics import gan_metrics, rounded
from .reader import KeypointReader, keypoint_reading_error
from .sampling import sample
from .stats import truncate_stats
from .viz import sample_grid, save_png

log = logging.getLogger(__name__)

CHECKPOINT = "checkpoint.pt"
EMA_WEIGHTS = "generator_ema.safetensors"


def snapshot_path(run_dir: str | Path, step: int) -> Path:
    """Where a run keeps the EMA weights of its snapshot at ``step`` (``train.keep_every``, ``lkdetect learn``)."""
    return Path(run_dir) / "snapshots" / f"step_{step:07d}.safetensors"


def cpu_has_native_bf16() -> bool:
    """True when the CPU advertises native bf16 arithmetic (AVX-512 BF16 or AMX)."""
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def resolve_amp(amp: str, device: torch.device) -> bool:
    """Whether to run bf16 autocast: "bf16" forces it, "auto" uses it on CUDA or a CPU with native bf16."""
    if amp == "off":
        return False
    if amp == "bf16":
        return True
    return device.type == "cuda" or (device.type == "cpu" and cpu_has_native_bf16())


class Trainer:
    """Owns G, D, the EMA generator, optimisers, data and the run directory.

    Args:
        cfg: the run configuration.
        images: (N, 3, R, R) uint8 training images (every rank holds all; each draws its own batches).
        run_dir: where config.json, stats.jsonl, samples/ and checkpoints go (rank 0 writes).
        resume: continue from ``run_dir/checkpoint.pt``; without it an existing checkpoint is an error.
        device: "cpu", "cuda" or "auto".
        data: where ``images`` came from (:func:`gan.data.data_record`: a path, or a list of paths), recorded as
            ``"data"`` in checkpoint.pt and in the weights' info; None: not recorded.
    """

    def __init__(
        self,
        cfg: GANConfig,
        images: torch.Tensor,
        run_dir: str | Path,
        resume: bool = False,
        device: str = "cpu",
        data: str | list[str] | None = None,
    ):
        self.cfg = cfg
        self.data = data
        self.run_dir = Path(run_dir)
        self.rank = dist.get_rank() if dist.is_initialized() else 0
        self.world = dist.get_world_size() if dist.is_initialized() else 1
        if device == "auto":
            device = "cuda" if torch.cuda.is_available() else "cpu"
        self.device = torch.device(f"cuda:{int(os.environ.get('LOCAL_RANK', 0))}" if device == "cuda" else device)
        t = cfg.train
        if t.batch_size % self.world:
            raise ValueError(f"train.batch_size {t.batch_size} must divide by the number of processes {self.world}")
        self.local_batch = t.batch_size // self.world
        res = cfg.model.resolution
        if images.dtype != torch.uint8 or images.ndim != 4 or tuple(images.shape[1:]) != (3, res, res):
            raise ValueError(f"images must be uint8 (N, 3, {res}, {res}), got {images.dtype} {tuple(images.shape)}")
        self.images = images
        self.use_amp = resolve_amp(t.amp, self.device)
        if self.device.type == "cpu":
            retain_freed_memory()  # no page faults on every step's fresh tensors (gan/malloc.py)
        self.memory_format = torch.channels_last if t.channels_last else torch.contiguous_format

        torch.manual_seed(t.seed)  # identical initial weights on every rank
        self.G = Generator(cfg.model).to(self.device, memory_format=self.memory_format)
        self.D = Discriminator(cfg.model).to(self.device, memory_format=self.memory_format)
        self.G_ema = copy.deepcopy(self.G).eval().requires_grad_(False)
        # Fused Adam: one kernel per parameter instead of a dozen (about 4x faster on this model's CPU step).
        self.opt_g = torch.optim.Adam(self._g_param_groups(), lr=t.lr_g, betas=t.betas, fused=True)
        self.opt_d = torch.optim.Adam(self.D.parameters(), lr=t.lr_d, betas=t.betas, fused=True)
        self.reader: KeypointReader | None = None  # train.kp_recon's keypoint reader and its optimiser
        if t.kp_recon:
            self.reader = KeypointReader(cfg.model.n_keypoints, res).to(self.device, memory_format=self.memory_format)
            self.opt_r = torch.optim.Adam(self.reader.parameters(), lr=t.lr_d, betas=t.betas, fused=True)
        self.rng = torch.Generator().manual_seed(t.seed * 1000 + self.rank)
        self.step = 0
        self.images_seen = 0
        self.wall_time = 0.0
        self.stop_requested = False
        self.last_equivariance: float | None = None  # train.equivariance's latest value (logged on every row)
        self.last_reading_px: float | None = None  # train.kp_recon's latest reading error in pixels (same)
        self._real_features: torch.Tensor | None = None  # realism reference, computed at the first snapshot
        self.diffaug = parse_policy(t.diffaug)

        ckpt = resume_checkpoint(self.run_dir / CHECKPOINT, resume)
        if ckpt is not None:
            self.load(ckpt)
            return
        warm = self._warm_start(t.init_generator) if t.init_generator else None
        if self.rank == 0:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            (self.run_dir / "config.json").write_text(json.dumps(cfg.to_dict(), indent=2))
            if warm is not None:
                (self.run_dir / "warm_start.json").write_text(json.dumps(warm, indent=2))

    def _warm_start(self, path: str) -> dict[str, Any]:
        """``train.init_generator``: G (and its EMA) take the file's tensors that fit (:func:`load_matching`)."""
        warm = load_matching(self.G, path)
        self.G_ema.load_state_dict(self.G.state_dict())
        log.info("warm start from %s: %d tensors kept, %d fresh", path, len(warm["kept"]), len(warm["fresh"]))
        return warm

    def _g_param_groups(self) -> list[dict[str, Any]]:
        """G's parameters for Adam: one group, or the pose mapping network in a second one at ``lr_pose_scale``."""
        t = self.cfg.train
        if t.lr_pose_scale == 1:
            return [{"params": list(self.G.parameters())}]
        pose = {id(p) for p in self.G.pose_mlp.parameters()}
        rest = [p for p in self.G.parameters() if id(p) not in pose]
        return [{"params": rest}, {"params": list(self.G.pose_mlp.parameters()), "lr": t.lr_g * t.lr_pose_scale}]

    def _configured_lrs(self) -> None:
        """The learning rates of the configuration (a checkpoint's optimiser state brings those it was saved with)."""
        t = self.cfg.train
        self.opt_g.param_groups[0]["lr"] = t.lr_g
        if len(self.opt_g.param_groups) > 1:
            self.opt_g.param_groups[1]["lr"] = t.lr_g * t.lr_pose_scale
        self.opt_d.param_groups[0]["lr"] = t.lr_d
        if self.reader is not None:
            self.opt_r.param_groups[0]["lr"] = t.lr_d

    # ----------------------------------------------------------------------------------------------- steps
    def _autocast(self) -> contextlib.AbstractContextManager:
        if not self.use_amp:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=torch.bfloat16)

    def _noise(self, n: int) -> list[torch.Tensor]:
        z = torch.randn(3, n, self.cfg.model.z_dim, generator=self.rng)
        return [t.to(self.device) for t in z]

    def _bg_offsets(self, n: int) -> torch.Tensor | None:
        """``train.bg_shift``: a random background offset per generated image, from the trainer's generator (so that
        resumed runs stay bit-identical); None when off."""
        shift = self.cfg.train.bg_shift
        if not shift:
            return None
        return self._uniform((n, 2), shift)

    def _uniform(self, shape: tuple[int, ...], bound: float) -> torch.Tensor:
        """Uniform in [-bound, bound] from the trainer's generator (checkpointed: resumed runs stay bit-identical)."""
        return ((torch.rand(shape, generator=self.rng) * 2 - 1) * bound).to(self.device)

    def real_batch(self) -> torch.Tensor:
        """A random batch of real images in [-1, 1], flipped horizontally at random when configured."""
        idx = torch.randint(len(self.images), (self.local_batch,), generator=self.rng)
        x = self.images[idx].float().div_(127.5).sub_(1)
        if self.cfg.train.flip:
            flip = torch.rand(self.local_batch, generator=self.rng) < 0.5
            x[flip] = x[flip].flip(-1)
        return x.to(self.device).contiguous(memory_format=self.memory_format)

    def _average_gradients(self, module: torch.nn.Module) -> None:
        if self.world == 1:
            return
        grads = [p.grad for p in module.parameters() if p.grad is not None]
        flat = torch.cat([g.flatten() for g in grads])
        dist.all_reduce(flat)
        flat /= self.world
        offset = 0
        for g in grads:
            g.copy_(flat[offset : offset + g.numel()].view_as(g))
            offset += g.numel()

    def _augment(self, x: torch.Tensor) -> torch.Tensor:
        """D's view of a batch: DiffAugment (``train.diffaug``) when configured, else ``x`` itself."""
        if not self.diffaug:
            return x
        return diff_augment(x, self.diffaug, self.rng).contiguous(memory_format=self.memory_format)

    def train_step(self, real: torch.Tensor) -> dict[str, float]:
        """One G step and one D step (with the lazy penalty when due); returns the losses.

        D runs once on the fakes for both steps: the G step does not change D's weights, so the D step's fake
        logits are the G step's. Without the penalty, D also sees the reals in that same pass, and one backward
        pass of the D loss gives both D's weight gradients and the gradient at the fakes, which is rescaled per
        sample into the G loss's (:meth:`_shared_backward`). Either way the gradients are those of the
        textbook order (G through a frozen D, then D on reals and detached fakes).
        """
        t = self.cfg.train
        n = real.shape[0]
        z = self._noise(n)
        do_gp = t.gp_weight > 0 and self.step % t.gp_every == 0
        self.D.requires_grad_(True)
        self.opt_g.zero_grad(set_to_none=True)
        self.opt_d.zero_grad(set_to_none=True)
        bg_offset = self._bg_offsets(n)
        with self._autocast():
            fake, lat = self.G(*z, bg_offset)
        gp = None
        if do_gp:  # the penalty needs its own pass over the reals (double backward)
            with self._autocast():
                fake_logits = self.D(self._augment(fake)).float()
            loss_g = g_nonsaturating_loss(fake_logits)
            (grad_fake,) = torch.autograd.grad(loss_g, fake, retain_graph=True)
            real = self._augment(real.detach()).detach().requires_grad_(True)
            with self._autocast():
                real_logits = self.D(real).float()
            loss_d = d_logistic_loss(real_logits, fake_logits)
            gp = gradient_penalty(real_logits, real)
            (loss_d + gp * (t.gp_weight / 2 * t.gp_every)).backward(inputs=list(self.D.parameters()))
        else:
            with self._autocast():
                logits = self.D(self._augment(torch.cat((fake, real.detach())))).float()
            fake_logits, real_logits = logits[:n], logits[n:]
            loss_g = g_nonsaturating_loss(fake_logits)
            loss_d = d_logistic_loss(real_logits, fake_logits)
            grad_fake = self._shared_backward(loss_g, loss_d, fake, fake_logits)
        equiv = self._equivariance(lat, fake, bg_offset)
        reading = self._keypoint_reading(lat, bg_offset)
        roots, grads = [fake], [grad_fake]
        if equiv is not None:
            roots, grads = [*roots, equiv * t.equivariance * t.equivariance_every], [*grads, None]
        if reading is not None:
            roots, grads = [*roots, reading * t.kp_recon * t.kp_recon_every], [*grads, None]
        excess = keypoint_spread_excess(lat.keypoints, t.kp_spread_max) if t.kp_spread_max else None
        if excess is not None:
            roots, grads = [*roots, excess * t.kp_spread_weight], [*grads, None]
        narrow = configuration_minor_shortfall(lat.keypoints, t.kp_minor_min) if t.kp_minor_min else None
        if narrow is not None:
            roots, grads = [*roots, narrow * t.kp_minor_weight], [*grads, None]
        if self.step >= t.d_warmup:  # before: D learns alone (train.d_warmup)
            torch.autograd.backward(roots, grads)  # G's gradients; D's graph is freed by now
            self._average_gradients(self.G)
            self.opt_g.step()
        self._average_gradients(self.D)
        self.opt_d.step()
        self._update_ema()
        self.step += 1
        self.images_seen += t.batch_size
        out = {
            "loss_g": loss_g.item(),
            "loss_d": loss_d.item(),
            "d_real": real_logits.mean().item(),
            "d_fake": fake_logits.mean().item(),
        }
        if gp is not None:
            out["gp"] = gp.item()
        if equiv is not None:
            self.last_equivariance = equiv.item()
        if self.last_equivariance is not None:
            out["equivariance"] = self.last_equivariance  # the latest value: logged rows need not fall on a due step
        if excess is not None:
            out["kp_spread_excess"] = excess.item()
        if narrow is not None:
            out["kp_minor_shortfall"] = narrow.item()
        if reading is not None:
            self.last_reading_px = reading.item() * self.cfg.model.resolution / 2
        if self.last_reading_px is not None:
            out["kp_reading_px"] = self.last_reading_px
        return out

    def _keypoint_reading(self, lat: Latents, bg_offset: torch.Tensor | None) -> torch.Tensor | None:
        """``train.kp_recon``, when due this step: the fakes rendered again from their detached latents (so that only
        the renderer learns from it; with ``kp_recon_mix`` their embeddings from other samples of the batch); the
        reader takes one step on them, then reads them again frozen: that error
        (:func:`~gan.reader.keypoint_reading_error`) is returned for G. None when off or not due."""
        t = self.cfg.train
        if self.reader is None or self.step % t.kp_recon_every:
            return None
        lat = lat.detach()
        if t.kp_recon_mix and lat.keypoints.shape[0] > 2:  # appearance of other samples: 1 and 2 places on
            lat = lat.replace(kp_embed=lat.kp_embed.roll(1, 0), bg_embed=lat.bg_embed.roll(2, 0))
        with self._autocast():
            image = self.G.render(lat, bg_offset)
        self.opt_r.zero_grad(set_to_none=True)
        with self._autocast():
            loss_r = keypoint_reading_error(self.reader, image.detach(), lat)
        loss_r.backward()
        self._average_gradients(self.reader)
        self.opt_r.step()
        self.reader.requires_grad_(False)
        try:
            with self._autocast():
                return keypoint_reading_error(self.reader, image, lat)
        finally:
            self.reader.requires_grad_(True)

    def _equivariance(self, lat: Latents, fake: torch.Tensor, bg_offset: torch.Tensor | None) -> torch.Tensor | None:
        """``train.equivariance``, when due this step: the fakes rendered again with their keypoints moved by a random
        offset (whole pixels with ``train.equivariance_whole_pixels``) and zoom, against the fakes moved
        (:func:`~gan.losses.equivariance_loss`); None when off or not due. Offsets come from the trainer's generator,
        so resumed runs stay bit-identical."""
        t = self.cfg.train
        if not t.equivariance or self.step % t.equivariance_every:
            return None
        n = fake.shape[0]
        offsets = self._uniform((n, 2), t.equivariance_shift)
        if t.equivariance_whole_pixels:  # a move of k / side is k pixels: the moved fake is not resampled (blurred)
            offsets = torch.round(offsets * fake.shape[-1]) / fake.shape[-1]
        scales = self._uniform((n,), t.equivariance_scale).exp() if t.equivariance_scale else None
        with self._autocast():
            return equivariance_loss(self.G, lat, fake, offsets, scales, bg_offset)

    def _shared_backward(
        self, loss_g: torch.Tensor, loss_d: torch.Tensor, fake: torch.Tensor, fake_logits: torch.Tensor
    ) -> torch.Tensor:
        """Backward of ``loss_d`` into D's weights (their ``.grad``) and the fakes; returns ``d loss_g / d fake``.

        Both losses depend on fake i only through its logit, so their gradients at the fake differ by the
        factor ``(d loss_g / d logit_i) / (d loss_d / d logit_i)`` (``-exp(-logit)`` for the logistic losses):
        the G gradient costs no second pass through D. Where that factor is extreme (a logit far below zero,
        where ``d loss_d / d logit`` underflows towards 0) the second pass is taken instead.
        """
        params = list(self.D.parameters())
        (up_g,) = torch.autograd.grad(loss_g, fake_logits, retain_graph=True)
        (up_d,) = torch.autograd.grad(loss_d, fake_logits, retain_graph=True)
        shared = bool((up_d.abs() > 1e-6 * up_g.abs().clamp_min(1e-30)).all())
        grads = torch.autograd.grad(loss_d, [fake, *params], retain_graph=not shared)
        for p, g in zip(params, grads[1:]):
            p.grad = g
        if shared:
            return grads[0] * (up_g / up_d).view(-1, *([1] * (fake.dim() - 1))).to(grads[0].dtype)
        (grad_fake,) = torch.autograd.grad(loss_g, fake)
        return grad_fake

    @torch.no_grad()
    def _update_ema(self) -> None:
        t = self.cfg.train
        halflife = t.ema_halflife_images
        if t.ema_rampup > 0:
            halflife = min(halflife, self.images_seen * t.ema_rampup)
        beta = 0.5 ** (t.batch_size / max(halflife, 1e-8))
        for p_ema, p in zip(self.G_ema.parameters(), self.G.parameters()):
            p_ema.lerp_(p, 1 - beta)
        for b_ema, b in zip(self.G_ema.buffers(), self.G.buffers()):
            b_ema.copy_(b)

    # ------------------------------------------------------------------------------------------ the loop
    def fit(self, iterations: int | None = None, progress: bool = True, minutes: float | None = None) -> None:
        """Train until ``iterations`` (default ``cfg.train.iterations``) steps are done in total, or for ``minutes``
        of wall time (for a lent machine; checkpointed like a stop).

        Checkpoints atomically every ``checkpoint_every`` steps or ``checkpoint_minutes``, on SIGTERM/SIGINT and
        at the end, so a kill loses at most the steps since the last checkpoint (:func:`gan.loop.fit_loop`).
        """
        t = self.cfg.train
        if minutes is not None and self.world > 1:  # ranks would stop at different steps and wait on each other
            raise ValueError("a time limit (minutes) needs one process; give iterations instead")
        total = iterations if iterations is not None else t.iterations
        schedule = Schedule(
            total=total,
            batch_size=t.batch_size,
            log_every=t.log_every,
            eval_every=t.sample_every,
            checkpoint_every=t.checkpoint_every,
            checkpoint_minutes=t.checkpoint_minutes,
            deadline=deadline_after(minutes),
        )
        fit_loop(self, schedule, "train-gan", progress and self.rank == 0)

    def next_step(self) -> dict[str, float]:
        """One :meth:`train_step` on a fresh real batch."""
        return self.train_step(self.real_batch())

    def step_record(self, stats: dict[str, float]) -> dict[str, Any]:
        return {k: round(v, 4) for k, v in stats.items()}

    def progress_postfix(self, stats: dict[str, float], images_per_s: float) -> dict[str, str]:
        return dict(d=f"{stats['loss_d']:.3f}", g=f"{stats['loss_g']:.3f}", ips=f"{images_per_s:.0f}")

    def periodic_eval(self) -> None:
        self.snapshot()

    def before_final_save(self) -> None:
        pass

    def log_stats(self, record: dict[str, Any]) -> None:
        if self.rank != 0:
            return
        with open(self.run_dir / "stats.jsonl", "a") as f:
            f.write(json.dumps({"time": round(self.wall_time, 1), **record}) + "\n")

    @torch.no_grad()
    def snapshot(self) -> dict[str, Any]:
        """Sample grid of the EMA generator (keypoints drawn), keypoint diagnostics and the label-free metrics
        (:meth:`label_free_metrics`, as ``"metrics"``) into stats.jsonl; the EMA weights kept on
        ``train.keep_every``'s steps."""
        if self.rank != 0:
            return {}
        s = sample(self.G_ema, 32, seed=0)
        grid = sample_grid(s.images, s.keypoints, nrow=8, scale=2)
        save_png(grid, self.run_dir / "samples" / f"step_{self.step:07d}.png")
        save_png(grid, self.run_dir / "samples" / "latest.png")
        if self.keeps_snapshot(self.step):
            save_generator(snapshot_path(self.run_dir, self.step), self.G_ema, self.weights_info())
        diag = keypoint_report(self.G_ema, n=self.cfg.train.n_diag)
        metrics = self.label_free_metrics()
        self.log_stats({"step": self.step, "diag": diag, **({"metrics": metrics} if metrics else {})})
        log.info("step %d keypoints: %s metrics: %s", self.step, diag, metrics)
        return diag

    def keeps_snapshot(self, step: int) -> bool:
        """Whether the snapshot at ``step`` keeps its EMA weights (``train.keep_every``; :func:`snapshot_path`)."""
        every = self.cfg.train.keep_every
        return bool(every) and step % every == 0

    @torch.no_grad()
    def label_free_metrics(self) -> dict[str, Any]:
        """Swap metrics on ``train.n_metric_pairs`` fixed pairs (gan/metrics.py; without the CPD matrix) and, with
        ``train.n_realism`` > 0, the realism measure against that many fixed training images (gan/realism.py)."""
        t = self.cfg.train
        out: dict[str, Any] = {}
        if t.n_metric_pairs > 0:
            out.update(rounded(gan_metrics(self.G_ema, t.n_metric_pairs)))
            out.pop("cpd_matrix", None)
        if t.n_realism > 0:
            from .realism import features, realism_from_features, reference_images

            if self._real_features is None:
                self._real_features = features(reference_images(self.images, t.n_realism))
            out.update(rounded(realism_from_features(self.G_ema, self._real_features, t.n_realism)))
        return out

    # ----------------------------------------------------------------------------------------- checkpoints
    def state_dict(self) -> dict[str, Any]:
        rng_states = [self.rng.get_state()]
        if self.world > 1:
            gathered: list[Any] = [None] * self.world
            dist.all_gather_object(gathered, self.rng.get_state())
            rng_states = gathered
        return {
            "config": json.loads(json.dumps(self.cfg.to_dict())),
            "step": self.step,
            "images_seen": self.images_seen,
            "wall_time": self.wall_time,
            "world": self.world,
            "G": self.G.state_dict(),
            "D": self.D.state_dict(),
            "G_ema": self.G_ema.state_dict(),
            "opt_g": self.opt_g.state_dict(),
            "opt_d": self.opt_d.state_dict(),
            **self._reader_state(),
            "rng": rng_states,
            **({"data": self.data} if self.data is not None else {}),
        }

    def _reader_state(self) -> dict[str, Any]:
        """The keypoint reader's part of the checkpoint: its weights and optimiser ({} without a reader)."""
        if self.reader is None:
            return {}
        return {"reader": self.reader.state_dict(), "opt_r": self.opt_r.state_dict()}

    def weights_info(self) -> dict[str, Any]:
        """The info of the EMA weights written now: progress, and the training data when recorded."""
        info = {"step": self.step, "images_seen": self.images_seen, "wall_time_s": round(self.wall_time)}
        if self.cfg.train.init_generator:
            info["init_generator"] = self.cfg.train.init_generator
        return {**info, **({"data": self.data} if self.data is not None else {})}

    def request_stop(self) -> None:
        """Finish the current step, checkpoint and leave :meth:`fit` (called on SIGTERM/SIGINT)."""
        log.warning("stop requested: finishing this step, checkpointing and stopping")
        self.stop_requested = True

    def check_replicas(self) -> float:
        """Largest difference of a parameter checksum between ranks (0 on one process); raises when ranks diverged."""
        if self.world == 1:
            return 0.0
        checksum = torch.stack([p.detach().double().sum() for p in self.G.parameters()]).sum().reshape(1)
        lo, hi = checksum.clone(), checksum.clone()
        dist.all_reduce(lo, op=dist.ReduceOp.MIN)
        dist.all_reduce(hi, op=dist.ReduceOp.MAX)
        gap = (hi - lo).item()
        if gap > 1e-6 * max(1.0, abs(checksum.item())):
            raise RuntimeError(
                f"data-parallel replicas diverged (checksum gap {gap}); gradients are not being averaged"
            )
        return gap

    def save(self) -> None:
        """Atomically write checkpoint.pt and the EMA release weights (rank 0)."""
        self.check_replicas()
        state = self.state_dict()  # every rank takes part in gathering the RNG states
        if self.rank != 0:
            return
        save_state(self.run_dir / CHECKPOINT, state)
        save_generator(self.run_dir / EMA_WEIGHTS, self.G_ema, self.weights_info())

    def load(self, path: Path) -> None:
        state = load_state(path, self.cfg)
        if state["world"] != self.world:
            raise CheckpointError(
                f"{path} was written by {state['world']} processes, now {self.world}: "
                "resume with the same number of processes"
            )
        self.G.load_state_dict(state["G"])
        self.D.load_state_dict(state["D"])
        self.G_ema.load_state_dict(state["G_ema"])
        optimisers = [(self.opt_g, "opt_g"), (self.opt_d, "opt_d")]
        if self.reader is not None and "reader" in state:
            self.reader.load_state_dict(state["reader"])
            optimisers.append((self.opt_r, "opt_r"))
        elif self.reader is not None:
            log.warning("%s has no keypoint reader (train.kp_recon was off): a new one starts", path)
        for opt, key in optimisers:
            if len(state[key]["param_groups"]) != len(opt.param_groups):
                raise CheckpointError(
                    f"{path} was written with train.lr_pose_scale {'not ' if len(opt.param_groups) == 1 else ''}"
                    "equal to 1: its optimiser state has another layout; resume with one on the same side of 1"
                )
            opt.load_state_dict(state[key])
            for group in opt.param_groups:  # checkpoints of older versions saved the unfused setting
                group.update(fused=True, foreach=None)
        self._configured_lrs()
        self.rng.set_state(state["rng"][self.rank])
        self._check_data(path, state.get("data"))  # checkpoints before multi-root data recorded none
        self.step, self.images_seen, self.wall_time = state["step"], state["images_seen"], state["wall_time"]
        if self.rank == 0:  # a killed run logs past its checkpoint: its steps stay unique
            truncate_stats(self.run_dir / "stats.jsonl", lambda r: r.get("step", 0) <= self.step)
        log.info("resumed %s at step %d", path, self.step)

    def _check_data(self, path: Path, saved: str | list[str] | None) -> None:
        """On resume: a warning when the run was trained on other data (the folders may have moved; a resumed run
        continues exactly only on the same images); the data recorded from now on is the current one."""
        if saved is None:
            return
        if self.data is None:
            self.data = saved
        elif saved != self.data and self.rank == 0:
            log.warning("%s was trained on %s; it continues on %s", path, saved, self.data)


def init_distributed() -> bool:
    """Join the process group when launched by torchrun (WORLD_SIZE > 1); returns whether distributed."""
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1 or dist.is_initialized():
        return dist.is_initialized()
    backend = "nccl" if torch.cuda.is_available() else "gloo"
    if backend == "nccl":
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", 0)))
    dist.init_process_group(backend)
    return True
