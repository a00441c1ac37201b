"""Configuration of LatentKeypointGAN: frozen dataclasses and a literal table of named presets.

Every number that shapes the model or its training lives here, never in code. Presets:
``tiny`` (tests, seconds on a CPU), ``cpu64`` (64x64, designed for a 2-core CPU) and ``paper128``
(the successor's 128 px sizes, for a GPU). Overrides use dotted keys (``model.tau=0.02``); unknown
keys raise.
"""

from __future__ import annotations

import ast
import dataclasses
import types
import typing
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class ModelConfig:
    """Generator and discriminator shape."""

    resolution: int = 64  # output side in pixels (a power of two, 32 to 256)
    n_keypoints: int = 10  # K
    z_dim: int = 256  # each of z_pose, z_app, z_bg
    mlp_depth: int = 3  # hidden Linear+LeakyReLU layers in each mapping MLP
    embed_dim: int = 64  # D, channels of the conditioning map
    tau: float = 0.025  # heatmap width: H = exp(-||p - k||^2 / tau) on the [-1, 1] grid
    conditioning: str = "sum"  # "sum": sum_k H_k w_k + H_bg w_bg; "concat": stacked per-keypoint maps
    kp_divisor: float = 20.0  # pre-tanh keypoint output divided by this: keypoints start near the centre
    # > 0: the keypoints start spread over a disc of this radius ([-1, 1] units; a sunflower layout of the pose
    # network's output bias) instead of all at the centre (issue 20: normalised masks of keypoints that start in one
    # place tile the face as a chain or a cluster). Only the initial weights differ; on faces the spread start lasted
    # only with a slower pose network (train.lr_pose_scale; CHANGELOG). 0 = at the centre
    kp_init_radius: float = 0.0
    start_resolution: int = 8  # side of the keypoint-relative positional start tensor
    g_channels: tuple[int, ...] = (96, 48, 24, 12)  # generator width per resolution, start .. output
    spade_hidden: int = 0  # hidden width of SPADE's gamma/beta branch; 0 = a single 1x1 conv (cheap)
    spade_kernel: int = 1  # kernel of SPADE's gamma/beta convs (1 = cheap, 3 = paper style)
    spade_wide_until: int = 0  # spade_hidden / spade_kernel only at resolutions <= this (others 1x1); 0 = all
    part_masks: str = "gaussian"  # "gaussian": H_k, H_bg = 1 - max H; "normalised": H_k / (sum H + level), GANSeg-like
    mask_bg_level: float = 0.1  # "normalised" masks: background = level / (sum_k H_k + level)
    # "shared": w_bg modulates the generator with the background map (paper); "composite": the generator draws
    # from the parts alone (a learned constant in the background row), a small net draws the background from w_bg,
    # and the two are blended by the background map at the output resolution, so w_bg cannot draw the object.
    background: str = "shared"
    # "composite": background net width per resolution from 4 px; it draws at 4 * 2^(len - 1) px, up-sampled
    # (bilinear) to the output: fewer widths, a blurrier background that cannot draw the object's detail
    bg_channels: tuple[int, ...] = (64, 32, 16, 8, 8)
    # how the background net doubles its size between widths: "nearest" (then its 3x3 conv, as G does) or
    # "bilinear"; nearest draws blocky 4-8 px squares in the thin default net; bilinear removed them, but in its one
    # face run the keypoints left the face and realism was worse (CHANGELOG)
    bg_upsample: str = "nearest"
    # "composite" only: the renderer draws a 4th channel that lowers the background mask's logit by up to this many
    # (tanh-bounded, zero at the start), so the parts' net, which knows where the keypoints are and how the parts
    # look, may claim an outline the fixed Gaussians cannot draw (hair, jaw, neck); GANSeg learns its masks too.
    # One way only: allowed to raise it as well, the background net drew the whole face. At 4 on the composite face
    # recipe with the wider D: KID 9.3 against 11.7 and better keypoints at 240k images, but the realism classifier
    # 0.86 against 0.81 (one run each; CHANGELOG, issue 20). 0 = off: the mask is the keypoints' alone
    mask_refine: float = 0.0
    bg_min_resolution: int = 0  # "shared": w_bg enters only at resolutions >= this, a learned constant below; 0 = all
    # the part embeddings w_k = c_k * MLP(z_app) enter only the SPADE blocks at resolutions >= this; below, each part's
    # row carries its constant c_k alone (which part it is, not how it looks), so the coarse layout of the object can
    # only come from the keypoints, and the appearance noise is left colour, texture and fine detail (StyleGAN's
    # coarse / fine split; issue 20: the composite GANs drew the face's geometry from the appearance noise). On faces
    # at 32 the appearance noise's move of the face fell to the probe's floor (CHANGELOG). 0 = all
    app_min_resolution: int = 0
    # discriminator width per resolution, input ..; twice as wide, (16, 32, 64, 128, 128), the composite face recipe's
    # realism classifier read 0.81-0.83 at 240k images in two runs against 0.91-0.95 (13 % slower; past 240k the
    # keypoints slip; CHANGELOG, issue 20)
    d_channels: tuple[int, ...] = (8, 16, 32, 64, 128)


@dataclass(frozen=True)
class TrainConfig:
    """Optimisation and bookkeeping."""

    batch_size: int = 32
    lr_g: float = 1e-4
    lr_d: float = 4e-4
    # the pose mapping network's learning rate as a fraction of lr_g (StyleGAN trains its mapping network at 0.01):
    # slower keypoint updates (issue 20). At 0.1 on faces the keypoints held still and carried none of the face's
    # geometry, which the appearance noise drew instead (`lkdetect gan-readability`; CHANGELOG)
    lr_pose_scale: float = 1.0
    betas: tuple[float, float] = (0.5, 0.9)
    gp_weight: float = 10.0  # gradient penalty on real images
    gp_every: int = 16  # lazy regularisation interval (1 = R1 every step)
    ema_halflife_images: float = 10_000.0  # EMA of G, half-life in images
    ema_rampup: float = 0.05  # EMA half-life ramps up to this fraction of images seen (0 = off)
    flip: bool = True  # horizontal-flip augmentation of real images
    iterations: int = 30_000
    amp: str = "auto"  # "auto": bf16 autocast where the CPU has native bf16, else fp32; "bf16"; "off"
    channels_last: bool = True
    checkpoint_every: int = 250  # iterations between atomic checkpoints
    checkpoint_minutes: float = 5.0  # ... or this many minutes, whichever comes first
    sample_every: int = 500  # iterations between sample grids and keypoint diagnostics
    # keep the EMA weights of every snapshot whose step is a multiple of this, as snapshots/step_<step>.safetensors
    # (4 MB each for cpu64), so that a snapshot can be chosen by its rows afterwards; a multiple of sample_every.
    # 0 = off (the run directory keeps only the latest generator_ema.safetensors)
    keep_every: int = 0
    log_every: int = 20  # iterations between stats.jsonl lines
    n_diag: int = 64  # samples used for keypoint diagnostics
    n_metric_pairs: int = 16  # sample pairs for the swap metrics (gan/metrics.py) at each snapshot; 0 = off
    n_realism: int = 0  # images per side for the realism measure (gan/realism.py) at each snapshot; 0 = off
    # model.background="composite": the trainer translates each generated background by a random offset of up to
    # this fraction of the image side (reflected at the border; GANSeg's random background shift), so a background
    # that draws part of the object lands beside the parts, which D sees. On faces it did not stop the keypoint drift
    # and raised the background share (smooth skin survives a shift; CHANGELOG, issue 20). 0 = off
    bg_shift: float = 0.0
    # Equivariance of the generator (issue 20's keypoint drift): every ``equivariance_every`` steps, G renders each
    # fake again with all its keypoints (and a composite background) zoomed about the centre by exp(u), |u| <=
    # ``equivariance_scale``, and moved by a random offset of up to ``equivariance_shift`` of the side, and pays
    # ``equivariance`` x the mean absolute difference to the first image moved the same way (where its content was
    # in the image). A generator that draws the object at a fixed place and size, not where its keypoints say,
    # pays for it; only the renderer learns from it. On faces it delayed the keypoint drift (about 100k images),
    # did not stop it, and left them in a narrow cluster or a line (CHANGELOG, issue 20). 0 = off
    equivariance: float = 0.0
    equivariance_shift: float = 0.125
    equivariance_scale: float = 0.0
    equivariance_every: int = 4
    # ... with every offset rounded to whole pixels. The fakes are moved by bilinear resampling, which at a sub-pixel
    # offset averages neighbouring pixels: with continuous offsets the target is a blurred copy of the fake, and the
    # renderer learns that blur (the face runs' samples were as blurry as real faces blurred by 0.5-1 px to the
    # realism measure). A whole-pixel move resamples nothing; a zoom (``equivariance_scale``) still does. On faces
    # KID fell in two seeds (480k images: 5.5 and 8.3 against 19.6 without); C2ST fell in one (0.80), not in the
    # other (0.89, as without) (CHANGELOG, issue 20)
    equivariance_whole_pixels: bool = False
    # Keypoint reading (issue 20's keypoint drift): every ``kp_recon_every`` steps a small network (gan/reader.py)
    # learns to read the keypoints from G's images, and G's renderer pays ``kp_recon`` x its mean absolute error (in
    # [-1, 1] units; only the renderer learns from it): a keypoint the image does not show cannot be read. On faces
    # the reader read them to about 1 px while the face's geometry still came from the appearance noise (CHANGELOG).
    # 0 = off
    kp_recon: float = 0.0
    kp_recon_every: int = 4
    # ... and the images it reads are rendered with every sample's part and background embeddings taken from other
    # samples of the batch: the keypoints must be read from a face of any appearance, so the geometry must come from
    # the keypoints, not the embeddings (the composite runs drew part of it from the appearance embedding). On faces
    # it did not lower the appearance noise's part in the geometry by 134k images (CHANGELOG)
    kp_recon_mix: bool = False
    # A bound on how far each keypoint moves across samples (issue 20's overshoot: with the composite background some
    # keypoints came to spread 10-22 px on 64 px faces while the face moved a few px): each step G pays
    # ``kp_spread_weight`` x the mean over keypoints of max(0, spread - ``kp_spread_max``)^2, the spread being
    # sqrt(var_x + var_y) across the batch as a fraction of the image side. Gradients reach the pose network only.
    # A prior for roughly aligned crops (faces), not for objects anywhere in the frame. On faces at 0.1 with
    # model.app_min_resolution=32 the keypoints stopped overshooting and came to carry the pose (CHANGELOG). 0 = off
    kp_spread_max: float = 0.0
    kp_spread_weight: float = 10.0
    # A floor on the width of the keypoints' mean configuration (issue 20's chains: with wide normalised masks the face
    # runs put their keypoints on a vertical line, layout 0.14-0.19, the masks tiling the face in horizontal bands):
    # each step G pays ``kp_minor_weight`` x max(0, ``kp_minor_min`` - minor)^2, minor being the standard deviation of
    # the batch's mean configuration along its narrowest axis as a fraction of the side (MTFL's five landmarks: 0.08,
    # the shipped faces GAN's ten keypoints 0.07). Gradients reach the pose network only. A prior for objects
    # whose parts spread in two directions; not yet trained with (a second run of that recipe widened to layout 0.33
    # by 800k images without it; CHANGELOG). 0 = off
    kp_minor_min: float = 0.0
    kp_minor_weight: float = 100.0
    # Warm start (issue 20: the composite runs reached the part appearance the shipped GAN lacks, not its realism): a
    # new run copies every tensor of this generator weights file (a release or a snapshot) whose name and shape match
    # its G's; the rest keep their initial values, and warm_start.json in the run lists both. D starts fresh, so it
    # learns alone for ``d_warmup`` iterations before G moves. Ignored on resume (the checkpoint holds G). From the
    # shipped faces GAN into the composite recipe the samples lost their detail within 40k images (two-sample
    # classifier 0.99 at 80k, as from scratch; CHANGELOG, issue 20). "" = off
    init_generator: str = ""
    d_warmup: int = 0
    diffaug: str = ""  # DiffAugment of D's real and fake inputs (gan/diffaug.py): "color,translation,cutout"; "" = off
    seed: int = 0
    threads: int = 0  # torch threads; 0 = leave torch's default


@dataclass(frozen=True)
class GANConfig:
    """A whole run: model plus training."""

    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> GANConfig:
        """Rebuild from ``to_dict`` output; unknown keys raise ``KeyError``."""
        unknown = set(d) - {"model", "train"}
        if unknown:
            raise KeyError(f"unknown config sections {sorted(unknown)}; expected 'model' and 'train'")
        return cls(
            model=build_section(ModelConfig, d.get("model", {}), "model"),
            train=build_section(TrainConfig, d.get("train", {}), "train"),
        )


def build_section(klass: type, values: dict[str, Any], section: str = "") -> Any:
    """One config dataclass from a dict (JSON lists become tuples); unknown keys raise ``KeyError``, a value of
    another type than the field's ``TypeError`` naming ``section.key``."""
    names = {f.name: f for f in dataclasses.fields(klass)}
    unknown = set(values) - set(names)
    if unknown:
        raise KeyError(f"unknown {klass.__name__} keys {sorted(unknown)}; known: {sorted(names)}")
    fixed = {k: tuple(v) if isinstance(v, list) else v for k, v in values.items()}
    hints = typing.get_type_hints(klass)
    for key, value in fixed.items():
        if not _has_type(value, hints[key]):
            expected = getattr(hints[key], "__name__", None) if not typing.get_args(hints[key]) else None
            raise TypeError(
                f"{section or klass.__name__}.{key} expects {expected or hints[key]}, got {value!r} "
                f"({type(value).__name__})"
            )
    return klass(**fixed)


def _has_type(value: Any, hint: Any) -> bool:
    """Whether ``value`` fits a field type of these configs: bool, int, float (an int is fine), str, tuples, and
    unions of those."""
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        return any(_has_type(value, a) for a in typing.get_args(hint))
    if typing.get_origin(hint) is tuple:
        args = typing.get_args(hint)
        if not isinstance(value, tuple):
            return False
        if len(args) == 2 and args[1] is Ellipsis:
            return all(_has_type(v, args[0]) for v in value)
        return len(value) == len(args) and all(_has_type(v, a) for v, a in zip(value, args))
    if hint is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    return not isinstance(hint, type) or isinstance(value, hint)


PRESETS: dict[str, dict[str, dict[str, Any]]] = {
    # Seconds on a CPU: for tests only.
    "tiny": {
        "model": dict(
            resolution=32,
            n_keypoints=4,
            z_dim=16,
            mlp_depth=2,
            embed_dim=8,
            tau=0.02,
            start_resolution=4,
            g_channels=(16, 16, 8, 8),
            d_channels=(8, 16, 16, 32),
        ),
        "train": dict(
            batch_size=4,
            iterations=20,
            checkpoint_every=5,
            sample_every=10,
            log_every=1,
            n_diag=8,
            ema_halflife_images=100.0,
            amp="off",
        ),
    },
    # 64x64 on 2 CPU cores: cheap 1x1 SPADE modulation, narrow widths, heatmaps computed once per resolution.
    "cpu64": {
        "model": dict(
            resolution=64,
            n_keypoints=10,
            embed_dim=64,
            tau=0.025,
            start_resolution=8,
            g_channels=(96, 48, 24, 12),
            d_channels=(8, 16, 32, 64, 128),
        ),
        "train": dict(batch_size=32, iterations=30_000),
    },
    # The successor's 128 px face widths (512, 256, 128, 64 channels; it runs two blocks at 32 px where we
    # start one octave lower, at 16 px), 3x3 SPADE with a 128-wide hidden layer; for a GPU.
    "paper128": {
        "model": dict(
            resolution=128,
            n_keypoints=10,
            embed_dim=128,
            tau=0.01,
            start_resolution=16,
            g_channels=(512, 256, 128, 64),
            spade_hidden=128,
            spade_kernel=3,
            d_channels=(64, 128, 256, 512, 512, 512),
        ),
        "train": dict(batch_size=64, iterations=30_000, amp="off"),
    },
}


def get_config(preset: str = "cpu64", overrides: dict[str, Any] | None = None) -> GANConfig:
    """Resolve a preset plus dotted overrides (``{"model.tau": 0.02}``) into a validated config."""
    cfg = GANConfig.from_dict(preset_dict(PRESETS, preset, overrides, ("model", "train")))
    validate(cfg)
    return cfg


def preset_dict(
    presets: dict[str, dict[str, dict[str, Any]]], preset: str, overrides: dict[str, Any] | None, sections: tuple
) -> dict[str, dict[str, Any]]:
    """A preset's section dicts with dotted ``SECTION.NAME`` overrides applied; unknown names raise ``KeyError``."""
    if preset not in presets:
        raise KeyError(f"unknown preset {preset!r}; known: {sorted(presets)}")
    d = {sec: dict(vals) for sec, vals in presets[preset].items()}
    for key, value in (overrides or {}).items():
        section, _, name = key.partition(".")
        if section not in sections or not name:
            raise KeyError(f"override {key!r} must look like 'SECTION.NAME' with SECTION in {list(sections)}")
        d.setdefault(section, {})[name] = value
    return d


def parse_overrides(items: list[str]) -> dict[str, Any]:
    """Parse ``["model.tau=0.02", "train.flip=False"]`` into typed values (Python literals, ``true`` / ``false`` in
    any case, else strings)."""
    out: dict[str, Any] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        if not sep:
            raise ValueError(f"--set expects key=value, got {item!r}")
        if raw.strip().lower() in ("true", "false"):
            out[key.strip()] = raw.strip().lower() == "true"
            continue
        try:
            out[key.strip()] = ast.literal_eval(raw)
        except (ValueError, SyntaxError):
            out[key.strip()] = raw
    return out


def validate(cfg: GANConfig) -> None:
    """Raise ``ValueError`` on a configuration that cannot build a working model."""
    m, t = cfg.model, cfg.train
    r = m.resolution
    if r < 32 or r > 256 or r & (r - 1):
        raise ValueError(f"model.resolution must be a power of two in [32, 256], got {r}")
    s = m.start_resolution
    if s & (s - 1) or s < 4 or s > r:
        raise ValueError(f"model.start_resolution must be a power of two in [4, resolution], got {s}")
    n_res = (r // s).bit_length()  # resolutions s, 2s, ..., r
    if len(m.g_channels) != n_res:
        raise ValueError(f"model.g_channels needs one width per resolution {s}..{r} ({n_res}), got {m.g_channels}")
    n_d = (r // 4).bit_length()  # the input width, then one per down-sampling block r -> r/2 -> ... -> 4
    if len(m.d_channels) != n_d:
        raise ValueError(
            f"model.d_channels needs {n_d} widths (input, then one per block {r} -> 4), got {m.d_channels}"
        )
    if m.n_keypoints < 1:
        raise ValueError(f"model.n_keypoints must be >= 1, got {m.n_keypoints}")
    if m.tau <= 0:
        raise ValueError(f"model.tau must be > 0, got {m.tau}")
    if m.conditioning not in ("sum", "concat"):
        raise ValueError(f"model.conditioning must be 'sum' or 'concat', got {m.conditioning!r}")
    if m.part_masks not in ("gaussian", "normalised") or m.mask_bg_level <= 0:
        raise ValueError(
            f"model.part_masks must be 'gaussian' or 'normalised' and model.mask_bg_level > 0, got "
            f"{m.part_masks!r}, {m.mask_bg_level}"
        )
    if m.background not in ("shared", "composite"):
        raise ValueError(f"model.background must be 'shared' or 'composite', got {m.background!r}")
    if m.background == "composite" and not 1 <= len(m.bg_channels) <= n_d:
        raise ValueError(f"model.bg_channels needs 1 to {n_d} widths (4 px .. at most {r} px), got {m.bg_channels}")
    if m.bg_upsample not in ("nearest", "bilinear"):
        raise ValueError(f"model.bg_upsample must be 'nearest' or 'bilinear', got {m.bg_upsample!r}")
    if m.mask_refine < 0 or (m.mask_refine and m.background != "composite"):
        raise ValueError(f"model.mask_refine must be >= 0 and needs model.background='composite', got {m.mask_refine}")
    if not 0 <= t.bg_shift <= 0.5 or (t.bg_shift and m.background != "composite"):
        raise ValueError(f"train.bg_shift must be in [0, 0.5] and needs model.background='composite', got {t.bg_shift}")
    eq = (t.equivariance, t.equivariance_shift, t.equivariance_scale, t.equivariance_every)
    if eq[0] < 0 or not 0 <= eq[1] <= 0.25 or not 0 <= eq[2] <= 0.25 or eq[3] < 1:
        raise ValueError(
            "train.equivariance must be >= 0, train.equivariance_shift and train.equivariance_scale in [0, 0.25],"
            f" train.equivariance_every >= 1; got {eq}"
        )
    if not 0 < t.lr_pose_scale <= 1:
        raise ValueError(f"train.lr_pose_scale must be in (0, 1], got {t.lr_pose_scale}")
    if t.kp_recon < 0 or t.kp_recon_every < 1:
        raise ValueError(
            f"train.kp_recon must be >= 0 and train.kp_recon_every >= 1, got {t.kp_recon}, {t.kp_recon_every}"
        )
    if not 0 <= t.kp_spread_max <= 1 or t.kp_spread_weight < 0:
        raise ValueError(
            f"train.kp_spread_max must be in [0, 1] and train.kp_spread_weight >= 0, got {t.kp_spread_max},"
            f" {t.kp_spread_weight}"
        )
    if not 0 <= t.kp_minor_min <= 0.5 or t.kp_minor_weight < 0:
        raise ValueError(
            f"train.kp_minor_min must be in [0, 0.5] and train.kp_minor_weight >= 0, got {t.kp_minor_min},"
            f" {t.kp_minor_weight}"
        )
    if not 0 <= m.kp_init_radius < 1:
        raise ValueError(f"model.kp_init_radius must be in [0, 1), got {m.kp_init_radius}")
    if m.bg_min_resolution < 0 or m.app_min_resolution < 0:
        raise ValueError(
            f"model.bg_min_resolution and model.app_min_resolution must be >= 0, got {m.bg_min_resolution},"
            f" {m.app_min_resolution}"
        )
    bad = [p for p in t.diffaug.split(",") if p.strip() and p.strip() not in ("color", "translation", "cutout")]
    if bad:
        raise ValueError(f"train.diffaug takes color, translation, cutout (comma-separated), got {bad}")
    if t.d_warmup < 0:
        raise ValueError(f"train.d_warmup must be >= 0, got {t.d_warmup}")
    if t.amp not in ("auto", "bf16", "off"):
        raise ValueError(f"train.amp must be 'auto', 'bf16' or 'off', got {t.amp!r}")
    if t.keep_every < 0 or t.keep_every % t.sample_every:
        raise ValueError(f"train.keep_every must be 0 or a multiple of train.sample_every, got {t.keep_every}")
    if t.batch_size < 1 or t.gp_every < 1:
        raise ValueError("train.batch_size and train.gp_every must be >= 1")
