"""Label-free metrics of a GAN release (gan.metrics, gan.realism): swap shares, part locality, CPD, realism.

    python benchmarks/gan_metrics.py --gan weights/faces_gan.safetensors [--data ../shared/data/mtfl80] [--pairs 128]
    python benchmarks/gan_metrics.py --known-cases ../shared/data/mtfl80   # realism on real / blurred / noise
    python benchmarks/gan_metrics.py --diagnose weights/faces_gan.safetensors ../shared/data/mtfl80  # where C2ST looks

Runs on one CPU thread by default (``--threads``). Prints a table, or one JSON object with ``--json``.
"""

from __future__ import annotations

import argparse

import torch


def known_cases(data: str, n: int, threads: int) -> None:
    from gan.data import load_training_images
    from gan.realism import REALISM_VERSION, known_cases

    torch.set_num_threads(threads)
    images = load_training_images(data, 64)
    print(f"{REALISM_VERSION}, {data}, 64 px, n = {n} per side")
    for name, r in known_cases(images, n).items():
        kid = f"kid_x1000 {r['kid_x1000']:10.2f} (spread {r['kid_x1000_spread']:.2f})"
        print(f"{name:14s} {kid}  c2st_acc {r['c2st_acc']:.3f}")


def diagnose(gan: str, data: str, n: int, threads: int) -> None:
    from gan.checkpoint import load_generator
    from gan.data import load_training_images
    from gan.realism import REALISM_VERSION, diagnose, generated_images, reference_images

    torch.set_num_threads(threads)
    g, _ = load_generator(gan)
    g.eval()
    real = reference_images(load_training_images(data, g.resolution), n).float() / 255
    out = diagnose(real, generated_images(g, n))
    print(f"{REALISM_VERSION}, {gan} vs {data}, {g.resolution} px, n = {n} per side")
    print("classifier on one feature stage alone (fine -> coarse; 0.5 = no difference):")
    print("  channel means  " + "  ".join(f"{a:.3f}" for a in out["c2st_stage_mean"]))
    print("  channel stds   " + "  ".join(f"{a:.3f}" for a in out["c2st_stage_std"]))
    print("radial power, generated / real, in frequency bands from coarse to the diagonal Nyquist:")
    print("  " + "  ".join(f"{r:.2f}" for r in out["power_ratio"]))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--known-cases", metavar="DATA", help="realism on known cases of DATA instead of a GAN")
    ap.add_argument("--diagnose", nargs=2, metavar=("GAN", "DATA"), help="where the realism classifier looks")
    ap.add_argument("--n", type=int, default=1000, help="--known-cases, --diagnose: images per side")
    ap.add_argument("--threads", type=int, default=1)
    args, rest = ap.parse_known_args()
    if args.known_cases:
        known_cases(args.known_cases, args.n, args.threads)
        return
    if args.diagnose:
        diagnose(*args.diagnose, args.n, args.threads)
        return
    from gan.metrics import main as metrics_main

    metrics_main([*rest, "--threads", str(args.threads)])


if __name__ == "__main__":
    main()
