"""LatentKeypointGAN generator (He et al., arXiv 2103.15812, Sec. 3.1).

Noise -> K keypoints, K embeddings and a background embedding (:class:`Latents`) -> Gaussian heatmaps ->
conditioning map at every resolution -> SPADE residual blocks -> RGB. The spatial layout enters only
through the keypoints: the start tensor is a sin/cos code of every pixel's offset to every keypoint (the
successor's positional start), never a learned constant canvas, so the image must follow the keypoints.
With ``model.background="composite"`` the background embedding does not condition the SPADE blocks: a small
:class:`BackgroundNet` draws the background, blended in by the background map (issue 20).
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, replace

import torch
import torch.nn.functional as F
from torch import nn
from torch.autograd.function import once_differentiable

from .config import ModelConfig
from .keypoint_maps import (
    background_map,
    conditioning_channels,
    conditioning_map,
    gaussian_heatmaps,
    keypoint_offsets,
    normalised_part_masks,
)


@dataclass(frozen=True)
class Latents:
    """Everything the image is rendered from; the object edited by :mod:`gan.edit`.

    Attributes:
        keypoints: (B, K, 2) in [-1, 1], (x, y).
        kp_embed: (B, K, D) per-keypoint embeddings ``w_k = c_k * MLP(z_app)``.
        bg_embed: (B, D) background embedding.
        visible: (B, K) 1 for present parts, 0 for removed ones (their heatmap is dropped).
    """

    keypoints: torch.Tensor
    kp_embed: torch.Tensor
    bg_embed: torch.Tensor
    visible: torch.Tensor

    def __getitem__(self, idx: int | slice) -> Latents:
        idx = slice(idx, idx + 1) if isinstance(idx, int) else idx
        return Latents(self.keypoints[idx], self.kp_embed[idx], self.bg_embed[idx], self.visible[idx])

    def replace(self, **kw: torch.Tensor) -> Latents:
        return replace(self, **kw)

    def detach(self) -> Latents:
        """The same latents cut from the graph that made them (a loss on their rendering then trains the renderer
        only)."""
        return Latents(self.keypoints.detach(), self.kp_embed.detach(), self.bg_embed.detach(), self.visible.detach())

    @staticmethod
    def cat(items: list[Latents]) -> Latents:
        return Latents(
            *(torch.cat([getattr(x, f) for x in items]) for f in ("keypoints", "kp_embed", "bg_embed", "visible"))
        )


def sunflower(n: int, radius: float) -> torch.Tensor:
    """``n`` points spread evenly over a disc of ``radius`` about the origin (Vogel's sunflower spiral), (n, 2)."""
    k = torch.arange(n, dtype=torch.float64)
    r = radius * ((k + 0.5) / n).sqrt()
    theta = k * math.pi * (3 - math.sqrt(5))  # the golden angle
    return torch.stack((r * theta.cos(), r * theta.sin()), dim=-1).float()


def initial_keypoint_bias(n_keypoints: int, radius: float, divisor: float) -> torch.Tensor:
    """The pose network's output bias (2K,) that puts the keypoints of a zero input on a sunflower of ``radius``
    (all zero for radius 0): keypoints are ``tanh(output / divisor)``."""
    return (torch.atanh(sunflower(n_keypoints, radius)) * divisor).reshape(-1)


def mlp(d_in: int, d_hidden: int, d_out: int, depth: int) -> nn.Sequential:
    """``depth`` Linear + LeakyReLU(0.2) layers, then a Linear; every layer its own object."""
    layers: list[nn.Module] = []
    for i in range(depth):
        layers += [nn.Linear(d_in if i == 0 else d_hidden, d_hidden), nn.LeakyReLU(0.2)]
    layers.append(nn.Linear(d_hidden if depth else d_in, d_out))
    return nn.Sequential(*layers)


@dataclass(frozen=True)
class Conditioning:
    """The conditioning of one resolution, kept factorised: maps (B, K + 1, s, s) and embeddings (B, K + 1, D).

    Row K is the background (``H_bg``, ``w_bg``). :meth:`dense` materialises the paper's conditioning map.
    """

    maps: torch.Tensor
    embeds: torch.Tensor
    mode: str = "sum"

    def dense(self) -> torch.Tensor:
        return conditioning_map(
            self.maps[:, :-1], self.embeds[:, :-1], self.embeds[:, -1], self.mode, bg=self.maps[:, -1:]
        )

    @functools.cached_property
    def pixel_maps(self) -> torch.Tensor:
        """(B, s * s, K + 2): the maps per pixel with a constant 1 appended (it carries the SPADE bias), shared by
        every channels-last SPADE of this resolution."""
        b, k1, s = self.maps.shape[0], self.maps.shape[1], self.maps.shape[-1]
        ones = torch.ones(b, 1, s * s, dtype=self.maps.dtype, device=self.maps.device)
        return torch.cat((self.maps.reshape(b, k1, s * s), ones), dim=1).transpose(1, 2)


class Modulate(torch.autograd.Function):
    """``x * scale + shift`` with a lean backward.

    ``torch.addcmul``'s backward makes four passes over its (B, C, s, s) tensors (it also multiplies by its
    ``value``); this one makes two, which is 3x faster at the generator's 64 px stage on a CPU.
    """

    @staticmethod
    def forward(ctx, x: torch.Tensor, scale: torch.Tensor, shift: torch.Tensor) -> torch.Tensor:  # noqa: ANN001
        ctx.save_for_backward(x, scale)
        return torch.addcmul(shift, x, scale)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor | None, ...]:  # noqa: ANN001
        x, scale = ctx.saved_tensors
        need_x, need_scale, need_shift = ctx.needs_input_grad
        return (grad * scale if need_x else None, grad * x if need_scale else None, grad if need_shift else None)


class InstanceNormNHWC(torch.autograd.Function):
    """Instance normalisation (no affine) that keeps channels-last memory order, for the generator's CPU step.

    Forward is group norm with one channel per group (same result as ``F.instance_norm``); on maps of at most
    16 x 16 pixels, where that kernel is slow in channels-last order, the same means are written out. Group
    norm's backward in channels-last order is slow on CPUs (4x its forward), so the gradient is computed here:
    ``(g - mean(g) - xn * mean(g * xn)) / std``, means over each sample's and channel's pixels.
    """

    @staticmethod
    def forward(ctx, x: torch.Tensor, eps: float) -> torch.Tensor:  # noqa: ANN001
        b, c, h, w = x.shape
        # group norm's channels-last kernel is slow on small maps with many channels, and CUDA's needs NCHW input
        if h * w <= 256 or x.device.type != "cpu":
            xc = x - x.mean(dim=(2, 3), keepdim=True)
            rstd = (xc.square().mean(dim=(2, 3), keepdim=True) + eps).rsqrt()
            xn = xc.mul_(rstd)
        else:
            xn, _, rstd = torch.native_group_norm(x, None, None, b, c, h * w, c, eps)
            rstd = rstd.view(b, c, 1, 1)
        ctx.save_for_backward(xn, rstd)
        return xn

    @staticmethod
    @once_differentiable
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor, None]:  # noqa: ANN001
        xn, rstd = ctx.saved_tensors
        g_mean = grad.mean(dim=(2, 3), keepdim=True)
        gx_mean = (grad * xn).mean(dim=(2, 3), keepdim=True)
        return torch.addcmul(grad - g_mean, xn, gx_mean, value=-1).mul_(rstd), None


def is_channels_last(x: torch.Tensor) -> bool:
    """Whether a (B, C, H, W) tensor is laid out channels-last (NHWC) in memory."""
    return x.dim() == 4 and x.shape[1] > 1 and x.stride(1) == 1


class SPADE(nn.Module):
    """Spatially-adaptive normalisation: ``(1 + gamma(c)) * norm(x) + beta(c)``, norm per sample and channel.

    With a single 1x1 conv on a "sum" conditioning map the modulation is linear in the maps, so it is computed
    exactly but cheaply as ``sum_k H_k (W w_k) + b``: (K + 1) x 2C multiply-adds per pixel instead of D x (K + 2C).
    """

    def __init__(self, channels: int, cond_channels: int, hidden: int = 0, kernel: int = 1):
        super().__init__()
        pad = kernel // 2
        self.channels = channels
        self.factorised = not hidden and kernel == 1
        if hidden:
            self.branch = nn.Sequential(
                nn.Conv2d(cond_channels, hidden, kernel, padding=pad),
                nn.LeakyReLU(0.2),
                nn.Conv2d(hidden, 2 * channels, kernel, padding=pad),
            )
        else:
            self.branch = nn.Conv2d(cond_channels, 2 * channels, kernel, padding=pad)

    def scale_shift(self, cond: Conditioning, nhwc: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
        """``1 + gamma`` and ``beta``, each (B, C, s, s); with ``nhwc`` in channels-last memory order."""
        if self.factorised and cond.mode == "sum":
            # Two half-size products instead of one and a chunk: chunk's backward would copy both halves.
            c, (b, k1, s) = self.channels, (cond.maps.shape[0], cond.maps.shape[1], cond.maps.shape[-1])
            proj = cond.embeds @ self.branch.weight.flatten(1).t()  # (B, K + 1, 2C)
            bias = self.branch.bias
            if nhwc:
                # (B, s*s, K + 2) @ (B, K + 2, C) comes out in channels-last order; the bias rides on the maps'
                # constant channel, which saves baddbmm's copy of the broadcast bias into its output.
                rows = torch.cat((bias[:c] + 1, bias[c:])).expand(b, 1, 2 * c)
                proj = torch.cat((proj, rows), dim=1)
                scale = torch.bmm(cond.pixel_maps, proj[:, :, :c])
                shift = torch.bmm(cond.pixel_maps, proj[:, :, c:])
                return scale.view(b, s, s, c).permute(0, 3, 1, 2), shift.view(b, s, s, c).permute(0, 3, 1, 2)
            proj, bias = proj.transpose(1, 2), bias.view(1, -1, 1)  # (B, 2C, K + 1)
            maps = cond.maps.reshape(b, k1, s * s)
            scale = torch.baddbmm(bias[:, :c] + 1, proj[:, :c], maps)
            shift = torch.baddbmm(bias[:, c:], proj[:, c:], maps)
            return scale.view(b, c, s, s), shift.view(b, c, s, s)
        gamma, beta = self.branch(cond.dense()).chunk(2, dim=1)
        return 1 + gamma, beta

    def forward(self, x: torch.Tensor, cond: Conditioning, upsample: bool = False) -> torch.Tensor:
        """Modulate ``norm(x)``; with ``upsample`` x is at half the conditioning's size and is up-sampled 2x
        (nearest) after normalising, which equals normalising the up-sampled x: replicated pixels keep the
        mean and variance."""
        nhwc = is_channels_last(x)
        # F.instance_norm would copy channels-last input to NCHW, and nearest up-sampling of NCHW is 10x slower.
        xn = InstanceNormNHWC.apply(x, 1e-5) if nhwc else F.instance_norm(x, eps=1e-5)
        if upsample:
            xn = F.interpolate(xn, scale_factor=2, mode="nearest")
        scale, shift = self.scale_shift(cond, nhwc)
        return Modulate.apply(xn, scale, shift)


class SPADEResBlock(nn.Module):
    """Two SPADE -> LeakyReLU -> conv3x3 stages plus a (1x1 when widths differ) shortcut."""

    def __init__(self, c_in: int, c_out: int, cond_channels: int, hidden: int, kernel: int):
        super().__init__()
        self.spade1 = SPADE(c_in, cond_channels, hidden, kernel)
        self.conv1 = nn.Conv2d(c_in, c_out, 3, padding=1)
        self.spade2 = SPADE(c_out, cond_channels, hidden, kernel)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, padding=1)
        self.shortcut = nn.Conv2d(c_in, c_out, 1, bias=False) if c_in != c_out else nn.Identity()

    def forward(self, x: torch.Tensor, cond: Conditioning, upsample: bool = False) -> torch.Tensor:
        """``x`` at the conditioning's size, or at half of it with ``upsample`` (2x nearest).

        Up-sampling happens inside: the 1x1 shortcut and the first normalisation commute with nearest
        up-sampling, so they run at the low resolution (4x fewer pixels) with the same result.
        """
        # In place where autograd allows it (the producers' backward does not read their outputs): every fresh
        # full-size tensor costs page faults and memory traffic on a CPU.
        h = self.conv1(F.leaky_relu(self.spade1(x, cond, upsample), 0.2, inplace=True))
        h = self.conv2(F.leaky_relu(self.spade2(h, cond), 0.2, inplace=True))
        skip = self.shortcut(x)
        if upsample:
            skip = F.interpolate(skip, scale_factor=2, mode="nearest")
        return h.add_(skip).mul_(1 / math.sqrt(2))


class PositionalStart(nn.Module):
    """Start tensor from keypoint-relative offsets: 1x1 conv of (B, 2K, s, s) offsets, then sin and cos."""

    def __init__(self, n_keypoints: int, channels: int):
        super().__init__()
        self.proj = nn.Conv2d(2 * n_keypoints, channels // 2, 1)
        self.extra = nn.Conv2d(channels // 2 * 2, channels, 1) if channels % 2 else nn.Identity()

    def forward(self, offsets: torch.Tensor) -> torch.Tensor:
        h = self.proj(offsets) * math.pi
        return self.extra(torch.cat((torch.sin(h), torch.cos(h)), dim=1))


class BackgroundNet(nn.Module):
    """The background of ``model.background="composite"``: w_bg (B, D) -> Linear -> 4 x 4 -> (2x up-sampling, nearest
    or bilinear (``upsample``), conv3x3, LeakyReLU) per further width -> RGB at 4 * 2^(len(channels) - 1) px,
    bilinearly up-sampled to ``resolution`` when smaller -> (B, 3, R, R) in [-1, 1]. Small on purpose: it draws what
    the parts do not."""

    def __init__(self, embed_dim: int, channels: tuple[int, ...], resolution: int, upsample: str = "nearest"):
        super().__init__()
        if upsample not in ("nearest", "bilinear"):
            raise ValueError(f"upsample must be 'nearest' or 'bilinear', got {upsample!r}")
        self.c0, self.resolution, self.upsample = channels[0], resolution, upsample
        self.align_corners = None if upsample == "nearest" else False  # F.interpolate takes it for bilinear only
        self.fc = nn.Linear(embed_dim, channels[0] * 16)
        self.convs = nn.ModuleList(
            nn.Conv2d(channels[i], channels[i + 1], 3, padding=1) for i in range(len(channels) - 1)
        )
        self.to_rgb = nn.Conv2d(channels[-1], 3, 3, padding=1)

    def forward(self, w_bg: torch.Tensor) -> torch.Tensor:
        x = F.leaky_relu(self.fc(w_bg).view(-1, self.c0, 4, 4), 0.2)
        for conv in self.convs:
            up = F.interpolate(x, scale_factor=2, mode=self.upsample, align_corners=self.align_corners)
            x = F.leaky_relu(conv(up), 0.2)
        rgb = torch.tanh(self.to_rgb(x))
        if rgb.shape[-1] < self.resolution:
            rgb = F.interpolate(rgb, size=(self.resolution, self.resolution), mode="bilinear", align_corners=False)
        return rgb


def shift_images(images: torch.Tensor, offsets: torch.Tensor, scales: torch.Tensor | None = None) -> torch.Tensor:
    """Translate each image of (B, C, H, W) by its offset (B, 2), (x, y) as fractions of the side (positive = right,
    down), after zooming it by its scale (B,) about the centre when given; what comes in from outside the image is
    its reflection at the border (bilinear, so sub-pixel offsets are fine). In [-1, 1] coordinates the content at p
    moves to ``scale * p + 2 * offset``."""
    inv = torch.ones(images.shape[0], device=images.device)
    if scales is not None:
        inv = 1 / scales.to(images.device, torch.float32)
    theta = torch.zeros(images.shape[0], 2, 3, device=images.device)
    theta[:, 0, 0] = theta[:, 1, 1] = inv
    theta[:, :, 2] = -2 * offsets.to(images.device, torch.float32) * inv[:, None]  # samples at (q - 2 offset) / scale
    grid = F.affine_grid(theta, list(images.shape), align_corners=False).to(images.dtype)
    return F.grid_sample(images, grid, mode="bilinear", padding_mode="reflection", align_corners=False)


class Generator(nn.Module):
    """LatentKeypointGAN generator.

    ``forward(z_pose, z_app, z_bg)`` returns images in [-1, 1], (B, 3, R, R); ``map`` and ``render`` split it
    into latent generation and rendering so the latents can be edited in between.
    """

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.cfg = cfg
        k, d, z = cfg.n_keypoints, cfg.embed_dim, cfg.z_dim
        self.pose_mlp = mlp(z, z, 2 * k, cfg.mlp_depth)
        self.app_mlp = mlp(z, z, d, cfg.mlp_depth)
        self.bg_mlp = mlp(z, z, d, cfg.mlp_depth)
        self.part_const = nn.Parameter(torch.randn(k, d))  # c_k: the identity of each part
        self.resolutions = [cfg.start_resolution * 2**i for i in range(len(cfg.g_channels))]
        cc = conditioning_channels(k, d, cfg.conditioning)
        self.start = PositionalStart(k, cfg.g_channels[0])
        widths = [cfg.g_channels[0], *cfg.g_channels]
        wide = [not cfg.spade_wide_until or res <= cfg.spade_wide_until for res in self.resolutions]
        self.blocks = nn.ModuleList(
            SPADEResBlock(widths[i], widths[i + 1], cc, *((cfg.spade_hidden, cfg.spade_kernel) if wide[i] else (0, 1)))
            for i in range(len(cfg.g_channels))
        )
        self.to_rgb = nn.Conv2d(cfg.g_channels[-1], 4 if cfg.mask_refine else 3, 3, padding=1)  # 4th: mask logit
        if cfg.background == "composite" or cfg.bg_min_resolution:
            self.bg_const = nn.Parameter(torch.zeros(d))  # the background row where w_bg may not enter
        if cfg.background == "composite":
            self.bg_net = BackgroundNet(d, cfg.bg_channels, cfg.resolution, cfg.bg_upsample)
        for m in self.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                nn.init.kaiming_normal_(m.weight, a=0.2)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
        with torch.no_grad():
            self.pose_mlp[-1].bias.copy_(initial_keypoint_bias(k, cfg.kp_init_radius, cfg.kp_divisor))
            if cfg.mask_refine:
                self.to_rgb.weight[3:].zero_()  # the refined mask starts as the keypoints' own

    @property
    def n_keypoints(self) -> int:
        return self.cfg.n_keypoints

    @property
    def resolution(self) -> int:
        return self.cfg.resolution

    def map(self, z_pose: torch.Tensor, z_app: torch.Tensor, z_bg: torch.Tensor) -> Latents:
        """Noise (B, z_dim) x3 -> :class:`Latents`."""
        b, k = z_pose.shape[0], self.cfg.n_keypoints
        pre = self.pose_mlp(z_pose).view(b, k, 2)
        keypoints = torch.tanh(pre / self.cfg.kp_divisor)
        kp_embed = self.part_const.unsqueeze(0) * self.app_mlp(z_app).unsqueeze(1)
        bg_embed = self.bg_mlp(z_bg)
        return Latents(keypoints, kp_embed, bg_embed, torch.ones(b, k, device=z_pose.device, dtype=keypoints.dtype))

    def render(
        self, lat: Latents, bg_offset: torch.Tensor | None = None, bg_scale: torch.Tensor | None = None
    ) -> torch.Tensor:
        """:class:`Latents` -> images (B, 3, R, R) in [-1, 1].

        Latents may carry more than K keypoints (parts added by editing): the first K feed the positional start,
        all of them feed the heatmap conditioning (``conditioning="sum"`` only). ``bg_offset`` (B, 2) and
        ``bg_scale`` (B,), composite background only: zoom the background by ``bg_scale`` and translate it by
        ``bg_offset`` fractions of the side (:func:`shift_images`; the trainer's ``train.bg_shift`` and
        ``train.equivariance``).
        """
        k, k_lat = self.cfg.n_keypoints, lat.keypoints.shape[1]
        if k_lat < k or (k_lat > k and self.cfg.conditioning != "sum"):
            raise ValueError(
                f"latents have {k_lat} keypoints; this generator takes K = {k}"
                + (" or more (added parts)" if self.cfg.conditioning == "sum" else "")
            )
        if lat.kp_embed.shape[-1] != self.cfg.embed_dim:
            raise ValueError(f"embedding dim {lat.kp_embed.shape[-1]} does not match D = {self.cfg.embed_dim}")
        x = self.start(keypoint_offsets(lat.keypoints[:, :k], self.resolutions[0]))
        for i, (res, block) in enumerate(zip(self.resolutions, self.blocks)):
            cond = self.conditioning(lat, res)
            x = block(x, cond, upsample=i > 0)
        out = self.to_rgb(F.leaky_relu(x, 0.2, inplace=True))
        image = torch.tanh(out[:, :3])
        if self.cfg.background != "composite":
            if bg_offset is not None or bg_scale is not None:
                raise ValueError("bg_offset and bg_scale need model.background='composite'")
            return image
        bg_map = cond.maps[:, -1:]  # at the output resolution: 1 - max_k H_k, or the normalised background mask
        if self.cfg.mask_refine:
            bg_map = self.refine_mask(bg_map, out[:, 3:])
        background = self.bg_net(lat.bg_embed)
        if bg_offset is not None or bg_scale is not None:
            offset = bg_offset if bg_offset is not None else background.new_zeros(background.shape[0], 2)
            background = shift_images(background, offset, bg_scale)
        background = background.to(image.dtype)  # grid_sample gives float32 under bf16 autocast
        return torch.lerp(image, background, bg_map.to(image.dtype))

    def refine_mask(self, bg_map: torch.Tensor, raw: torch.Tensor) -> torch.Tensor:
        """``model.mask_refine``: the background mask (B, 1, R, R) with its logit lowered by ``mask_refine *
        max(-tanh(raw), 0)``: the parts may claim pixels from the background, never give theirs away (allowed both
        ways, the background net took the whole face within 16k images: CHANGELOG), and by a bounded amount, so
        pixels far from every keypoint stay mostly background."""
        eps = 1e-6
        logit = torch.logit(bg_map.float().clamp(eps, 1 - eps))
        t = torch.tanh(raw.float())
        claim = torch.where(t > 0, torch.zeros_like(t), t)  # min(t, 0) with the gradient at 0, where it starts
        return torch.sigmoid(logit + self.cfg.mask_refine * claim).to(bg_map.dtype)

    def conditioning(self, lat: Latents, size: int) -> Conditioning:
        """Heatmaps (computed once per resolution, removed parts zeroed) with the background map appended; with
        ``part_masks="normalised"`` the masks of :func:`~gan.keypoint_maps.normalised_part_masks` instead. The
        background row's embedding is w_bg, or the learned constant where w_bg may not enter (``background=
        "composite"``, or below ``bg_min_resolution``); the part rows are w_k, or the parts' constants alone below
        ``app_min_resolution`` (:meth:`part_identities`)."""
        heat = gaussian_heatmaps(lat.keypoints, size, self.cfg.tau) * lat.visible[:, :, None, None]
        if self.cfg.part_masks == "normalised":
            maps = normalised_part_masks(heat, self.cfg.mask_bg_level)
        else:
            maps = torch.cat((heat, background_map(heat)), dim=1)
        bg = lat.bg_embed
        if self.cfg.background == "composite" or size < self.cfg.bg_min_resolution:
            bg = self.bg_const.to(bg.dtype).expand_as(bg)
        parts = lat.kp_embed if size >= self.cfg.app_min_resolution else self.part_identities(lat)
        embeds = torch.cat((parts, bg.unsqueeze(1)), dim=1)
        return Conditioning(maps, embeds, self.cfg.conditioning)

    def part_identities(self, lat: Latents) -> torch.Tensor:
        """(B, K', D): each part's constant c_k without its appearance, the rows below ``app_min_resolution``. A part
        added by editing (row >= K) carries a copy of some part's embedding: it gets the constant of the part whose
        embedding in the same sample is nearest to its own."""
        k = self.cfg.n_keypoints
        const = self.part_const.to(lat.kp_embed.dtype)
        rows = const.unsqueeze(0).expand(lat.kp_embed.shape[0], -1, -1)
        if lat.kp_embed.shape[1] == k:
            return rows
        nearest = torch.cdist(lat.kp_embed[:, k:], lat.kp_embed[:, :k]).argmin(-1)  # (B, K' - K)
        return torch.cat((rows, const[nearest]), dim=1)

    def forward(
        self, z_pose: torch.Tensor, z_app: torch.Tensor, z_bg: torch.Tensor, bg_offset: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, Latents]:
        lat = self.map(z_pose, z_app, z_bg)
        return self.render(lat, bg_offset), lat
