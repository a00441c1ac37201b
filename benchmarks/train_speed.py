"""Training throughput of a GAN preset: images/s through one full G + D step (train_step), fp32 and bf16.

    python benchmarks/train_speed.py [--preset cpu64] [--steps 24] [--bf16-steps 8] [--threads 2] [--compile]
        [--set model.background=composite ...] [--fast]

``--set`` times a variant of the preset (the same overrides as ``lkdetect train-gan --set``); ``--fast`` times only
fp32 and bf16 in channels-last order, the trainer's default layout.

bf16 runs under autocast; on a CPU without native bf16 (no avx512_bf16/amx) it is emulated and slow, which
is why ``train.amp="auto"`` only enables it where the CPU has it. Target for cpu64: >= 80 images/s on 2 cores.
The trainer keeps freed memory in the process (gan/malloc.py); the page-fault column shows it working (near 0).
Throughput on a shared VM drifts by up to 2x within an hour: compare code versions in the same minutes.
"""

from __future__ import annotations

import argparse
import resource
import tempfile
import time

import torch

from gan.config import get_config, parse_overrides
from gan.train import Trainer, cpu_has_native_bf16


def measure(
    preset: str,
    amp: str,
    channels_last: bool,
    steps: int,
    warmup: int = 3,
    block: int = 4,
    compiled: bool = False,
    overrides: dict | None = None,
) -> tuple[list[float], float]:
    """Images/s of each block of ``block`` steps (``steps`` in all, after ``warmup``), and page faults per step.

    With ``compiled``, G and D run through ``torch.compile`` (inductor) except on gradient-penalty steps, whose
    double backward compiled graphs do not support; the timed blocks then skip penalty steps.
    """
    cfg = get_config(preset, {**(overrides or {}), "train.amp": amp, "train.channels_last": channels_last})
    r = cfg.model.resolution
    images = torch.randint(0, 256, (512, 3, r, r), dtype=torch.uint8)
    rates = []
    with tempfile.TemporaryDirectory() as tmp:
        t = Trainer(cfg, images, tmp)
        step = t.train_step
        if compiled:
            eager, fast = (t.G, t.D), (torch.compile(t.G), torch.compile(t.D))

            def step(real: torch.Tensor) -> dict[str, float]:
                if t.step % cfg.train.gp_every == 0:
                    t.step += 1  # a penalty step: skipped (it would run eagerly)
                t.G, t.D = fast
                try:
                    return Trainer.train_step(t, real)
                finally:
                    t.G, t.D = eager

        for _ in range(warmup):
            step(t.real_batch())
        faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        for _ in range(max(1, steps // block)):
            start = time.perf_counter()
            for _ in range(block):
                step(t.real_batch())
            rates.append(block * cfg.train.batch_size / (time.perf_counter() - start))
        faults = (resource.getrusage(resource.RUSAGE_SELF).ru_minflt - faults) / (len(rates) * block)
    return rates, faults


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--preset", default="cpu64")
    ap.add_argument("--steps", type=int, default=24, help="timed fp32 steps per layout")
    ap.add_argument("--bf16-steps", type=int, default=8, help="timed bf16 steps per layout (emulated bf16 is slow)")
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    ap.add_argument(
        "--compile", action="store_true", help="also time fp32 channels_last under torch.compile (minutes to compile)"
    )
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="config override (repeatable)")
    ap.add_argument("--fast", action="store_true", help="channels-last order only (the trainer's default)")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    overrides = parse_overrides(args.set)
    cfg = get_config(args.preset, overrides)
    print(
        f"preset {args.preset}{' ' + ' '.join(args.set) if args.set else ''}: {cfg.model.resolution} px, "
        f"K={cfg.model.n_keypoints}, batch {cfg.train.batch_size}, "
        f"G widths {cfg.model.g_channels}, D widths {cfg.model.d_channels}"
    )
    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}, native bf16 CPU: {cpu_has_native_bf16()}")
    print(f"{'precision':<10} {'layout':<15} {'images/s':>9}   (median of blocks of 4 steps; min-max; faults/step)")
    for amp in ("off", "bf16"):
        for cl in (True,) if args.fast else (True, False):
            rates, faults = measure(
                args.preset, amp, cl, args.steps if amp == "off" else args.bf16_steps, overrides=overrides
            )
            report("fp32" if amp == "off" else "bf16", "channels_last" if cl else "contiguous", rates, faults)
    if args.compile:
        report(
            "fp32", "cl, compiled", *measure(args.preset, "off", True, args.steps, compiled=True, overrides=overrides)
        )


def report(precision: str, layout: str, rates: list[float], faults: float) -> None:
    rates = sorted(rates)
    print(f"{precision:<10} {layout:<15} {rates[len(rates) // 2]:>9.1f}   {rates[0]:.1f}-{rates[-1]:.1f}; {faults:.0f}")


if __name__ == "__main__":
    main()
