"""Turn a training run into release weights: the EMA generator, its sample grid and a model card.

    python -m gan.release RUN_DIR --name faces --data "MTFL training images (10,000), no landmarks" [--out weights]
        [--real ../shared/data/mtfl80]

Writes ``<out>/<name>_gan.safetensors`` (metadata: config, step, images seen, wall time, the data folders the run
recorded (``"data"``: a path, or a list for several), machine, source checkpoint hash, the label-free metrics of
gan/metrics.py on 128 pairs and, with ``--real``, the realism measure of gan/realism.py),
``<out>/<name>_gan_samples.png`` and ``<out>/<name>_gan.md`` with the keypoint diagnostics and those metrics.
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
from .metrics import gan_metrics, rounded
from .sampling import sample
from .stats import read_stats
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


def release(
    run_dir: str | Path,
    name: str,
    data: str,
    out: str | Path = "weights",
    machine: str | None = None,
    real: str | Path | None = None,
    n_pairs: int = 128,
    realism_n: int | None = None,
) -> Path:
    """Release weights, samples and card from ``run_dir``; ``real``: training-data folder for the realism measure
    (``realism_n`` images per side, default that of gan/realism.py)."""
    run_dir, out = Path(run_dir), Path(out)
    src = run_dir / "generator_ema.safetensors"
    g, info = load_generator(src)
    stats = read_stats(run_dir / "stats.jsonl")
    speeds = [r["images_per_s"] for r in stats if "images_per_s" in r]
    info = {
        **info,
        "name": name,
        "training_data": data,
        "machine": machine or machine_description(),
        "source_sha256": file_sha256(src),
        "mean_images_per_s": round(sum(speeds) / max(len(speeds), 1), 1),
        "metrics": label_free_metrics(g, real, n_pairs, realism_n),
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
| training data | {data} |{folders_row(info.get("data"))}
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
- extent (RMS distance of the mean configuration's keypoints from their centroid, px): {diag["kp_extent"]:.1f}
- layout (the mean keypoint configuration's narrower extent over its wider; 0 = a line): {diag["kp_layout"]:.2f}
- locality: when one keypoint moves by {m.resolution / 16:.0f} px, {100 * diag["locality"]:.1f} % of the image change
  falls within {m.resolution / 8:.0f} px of it (chance: {100 * diag["locality_chance"]:.1f} %)

{metrics_section(info["metrics"])}"""
    (out / f"{name}_gan.md").write_text(card)
    return weights


def folders_row(recorded: str | list[str] | None) -> str:
    """The card's row on the data folders the run recorded (``"data"`` in its weights' info; runs before
    multi-root training recorded none): one path, or a list of them."""
    if recorded is None:
        return ""
    folders = [recorded] if isinstance(recorded, str) else recorded
    return "\n| data folders | " + "; ".join(f"`{f}`" for f in folders) + " |"


def label_free_metrics(
    g: object, real: str | Path | None = None, n_pairs: int = 128, realism_n: int | None = None
) -> dict[str, object]:
    """gan/metrics.py on ``n_pairs`` pairs and, with ``real`` (a training-data folder), gan/realism.py."""
    out = gan_metrics(g, n_pairs)
    if real is not None:
        from .realism import DEFAULT_N, realism

        out.update(realism(g, real, n=realism_n or DEFAULT_N))
        out["realism_data"] = str(real)
    return rounded(out)


def metrics_section(mt: dict[str, object]) -> str:
    """Markdown of :func:`label_free_metrics` output for a model card."""
    lines = [
        f"## Label-free metrics ({mt['pairs']} sample pairs, metrics version {mt['metrics_version']}; "
        "`lkdetect gan-metrics --gan WEIGHTS`)",
        "| swap between two samples | change in the keypoint region, share of swapping all appearance | outside |",
        "|---|---|---|",
        f"| all keypoint embeddings | {mt['app_share_region']:.2f} | {mt['app_share_outside']:.2f} |",
        f"| background embedding only | {mt['bg_share_region']:.2f} | {mt['bg_share_outside']:.2f} |",
        "",
        f"- region: pixels within 12 % of the image side of a keypoint ({100 * mt['region_area']:.0f} % of the "
        f"image); swapping all appearance changes it by {mt['change_all_region_255']:.1f} / 255 "
        f"({mt['change_all_outside_255']:.1f} outside)",
        f"- one part's embedding swapped: {100 * mt['swap_locality']:.1f} % of the change within R / 8 of its "
        f"keypoint (chance {100 * mt['swap_locality_chance']:.1f} %, ratio {mt['swap_locality_ratio']:.2f}); "
        f"mean change {mt['swap_change_255']:.2f} / 255",
    ]
    if "cpd" in mt:
        lines.append(f"- CPD (mean |correlation| of one-part swap difference maps, off-diagonal): {mt['cpd']:.3f}")
    if "c2st_acc" in mt:
        lines.append(
            f"- realism ({mt['realism_version']}, {mt['realism_n']} images per side against {mt['realism_data']}): "
            f"KID x 1000 {mt['kid_x1000']:.2f} (spread {mt['kid_x1000_spread']:.2f}), "
            f"two-sample classifier accuracy {mt['c2st_acc']:.3f} (0.5 = indistinguishable)"
        )
    return "\n".join(lines) + "\n"


DESCRIPTION = "Write release weights, samples and a model card from a GAN run."


def add_arguments(ap: argparse.ArgumentParser) -> None:
    """The arguments of ``lkdetect release-gan`` (and its alias ``python -m gan.release``)."""
    ap.add_argument("run_dir")
    ap.add_argument("--name", required=True)
    ap.add_argument("--data", required=True, help="description of the training data for the model card")
    ap.add_argument("--out", default="weights")
    ap.add_argument("--machine", default=None, help="machine description (default: this one)")
    ap.add_argument("--real", default=None, help="training-data folder: also measure realism (gan/realism.py)")
    ap.add_argument("--pairs", type=int, default=128, help="sample pairs for the label-free metrics")
    ap.add_argument("--realism-n", type=int, default=None, help="images per side for realism (default 1000)")


def run(args: argparse.Namespace) -> int:
    """Write the release and print the weights' path."""
    print(release(args.run_dir, args.name, args.data, args.out, args.machine, args.real, args.pairs, args.realism_n))
    return 0


def main(argv: list[str] | None = None) -> None:
    """``python -m gan.release``: an alias of ``lkdetect release-gan``."""
    ap = argparse.ArgumentParser(description=DESCRIPTION)
    add_arguments(ap)
    run(ap.parse_args(argv))


if __name__ == "__main__":
    main()
