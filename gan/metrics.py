"""Does part appearance live in the keypoint embeddings? Label-free swap metrics of LatentKeypointGAN (issue 20).

All metrics exchange latents between pairs of samples (A, B) and measure the change of image A as the mean
absolute pixel difference (images in [0, 1], averaged over the three channels, x 255 in the ``*_255`` values):

- appearance share: swap all keypoint embeddings (A keeps its keypoints, visibility and background embedding),
  divided by the change from swapping keypoint embeddings and background embedding together ("all appearance");
  per region: the pixels within ``radius`` (a fraction of the image side) of any keypoint of A, and the rest.
  1 = the keypoint embeddings carry all the appearance there, 0 = none.
- background share: the same with the background embedding swapped alone.
- part locality of embedding swaps: swap one part's embedding; the share of the change within ``R / 8`` px of
  that keypoint, beside the share of the image that disk covers (chance), as :func:`gan.diagnostics.locality`
  does for moves; the ratio to chance is 1 for a change spread evenly over the image.
- CPD, the correlation of part difference maps (He et al., arXiv 2103.15812, Fig. 4): see :func:`cpd`.

Pairs come from fixed sample indices of a fixed seed (:func:`metric_pairs`), so numbers are comparable across
runs and snapshots. :func:`gan_metrics` computes them all; ``python -m gan.metrics --gan WEIGHTS`` prints them,
with ``--data DIR`` also the realism measure of :mod:`gan.realism`.
"""

from __future__ import annotations

import argparse
import json
import math

import torch

from . import edit
from .generator import Generator, Latents
from .keypoint_maps import grid2d, to_pixels
from .sampling import render, sample_noise

METRICS_VERSION = 1  # bump when a definition below changes: numbers of different versions are not comparable
METRIC_SEED = 20  # seed of the sample pairs: A = samples 0 .. n-1, B = samples n .. 2n-1
REGION_RADIUS = 0.12  # region: pixels within this fraction of the image side of any keypoint


@torch.no_grad()
def metric_pairs(generator: Generator, n_pairs: int, seed: int = METRIC_SEED) -> tuple[Latents, Latents]:
    """Latents of ``n_pairs`` pairs: A = samples 0 .. n-1 of ``seed``, B = samples n .. 2n-1."""
    if n_pairs < 1:
        raise ValueError(f"n_pairs must be >= 1, got {n_pairs}")
    device = next(generator.parameters()).device
    z = [t.to(device) for t in sample_noise(generator.cfg.z_dim, seed, range(2 * n_pairs))]
    lat = generator.map(*z)
    return lat[:n_pairs], lat[n_pairs:]


def keypoint_region(keypoints: torch.Tensor, visible: torch.Tensor, size: int, radius_px: float) -> torch.Tensor:
    """(N, size, size) bool: pixels within ``radius_px`` of any visible keypoint.

    Args:
        keypoints: (N, K, 2) in [-1, 1], (x, y).
        visible: (N, K), 1 for present parts.
    """
    grid = to_pixels(grid2d(size), size)  # (s, s, 2) pixel centres
    kp = to_pixels(keypoints.float().cpu(), size)
    dist = (grid[None, None] - kp[:, :, None, None]).norm(dim=-1)  # (N, K, s, s)
    dist = dist.masked_fill(visible.cpu()[:, :, None, None] <= 0, math.inf)
    return (dist <= radius_px).any(dim=1)


def _change(images: torch.Tensor, base: torch.Tensor) -> torch.Tensor:
    """(N, 3, R, R) x2 -> (N, R, R) mean absolute difference over the channels."""
    return (images - base).abs().mean(dim=1)


def _region_means(change: torch.Tensor, region: torch.Tensor) -> tuple[float, float]:
    """Mean of ``change`` (N, R, R) over all pairs' ``region`` pixels and over the rest (pooled over pairs)."""
    inside, outside = region.sum().item(), (~region).sum().item()
    return (change * region).sum().item() / max(inside, 1), (change * ~region).sum().item() / max(outside, 1)


def _share(part: float, whole: float) -> float:
    return part / whole if whole > 0 else 0.0


@torch.no_grad()
def appearance_shares(
    generator: Generator, a: Latents, b: Latents, radius: float = REGION_RADIUS, base: torch.Tensor | None = None
) -> dict[str, float]:
    """Appearance and background shares of the change of A per region (see the module docstring).

    Args:
        generator: anything with ``render(latents)`` (images in [-1, 1]) and ``resolution``.
        a, b: latents of N samples each; pair i is (a[i], b[i]).
        radius: region radius as a fraction of the image side.
        base: A's images (N, 3, R, R) in [0, 1] when already rendered.

    Returns:
        ``app_share_region``, ``app_share_outside`` (keypoint embeddings swapped / all appearance swapped),
        ``bg_share_region``, ``bg_share_outside`` (background embedding swapped / all swapped),
        ``change_all_region_255``, ``change_all_outside_255`` (the reference change, 0..255 scale) and
        ``region_area`` (the share of the image the region covers). Shares are ratios of means pooled over
        pairs; a share is 0 when swapping everything changes nothing.
    """
    size = generator.resolution
    base = render(generator, a) if base is None else base
    region = keypoint_region(a.keypoints, a.visible, size, radius * size)
    embeddings, _ = edit.swap_embeddings(a, b)
    background, _ = edit.swap_background(a, b)
    both = a.replace(kp_embed=b.kp_embed.clone(), bg_embed=b.bg_embed.clone())
    ch = {
        name: _region_means(_change(render(generator, lat).cpu(), base.cpu()), region)
        for name, lat in (("embeddings", embeddings), ("background", background), ("both", both))
    }
    (all_in, all_out) = ch["both"]
    return {
        "app_share_region": _share(ch["embeddings"][0], all_in),
        "app_share_outside": _share(ch["embeddings"][1], all_out),
        "bg_share_region": _share(ch["background"][0], all_in),
        "bg_share_outside": _share(ch["background"][1], all_out),
        "change_all_region_255": 255 * all_in,
        "change_all_outside_255": 255 * all_out,
        "region_area": region.float().mean().item(),
    }


@torch.no_grad()
def part_swap_changes(generator: Generator, a: Latents, b: Latents, base: torch.Tensor | None = None) -> torch.Tensor:
    """Difference maps of one-part swaps: (N, K, R, R), entry (i, k) = ``|A_i with B_i's embedding k - A_i|``,
    mean over channels, images in [0, 1]."""
    base = (render(generator, a) if base is None else base).cpu()
    maps = []
    for k in range(a.keypoints.shape[1]):
        swapped, _ = edit.swap_embeddings(a, b, k)
        maps.append(_change(render(generator, swapped).cpu(), base))
    return torch.stack(maps, dim=1)


def swap_locality(changes: torch.Tensor, a: Latents, radius_px: float | None = None) -> dict[str, float]:
    """Share of a one-part swap's change near that part's keypoint, against chance.

    Args:
        changes: (N, K, R, R) from :func:`part_swap_changes`.
        a: the latents the swaps were applied to (keypoints (N, K, 2) in [-1, 1]).
        radius_px: disk radius in px (default R / 8, as :func:`gan.diagnostics.locality`).

    Returns:
        ``swap_locality``: mean over samples and parts of (change within the disk) / (change); 0 for a swap that
        changes nothing. ``swap_locality_chance``: mean share of the image the disk covers.
        ``swap_locality_ratio``: their ratio (1 = no locality). ``swap_change_255``: mean change per pixel of a
        one-part swap (0..255 scale; near 0 means the part embeddings do nothing and the locality is moot).
    """
    n, k, r = changes.shape[:3]
    radius_px = radius_px or r / 8
    grid = to_pixels(grid2d(r), r)
    kp = to_pixels(a.keypoints[:, :k].float().cpu(), r)
    disk = ((grid[None, None] - kp[:, :, None, None]).norm(dim=-1) <= radius_px).float()  # (N, K, r, r)
    total = changes.sum((2, 3))
    share = (changes * disk).sum((2, 3)) / total.clamp_min(1e-12)
    share = torch.where(total > 0, share, torch.zeros_like(share))
    loc, chance = share.mean().item(), disk.mean().item()
    return {
        "swap_locality": loc,
        "swap_locality_chance": chance,
        "swap_locality_ratio": loc / max(chance, 1e-12),
        "swap_change_255": 255 * changes.mean().item(),
    }


def cpd(changes: torch.Tensor, eps: float = 1e-12) -> dict[str, float | list]:
    """Correlation of part difference maps (CPD; He et al., arXiv 2103.15812, Fig. 4).

    For pair i and parts j, k let ``M_ij`` be the difference map of exchanging part j's embedding alone
    (:func:`part_swap_changes`, R x R pixels). ``C_i[j, k]`` is the Pearson correlation of ``M_ij`` and
    ``M_ik`` over the pixels of the image. The CPD is the off-diagonal mass
    ``mean over pairs i and parts j != k of |C_i[j, k]|``: 0 when the parts change uncorrelated pixels
    (independent parts; disjoint supports give a small negative correlation, about -area / (1 - area)),
    1 when every part changes the same pixels in the same proportions. Entries whose maps are constant (a swap
    that changes nothing, or everything equally) have no correlation and are left out.

    Args:
        changes: (N, K, R, R) difference maps, K >= 2.

    Returns:
        ``cpd``: the off-diagonal mass (NaN when no entry is defined); ``cpd_matrix``: the K x K matrix of
        ``C_i`` averaged over pairs (signed; rounded to 3 decimals); ``cpd_defined``: share of the off-diagonal
        entries that were defined.
    """
    n, k = changes.shape[:2]
    if k < 2:
        raise ValueError(f"CPD needs at least two parts, got K = {k}")
    m = changes.reshape(n, k, -1).double()
    m = m - m.mean(-1, keepdim=True)
    norm = m.norm(dim=-1)  # (N, K)
    ok = norm > eps * math.sqrt(m.shape[-1])
    c = (m @ m.transpose(1, 2)) / (norm[:, :, None] * norm[:, None, :]).clamp_min(1e-300)
    valid = ok[:, :, None] & ok[:, None, :]
    off = ~torch.eye(k, dtype=torch.bool)
    sel = valid & off
    mass = c.abs()[sel].mean().item() if sel.any() else math.nan
    count = valid.sum(0).clamp_min(1)
    matrix = torch.where(valid, c, torch.zeros_like(c)).sum(0) / count
    return {
        "cpd": mass,
        "cpd_matrix": [[round(v, 3) for v in row] for row in matrix.tolist()],
        "cpd_defined": sel.sum().item() / (n * k * (k - 1)),
    }


@torch.no_grad()
def gan_metrics(
    generator: Generator, n_pairs: int = 128, seed: int = METRIC_SEED, radius: float = REGION_RADIUS
) -> dict[str, object]:
    """All swap metrics on ``n_pairs`` fixed pairs; JSON-ready, with ``metrics_version`` and ``pairs``.

    Costs (3 + K) renders of ``n_pairs`` images (K = 10, 128 pairs at 64 px: about 20 s on one CPU thread).
    """
    a, b = metric_pairs(generator, n_pairs, seed)
    base = render(generator, a).cpu()
    out: dict[str, object] = {"metrics_version": METRICS_VERSION, "pairs": n_pairs, "seed": seed}
    out.update(appearance_shares(generator, a, b, radius, base=base))
    changes = part_swap_changes(generator, a, b, base=base)
    out.update(swap_locality(changes, a))
    if changes.shape[1] >= 2:
        out.update(cpd(changes))
    return out


def rounded(d: dict[str, object], digits: int = 4) -> dict[str, object]:
    """Floats rounded for logs and metadata (nested lists kept)."""
    return {k: round(v, digits) if isinstance(v, float) and math.isfinite(v) else v for k, v in d.items()}


DESCRIPTION = "Label-free swap metrics (and realism) of GAN release weights."


def add_arguments(ap: argparse.ArgumentParser) -> None:
    """The arguments of ``lkdetect gan-metrics`` (and its alias ``python -m gan.metrics``)."""
    ap.add_argument("--gan", required=True, help="GAN release weights (.safetensors)")
    ap.add_argument("--pairs", type=int, default=128, help="sample pairs for the swap metrics (default 128)")
    ap.add_argument("--seed", type=int, default=METRIC_SEED)
    ap.add_argument("--data", default=None, help="training images (gan.data) for the realism measure")
    ap.add_argument("--realism-n", type=int, default=None, help="images per side for realism (default: its own)")
    ap.add_argument("--classes", default=None, help="CUB only: comma-separated class ids of the training data")
    ap.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    ap.add_argument("--json", action="store_true", help="one JSON object instead of a table")


def check_arguments(args: argparse.Namespace) -> None:
    """Raise ``ValueError`` on arguments out of range (before anything loads)."""
    if args.pairs < 1:
        raise ValueError(f"--pairs must be >= 1, got {args.pairs}")


def run(args: argparse.Namespace) -> int:
    """Measure and print the metrics (a table, or one JSON object with --json)."""
    check_arguments(args)
    torch.set_num_threads(args.threads)
    from .checkpoint import load_generator

    g, _ = load_generator(args.gan)
    out = gan_metrics(g, args.pairs, args.seed)
    if args.data:
        from .data import parse_classes
        from .realism import DEFAULT_N, realism

        classes = parse_classes(args.classes)
        out.update(realism(g, args.data, n=args.realism_n or DEFAULT_N, classes=classes))
    if args.json:
        print(json.dumps(rounded(out)))
        return 0
    for key, value in rounded(out).items():
        if key != "cpd_matrix":
            print(f"{key:24s} {value}")
    if "cpd_matrix" in out:
        print("cpd_matrix (mean correlation of one-part swap difference maps):")
        for row in out["cpd_matrix"]:
            print("  " + " ".join(f"{v:6.2f}" for v in row))
    return 0


def main(argv: list[str] | None = None) -> None:
    """``python -m gan.metrics``: an alias of ``lkdetect gan-metrics``."""
    ap = argparse.ArgumentParser(description=DESCRIPTION)
    add_arguments(ap)
    args = ap.parse_args(argv)
    try:
        check_arguments(args)
    except ValueError as e:
        ap.error(str(e))
    run(args)


if __name__ == "__main__":
    main()
