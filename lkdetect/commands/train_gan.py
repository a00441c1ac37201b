"""``lkdetect train-gan``: train LatentKeypointGAN on a folder of images (or an MTFL / CUB root), or on several
(``--data A --data B``: their images concatenated in that order; the run records every root)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from . import log_warnings


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--data",
        action="append",
        required=True,
        help="folder of images (recursive), or an MTFL or CUB-200-2011 root; repeat to train on several at once",
    )
    p.add_argument("--preset", default="cpu64", help="configuration preset: tiny, cpu64, paper128")
    p.add_argument("--out", required=True, help="run directory (config.json, stats.jsonl, samples/, checkpoints)")
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a config value, e.g. --set model.tau=0.02 --set train.batch_size=64",
    )
    p.add_argument("--resume", action="store_true", help="continue the run in --out from its checkpoint")
    p.add_argument("--iterations", type=int, default=None, help="stop after this many iterations in total")
    p.add_argument(
        "--minutes", type=float, default=None, help="stop (checkpointed) after this many minutes of training"
    )
    p.add_argument("--classes", default=None, help="CUB roots only: comma-separated class ids to train on")
    p.add_argument("--device", default="cpu", help="cpu, cuda or auto")
    p.add_argument("--dry-run", action="store_true", help="print the resolved configuration and exit")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    import torch

    from gan.config import GANConfig, get_config, parse_overrides, preset_dict, validate
    from gan.data import data_record, load_training_sets, parse_classes
    from gan.train import Trainer, init_distributed
    from lkdetect.base import resolve_device

    resolve_device(args.device)  # a device this machine lacks: one clear error before the images load
    overrides = parse_overrides(args.set)
    saved_cfg = Path(args.out) / "config.json"
    if args.resume and saved_cfg.exists():
        # The run's own config is authoritative; only training settings may change on resume.
        if any(k.startswith("model.") for k in overrides):
            raise ValueError("--resume keeps the run's model configuration; model.* overrides need a new --out")
        saved = json.loads(saved_cfg.read_text())  # then --set on top; unknown keys and wrong types raise
        cfg = GANConfig.from_dict(preset_dict({"saved": saved}, "saved", overrides, ("model", "train")))
        validate(cfg)
    else:
        cfg = get_config(args.preset, overrides)
    if args.dry_run:
        print(json.dumps(cfg.to_dict(), indent=2))
        return 0
    if cfg.train.threads:
        torch.set_num_threads(cfg.train.threads)
    init_distributed()
    classes = parse_classes(args.classes)
    with log_warnings():  # one line per skipped image
        images = load_training_sets(args.data, cfg.model.resolution, classes=classes, progress=not args.no_progress)
    trainer = Trainer(cfg, images, args.out, resume=args.resume, device=args.device, data=data_record(args.data))
    if args.resume and trainer.rank == 0:
        saved_cfg.write_text(json.dumps(cfg.to_dict(), indent=2))  # the settings the run now continues with
    trainer.fit(args.iterations, progress=not args.no_progress, minutes=args.minutes)
    return 0
