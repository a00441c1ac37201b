"""The report of an ``lkdetect learn`` run: ``report/index.html`` with the chosen GAN's samples (latent keypoints
and the detector's), an edit grid, the detector on the user's own images, the keypoint diagnostics over training
(SVG plots from the GAN's stats.jsonl, the chosen snapshot marked), the snapshot scores, and speed.

Written into a temporary folder that is renamed to ``report/`` at the end, so a kill never leaves half a report.
"""

from __future__ import annotations

import shutil
import statistics
from collections.abc import Callable
from html import escape
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image, ImageDraw

from gan import edit
from gan.keypoint_maps import to_pixels
from gan.sampling import sample
from gan.stats import read_stats, snapshot_rows
from gan.viz import draw_keypoints, sample_grid, to_pil

from .estimate import timed
from .plan import DETECTOR_WEIGHTS, GAN_WEIGHTS, ONNX_MODEL, Resolved, duration
from .state import RunState
from .svg import line_plot

REPORT = "report"
N_SAMPLES = 32


def _tile(image: torch.Tensor, kp_px: torch.Tensor | None, scale: int, marker: str = "dot") -> Image.Image:
    """One (3, R, R) image in [0, 1], upscaled, with (K, 2) pixel keypoints drawn."""
    r = image.shape[-1]
    tile = to_pil(image).resize((r * scale, r * scale), Image.Resampling.NEAREST)
    if kp_px is not None and len(kp_px):
        tile = draw_keypoints(tile, kp_px, scale=scale, radius=max(2.0, scale * 1.2), marker=marker)
    return tile


def labelled_grid(columns: list[tuple[str, list[Image.Image]]], pad: int = 3, label_h: int = 14) -> Image.Image:
    """Columns of equally sized tiles under a text label each."""
    w, h = columns[0][1][0].size
    rows = max(len(tiles) for _, tiles in columns)
    grid = Image.new("RGB", (len(columns) * (w + pad) + pad, label_h + rows * (h + pad) + pad), (255, 255, 255))
    draw = ImageDraw.Draw(grid)
    for c, (label, tiles) in enumerate(columns):
        x = pad + c * (w + pad)
        draw.text((x, 1), label, fill=(0, 0, 0))
        for r, tile in enumerate(tiles):
            grid.paste(tile, (x, label_h + pad + r * (h + pad)))
    return grid


def samples_figure(generator: Any, detector: Any, scale: int) -> Image.Image:
    """The first samples of seed 0: latent keypoints (dots) and, beside each, the detector's (crosses)."""
    s = sample(generator, N_SAMPLES, seed=0)
    grid = sample_grid(s.images, s.keypoints, nrow=8, scale=scale)
    u8 = (s.images.clamp(0, 1) * 255).round().to(torch.uint8).permute(0, 2, 3, 1).numpy()
    det = detector.detect_batch(list(u8)).xy  # (N, K, 2) in the R x R image
    crosses = sample_grid(s.images, None, nrow=8, scale=scale)
    r, pad = s.images.shape[-1], 2
    for i in range(N_SAMPLES):
        row, col = divmod(i, 8)
        x, y = pad + col * (r * scale + pad), pad + row * (r * scale + pad)
        tile = draw_keypoints(crosses.crop((x, y, x + r * scale, y + r * scale)), det[i], scale, scale * 1.5, "cross")
        crosses.paste(tile, (x, y))
    out = Image.new("RGB", (grid.width, grid.height * 2 + 6), (255, 255, 255))
    out.paste(grid, (0, 0))
    out.paste(crosses, (0, grid.height + 6))
    return out


def edits_figure(generator: Any, scale: int, n: int = 4) -> Image.Image:
    """Rows: samples A; columns: A and six edits (gan.edit), keypoints drawn where the edit leaves them."""
    s = sample(generator, 2 * n, seed=0)
    a, b = s.latents[:n], s.latents[n:]
    part = int(a.keypoints.norm(dim=-1).mean(0).argmin())  # the part nearest the centre on average
    edits: list[tuple[str, Any]] = [
        ("sample", a),
        (f"part {part} moved", edit.translate(a, (0.3, 0.0), parts=part)),
        ("zoom 1.25", edit.scale(a, 1.25)),
        ("rotate 20", edit.rotate(a, 20.0)),
        ("parts of B", edit.swap_embeddings(a, b)[0]),
        ("background of B", edit.swap_background(a, b)[0]),
        (f"part {part} removed", edit.remove_parts(a, part)),
    ]
    r = generator.resolution
    columns = []
    for label, lat in edits:
        images = edit.render(generator, lat)
        kp = to_pixels(lat.keypoints.float().cpu(), r)
        visible = lat.visible.cpu() > 0
        columns.append((label, [_tile(images[i], kp[i][visible[i]], scale) for i in range(n)]))
    columns.append(("B", [_tile(s.images[n + i], s.keypoints[n + i], scale) for i in range(n)]))
    return labelled_grid(columns)


def real_tiles(detector: Any, root: str, classes: list[int] | None, side: int, n: int) -> list[Image.Image]:
    """The detector on the first ``n`` readable training images of one root, drawn on ``side`` px tiles."""
    from gan.data import training_items

    try:
        items, _ = training_items(root, classes)
    except ValueError:
        return []
    tiles: list[Image.Image] = []
    for path, crop in items[: 4 * n]:
        if len(tiles) == n:
            break
        try:
            with Image.open(path) as img:
                img = img.convert("RGB").crop(crop(img))
        except (OSError, ValueError):
            continue
        xy = detector.detect(img).xy
        shown = img.resize((side, side), Image.Resampling.BICUBIC)
        tiles.append(draw_keypoints(shown, xy, scale=side / img.width, radius=3.0))
    return tiles


def real_figure(
    detector: Any, roots: list[str], classes: list[int] | None, side: int, n: int = 16
) -> Image.Image | None:
    """The detector on ``n`` training images (their training crops): the first of each root, an equal share from
    each, in order; None when none can be read."""
    tiles = []
    per_root = -(-n // max(len(roots), 1))
    for root in roots:
        tiles += real_tiles(detector, root, classes, side, min(per_root, n - len(tiles)))
    if not tiles:
        return None
    ncol = min(8, len(tiles))
    nrow = (len(tiles) + ncol - 1) // ncol
    grid = Image.new("RGB", (ncol * (side + 2) + 2, nrow * (side + 2) + 2), (255, 255, 255))
    for i, t in enumerate(tiles):
        grid.paste(t, (2 + (i % ncol) * (side + 2), 2 + (i // ncol) * (side + 2)))
    return grid


def plots(run_dir: Path, chosen_step: int | None) -> dict[str, str]:
    """SVG documents of the diagnostics over training: name -> SVG text."""
    gan = read_stats(run_dir / "gan" / "stats.jsonl")
    snaps = snapshot_rows(gan)

    def series(section: str, key: str) -> list[tuple[float, float]]:
        return [(r["step"], float(r[section][key])) for r in snaps if key in (r.get(section) or {})]

    det = read_stats(run_dir / "detector" / "stats.jsonl")
    steps = [r for r in gan if "loss_d" in r]
    return {
        "keypoint_spread.svg": line_plot(
            {"spread mean (px)": series("diag", "kp_spread_mean"), "spread min (px)": series("diag", "kp_spread_min")},
            "Keypoint spread across samples",
            "GAN iteration",
            chosen_step,
        ),
        "locality.svg": line_plot(
            {
                "move locality": series("diag", "locality"),
                "move chance": series("diag", "locality_chance"),
                "swap locality": series("metrics", "swap_locality"),
                "swap chance": series("metrics", "swap_locality_chance"),
            },
            "Do parts follow their keypoints?",
            "GAN iteration",
            chosen_step,
        ),
        "appearance.svg": line_plot(
            {
                "appearance share (keypoint region)": series("metrics", "app_share_region"),
                "background share (keypoint region)": series("metrics", "bg_share_region"),
                "keypoints central": series("diag", "kp_central"),
            },
            "Appearance in the keypoint embeddings",
            "GAN iteration",
            chosen_step,
        ),
        "gan_losses.svg": line_plot(
            {"D loss": [(r["step"], r["loss_d"]) for r in steps], "G loss": [(r["step"], r["loss_g"]) for r in steps]},
            "GAN losses",
            "GAN iteration",
            chosen_step,
        ),
        "detector_error.svg": line_plot(
            {
                "validation error (px)": [(r["step"], r["val_error_px"]) for r in det if "val_error_px" in r],
                "training batch error (px)": [(r["step"], r["error_px"]) for r in det if "error_px" in r],
            },
            "Detector error on GAN pairs",
            "detector iteration",
        ),
    }


def _median_seconds(fn: Callable[[], object], repeats: int) -> float:
    """Median seconds of ``fn`` over ``repeats`` calls after one warm-up call."""
    fn()
    return statistics.median(timed(fn) for _ in range(repeats))


def detector_speed(detector: Any, repeats: int = 5) -> dict[str, float]:
    """Batched images/s (64 images) and single-image ms of ``detect`` on random uint8 images of the input size."""
    h, w = detector.input_size
    images = list(np.random.default_rng(0).integers(0, 256, (64, h, w, 3), dtype=np.uint8))
    batch = _median_seconds(lambda: detector.detect_batch(images), repeats)
    one = _median_seconds(lambda: detector.detect(images[0]), 4 * repeats)
    return {"batch64_images_per_s": round(64 / batch, 1), "single_ms": round(1000 * one, 2)}


def write_report(run_dir: Path, state: RunState, resolved: Resolved, progress: bool = False) -> dict[str, Any]:
    """Write ``run_dir/report/`` (atomically, as a folder rename) and return what the learn state keeps of it."""
    from tqdm import tqdm

    from ..detector import Detector
    from ..onnx import OnnxDetector
    from ..training.gan_weights import load_gan

    tmp, final = run_dir / f".{REPORT}.tmp", run_dir / REPORT
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    generator, info = load_gan(run_dir / GAN_WEIGHTS)
    detector = Detector.load(run_dir / DETECTOR_WEIGHTS)
    scale = max(1, 128 // generator.resolution)
    chosen = state.result("select").get("step")
    speed: dict[str, Any] = {"threads": torch.get_num_threads()}
    figures: dict[str, str] = {}

    def save(name: str, img: Image.Image | None) -> None:
        if img is not None:
            img.save(tmp / name)
            figures[name] = name

    def measure_speed() -> None:
        speed["pytorch"] = detector_speed(detector)
        speed["onnxruntime"] = detector_speed(OnnxDetector.load(run_dir / ONNX_MODEL, threads=speed["threads"]))

    parts: list[tuple[str, Callable[[], None]]] = [
        ("samples", lambda: save("samples.png", samples_figure(generator, detector, scale))),
        ("edits", lambda: save("edits.png", edits_figure(generator, scale))),
        ("real", lambda: save("real.png", real_figure(detector, state.settings.data_roots(), resolved.classes, 128))),
        ("plots", lambda: [(tmp / k).write_text(v) for k, v in plots(run_dir, chosen).items()]),
        ("speed", measure_speed),
    ]
    with torch.no_grad():
        for _, fn in tqdm(parts, desc="report", unit="part", disable=not progress, leave=False):
            fn()
    svgs = sorted(p.name for p in tmp.glob("*.svg"))
    (tmp / "index.html").write_text(html(state, resolved, info, figures, svgs, speed))
    shutil.rmtree(final, ignore_errors=True)
    tmp.rename(final)
    return {"html": f"{REPORT}/index.html", "figures": sorted(figures), "plots": svgs, "speed": speed}


def _table(rows: list[list[Any]], header: list[str]) -> str:
    head = "".join(f"<th>{escape(str(h))}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{escape(str(c))}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def html(
    state: RunState,
    resolved: Resolved,
    gan_info: dict[str, Any],
    figures: dict[str, str],
    svgs: list[str],
    speed: dict[str, Any],
) -> str:
    """The report page."""
    s, m = state.settings, resolved.gan.model
    select, flip, export = state.result("select"), state.result("flip"), state.result("export")
    stage_rows = [
        [n, v.get("status", ""), duration(v["seconds"]) if "seconds" in v else ""] for n, v in state.stages.items()
    ]
    cand = [
        [c["step"], "yes" if c["alive"] else "no", c["score"], c["move_locality"], c["swap_locality"], c["appearance"]]
        for c in select.get("candidates", [])
    ]
    captions = {
        "samples.png": "The chosen GAN's samples (seed 0). Top: its latent keypoints (one colour per keypoint). "
        "Bottom: the same images with the trained detector's keypoints (crosses).",
        "edits.png": "Edits of four samples A with gan.edit (B: the samples parts and background come from).",
        "real.png": "The detector on your own training images (their training crops).",
    }
    speed_rows = [[e, v["batch64_images_per_s"], v["single_ms"]] for e, v in speed.items() if isinstance(v, dict)]
    body = [
        "<h1>lkdetect learn report</h1>",
        f"<p>Data: {escape('; '.join(s.data_roots()))}; GAN preset {escape(s.preset)}, K = {m.n_keypoints}, "
        f"{m.resolution} px. "
        f"Result: <code>Detector.load({escape(repr(str(state.run_dir)))})</code>, ONNX model "
        f"<code>{escape(str(export.get('onnx', '')))}</code> (largest keypoint difference to PyTorch on 16 GAN images: "
        f"{export.get('max_diff_px', float('nan'))} px).</p>",
        "<h2>Stages</h2>",
        _table(stage_rows, ["stage", "status", "time"]),
        f"<h2>Chosen GAN snapshot: step {select.get('step')} (rule {escape(str(select.get('rule')))})</h2>",
        "<p>Candidates: snapshots of the second half of training. Keypoints alive: every keypoint's spread across "
        "samples at least R / 64 px and at least half of them central. Score = move locality + swap locality + "
        "appearance share (each 0 at chance, 1 at best; see lkdetect/learn/select.py).</p>",
        _table(cand, ["step", "alive", "score", "move locality", "swap locality", "appearance share"]),
    ]
    for name, caption in captions.items():
        if name in figures:
            body.append(f'<figure><img src="{name}" alt="{name}"><figcaption>{escape(caption)}</figcaption></figure>')
    body.append("<h2>Diagnostics over training</h2><p>Dashed line: the chosen snapshot.</p>")
    body += [f'<img src="{name}" alt="{name}">' for name in svgs]
    body += [
        f"<h2>Flip pairing</h2><p>permutation {flip.get('flip_permutation')} on {flip.get('pairs')} GAN pairs, "
        f"mean distance of each pair (px) {flip.get('flip_match_px')}</p>",
        f"<h2>Speed</h2><p>Detector on random {resolved.detector.network.input_size or m.resolution} px images, "
        f"{speed.get('threads')} threads.</p>",
        _table(speed_rows, ["engine", "images/s (batch 64)", "one image (ms)"]),
        f"<p>GAN snapshot info: {escape(str(gan_info))}</p>",
    ]
    style = "body{font-family:sans-serif;max-width:1100px;margin:auto}td,th{padding:2px 8px;border:1px solid #ccc}"
    head = f"<head><meta charset='utf-8'><title>lkdetect learn</title><style>{style}</style></head>"
    return f"<!doctype html><html>{head}<body>{''.join(body)}</body></html>\n"
