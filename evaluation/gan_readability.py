"""How much of each GAN keypoint's position the generated image shows: a probe for keypoints that drift.

    lkdetect gan-readability --gan RUN/generator_ema.safetensors [--detector faces] [--data ../shared/data/mtfl80]

A detector (by default the shipped one of the GAN's domain) describes the geometry of each generated image by its
own keypoints; a linear map with a bias, fitted on one half of the samples and applied to the other (2-fold), predicts
each GAN keypoint from them. Per GAN keypoint it reports the spread across samples (px), the part of it the image
does not explain (the cross-validated residual, px) and R^2 = 1 - residual^2 / spread^2. A keypoint that follows a
part of the object is read from the image (R^2 near 1); one whose position the renderer ignores is noise to any
detector trained on the GAN's pairs (R^2 near 0). The probe's detector is independent of the GAN being measured:
nothing is fitted to that GAN but the linear map.

Where the geometry comes from: each sample is rendered again with one of its three noises (pose, appearance,
background) taken from another sample, and the probe's keypoints move by an RMS distance (px), printed beside that
between unrelated samples. A GAN whose geometry comes from its keypoints moves with the pose noise only; where the
appearance noise moves the face as much, the keypoints cannot say where its parts are. The probe itself moves when
only the colours change (and more on blurry samples): its move when each sample takes another's colours, geometry
kept, is printed as the floor of the appearance noise's. ``--no-sources`` skips it all.

With ``--data``, the detector's spread on as many real training images is printed beside its spread on the samples:
samples whose objects vary more (or less) in place and shape than the real ones show there. No label is read.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

import numpy as np
import torch

from .cli import parse_alias


def cv_readability(probe: np.ndarray, keypoints: np.ndarray) -> dict[str, Any]:
    """2-fold cross-validated linear regression (with bias) from ``probe`` (N, P, 2) to ``keypoints`` (N, K, 2).

    Returns per keypoint ``spread`` (RMS distance to its mean, px), ``residual`` (RMS cross-validated error, px),
    ``r2``; and ``r2_mean``.
    """
    n = probe.shape[0]
    if n < 2 * (probe.shape[1] * 2 + 1) or keypoints.shape[0] != n:
        raise ValueError(f"need the same number of samples on both sides and at least {4 * probe.shape[1] + 2}")
    x = np.concatenate([probe.reshape(n, -1), np.ones((n, 1))], 1)
    y = keypoints.reshape(n, -1)
    half = n // 2
    residual = np.zeros_like(y)
    for fit, test in ((slice(0, half), slice(half, n)), (slice(half, n), slice(0, half))):
        w, *_ = np.linalg.lstsq(x[fit], y[fit], rcond=None)
        residual[test] = y[test] - x[test] @ w
    k = keypoints.shape[1]
    res2 = (residual.reshape(n, k, 2) ** 2).sum(-1).mean(0)
    spread2 = ((keypoints - keypoints.mean(0)) ** 2).sum(-1).mean(0)
    r2 = 1 - res2 / np.maximum(spread2, 1e-12)
    return {
        "spread": np.sqrt(spread2).tolist(),
        "residual": np.sqrt(res2).tolist(),
        "r2": r2.tolist(),
        "r2_mean": float(r2.mean()),
    }


def geometry_sources(
    generator: Any, detect: Any, n: int, seed: int, base: np.ndarray | None = None
) -> dict[str, float]:
    """RMS displacement (px) of ``detect``'s keypoints when each of samples ``0 .. n-1`` of ``seed`` takes its pose,
    appearance or background noise from the next sample (keys ``pose``, ``app``, ``bg``), and between the samples
    themselves (``unrelated``).

    ``generator`` maps and renders (:class:`gan.Generator`); ``detect`` takes (N, 3, R, R) images in [0, 1] and
    returns (N, P, 2) pixel coordinates; ``base``, when given, is ``detect`` on the samples themselves (as
    :func:`gan.sampling.sample` draws them), which saves rendering them again.
    """
    from gan.sampling import map_noise, render, sample_noise

    z = sample_noise(generator.cfg.z_dim, seed, range(n))
    other = torch.roll(torch.arange(n), 1)

    def probe(noise: list[torch.Tensor]) -> np.ndarray:
        return np.asarray(detect(render(generator, map_noise(generator, noise))))

    def rms(a: np.ndarray, b: np.ndarray) -> float:
        return float(np.sqrt(((a - b) ** 2).sum(-1).mean()))

    base = probe(list(z)) if base is None else np.asarray(base)
    out = {"unrelated": rms(base, base[other.numpy()])}
    for i, name in enumerate(("pose", "app", "bg")):
        out[name] = rms(probe([t[other] if j == i else t for j, t in enumerate(z)]), base)
    return out


def colour_transfer(images: torch.Tensor, source: torch.Tensor) -> torch.Tensor:
    """``images`` (N, 3, H, W) in [0, 1] with each channel's mean and standard deviation replaced by those of the
    same channel of ``source`` (N, 3, H', W'); clamped to [0, 1]. The geometry of each image is unchanged."""
    m, s = images.mean((2, 3), keepdim=True), images.std((2, 3), keepdim=True)
    m2, s2 = source.mean((2, 3), keepdim=True), source.std((2, 3), keepdim=True)
    return ((images - m) / (s + 1e-6) * s2 + m2).clamp(0, 1)


def colour_floor(images: torch.Tensor, detect: Any) -> float:
    """RMS displacement (px) of ``detect``'s keypoints when each image takes the colours of the next
    (:func:`colour_transfer`): how far the probe moves for a change of appearance that leaves the geometry where it
    is. The appearance noise's move in :func:`geometry_sources` is geometry only to the extent it exceeds this."""
    other = torch.roll(torch.arange(len(images)), 1)
    base, moved = np.asarray(detect(images)), np.asarray(detect(colour_transfer(images, images[other])))
    return float(np.sqrt(((moved - base) ** 2).sum(-1).mean()))


def spread(xy: np.ndarray) -> list[float]:
    """RMS distance of each keypoint to its mean over the first axis, (N, K, 2) -> K values."""
    return np.sqrt(((xy - xy.mean(0)) ** 2).sum(-1).mean(0)).tolist()


def add_arguments(ap: argparse.ArgumentParser) -> None:
    """The arguments of ``lkdetect gan-readability`` (and its alias ``python -m evaluation.gan_readability``)."""
    ap.add_argument("--gan", required=True, help="GAN weights (.safetensors): a release or a run's generator_ema")
    ap.add_argument("--detector", default="faces", help="probe detector: weights or shipped name (default faces)")
    ap.add_argument("-n", type=int, default=1024, help="samples (default 1024)")
    ap.add_argument("--seed", type=int, default=777, help="sample seed (default 777)")
    ap.add_argument("--data", default=None, help="real training images (gan.data): the detector's spread on them")
    ap.add_argument("--no-sources", action="store_true", help="skip the noises' share of the geometry (3 renders)")
    ap.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    ap.add_argument("--json", action="store_true", help="one JSON object instead of a table")


def check_arguments(args: argparse.Namespace) -> None:
    """Raise ``ValueError`` on arguments out of range (before anything loads)."""
    if args.n < 64:
        raise ValueError(f"-n must be >= 64, got {args.n}")


def run(args: argparse.Namespace) -> int:
    """Measure and print the readability of each keypoint."""
    check_arguments(args)
    torch.set_num_threads(args.threads)
    from gan.checkpoint import load_generator
    from gan.sampling import sample
    from lkdetect import Detector

    g, _ = load_generator(args.gan)
    det = Detector.load(args.detector)
    s = sample(g, args.n, seed=args.seed)
    probe = det.detect_batch(s.images).xy
    out: dict[str, Any] = {"gan": str(args.gan), "detector": str(args.detector), "n": args.n, "seed": args.seed}
    out.update(cv_readability(probe, s.keypoints.numpy()))
    out["probe_spread_samples"] = spread(probe)
    if not args.no_sources:

        def detect(images: torch.Tensor) -> np.ndarray:
            return det.detect_batch(images).xy

        out["geometry_moves"] = geometry_sources(g, detect, args.n, args.seed, base=probe)
        out["geometry_moves"]["colour"] = colour_floor(s.images, detect)
    if args.data:
        from gan.data import load_training_images

        real = load_training_images(args.data, g.resolution)
        pick = torch.randperm(len(real), generator=torch.Generator().manual_seed(args.seed))[: args.n]
        out["probe_spread_real"] = spread(det.detect_batch(real[pick].float() / 255).xy)
    if args.json:
        print(json.dumps(out))
        return 0
    print(f"{args.gan}: {args.n} samples, probe {args.detector}; mean R^2 {out['r2_mean']:.2f}")
    print("keypoint  spread px  residual px  R^2")
    for k, (sp, res, r2) in enumerate(zip(out["spread"], out["residual"], out["r2"])):
        print(f"{k:8d}  {sp:9.1f}  {res:11.1f}  {r2:4.2f}")
    print("probe spread px, samples: " + " ".join(f"{v:.1f}" for v in out["probe_spread_samples"]))
    if "probe_spread_real" in out:
        print("probe spread px, real:    " + " ".join(f"{v:.1f}" for v in out["probe_spread_real"]))
    if "geometry_moves" in out:
        moves = out["geometry_moves"]
        print(
            "probe keypoints move (RMS px) when the noise comes from another sample: "
            + ", ".join(f"{k} {moves[k]:.2f}" for k in ("pose", "app", "bg"))
            + f" (unrelated samples {moves['unrelated']:.2f}); the probe's floor: another sample's colours,"
            f" geometry kept, move it {moves['colour']:.2f}"
        )
    return 0


def main(argv: list[str] | None = None) -> int:
    """``python -m evaluation.gan_readability``: an alias of ``lkdetect gan-readability``."""
    return run(parse_alias(__doc__, add_arguments, check_arguments, argv))


if __name__ == "__main__":
    raise SystemExit(main())
