"""``lkdetect train-detector``: train the keypoint detector on pairs sampled from a trained LatentKeypointGAN."""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

from . import log_warnings

log = logging.getLogger(__name__)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--gan", help="GAN release weights (generator_ema.safetensors from lkdetect train-gan)")
    p.add_argument(
        "--out", required=True, help="run directory (config.json, stats.jsonl, checkpoint.pt, detector.safetensors)"
    )
    p.add_argument(
        "--preset", default=None, help="configuration preset: tiny, cpu (default), gpu; --resume uses the run's own"
    )
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a config value, e.g. --set train.lr=1e-3 --set network.backbone=resnet18",
    )
    p.add_argument("--resume", action="store_true", help="continue the run in --out from its checkpoint")
    p.add_argument("--iterations", type=int, default=None, help="stop after this many iterations in total")
    p.add_argument("--minutes", type=float, default=None, help="stop (checkpointed) after this many minutes")
    p.add_argument(
        "--export",
        default=None,
        metavar="PATH",
        help="write release weights from the run in --out to PATH (after training, or alone without --gan)",
    )
    p.add_argument("--device", default="cpu", help="cpu, cuda or auto")
    p.add_argument("--dry-run", action="store_true", help="print the resolved configuration and exit")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    import torch

    from lkdetect.training.config import get_config, parse_overrides, resume_config

    overrides = parse_overrides(args.set)
    run_dir = Path(args.out)
    if args.resume and ((run_dir / "config.json").exists() or (run_dir / "checkpoint.pt").exists()):
        # The run's saved settings, then --set on top (as train-gan); the trainer rewrites config.json.
        if args.preset is not None:
            log.warning("--resume: --preset %s ignored; the run's config.json and --set apply", args.preset)
        cfg = resume_config(saved_config(run_dir), overrides)
    else:
        cfg = get_config(args.preset or "cpu", overrides)
    if args.dry_run:
        print(json.dumps(cfg.to_dict(), indent=2))
        return 0
    if args.gan is None and args.export is None:
        raise ValueError("--gan is required to train (or pass only --out and --export to export a run's weights)")
    if args.gan is not None:
        from lkdetect.training.trainer import DetectorTrainer

        if cfg.train.threads:
            torch.set_num_threads(cfg.train.threads)
        with log_warnings():  # train.real_data: one line per skipped image
            trainer = DetectorTrainer(cfg, args.gan, args.out, resume=args.resume, device=args.device)
        trainer.fit(args.iterations, minutes=args.minutes, progress=not args.no_progress)
        log.info(
            "step %d: validation error %.3f px; weights %s",
            trainer.step,
            trainer.last_val or float("nan"),
            Path(args.out) / "detector.safetensors",
        )
    if args.export is not None:
        from lkdetect.training.trainer import export_weights

        log.info("exported %s", export_weights(args.out, args.export))
    return 0


def saved_config(run_dir: Path) -> dict:
    """The settings a run was last trained with: its config.json, else (written before one existed) its checkpoint's."""
    if (run_dir / "config.json").exists():
        return json.loads((run_dir / "config.json").read_text())
    from lkdetect.training.trainer import load_checkpoint

    return load_checkpoint(run_dir / "checkpoint.pt")["config"]
