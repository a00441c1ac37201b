"""Editing generated images through their latents (He et al., arXiv 2103.15812, Sec. 4.1 "Editing").

Every function here is pure: it takes :class:`~gan.generator.Latents` and returns new ones, never mutating its
input. The operations of the paper:

- move keypoints: :func:`translate`, :func:`scale`, :func:`rotate`, :func:`set_positions` (all or some parts);
- exchange or interpolate embeddings between two samples: :func:`swap_embeddings`, :func:`interpolate_embeddings`
  (all parts or a subset);
- change or interpolate the background embedding: :func:`swap_background`, :func:`interpolate_background`;
- remove parts (:func:`remove_parts`, ``visible = 0``) and add parts (:func:`add_part`);
- interpolation sequences rendered to frames: :func:`interpolate`, :func:`interpolation_frames`.

Units. Keypoints live in normalised coordinates: (x, y) in [-1, 1], x to the right, y down, pixel centres on
``(2 i + 1) / R - 1`` (see :mod:`gan.keypoint_maps`). Every geometric function takes ``units="norm"`` (offsets
and centres in those coordinates; one unit is R / 2 px) or ``units="px"`` together with ``size=R`` (pixels of
the R x R image, centres at integers). Keypoints may be moved outside [-1, 1]; nothing is clamped.

Adding parts. The generator's positional start is a 1x1 conv over the offsets to exactly K keypoints, so it
cannot take K + 1. An added part is therefore appended as keypoint K, K + 1, ... that acts through the
heatmap conditioning only (its heatmap carries a copy of the source part's embedding into every SPADE layer),
while the first K keypoints keep feeding the positional start. Latents with more than K keypoints must be
rendered with :func:`render` here (``Generator.render`` refuses them); this needs ``conditioning="sum"``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

from .generator import Generator, Latents
from .keypoint_maps import to_normalized
from .sampling import to_unit

Parts = int | Sequence[int] | torch.Tensor | None

__all__ = [
    "INTERPOLATE_WHAT",
    "add_part",
    "interpolate",
    "interpolate_background",
    "interpolate_embeddings",
    "interpolation_frames",
    "remove_parts",
    "render",
    "restore_parts",
    "rotate",
    "scale",
    "set_positions",
    "swap_background",
    "swap_embeddings",
    "translate",
]

INTERPOLATE_WHAT = ("keypoints", "embeddings", "background", "all")


# ----------------------------------------------------------------------------------------------- validation
def _part_index(lat: Latents, parts: Parts) -> torch.Tensor:
    """Part indices as a 1-D long tensor; ``None`` = all parts. Raises ValueError when out of [0, K)."""
    k = lat.keypoints.shape[1]
    if parts is None:
        return torch.arange(k)
    idx = torch.as_tensor(parts).reshape(-1)
    if idx.numel() == 0:
        raise ValueError("parts is empty; pass None for all parts")
    if idx.dtype.is_floating_point or idx.dtype == torch.bool:
        raise ValueError(f"parts must be integer indices, got dtype {idx.dtype}")
    bad = [int(i) for i in idx if not 0 <= int(i) < k]
    if bad:
        raise ValueError(f"part indices {bad} out of range: the latents have K = {k} parts (0 .. {k - 1})")
    return idx.long()


def _check_pair(a: Latents, b: Latents) -> None:
    for name in ("keypoints", "kp_embed", "bg_embed", "visible"):
        sa, sb = getattr(a, name).shape, getattr(b, name).shape
        if sa != sb:
            raise ValueError(f"latents a and b must match in shape (batch, K, D); {name}: {tuple(sa)} vs {tuple(sb)}")


def _check_t(t: float) -> float:
    t = float(t)
    if not 0.0 <= t <= 1.0 or math.isnan(t):
        raise ValueError(f"t must be in [0, 1], got {t}")
    return t


def _to_norm(value: torch.Tensor, units: str, size: int | None, is_offset: bool) -> torch.Tensor:
    """Convert a position (or, with ``is_offset``, a displacement) from ``units`` to normalised coordinates."""
    if units == "norm":
        return value
    if units != "px":
        raise ValueError(f"units must be 'norm' or 'px', got {units!r}")
    if size is None or size < 1:
        raise ValueError(f"units='px' needs size=R, the side of the image in pixels; got size={size!r}")
    return value * (2 / size) if is_offset else to_normalized(value, size)


def _points(value: object, lat: Latents, n_parts: int, what: str) -> torch.Tensor:
    """``value`` as a float tensor broadcast to (B, P, 2); accepts (2,), (P, 2), (B, 1, 2), (B, P, 2)."""
    v = torch.as_tensor(value, dtype=lat.keypoints.dtype, device=lat.keypoints.device)
    target = (lat.keypoints.shape[0], n_parts, 2)
    try:
        return torch.broadcast_to(v, target)
    except RuntimeError:
        raise ValueError(
            f"{what} of shape {tuple(v.shape)} does not broadcast to (batch, parts, 2) = {target}"
        ) from None


def _with_keypoints(lat: Latents, idx: torch.Tensor, new: torch.Tensor) -> Latents:
    kp = lat.keypoints.clone()
    kp[:, idx] = new.to(kp.dtype)
    return lat.replace(keypoints=kp)


# ------------------------------------------------------------------------------------------- moving parts
def translate(
    lat: Latents, offset: object, parts: Parts = None, *, units: str = "norm", size: int | None = None
) -> Latents:
    """Move keypoints by ``offset`` (x, y).

    Args:
        lat: latents, keypoints (B, K, 2).
        offset: (2,), (P, 2) or (B, P, 2) displacement in ``units``.
        parts: part index or indices to move; ``None`` = all.
        units: ``"norm"`` ([-1, 1] coordinates, 1 unit = R / 2 px) or ``"px"`` (needs ``size``).
        size: image side R in pixels when ``units="px"``.
    """
    idx = _part_index(lat, parts)
    off = _to_norm(_points(offset, lat, len(idx), "offset"), units, size, is_offset=True)
    return _with_keypoints(lat, idx, lat.keypoints[:, idx] + off)


def set_positions(
    lat: Latents, xy: object, parts: Parts = None, *, units: str = "norm", size: int | None = None
) -> Latents:
    """Place keypoints at ``xy``: (2,), (P, 2) or (B, P, 2) positions (x, y) in ``units`` (see :func:`translate`)."""
    idx = _part_index(lat, parts)
    pos = _to_norm(_points(xy, lat, len(idx), "xy"), units, size, is_offset=False)
    return _with_keypoints(lat, idx, pos)


def _centre(lat: Latents, idx: torch.Tensor, centre: object, units: str, size: int | None) -> torch.Tensor:
    """(B, 1, 2) centre in normalised units; ``None`` = per-sample centroid of the selected keypoints."""
    if centre is None:
        return lat.keypoints[:, idx].mean(dim=1, keepdim=True)
    return _to_norm(_points(centre, lat, 1, "centre"), units, size, is_offset=False)


def scale(
    lat: Latents,
    factor: float | Sequence[float],
    parts: Parts = None,
    *,
    centre: object = None,
    units: str = "norm",
    size: int | None = None,
) -> Latents:
    """Scale keypoint positions about ``centre``: ``c + factor * (p - c)``.

    Args:
        factor: a scalar, or (sx, sy); must be finite (negative mirrors).
        centre: (2,) or (B, 1, 2) in ``units``; ``None`` = centroid of the selected keypoints, per sample.
    """
    f = torch.as_tensor(factor, dtype=lat.keypoints.dtype).reshape(-1)
    if f.numel() not in (1, 2) or not torch.isfinite(f).all():
        raise ValueError(f"factor must be a finite scalar or (sx, sy), got {factor!r}")
    idx = _part_index(lat, parts)
    c = _centre(lat, idx, centre, units, size)
    return _with_keypoints(lat, idx, c + f.to(c.device) * (lat.keypoints[:, idx] - c))


def rotate(
    lat: Latents,
    degrees: float,
    parts: Parts = None,
    *,
    centre: object = None,
    units: str = "norm",
    size: int | None = None,
) -> Latents:
    """Rotate keypoint positions by ``degrees`` counter-clockwise as seen on screen (like ``PIL.Image.rotate``).

    With y pointing down, a point right of the centre moves up for +90. ``centre`` as in :func:`scale`.
    """
    if not math.isfinite(float(degrees)):
        raise ValueError(f"degrees must be finite, got {degrees!r}")
    idx = _part_index(lat, parts)
    c = _centre(lat, idx, centre, units, size)
    a = math.radians(float(degrees))
    d = lat.keypoints[:, idx] - c
    cos, sin = math.cos(a), math.sin(a)
    rotated = torch.stack((cos * d[..., 0] + sin * d[..., 1], -sin * d[..., 0] + cos * d[..., 1]), dim=-1)
    return _with_keypoints(lat, idx, c + rotated)


# ------------------------------------------------------------------------------------------- appearance
def swap_embeddings(a: Latents, b: Latents, parts: Parts = None) -> tuple[Latents, Latents]:
    """Exchange the keypoint embeddings of ``parts`` (``None`` = all) between ``a`` and ``b``.

    Returns ``(a', b')``: ``a'`` keeps a's keypoints, visibility and background and takes b's embeddings of
    those parts; ``b'`` the reverse.
    """
    _check_pair(a, b)
    idx = _part_index(a, parts)
    ea, eb = a.kp_embed.clone(), b.kp_embed.clone()
    ea[:, idx], eb[:, idx] = b.kp_embed[:, idx], a.kp_embed[:, idx]
    return a.replace(kp_embed=ea), b.replace(kp_embed=eb)


def interpolate_embeddings(a: Latents, b: Latents, t: float, parts: Parts = None) -> Latents:
    """``a`` with the embeddings of ``parts`` linearly interpolated towards ``b``: exactly a at t=0, b's at t=1."""
    _check_pair(a, b)
    t = _check_t(t)
    idx = _part_index(a, parts)
    e = a.kp_embed.clone()
    e[:, idx] = torch.lerp(a.kp_embed[:, idx], b.kp_embed[:, idx], t)
    return a.replace(kp_embed=e)


def swap_background(a: Latents, b: Latents) -> tuple[Latents, Latents]:
    """Exchange the background embeddings (background texture, hair) of ``a`` and ``b``."""
    _check_pair(a, b)
    return a.replace(bg_embed=b.bg_embed.clone()), b.replace(bg_embed=a.bg_embed.clone())


def interpolate_background(a: Latents, b: Latents, t: float) -> Latents:
    """``a`` with its background embedding interpolated towards ``b``'s (exactly a at t=0, b's at t=1)."""
    _check_pair(a, b)
    return a.replace(bg_embed=torch.lerp(a.bg_embed, b.bg_embed, _check_t(t)))


# ---------------------------------------------------------------------------------------- removing, adding
def remove_parts(lat: Latents, parts: Parts) -> Latents:
    """Set ``visible = 0`` for ``parts``: their heatmaps (and so their embeddings) no longer reach the image.

    Their positions still feed the generator's positional start, so the layout of the rest is unchanged.
    """
    if parts is None:
        raise ValueError("remove_parts needs explicit part indices (None would remove every part)")
    idx = _part_index(lat, parts)
    vis = lat.visible.clone()
    vis[:, idx] = 0
    return lat.replace(visible=vis)


def restore_parts(lat: Latents, parts: Parts = None) -> Latents:
    """Set ``visible = 1`` for ``parts`` (``None`` = all): undoes :func:`remove_parts`."""
    idx = _part_index(lat, parts)
    vis = lat.visible.clone()
    vis[:, idx] = 1
    return lat.replace(visible=vis)


def add_part(lat: Latents, source: int, xy: object, *, units: str = "norm", size: int | None = None) -> Latents:
    """Add a copy of part ``source`` at ``xy``: returns latents with K + 1 keypoints (the new one last).

    The new part carries ``kp_embed[:, source]`` and is visible; it acts through the heatmap conditioning only
    (see the module docstring), so render the result with :func:`render`. ``xy``: (2,) or (B, 1, 2) position in
    ``units``. Added parts can be moved, removed or given other embeddings like any other part.
    """
    src = _part_index(lat, source)
    if len(src) != 1:
        raise ValueError(f"source must be a single part index, got {source!r}")
    pos = _to_norm(_points(xy, lat, 1, "xy"), units, size, is_offset=False)
    return Latents(
        torch.cat((lat.keypoints, pos), dim=1),
        torch.cat((lat.kp_embed, lat.kp_embed[:, src]), dim=1),
        lat.bg_embed.clone(),
        torch.cat((lat.visible, torch.ones_like(lat.visible[:, :1])), dim=1),
    )


# ------------------------------------------------------------------------------------------------ rendering
@torch.no_grad()
def render(generator: Generator, lat: Latents, batch_size: int = 64) -> torch.Tensor:
    """Render (edited) latents, including ones with added parts -> (B, 3, R, R) in [0, 1]."""
    device = next(generator.parameters()).device
    out = [
        to_unit(generator.render(_to(lat[s : s + batch_size], device)))
        for s in range(0, lat.keypoints.shape[0], batch_size)
    ]
    return torch.cat(out).cpu()


def _to(lat: Latents, device: torch.device) -> Latents:
    return Latents(*(getattr(lat, f).to(device) for f in ("keypoints", "kp_embed", "bg_embed", "visible")))


# -------------------------------------------------------------------------------------------- interpolation
def interpolate(a: Latents, b: Latents, t: float, what: str = "all") -> Latents:
    """Latents between ``a`` (t=0) and ``b`` (t=1), moving only ``what``.

    Args:
        what: ``"keypoints"`` (positions), ``"embeddings"`` (keypoint embeddings), ``"background"``
            (background embedding) or ``"all"`` (those three and the visibility); everything else comes from a.
    """
    _check_pair(a, b)
    t = _check_t(t)
    if what not in INTERPOLATE_WHAT:
        raise ValueError(f"what must be one of {INTERPOLATE_WHAT}, got {what!r}")
    out = a
    if what in ("keypoints", "all"):
        out = out.replace(keypoints=torch.lerp(a.keypoints, b.keypoints, t))
    if what in ("embeddings", "all"):
        out = out.replace(kp_embed=torch.lerp(a.kp_embed, b.kp_embed, t))
    if what in ("background", "all"):
        out = out.replace(bg_embed=torch.lerp(a.bg_embed, b.bg_embed, t))
    if what == "all":
        out = out.replace(visible=torch.lerp(a.visible, b.visible, t))
    return out


def interpolation_frames(
    generator: Generator, a: Latents, b: Latents, steps: int, what: str = "all", batch_size: int = 64
) -> list[torch.Tensor]:
    """Render ``steps`` frames from ``a`` to ``b`` (both ends included) for one sample.

    Args:
        a, b: latents of a single sample each (batch 1).
        steps: number of frames, >= 2.
        what: see :func:`interpolate`.

    Returns:
        ``steps`` images, each (3, R, R) in [0, 1].
    """
    if steps < 2:
        raise ValueError(f"steps must be >= 2, got {steps}")
    if a.keypoints.shape[0] != 1:
        raise ValueError(f"interpolation_frames takes single samples (batch 1), got batch {a.keypoints.shape[0]}")
    lat = Latents.cat([interpolate(a, b, i / (steps - 1), what) for i in range(steps)])
    return list(render(generator, lat, batch_size))
