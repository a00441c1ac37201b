"""``lkdetect learn``: from a folder of images to a detector, its ONNX model and a report, resumable as a whole."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path
from typing import Any

from . import log_warnings

log = logging.getLogger(__name__)

# flags that decide what a run computes: on --resume they must agree with the run's learn.json (Settings fields)
SETTING_FLAGS = {
    "data": "--data",
    "preset": "--preset",
    "keypoints": "--keypoints",
    "gan_set": "--set",
    "gan_iterations": "--gan-iterations",
    "detector_preset": "--detector-preset",
    "detector_set": "--detector-set",
    "detector_iterations": "--detector-iterations",
    "classes": "--classes",
    "snapshot": "--snapshot",
    "flip_pairs": "--flip-pairs",
    "selftrain_iterations": "--selftrain-iterations",
    "selftrain_data": "--selftrain-data",
}


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--data",
        action="append",
        help="folder of images (recursive), or an MTFL or CUB-200-2011 root; repeat to learn from several at once",
    )
    p.add_argument("--out", required=True, help="run directory (learn.json, gan/, detector/, results, report/)")
    p.add_argument("--preset", default=None, help="GAN preset: tiny, cpu64 (default), paper128")
    p.add_argument("--keypoints", type=int, default=None, metavar="K", help="number of keypoints (default: preset's)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="GAN config override (repeatable)")
    p.add_argument("--gan-iterations", type=int, default=None, help="GAN iterations (default: the preset's)")
    p.add_argument("--detector-preset", default=None, help="detector preset: tiny, cpu, gpu (default: the GAN's)")
    p.add_argument("--detector-set", action="append", default=[], metavar="KEY=VALUE", help="detector override")
    p.add_argument("--detector-iterations", type=int, default=None, help="detector iterations (default: preset's)")
    p.add_argument("--classes", default=None, help="CUB roots only: comma-separated class ids to train on")
    p.add_argument(
        "--snapshot",
        default=None,
        choices=("best", "last"),
        help="GAN snapshot: the last (default) or the best by label-free metrics (lkdetect/learn/select.py)",
    )
    p.add_argument("--flip-pairs", type=int, default=None, help="GAN pairs for the flip pairing (default 4 x val)")
    p.add_argument(
        "--selftrain-iterations",
        type=int,
        default=None,
        metavar="N",
        help="self-training iterations on the images the detector labels itself (default: the detector preset's; "
        "0: none)",
    )
    p.add_argument(
        "--selftrain-data",
        action="append",
        metavar="DIR",
        help="folder or MTFL/CUB root whose images self-training labels (repeatable; default: the --data roots)",
    )
    p.add_argument("--resume", action="store_true", help="continue the run in --out where it stopped")
    p.add_argument("--dry-run", action="store_true", help="print the plan and a measured time estimate; train nothing")
    p.add_argument("--threads", type=int, default=0, help="torch threads (default: torch's)")
    p.add_argument("--device", default="cpu", help="cpu, cuda or auto")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")


def given_settings(args: argparse.Namespace) -> dict:
    """The Settings fields given on the command line (the others keep their defaults or the saved run's)."""
    from lkdetect.learn.plan import data_setting

    values = {
        "data": data_setting(args.data) if args.data else None,
        "preset": args.preset,
        "keypoints": args.keypoints,
        "gan_set": tuple(args.set) or None,
        "gan_iterations": args.gan_iterations,
        "detector_preset": args.detector_preset,
        "detector_set": tuple(args.detector_set) or None,
        "detector_iterations": args.detector_iterations,
        "classes": args.classes,
        "snapshot": args.snapshot,
        "flip_pairs": args.flip_pairs,
        "selftrain_iterations": args.selftrain_iterations,
        "selftrain_data": data_setting(args.selftrain_data) if args.selftrain_data else None,
    }
    return {k: v for k, v in values.items() if v is not None}


def check_resume(saved: Any, given: dict, run_dir: Path) -> None:
    """``--resume`` continues a run with its saved settings; a flag that asks for something else is an error."""
    differ = [
        f"{SETTING_FLAGS[k]} (run: {getattr(saved, k)!r}, given: {v!r})"
        for k, v in given.items()
        if getattr(saved, k) != v
    ]
    if differ:
        raise ValueError(
            f"--resume continues {run_dir} with the settings in its learn.json; these differ: {'; '.join(differ)} "
            "(start a new --out to change them)"
        )


def run(args: argparse.Namespace) -> int:
    import torch

    from lkdetect.base import resolve_device
    from lkdetect.learn.data import describe_all, scan_data
    from lkdetect.learn.plan import Settings, resolve
    from lkdetect.learn.state import RunState, check_new_run

    resolve_device(args.device)
    run_dir = Path(args.out)
    given = given_settings(args)
    if args.resume:
        state = RunState.load(run_dir)
        check_resume(state.settings, given, run_dir)
        settings = state.settings
    else:
        if "data" not in given:
            raise ValueError("--data is required (the folder of images to learn from)")
        check_new_run(run_dir)
        settings = Settings(**given)
        state = None
    resolved = resolve(settings)
    if args.threads < 0:
        raise ValueError(f"--threads must be >= 0, got {args.threads}")
    threads = args.threads or resolved.gan.train.threads
    if threads:
        torch.set_num_threads(threads)
    pending = state.pending() if state else None
    summaries = None
    if pending is None or "gan" in pending:
        summaries = scan_data(settings.data_roots(), resolved.gan.model.resolution, resolved.classes)
        if not args.dry_run:
            for line in describe_all(summaries):
                log.info("data: %s", line)
    selftrain_summaries = None
    if settings.selftrain_data is not None and resolved.selftrain is not None and (
        pending is None or "selftrain" in pending
    ):
        try:
            selftrain_summaries = scan_data(
                settings.selftrain_roots(), resolved.gan.model.resolution, resolved.classes
            )
        except ValueError as e:
            raise ValueError(f"--selftrain-data: {e}") from e
        if not args.dry_run:
            for line in describe_all(selftrain_summaries):
                log.info("selftrain data: %s", line)
    if args.dry_run:
        return dry_run(run_dir, resolved, summaries, settings.data_roots(), args.device, state, selftrain_summaries)
    from lkdetect.learn.plan import DETECTOR_WEIGHTS, ONNX_MODEL
    from lkdetect.learn.stages import Interrupted, open_run, run_stages

    with log_warnings():
        state = open_run(run_dir, settings, args.resume)
        try:
            run_stages(state, device=args.device, progress=not args.no_progress)
        except Interrupted as e:
            log.warning("%s", e)
            return 130
    print(
        f"{run_dir}: Detector.load({str(run_dir)!r}) ({run_dir / DETECTOR_WEIGHTS}), ONNX {run_dir / ONNX_MODEL}, "
        f"report {run_dir / 'report' / 'index.html'}"
    )
    return 0


def dry_run(
    run_dir: Path,
    resolved: Any,
    summaries: Any,
    roots: list[str],
    device: str,
    state: Any,
    selftrain_summaries: Any = None,
) -> int:
    """Print the plan and the measured estimate; nothing is trained and nothing is written to ``run_dir``."""
    from lkdetect.learn.data import describe_all
    from lkdetect.learn.estimate import describe_machine, estimate
    from lkdetect.learn.plan import format_plan, stage_table

    done = {s for s in state.stages if state.done(s)} if state else set()
    if summaries is not None:
        images = sum(s.usable for s in summaries)
    else:
        images = state.result("gan").get("images", 0) if state else 0
    rows = stage_table(resolved, images)
    if summaries is not None:
        st_images = None if selftrain_summaries is None else sum(s.usable for s in selftrain_summaries)
        seconds, note = estimate(resolved, summaries, roots, device, selftrain_images=st_images)
    else:
        seconds, note = {}, "no estimate: the GAN stage is done"
    print(f"lkdetect learn --dry-run: the plan for {run_dir} (nothing is trained or written)")
    for line in describe_all(summaries) if summaries is not None else roots:
        print(f"data: {line}")
    for line in describe_all(selftrain_summaries) if selftrain_summaries is not None else []:
        print(f"selftrain data: {line}")
    print(format_plan(rows, seconds, done))
    print(note)
    print(f"machine: {describe_machine()}")
    return 0
