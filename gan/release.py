"""Turn a training run into release weights: the EMA generator, its sample grid and a model card.

    python -m gan.release RUN_DIR --name faces --data "MTFL training images (10,000), no landmarks" [--out weights]

Writes ``<out>/<name>_gan.safetensors`` (metadata: config, step, images seen, wall time, machine, source
checkpoint hash), ``<out>/<name>_gan_samples.png`` and ``<out>/<name>_gan.md`` with the keypoint diagnostics.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
from pathlib import Path

import torch

from .checkpoint import file_sha256, load_generator, save_generator
from .diagnostics import keypoint_report
from .sampling import sample
from .viz import sample_grid, save_png


def machine_description() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{os.cpu_count()} x {cpu}, torch {torch.__version__}"


def release(run_dir: str | Path, name: str, data: str, out: str | Path = "weights", machine: str | None = None) -> Path:
    run_dir, out = Path(run_dir), Path(out)
    src = run_dir / "generator_ema.safetensors"
    g, info = load_generator(src)
    stats = [json.loads(x) for x in (run_dir / "stats.jsonl").read_text().splitlines() if x.strip()]
    speeds = [r["images_per_s"] for r in stats if "images_per_s" in r]
    info = {
        **info,
        "name": name,
        "training_data": data,
        "machine": machine or machine_description(),
        "source_sha256": file_sha256(src),
        "mean_images_per_s": round(sum(speeds) / max(len(speeds), 1), 1),
    }
    weights = out / f"{name}_gan.safetensors"
    save_generator(weights, g, info)
    s = sample(g, 32, seed=0)
    save_png(sample_grid(s.images, s.keypoints, nrow=8, scale=3), out / f"{name}_gan_samples.png")
    diag = keypoint_report(g, n=256, n_locality=32)
    m = g.cfg
    card = f"""# {name} GAN — LatentKeypointGAN, {m.resolution} px, K = {m.n_keypoints}

Release weights `{weights.name}` (EMA generator, safetensors with its config in the metadata; load with
`gan.load_generator`). Samples: `{name}_gan_samples.png` (seed 0, keypoints drawn, one colour per keypoint).

| | |
|---|---|
| training data | {data} |
| iterations | {info.get("step")} (batch {json.loads((run_dir / "config.json").read_text())["train"]["batch_size"]}, \
{info.get("images_seen")} images seen) |
| training wall time | {info.get("wall_time_s", 0) / 3600:.2f} h of train steps |
| machine | {info["machine"]} |
| mean throughput | {info["mean_images_per_s"]} images/s |
| model | g_channels {m.g_channels} from {m.start_resolution} px, d widths {m.d_channels}, D = {m.embed_dim}, \
tau = {m.tau} |

## Keypoint diagnostics (256 fresh samples; label-free, see `gan/diagnostics.py`)
- spread of each keypoint across samples (px, {m.resolution} px images): {diag["kp_spread"]}
- share of keypoints inside the central 70 % of the image: {diag["kp_central"]:.3f}
- locality: when one keypoint moves by {m.resolution / 16:.0f} px, {100 * diag["locality"]:.1f} % of the image change
  falls within {m.resolution / 8:.0f} px of it (chance: {100 * diag["locality_chance"]:.1f} %)
"""
    (out / f"{name}_gan.md").write_text(card)
    return weights


def main() -> None:
    ap = argparse.ArgumentParser(description="Write release weights, samples and a model card from a GAN run.")
    ap.add_argument("run_dir")
    ap.add_argument("--name", required=True)
    ap.add_argument("--data", required=True, help="description of the training data for the model card")
    ap.add_argument("--out", default="weights")
    ap.add_argument("--machine", default=None, help="machine description (default: this one)")
    args = ap.parse_args()
    print(release(args.run_dir, args.name, args.data, args.out, args.machine))


if __name__ == "__main__":
    main()
