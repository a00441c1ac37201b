"""``lkdetect demo``: what LatentKeypointGAN does, as pictures (He et al., arXiv 2103.15812, Sec. 4.1).

Writes into one folder: a grid of generated images with their latent keypoints (dots) and, when a detector is
available, the detector's keypoints on the same images (crosses); one before/after PNG per editing operation
(:mod:`gan.edit`); animated GIFs (optionally MP4) of a keypoint move, a pose and an embedding interpolation;
and an ``index.html`` that shows it all with captions. This is a GAN path: ``gan`` is imported inside
functions only, so ``import lkdetect`` stays light.
"""

from __future__ import annotations

import html
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from PIL import Image, ImageDraw

from .drawing import palette

if TYPE_CHECKING:
    import torch

    from gan.generator import Generator, Latents

logger = logging.getLogger(__name__)

Detect = Callable[["torch.Tensor"], "torch.Tensor"]  # (N, 3, R, R) in [0, 1] -> (N, K, 2) pixels (x, y)


def load_detector(weights: str | Path | None = None, domain: str = "faces") -> Detect | None:
    """The keypoint detector as a callable on [0, 1] image tensors, or None (with a warning) when unavailable.

    ``weights`` names or points to the detector; None means the shipped detector of ``domain``.
    """
    try:
        from .detector import Detector
    except ImportError as e:
        logger.warning("no keypoint detector available (%s): the demo shows latent keypoints only", e)
        return None
    try:
        det = Detector.load(weights if weights is not None else domain)
    except (FileNotFoundError, OSError, ValueError) as e:
        if weights is not None:  # weights the user named must load
            raise
        logger.warning("no keypoint detector weights found (%s): the demo shows latent keypoints only", e)
        return None

    from .weights import gan_keypoint_indices

    kept = gan_keypoint_indices(det.metadata)

    def detect(images: torch.Tensor) -> torch.Tensor:
        import torch

        arrays = [
            np.ascontiguousarray((im.permute(1, 2, 0).clamp(0, 1) * 255 + 0.5).byte().cpu().numpy()) for im in images
        ]
        xy = np.asarray(det.detect_batch(arrays).xy, dtype=np.float32)
        # a detector of a subset of the GAN's keypoints: each detection at its GAN keypoint's index (colour), NaN rows
        # for the others (not drawn)
        full = np.full((len(xy), max(kept) + 1, 2), np.nan, dtype=np.float32)
        full[:, kept] = xy
        return torch.as_tensor(full)

    return detect


# ------------------------------------------------------------------------------------------------- pictures
def _tile(
    image: torch.Tensor,
    scale: int,
    latent_px: np.ndarray | None = None,
    visible: np.ndarray | None = None,
    detected_px: np.ndarray | None = None,
    colors: list[int] | None = None,
) -> Image.Image:
    """One (3, R, R) [0, 1] image upscaled, latent keypoints as dots (removed ones hollow), detections as crosses."""
    from gan.viz import to_pil

    r = image.shape[-1]
    img = to_pil(image).resize((r * scale, r * scale), Image.Resampling.NEAREST)
    draw = ImageDraw.Draw(img)
    rad = max(2.0, scale * 0.9)

    def at(x: float, y: float) -> tuple[float, float]:
        return (x + 0.5) * scale - 0.5, (y + 0.5) * scale - 0.5

    for pts, cross in ((latent_px, False), (detected_px, True)):
        if pts is None:
            continue
        pal = palette(len(colors) if colors is not None else len(pts))
        for i, (x, y) in enumerate(np.asarray(pts, dtype=float)):
            if not (np.isfinite(x) and np.isfinite(y)):  # a keypoint the detector does not output
                continue
            col = pal[colors[i] if colors is not None and i < len(colors) else i % len(pal)]
            cx, cy = at(x, y)
            if cross:
                draw.line([(cx - rad - 1, cy - rad - 1), (cx + rad + 1, cy + rad + 1)], fill=col, width=2)
                draw.line([(cx - rad - 1, cy + rad + 1), (cx + rad + 1, cy - rad - 1)], fill=col, width=2)
            elif visible is not None and visible[i] < 0.5:
                draw.ellipse([cx - rad, cy - rad, cx + rad, cy + rad], outline=col, width=2)
            else:
                draw.ellipse([cx - rad, cy - rad, cx + rad, cy + rad], fill=col, outline=(0, 0, 0))
    return img


def _panel(tiles: list[Image.Image], labels: list[str], pad: int = 4, label_h: int = 14) -> Image.Image:
    """Tiles side by side, a label under each."""
    w, h = tiles[0].size
    out = Image.new("RGB", (len(tiles) * (w + pad) + pad, h + label_h + 2 * pad), (255, 255, 255))
    draw = ImageDraw.Draw(out)
    for i, (tile, label) in enumerate(zip(tiles, labels, strict=True)):
        x = pad + i * (w + pad)
        out.paste(tile, (x, pad))
        draw.text((x, pad + h + 1), label, fill=(0, 0, 0))
    return out


def _diff(before: torch.Tensor, after: torch.Tensor, scale: int) -> Image.Image:
    """|after - before| summed over channels, normalised to its maximum, as a grey image."""
    import torch

    d = (after - before).abs().sum(0)
    d = (d / d.max().clamp_min(1e-8)).expand(3, -1, -1)
    return _tile(torch.as_tensor(d), scale)


def measure_change(images: torch.Tensor, keypoints_px: torch.Tensor, pad: float) -> dict[str, float]:
    """How far an edit moved image A: mean |difference| on the 0-255 scale, inside A's keypoint box and outside.

    Args:
        images: (3, 3, R, R) in [0, 1]: A, B and the edited result.
        keypoints_px: (K, 2) A's keypoints (x, y) in pixels; the box around them, widened by ``pad`` px, is the
            object region.

    Returns:
        ``result_in``/``result_out`` (result vs A) and ``b_in``/``b_out`` (B vs A), inside and outside the box.
    """
    import torch

    r = images.shape[-1]
    lo, hi = keypoints_px.min(0).values - pad, keypoints_px.max(0).values + pad
    grid = torch.arange(r, dtype=torch.float32)
    cols, rows = (grid >= lo[0]) & (grid <= hi[0]), (grid >= lo[1]) & (grid <= hi[1])
    inside = rows[:, None] & cols[None, :]
    out = {}
    for name, other in (("result", images[2]), ("b", images[1])):
        d = (other.float() - images[0].float()).abs().mean(0) * 255
        out[f"{name}_in"] = float(d[inside].mean()) if inside.any() else float("nan")
        out[f"{name}_out"] = float(d[~inside].mean()) if (~inside).any() else float("nan")
    return out


def _measured(m: dict[str, float], what: str = "the result") -> str:
    """A caption's account of :func:`measure_change`: what the edit changed, next to how much A and B differ."""
    share = [100 * m[f"result_{w}"] / m[f"b_{w}"] if m[f"b_{w}"] > 0 else float("nan") for w in ("in", "out")]
    return (
        f"Measured: {what} differs from A by {m['result_in']:.1f} (of 255, mean per pixel) inside A's keypoint box "
        f"and {m['result_out']:.1f} outside; B differs from A by {m['b_in']:.1f} and {m['b_out']:.1f}. The edit went "
        f"{share[0]:.0f} % of the way from A to B inside the box, {share[1]:.0f} % outside."
    )


def _save_gif(frames: list[Image.Image], path: Path, ms: int = 80) -> None:
    frames[0].save(path, save_all=True, append_images=frames[1:], duration=ms, loop=0, optimize=False)


def _save_mp4(frames: list[Image.Image], path: Path, fps: int = 12) -> bool:
    try:
        import cv2
    except ImportError:
        logger.warning("opencv is not installed: no MP4 written")
        return False
    w, h = frames[0].size
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (w, h))
    if not writer.isOpened():
        logger.warning("opencv cannot write MP4 here: no MP4 written")
        return False
    for f in frames:
        writer.write(cv2.cvtColor(np.asarray(f), cv2.COLOR_RGB2BGR))
    writer.release()
    return True


# ----------------------------------------------------------------------------------------------------- demo
@dataclass
class DemoResult:
    """What :func:`run_demo` wrote: ``html`` (index.html), every file by name, and the measures it reported."""

    out_dir: Path
    html: Path
    files: dict[str, Path] = field(default_factory=dict)
    measures: dict[str, float] = field(default_factory=dict)
    detector: bool = False


class _Demo:
    """Renders latents, draws keypoints and keeps the list of figures for the HTML page."""

    def __init__(self, generator: Generator, detect: Detect | None, out: Path):
        self.G, self.detect, self.out = generator, detect, out
        self.r = generator.resolution
        self.k = generator.n_keypoints
        self.scale = max(1, 256 // self.r)
        self.sections: list[tuple[str, str, str]] = []  # (title, file name, caption)
        self.files: dict[str, Path] = {}
        self.measures: dict[str, float] = {}  # measure_change of each embedding edit, "<figure>_result_in" ...

    def render(self, lat: Latents) -> torch.Tensor:
        from gan import edit

        return edit.render(self.G, lat)

    def tiles(
        self, lat: Latents, images: torch.Tensor | None = None, colors: list[int] | None = None
    ) -> tuple[torch.Tensor, list[Image.Image]]:
        from gan.keypoint_maps import to_pixels

        images = self.render(lat) if images is None else images
        det = self.detect(images).cpu().numpy() if self.detect is not None else None
        kp = to_pixels(lat.keypoints.float(), self.r).cpu().numpy()
        vis = lat.visible.cpu().numpy()
        return images, [
            _tile(images[i], self.scale, kp[i], vis[i], None if det is None else det[i], colors)
            for i in range(len(images))
        ]

    def save(self, name: str, img: Image.Image, title: str, caption: str) -> None:
        path = self.out / name
        img.save(path)
        self.files[name] = path
        self.sections.append((title, name, caption))

    def edit_figure(
        self, name: str, title: str, caption: str, before: Latents, after: Latents, colors: list[int] | None = None
    ) -> None:
        """Before | after | |difference| for one sample."""
        ib, (tb,) = self.tiles(before)
        ia, (ta,) = self.tiles(after, colors=colors)
        self.save(
            name, _panel([tb, ta, _diff(ib[0], ia[0], self.scale)], ["before", "after", "|difference|"]), title, caption
        )

    def animation(self, name: str, title: str, caption: str, lats: list[Latents], mp4: bool) -> None:
        from gan.generator import Latents

        _, tiles = self.tiles(Latents.cat(lats))
        frames = tiles + tiles[::-1][1:-1]  # ping-pong loop
        _save_gif(frames, self.out / f"{name}.gif")
        self.files[f"{name}.gif"] = self.out / f"{name}.gif"
        self.sections.append((title, f"{name}.gif", caption))
        if mp4 and _save_mp4(frames, self.out / f"{name}.mp4"):
            self.files[f"{name}.mp4"] = self.out / f"{name}.mp4"


def _central_part(lat: Latents) -> int:
    """Index of the keypoint of sample 0 nearest the image centre (most likely on the object)."""
    return int(lat.keypoints[0].norm(dim=-1).argmin())


def _steps(demo: _Demo, a: Latents, b: Latents, j: int, mp4: bool) -> list[tuple[str, Callable[[], None]]]:
    """The demo's figures as (description, thunk) pairs, so that a progress bar can count them."""
    import math

    import torch

    from gan import edit
    from gan.generator import Latents
    from gan.keypoint_maps import to_pixels

    r, k, step = demo.r, demo.k, demo.r / 8
    upper = [int(i) for i in (a.keypoints[0, :, 1] < a.keypoints[0, :, 1].median()).nonzero().flatten()] or [0]
    sa, sb = edit.swap_embeddings(a, b)
    pa, _ = edit.swap_embeddings(a, b, upper)
    ba, _ = edit.swap_background(a, b)
    px = {"units": "px", "size": r}
    added_xy = a.keypoints[:, j : j + 1] + torch.tensor([4 * step / r, 0.0])  # 2 * step px to the right

    def measured(name: str, after: Latents, images: torch.Tensor | None = None, what: str = "the result") -> str:
        images = demo.render(Latents.cat([a, b, after])) if images is None else images
        m = measure_change(images, to_pixels(a.keypoints[0].float(), r), r / 8)
        demo.measures.update({f"{name}_{k}": v for k, v in m.items()})
        return _measured(m, what)

    def swap_fig(name: str, title: str, caption: str, after: Latents) -> None:
        images, tiles = demo.tiles(Latents.cat([a, b, after]))
        caption = f"{caption} {measured(name.removesuffix('.png'), after, images)}"
        demo.save(name, _panel(tiles, ["A", "B", "result"]), title, caption)

    circle = [
        edit.translate(a, (step * math.cos(2 * math.pi * i / 24), step * math.sin(2 * math.pi * i / 24)), j, **px)
        for i in range(24)
    ]
    return [
        (
            "translate",
            lambda: demo.edit_figure(
                "edit_translate.png",
                "Move all keypoints",
                f"All {k} keypoints translated {step:.0f} px to the right (gan.edit.translate); embeddings unchanged.",
                a,
                edit.translate(a, (step, 0), **px),
            ),
        ),
        (
            "move part",
            lambda: demo.edit_figure(
                "edit_move_part.png",
                f"Move one keypoint (part {j})",
                f"Part {j} moved {step:.0f} px right and down; the change should stay near it.",
                a,
                edit.translate(a, (step, step), j, **px),
            ),
        ),
        (
            "scale",
            lambda: demo.edit_figure(
                "edit_scale.png",
                "Scale the keypoints",
                "All keypoints scaled by 1.25 about their centroid (gan.edit.scale).",
                a,
                edit.scale(a, 1.25),
            ),
        ),
        (
            "rotate",
            lambda: demo.edit_figure(
                "edit_rotate.png",
                "Rotate the keypoints",
                "All keypoints rotated 20 degrees counter-clockwise about their centroid (gan.edit.rotate).",
                a,
                edit.rotate(a, 20),
            ),
        ),
        (
            "swap all",
            lambda: swap_fig(
                "edit_swap_embeddings.png",
                "Exchange all embeddings",
                "Result: A's keypoints with all of B's keypoint embeddings (gan.edit.swap_embeddings).",
                sa,
            ),
        ),
        (
            "swap subset",
            lambda: swap_fig(
                "edit_swap_subset.png",
                "Exchange a subset of embeddings",
                f"Result: A with B's embeddings of parts {upper} (the upper half of A's keypoints) only.",
                pa,
            ),
        ),
        (
            "interpolate",
            lambda: swap_fig(
                "edit_interpolate_embeddings.png",
                "Interpolate embeddings",
                "Result: A's embeddings half way to B's (gan.edit.interpolate_embeddings, t = 0.5).",
                edit.interpolate_embeddings(a, b, 0.5),
            ),
        ),
        (
            "background",
            lambda: swap_fig(
                "edit_background.png",
                "Change the background",
                "Result: A with B's background embedding (gan.edit.swap_background).",
                ba,
            ),
        ),
        (
            "remove",
            lambda: demo.edit_figure(
                "edit_remove_part.png",
                f"Remove a part (part {j})",
                f"Part {j} removed (visible = 0; hollow marker): its heatmap and embedding no longer reach the image.",
                a,
                edit.remove_parts(a, j),
            ),
        ),
        (
            "add",
            lambda: demo.edit_figure(
                "edit_add_part.png",
                f"Add a part (copy of part {j})",
                f"A copy of part {j}'s embedding added at "
                f"{2 * step:.0f} px to its right, as keypoint {k} (gan.edit.add_part; it acts through the heatmaps "
                "only).",
                a,
                edit.add_part(a, j, added_xy),
                [*range(k), j],
            ),
        ),
        (
            "gif move",
            lambda: demo.animation(
                "anim_move_part",
                f"Animation: moving part {j}",
                f"Part {j} moved around a circle of {step:.0f} px.",
                circle,
                mp4,
            ),
        ),
        (
            "gif pose",
            lambda: demo.animation(
                "anim_interpolate_pose",
                "Animation: interpolating the pose",
                "Keypoint positions of A interpolated to B's; embeddings and background stay A's.",
                [edit.interpolate(a, b, i / 15, "keypoints") for i in range(16)],
                mp4,
            ),
        ),
        (
            "gif embeddings",
            lambda: demo.animation(
                "anim_interpolate_embeddings",
                "Animation: interpolating the embeddings",
                "A's keypoint embeddings interpolated to B's; positions stay A's. "
                + measured("anim_embeddings", edit.interpolate(a, b, 1.0, "embeddings"), what="the last frame"),
                [edit.interpolate(a, b, i / 15, "embeddings") for i in range(16)],
                mp4,
            ),
        ),
    ]


def run_demo(
    out: str | Path,
    seed: int = 0,
    domain: str = "faces",
    gan_path: str | Path | None = None,
    detector_weights: str | Path | None = None,
    detect: Detect | None = None,
    n_grid: int = 16,
    mp4: bool = False,
    progress: bool = False,
) -> DemoResult:
    """Write the demo into ``out``.

    Args:
        out: output folder (created).
        seed: sampling seed; the same seed gives the same pictures.
        domain: which shipped weights to use when ``gan_path`` is None (see :func:`lkdetect.models.shipped_gan_path`).
        gan_path: GAN release weights (safetensors) instead of the shipped ones.
        detector_weights: detector weights instead of the shipped detector of ``domain``; the shipped one is
            optional (a warning when missing), explicitly given weights must load.
        detect: a detector callable to use instead of loading one (tests).
        n_grid: images in the grid.
        mp4: also write MP4 videos (needs opencv).
        progress: show a tqdm progress bar.
    """
    import torch
    from tqdm import tqdm

    from gan.disentangle import move_locality
    from gan.sampling import sample

    from .training.gan_weights import load_gan

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    from .models import shipped_gan_path

    path = Path(gan_path) if gan_path is not None else shipped_gan_path(domain)
    generator, info = load_gan(path)
    if detect is None:
        detect = load_detector(detector_weights, domain)
    demo = _Demo(generator, detect, out)
    with torch.no_grad():
        samples = sample(generator, max(n_grid, 2), seed=seed)
    lat = samples.latents
    a, b, j = lat[0], lat[1], _central_part(lat)
    steps = [("grid", lambda: _grid(demo, samples, n_grid)), *_steps(demo, a, b, j, mp4)]
    measures: dict[str, float] = {}
    steps.append(("locality", lambda: measures.update(move_locality(generator, lat[:8], seed=seed))))
    for _, fn in tqdm(steps, desc="demo", disable=not progress):
        fn()
    measures.update(demo.measures)
    html_path = _write_html(demo, path, info, measures, seed)
    logger.info("demo written to %s", html_path)
    return DemoResult(out, html_path, dict(demo.files), measures, detect is not None)


def _grid(demo: _Demo, samples: Any, n: int) -> None:
    images, tiles = demo.tiles(samples.latents[:n], samples.images[:n])
    ncol = min(8, n)
    w, h = tiles[0].size
    grid = Image.new("RGB", (ncol * (w + 2) + 2, ((n + ncol - 1) // ncol) * (h + 2) + 2), (255, 255, 255))
    for i, t in enumerate(tiles):
        grid.paste(t, (2 + (i % ncol) * (w + 2), 2 + (i // ncol) * (h + 2)))
    det = (
        "crosses: the keypoint detector's predictions on the same images"
        if demo.detect
        else "no keypoint detector was found, so only the latent keypoints are shown"
    )
    demo.save(
        "samples.png",
        grid,
        "Generated images and their keypoints",
        f"{n} samples. Dots: the generator's latent keypoints (part k keeps its colour everywhere); {det}. "
        "A and B in the figures below are the first two samples.",
    )


def _write_html(demo: _Demo, gan_path: Path, info: dict[str, Any], measures: dict[str, float], seed: int) -> Path:
    meta = ", ".join(f"{k} {v}" for k, v in info.items()) or "no training info"
    rows = []
    for title, name, caption in demo.sections:
        rows.append(
            f'<h2>{html.escape(title)}</h2>\n<figure><img src="{html.escape(name)}" alt="'
            f'{html.escape(title)}"><figcaption>{html.escape(caption)}</figcaption></figure>'
        )
    videos = [n for n in demo.files if n.endswith(".mp4")]
    if videos:
        rows.append("<p>MP4: " + ", ".join(f'<a href="{n}">{n}</a>' for n in videos) + "</p>")
    loc = (
        f"Locality: when one keypoint moves {demo.r / 16:.0f} px, {100 * measures['locality']:.0f} % of the "
        f"image change falls within {demo.r / 8:.0f} px of it, where that neighbourhood covers "
        f"{100 * measures['locality_chance']:.0f} % of the image (ratio {measures['locality_ratio']:.1f})."
    )
    page = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>lkdetect demo</title>
<style>body{{font-family:sans-serif;max-width:1100px;margin:2em auto;padding:0 1em}}
img{{image-rendering:pixelated;max-width:100%}}figcaption{{color:#333;margin:.3em 0 1.5em}}</style></head>
<body><h1>LatentKeypointGAN demo</h1>
<p>Generator {html.escape(gan_path.name)} ({html.escape(meta)}), {demo.r} px, K = {demo.k} keypoints, seed {seed}.
Edits use <code>gan.edit</code>; every edit panel shows before, after and where the image changed.</p>
<p>{html.escape(loc)}</p>
{chr(10).join(rows)}
</body></html>
"""
    path = demo.out / "index.html"
    path.write_text(page, encoding="utf-8")
    return path
