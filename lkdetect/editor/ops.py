"""Edit operations of the editor: their JSON schema, validation and application to latents.

An edit is a seeded sample plus a list of operations; each operation is a JSON object ``{"op": NAME, ...}`` that
maps onto one function of :mod:`gan.edit` (He et al., arXiv 2103.15812, Sec. 4.1 "Editing"). Positions and
offsets are in pixels of the R x R image, (x, y), pixel centres at integers; a second sample is named by
``{"seed": S, "index": I}`` as in :func:`gan.sampling.sample`. :func:`validate` turns an untrusted operation into
its canonical form or raises :class:`EditError` naming the field, what was expected and what came; :func:`apply`
runs a canonical operation. Both are pure and know nothing of HTTP.

Latents are carried with ``sources``: for every keypoint the original part it is (``k`` for the first K) or
copies (an added part). Exchanging embeddings with a second sample gives an added part the second sample's
embedding of its source part.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from gan.generator import Latents

MAX_ADDED = 16  # parts that may be added on top of the generator's K
MAX_SEED = 2**32 - 1
MAX_INDEX = 10**6

# op name -> (required fields, optional fields)
OPS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "move": (("parts", "xy"), ()),
    "translate": (("offset",), ("parts",)),
    "scale": (("factor",), ("parts", "centre")),
    "rotate": (("degrees",), ("parts", "centre")),
    "swap_embeddings": (("other",), ("parts",)),
    "interpolate_embeddings": (("other", "t"), ("parts",)),
    "swap_background": (("other",), ()),
    "interpolate_background": (("other", "t"), ()),
    "remove": (("parts",), ()),
    "restore": ((), ("parts",)),
    "add": (("source", "xy"), ()),
}


class EditError(ValueError):
    """An operation, edit or request value that cannot be applied; the message says which and why."""


# ------------------------------------------------------------------------------------------------ checks
def _number(value: Any, what: str, lo: float, hi: float) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise EditError(f"{what} must be a number, got {value!r}")
    v = float(value)
    if not math.isfinite(v) or not lo <= v <= hi:
        raise EditError(f"{what} must be a finite number in [{lo:g}, {hi:g}], got {value!r}")
    return v


def integer(value: Any, what: str, lo: int, hi: int) -> int:
    """``value`` as an int in [lo, hi]; bools and floats are refused."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise EditError(f"{what} must be an integer, got {value!r}")
    if not lo <= value <= hi:
        raise EditError(f"{what} must be in [{lo}, {hi}], got {value}")
    return value


def sample_ref(value: Any, what: str = "other") -> dict[str, int]:
    """``{"seed": S, "index": I}`` checked."""
    if not isinstance(value, dict) or set(value) != {"seed", "index"}:
        raise EditError(f"{what} must be an object {{'seed': S, 'index': I}}, got {value!r}")
    return {
        "seed": integer(value["seed"], f"{what}.seed", 0, MAX_SEED),
        "index": integer(value["index"], f"{what}.index", 0, MAX_INDEX),
    }


def _parts(value: Any, n: int, optional: bool) -> list[int] | None:
    if value is None and optional:
        return None
    items = [value] if isinstance(value, int) and not isinstance(value, bool) else value
    if not isinstance(items, list) or not items:
        raise EditError(f"parts must be a part index or a non-empty list of them, got {value!r}")
    out = [integer(p, "part", -(2**31), 2**31) for p in items]
    bad = sorted({p for p in out if not 0 <= p < n})
    if bad:
        raise EditError(f"unknown part(s) {bad}: this image has {n} parts (0 .. {n - 1})")
    if len(set(out)) != len(out):
        raise EditError(f"parts must not repeat, got {out}")
    return out


def _point(value: Any, what: str, lo: float, hi: float) -> list[float]:
    if not isinstance(value, list) or len(value) != 2:
        raise EditError(f"{what} must be [x, y], got {value!r}")
    return [_number(value[0], f"{what} x", lo, hi), _number(value[1], f"{what} y", lo, hi)]


def _points(value: Any, n: int, what: str, lo: float, hi: float) -> list[list[float]]:
    """One [x, y] for every part, or a single [x, y] for all of them (given as [x, y] or [[x, y]])."""
    if isinstance(value, list) and len(value) == 2 and not isinstance(value[0], list):
        value = [value]
    if not isinstance(value, list) or len(value) not in (1, n):
        raise EditError(f"{what} must be [x, y] or a list of {n} [x, y] pairs, got {value!r}")
    return [_point(v, what, lo, hi) for v in value]


def validate(op: Any, n_parts: int, size: int, n_original: int) -> dict[str, Any]:
    """Check an operation against latents with ``n_parts`` keypoints of an image of side ``size``.

    Args:
        op: the untrusted operation (parsed JSON).
        n_parts: keypoints the latents have now (K plus added parts).
        size: image side R in pixels; positions must lie in [-R/2, 3R/2], offsets in [-2R, 2R].
        n_original: the generator's K (bounds the number of added parts).

    Returns:
        The canonical operation: field order fixed, parts as lists, points as lists of [x, y] floats.
    """
    if not isinstance(op, dict):
        raise EditError(f"an operation must be a JSON object {{'op': NAME, ...}}, got {op!r}")
    name = op.get("op")
    if name not in OPS:
        raise EditError(f"unknown op {name!r}; known: {', '.join(OPS)}")
    required, optional = OPS[name]
    missing = [f for f in required if f not in op]
    extra = sorted(set(op) - {"op", *required, *optional})
    if missing or extra:
        raise EditError(
            f"op {name!r} takes fields {list(required)} (+ optional {list(optional)}); "
            f"missing {missing}, unknown {extra}"
        )
    lo, hi, span = -size / 2, 3 * size / 2, 2 * size
    out: dict[str, Any] = {"op": name}
    for field in (*required, *optional):
        if field not in op:
            continue
        v = op[field]
        if field == "parts":
            out[field] = _parts(v, n_parts, field in optional)
        elif field == "xy":
            out[field] = _points(v, len(out["parts"]) if name == "move" else 1, "xy", lo, hi)
        elif field == "offset":
            out[field] = _point(v, "offset", -span, span)
        elif field == "centre":
            out[field] = None if v is None else _point(v, "centre", lo, hi)
        elif field == "factor":
            f = v if isinstance(v, list) else [v]
            if len(f) not in (1, 2):
                raise EditError(f"factor must be a number or [sx, sy], got {v!r}")
            fs = [_number(x, "factor", -20, 20) for x in f]
            if any(abs(x) < 0.05 for x in fs):
                raise EditError(f"factor must be at least 0.05 in magnitude, got {v!r}")
            out[field] = fs
        elif field == "degrees":
            out[field] = _number(v, "degrees", -360, 360)
        elif field == "t":
            out[field] = _number(v, "t", 0, 1)
        elif field == "other":
            out[field] = sample_ref(v)
        elif field == "source":
            parts = _parts(v, n_parts, False)
            if len(parts) != 1:
                raise EditError(f"source must be a single part index, got {v!r}")
            out[field] = parts[0]
    if name == "add" and n_parts >= n_original + MAX_ADDED:
        raise EditError(f"at most {MAX_ADDED} parts can be added; this image has {n_parts - n_original} added")
    return out


# ----------------------------------------------------------------------------------------------- applying
def pad_to(b: Latents, a: Latents, sources: list[int]) -> Latents:
    """``b`` extended to ``a``'s added parts: extra keypoint i takes a's position and b's embedding of part
    ``sources[i]``, and a's visibility; the first K are b's own."""
    import torch

    from gan.generator import Latents

    k_b, k_a = b.keypoints.shape[1], a.keypoints.shape[1]
    if k_b >= k_a:
        return b
    src = torch.as_tensor(sources[k_b:k_a])
    return Latents(
        torch.cat((b.keypoints, a.keypoints[:, k_b:]), dim=1),
        torch.cat((b.kp_embed, b.kp_embed[:, src]), dim=1),
        b.bg_embed,
        torch.cat((b.visible, a.visible[:, k_b:]), dim=1),
    )


def apply(
    lat: Latents, sources: list[int], op: dict[str, Any], size: int, sample: Callable[[int, int], Latents]
) -> tuple[Latents, list[int]]:
    """Apply one canonical operation (see :func:`validate`) to single-sample latents.

    Args:
        lat: latents of one sample (batch 1), possibly with added parts.
        sources: the original part of every keypoint (length = keypoints of ``lat``).
        op: a canonical operation.
        size: image side R (positions are in its pixels).
        sample: ``(seed, index) -> Latents`` of a second sample (batch 1).

    Returns:
        The new latents and sources. Raises :class:`EditError` when the result would put a keypoint outside
        [-R/2, 3R/2] px.
    """
    from gan import edit

    px = {"units": "px", "size": size}
    name, parts = op["op"], op.get("parts")
    other = None
    if "other" in op:
        other = pad_to(sample(op["other"]["seed"], op["other"]["index"]), lat, sources)
    if name == "move":
        out = edit.set_positions(lat, op["xy"], parts, **px)
    elif name == "translate":
        out = edit.translate(lat, op["offset"], parts, **px)
    elif name == "scale":
        f = op["factor"][0] if len(op["factor"]) == 1 else op["factor"]
        out = edit.scale(lat, f, parts, centre=op.get("centre"), **px)
    elif name == "rotate":
        out = edit.rotate(lat, op["degrees"], parts, centre=op.get("centre"), **px)
    elif name == "swap_embeddings":
        out, _ = edit.swap_embeddings(lat, other, parts)
    elif name == "interpolate_embeddings":
        out = edit.interpolate_embeddings(lat, other, op["t"], parts)
    elif name == "swap_background":
        out, _ = edit.swap_background(lat, other)
    elif name == "interpolate_background":
        out = edit.interpolate_background(lat, other, op["t"])
    elif name == "remove":
        out = edit.remove_parts(lat, parts)
    elif name == "restore":
        out = edit.restore_parts(lat, parts)
    elif name == "add":
        out = edit.add_part(lat, op["source"], op["xy"][0], **px)
        return _in_range(out, size), [*sources, sources[op["source"]]]
    else:  # validate() lets no other name through
        raise EditError(f"unknown op {name!r}")
    return _in_range(out, size), sources


def _in_range(lat: Latents, size: int) -> Latents:
    from gan.keypoint_maps import to_pixels

    xy = to_pixels(lat.keypoints[0].double(), size)
    bad = ((xy < -size / 2) | (xy > 3 * size / 2)).any(dim=-1).nonzero().flatten().tolist()
    if bad:
        where = ", ".join(f"part {i} to ({xy[i, 0]:.1f}, {xy[i, 1]:.1f})" for i in bad[:4])
        raise EditError(f"the edit would move {where}: outside [{-size / 2:g}, {3 * size / 2:g}] px")
    return lat
