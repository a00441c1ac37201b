"""The editor's state model: a seeded sample plus a list of edit operations, replayed exactly; no HTTP here.

An :class:`EditState` is ``(seed, index, ops)``: sample ``index`` of ``seed`` (:func:`gan.sampling.sample_noise`,
the same latents as ``gan.sample(G, n, seed)[index]``) and the canonical operations of :mod:`.ops`. Replaying a
state runs the same tensor operations in the same order every time, so an exported edit (:func:`edit_document`)
renders bit-identically through :func:`render_edit` with the same weights on the same machine and torch build.
A :class:`Session` is one user's history (undo/redo), second sample, detector and caches; the HTTP layer
(:mod:`.server`) only forwards to it.
"""

from __future__ import annotations

import base64
import io
import json
import math
import os
import random
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .ops import MAX_INDEX, MAX_SEED, EditError, apply, integer, pad_to, sample_ref, validate

if TYPE_CHECKING:
    import torch

    from gan.generator import Generator, Latents

FORMAT = "lkdetect-edit"
FORMAT_VERSION = 1
MAX_OPS = 1000  # operations in one state
MAX_HISTORY = 500  # states kept for undo
CHANGED = 8 / 255  # a pixel "changed" when a channel moved by more than this
DIFF_GAIN = 4  # the difference view shows 4 x the mean absolute channel difference

Detect = Callable[["torch.Tensor"], "torch.Tensor"]  # (N, 3, R, R) in [0, 1] -> (N, K, 2) pixels (x, y)


class HistoryError(EditError):
    """Nothing to undo or redo."""


@dataclass(frozen=True)
class EditState:
    """Sample ``index`` of ``seed`` with ``ops`` (canonical operations, each as its JSON text) applied in order."""

    seed: int
    index: int
    ops: tuple[str, ...] = ()

    def op_list(self) -> list[dict[str, Any]]:
        return [json.loads(o) for o in self.ops]

    def with_op(self, op: dict[str, Any]) -> EditState:
        if len(self.ops) >= MAX_OPS:
            raise EditError(f"an edit holds at most {MAX_OPS} operations; reset or start from a new sample")
        return replace(self, ops=(*self.ops, json.dumps(op)))

    @property
    def original(self) -> EditState:
        return EditState(self.seed, self.index)


class _LRU(OrderedDict):
    def __init__(self, size: int):
        super().__init__()
        self.size = size

    def get_or(self, key: Any, make: Callable[[], Any]) -> Any:
        if key in self:
            self.move_to_end(key)
            return self[key]
        return self.put(key, make())

    def put(self, key: Any, value: Any) -> Any:
        self[key] = value
        self.move_to_end(key)
        if len(self) > self.size:
            self.popitem(last=False)
        return value


# ------------------------------------------------------------------------------------------ pure functions
def sample_latents(generator: Generator, seed: int, index: int) -> Latents:
    """Latents (batch 1) of sample ``index`` of ``seed``, as :func:`gan.sampling.sample` draws them."""
    import torch

    from gan.sampling import sample_noise

    with torch.no_grad():
        return generator.map(*sample_noise(generator.cfg.z_dim, seed, [index]))


def replay(
    generator: Generator, state: EditState, sample: Callable[[int, int], Latents] | None = None
) -> tuple[Latents, list[int], EditState]:
    """Apply ``state``'s operations to its sample, validating each.

    Returns:
        (latents, source part per keypoint, the state with its operations in canonical form).
    """
    sample = sample or (lambda s, i: sample_latents(generator, s, i))
    lat, k, size = sample(state.seed, state.index), generator.n_keypoints, generator.resolution
    sources, canonical = list(range(k)), state.original
    for i, op in enumerate(state.op_list()):
        try:
            op = validate(op, len(sources), size, k)
            lat, sources = apply(lat, sources, op, size, sample)
        except EditError as e:
            raise EditError(f"operation {i} ({op.get('op')}): {e}") from None
        canonical = canonical.with_op(op)
    return lat, sources, canonical


def render(generator: Generator, lat: Latents) -> torch.Tensor:
    """(3, R, R) image in [0, 1] of single-sample latents (:func:`gan.edit.render`)."""
    from gan import edit

    return edit.render(generator, lat)[0]


def edit_document(state: EditState, gan: dict[str, Any]) -> dict[str, Any]:
    """The exportable edit: format, the GAN it was made with, the sample and the operations."""
    return {
        "format": FORMAT,
        "version": FORMAT_VERSION,
        "gan": dict(gan),
        "sample": {"seed": state.seed, "index": state.index},
        "ops": state.op_list(),
    }


def parse_edit(doc: Any) -> EditState:
    """An edit document (:func:`edit_document`) -> :class:`EditState`; operations are validated on replay."""
    if not isinstance(doc, dict):
        raise EditError(f"an edit must be a JSON object, got {type(doc).__name__}")
    if doc.get("format") != FORMAT:
        raise EditError(f"not an edit: format must be {FORMAT!r}, got {doc.get('format')!r}")
    if not isinstance(doc.get("version"), int) or doc["version"] > FORMAT_VERSION:
        raise EditError(f"edit version {doc.get('version')!r} is not supported (this reads up to {FORMAT_VERSION})")
    extra = sorted(set(doc) - {"format", "version", "gan", "sample", "ops"})
    if extra:
        raise EditError(f"unknown fields in the edit: {extra}")
    s = sample_ref(doc.get("sample"), "sample")
    ops = doc.get("ops", [])
    if not isinstance(ops, list) or len(ops) > MAX_OPS:
        raise EditError(f"ops must be a list of at most {MAX_OPS} operations")
    if not all(isinstance(o, dict) for o in ops):
        raise EditError("every operation must be a JSON object")
    return EditState(s["seed"], s["index"], tuple(json.dumps(o) for o in ops))


def gan_identity(path: str | Path, domain: str | None = None) -> dict[str, Any]:
    """What an edit records of its GAN: file name, sha256 and, for shipped weights, the domain."""
    from gan.checkpoint import file_sha256

    out: dict[str, Any] = {"file": Path(path).name, "sha256": file_sha256(path)}
    if domain is not None:
        out["domain"] = domain
    return out


def render_edit(edit: dict[str, Any] | str | os.PathLike, gan: Any = None) -> torch.Tensor:
    """Render an edit exported by the editor: the same pixels the editor showed.

    Args:
        edit: the edit document (a dict, its JSON text, or the path of a ``.json`` file).
        gan: the GAN: a :class:`gan.Generator`, a path to release weights, or None for the shipped weights of
            the edit's ``gan.domain``. Weights whose sha256 differs from the edit's are refused.

    Returns:
        (3, R, R) float tensor in [0, 1], RGB; ``gan.viz.to_pil`` of it is the editor's PNG export.

    Raises:
        EditError (a ValueError): a malformed edit, an invalid operation, or other GAN weights.
    """
    doc = _read_doc(edit)
    state = parse_edit(doc)
    generator = _generator_for(doc.get("gan") or {}, gan)
    return render(generator, replay(generator, state)[0])


def _read_doc(edit: Any) -> Any:
    if isinstance(edit, os.PathLike):
        edit = Path(edit).read_text(encoding="utf-8")
    if isinstance(edit, str):
        try:
            return json.loads(edit)
        except json.JSONDecodeError as e:
            raise EditError(f"the edit is not valid JSON: {e}") from None
    return edit


def _generator_for(info: dict[str, Any], gan: Any) -> Generator:
    from gan.generator import Generator
    from lkdetect.training.gan_weights import load_gan

    if isinstance(gan, Generator):
        return gan
    if gan is None:
        if not info.get("domain"):
            raise EditError("the edit names no shipped GAN domain; pass gan=PATH of the weights it was made with")
        from lkdetect.models import shipped_gan_path

        gan = shipped_gan_path(info["domain"])
    found = gan_identity(gan)["sha256"]
    if info.get("sha256") and info["sha256"] != found:
        raise EditError(
            f"the edit was made with GAN weights sha256 {info['sha256'][:12]}..., {gan} has {found[:12]}..."
        )
    return load_gan(gan)[0]


# ---------------------------------------------------------------------------------------------- pictures
def change(before: torch.Tensor, after: torch.Tensor) -> dict[str, float]:
    """How much an image changed: mean and max absolute channel difference (0-255 units), share of pixels with a
    channel changed by more than 8/255."""
    d = (after - before).abs()
    return {
        "mean_abs": round(float(d.mean()) * 255, 4),
        "max_abs": round(float(d.max()) * 255, 2),
        "changed_share": round(float((d.amax(0) > CHANGED).float().mean()), 4),
    }


def to_png(image: torch.Tensor, scale: int = 1) -> bytes:
    """(3, R, R) [0, 1] -> PNG bytes, upscaled ``scale`` x (nearest)."""
    from PIL import Image

    from gan.viz import to_pil

    im = to_pil(image)
    if scale > 1:
        im = im.resize((im.width * scale, im.height * scale), Image.Resampling.NEAREST)
    buf = io.BytesIO()
    im.save(buf, format="PNG", compress_level=1)  # fast: these are 64-128 px images sent while dragging
    return buf.getvalue()


def data_url(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def diff_image(before: torch.Tensor, after: torch.Tensor) -> torch.Tensor:
    """Grey image of ``DIFF_GAIN`` x the mean absolute channel difference (a fixed scale, never normalised)."""
    return ((after - before).abs().mean(0, keepdim=True) * DIFF_GAIN).clamp(0, 1).expand(3, -1, -1)


def pixels(lat: Latents, size: int) -> list[list[float]]:
    from gan.keypoint_maps import to_pixels

    return [[round(float(v), 3) for v in p] for p in to_pixels(lat.keypoints[0].double(), size)]


# ------------------------------------------------------------------------------------------------ session
class Session:
    """One user's editing session: history of :class:`EditState` with undo/redo, the second sample B, caches.

    Args:
        generator: the GAN generator (eval mode, CPU).
        gan: what edits record of it (:func:`gan_identity`).
        detect: optional keypoint detector on (N, 3, R, R) [0, 1] images.
        seed, index: the first sample; B starts as sample ``index + 1`` of the same seed.
    """

    def __init__(
        self, generator: Generator, gan: dict[str, Any], detect: Detect | None = None, seed: int = 0, index: int = 0
    ):
        self.G, self.gan, self.detect = generator, dict(gan), detect
        self.size, self.k = generator.resolution, generator.n_keypoints
        seed, index = integer(seed, "seed", 0, MAX_SEED), integer(index, "index", 0, MAX_INDEX - 1)
        self.history, self.position = [EditState(seed, index)], 0
        self.other = (seed, index + 1)
        self._samples, self._states, self._images, self._urls = _LRU(64), _LRU(256), _LRU(64), _LRU(64)
        self._rng = random.Random()

    # ---- rendering with caches (the same operations as replay(), so the same bits)
    def sample(self, seed: int, index: int) -> Latents:
        return self._samples.get_or((seed, index), lambda: sample_latents(self.G, seed, index))

    def latents(self, state: EditState) -> tuple[Latents, list[int]]:
        """Replay ``state`` from its longest cached prefix (iteratively: edits may hold many operations)."""
        n = len(state.ops)
        j = n
        while j > 0 and replace(state, ops=state.ops[:j]) not in self._states:
            j -= 1
        if j:
            lat, sources = self._states.get_or(replace(state, ops=state.ops[:j]), tuple)
        else:
            lat, sources = self.sample(state.seed, state.index), list(range(self.k))
        for i in range(j, n):
            op = validate(json.loads(state.ops[i]), len(sources), self.size, self.k)
            lat, sources = apply(lat, sources, op, self.size, self.sample)
            self._states.put(replace(state, ops=state.ops[: i + 1]), (lat, sources))
        return lat, sources

    def image(self, state: EditState) -> torch.Tensor:
        return self._images.get_or(state, lambda: render(self.G, self.latents(state)[0]))

    def image_url(self, state: EditState, kind: str = "image") -> str:
        """PNG data URL of ``state``'s image (``kind="image"``) or of its difference from the unedited sample."""

        def make() -> str:
            img = self.image(state)
            return data_url(to_png(img if kind == "image" else diff_image(self.image(state.original), img)))

        return self._urls.get_or((kind, state), make)

    @property
    def state(self) -> EditState:
        return self.history[self.position]

    # ---- editing
    def _push(self, state: EditState) -> None:
        self.history = [*self.history[: self.position + 1], state][-MAX_HISTORY:]
        self.position = len(self.history) - 1

    def candidate(self, op: Any) -> EditState:
        """The current state with ``op`` applied (validated, B filled in where the op needs one), not committed."""
        if isinstance(op, dict) and op.get("op") in _NEEDS_OTHER and "other" not in op:
            op = {**op, "other": {"seed": self.other[0], "index": self.other[1]}}
        lat, sources = self.latents(self.state)
        canonical = validate(op, len(sources), self.size, self.k)
        new = self.state.with_op(canonical)
        self.latents(new)  # raises EditError when the result is out of range
        return new

    def apply(self, op: Any) -> EditState:
        new = self.candidate(op)
        self._push(new)
        return new

    def undo(self) -> None:
        if self.position == 0:
            raise HistoryError("nothing to undo")
        self.position -= 1

    def redo(self) -> None:
        if self.position >= len(self.history) - 1:
            raise HistoryError("nothing to redo")
        self.position += 1

    def reset(self) -> None:
        """Back to the unedited sample (undoable)."""
        if self.state.ops:
            self._push(self.state.original)

    def new_sample(self, which: str = "a", seed: int | None = None, index: int = 0) -> None:
        """A new sample A (a new, unedited state) or B; ``seed=None`` draws a random seed."""
        if which not in ("a", "b"):
            raise EditError(f"which must be 'a' or 'b', got {which!r}")
        seed = self._rng.randrange(MAX_SEED + 1) if seed is None else integer(seed, "seed", 0, MAX_SEED)
        index = integer(index, "index", 0, MAX_INDEX)
        if which == "a":
            self._push(EditState(seed, index))
        else:
            self.other = (seed, index)

    def load(self, doc: Any) -> None:
        """Load an exported edit as a new state (its GAN must be this one)."""
        state = parse_edit(doc)
        sha = (doc.get("gan") or {}).get("sha256")
        if sha and sha != self.gan.get("sha256"):
            raise EditError(f"the edit was made with other GAN weights (sha256 {sha[:12]}...)")
        self._push(replay(self.G, state, self.sample)[2])  # validates every operation

    # ---- views and exports
    def document(self) -> dict[str, Any]:
        return edit_document(self.state, self.gan)

    def view(self, detect: bool = False, preview: Any = None) -> dict[str, Any]:
        """Everything the page shows, JSON-ready; with ``preview`` the state with that op applied, uncommitted."""
        t0 = time.perf_counter()
        state = self.candidate(preview) if preview is not None else self.state
        lat, sources = self.latents(state)
        img, before = self.image(state), self.image(state.original)
        prev = self.state if preview is not None else (replace(state, ops=state.ops[:-1]) if state.ops else None)
        other = self.sample(*self.other)
        det = None
        if detect and self.detect is not None:
            # null for a GAN keypoint that a subset detector (lkdetect keep-keypoints) does not output
            det = [
                [round(float(v), 3) for v in p] if all(math.isfinite(float(v)) for v in p) else None
                for p in self.detect(img[None])[0]
            ]
        return {
            "edit": edit_document(state, self.gan),
            "preview": preview is not None,
            "history": {"position": self.position, "length": len(self.history)},
            "size": self.size,
            "n_original": self.k,
            "image": self.image_url(state),
            "before": self.image_url(state.original),
            "diff": self.image_url(state, "diff"),
            "other": self.image_url(EditState(*self.other)),
            "other_sample": {"seed": self.other[0], "index": self.other[1]},
            "other_keypoints": pixels(other, self.size),
            "keypoints": pixels(lat, self.size),
            "visible": [float(v) for v in lat.visible[0]],
            "sources": sources,
            "detector": self.detect is not None,
            "detections": det,
            "change": {
                "original": change(before, img),
                "last": change(self.image(prev), img) if prev is not None else None,
                "last_op": json.loads(state.ops[-1])["op"] if state.ops else None,
            },
            "server_ms": round(1000 * (time.perf_counter() - t0), 2),
        }

    def png(self, scale: int = 1) -> bytes:
        return to_png(self.image(self.state), integer(scale, "scale", 1, 16))

    def resolve(self, which: Any) -> EditState:
        """A state named by its history position, ``"original"`` (the current sample unedited) or ``"current"``."""
        if which == "current":
            return self.state
        if which == "original":
            return self.state.original
        pos = integer(which, "state", 0, len(self.history) - 1)
        return self.history[pos]

    def animation(self, start: Any = "original", end: Any = "current", steps: int = 16, scale: int = 4) -> bytes:
        """GIF from state ``start`` to ``end`` and back: positions, embeddings, background and visibility
        interpolated (:func:`gan.edit.interpolate`); a part only one state has fades in or out."""
        from PIL import Image

        from gan import edit
        from gan.generator import Latents
        from gan.viz import to_pil

        steps, scale = integer(steps, "steps", 2, 120), integer(scale, "scale", 1, 8)
        (a, sa), (b, sb) = self.latents(self.resolve(start)), self.latents(self.resolve(end))
        a, b = _fade(a, b, sb), _fade(b, a, sa)
        frames = edit.render(self.G, Latents.cat([edit.interpolate(a, b, i / (steps - 1)) for i in range(steps)]))
        pil = [to_pil(f).resize((self.size * scale,) * 2, Image.Resampling.NEAREST) for f in frames]
        pil = pil + pil[::-1][1:-1]
        buf = io.BytesIO()
        pil[0].save(buf, format="GIF", save_all=True, append_images=pil[1:], duration=80, loop=0)
        return buf.getvalue()


_NEEDS_OTHER = ("swap_embeddings", "interpolate_embeddings", "swap_background", "interpolate_background")


def _fade(short: Latents, long: Latents, long_sources: list[int]) -> Latents:
    """``short`` extended to ``long``'s keypoints by invisible copies (so interpolating fades them in)."""
    k = short.keypoints.shape[1]
    if k >= long.keypoints.shape[1]:
        return short
    out = pad_to(short, long, long_sources)
    vis = out.visible.clone()
    vis[:, k:] = 0
    return out.replace(visible=vis)
