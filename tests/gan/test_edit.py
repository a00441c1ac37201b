"""gan.edit and gan.disentangle on the tiny preset: each edit changes what it should and nothing else."""

from __future__ import annotations

import math

import pytest
import torch

import gan
from gan import edit
from gan.disentangle import move_locality, swap_keypoint_shift
from gan.generator import Latents
from gan.keypoint_maps import to_pixels
from gan.sampling import to_unit

FIELDS = ("keypoints", "kp_embed", "bg_embed", "visible")


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


@pytest.fixture(scope="module")
def G():
    torch.manual_seed(0)
    return gan.Generator(gan.get_config("tiny").model).eval().requires_grad_(False)


@pytest.fixture(scope="module")
def lats(G):
    s = gan.sample(G, 6, seed=3)
    return s.latents[:3], s.latents[3:]


def same(x: Latents, y: Latents, skip: tuple[str, ...] = ()) -> None:
    for f in FIELDS:
        if f not in skip:
            assert torch.equal(getattr(x, f), getattr(y, f)), f


def snapshot(lat: Latents) -> Latents:
    return Latents(*(getattr(lat, f).clone() for f in FIELDS))


# ------------------------------------------------------------------------------------------------ geometry
def test_translate_moves_only_selected_keypoints(lats):
    a, _ = lats
    before = snapshot(a)
    out = edit.translate(a, (0.1, -0.2), parts=[1, 3])
    same(a, before)  # input not mutated
    same(out, a, skip=("keypoints",))  # embeddings, background, visibility untouched
    d = out.keypoints - a.keypoints
    assert torch.allclose(d[:, [1, 3]], torch.tensor([0.1, -0.2]).expand(3, 2, 2), atol=1e-6)
    assert torch.equal(d[:, [0, 2]], torch.zeros(3, 2, 2))


def test_translate_pixels_and_round_trip(lats):
    a, _ = lats
    out = edit.translate(a, (4.0, 2.0), units="px", size=32)  # 4 px of a 32 px image = 0.25 units
    assert torch.allclose(out.keypoints - a.keypoints, torch.tensor([0.25, 0.125]).expand_as(a.keypoints), atol=1e-6)
    assert torch.allclose(
        to_pixels(out.keypoints, 32) - to_pixels(a.keypoints, 32),
        torch.tensor([4.0, 2.0]).expand_as(a.keypoints),
        atol=1e-5,
    )
    back = edit.translate(out, (-4.0, -2.0), units="px", size=32)
    assert torch.allclose(back.keypoints, a.keypoints, atol=1e-6)
    per_sample = edit.translate(a, torch.tensor([[[1.0, 0.0]], [[0.0, 1.0]], [[0.0, 0.0]]]), parts=2)
    assert torch.allclose(per_sample.keypoints[:, 2] - a.keypoints[:, 2], torch.tensor([[1.0, 0], [0, 1], [0, 0]]))


def test_set_positions(lats):
    a, _ = lats
    out = edit.set_positions(a, (0.0, 31.0), parts=0, units="px", size=32)
    assert torch.allclose(to_pixels(out.keypoints[:, 0], 32), torch.tensor([0.0, 31.0]).expand(3, 2), atol=1e-5)
    assert torch.equal(out.keypoints[:, 1:], a.keypoints[:, 1:])
    same(out, a, skip=("keypoints",))


def test_scale_about_centroid(lats):
    a, _ = lats
    out = edit.scale(a, 2.0)
    c = a.keypoints.mean(1, keepdim=True)
    assert torch.allclose(out.keypoints.mean(1, keepdim=True), c, atol=1e-6)
    assert torch.allclose(out.keypoints - c, 2 * (a.keypoints - c), atol=1e-6)
    assert torch.allclose(edit.scale(out, 0.5).keypoints, a.keypoints, atol=1e-6)
    aniso = edit.scale(a, (1.0, 0.0), centre=(0.0, 0.0))  # squash onto the x axis
    assert torch.allclose(aniso.keypoints[..., 1], torch.zeros(3, 4)) and torch.equal(
        aniso.keypoints[..., 0], a.keypoints[..., 0]
    )
    same(out, a, skip=("keypoints",))


def test_rotate_direction_and_round_trip(lats):
    a, _ = lats
    one = edit.set_positions(a, (0.5, 0.0), parts=0)
    up = edit.rotate(one, 90, parts=0, centre=(0.0, 0.0))  # counter-clockwise on screen: right -> up (y < 0)
    assert torch.allclose(up.keypoints[:, 0], torch.tensor([0.0, -0.5]).expand(3, 2), atol=1e-6)
    r = a
    for _ in range(4):
        r = edit.rotate(r, 90)
    assert torch.allclose(r.keypoints, a.keypoints, atol=1e-6)
    r30 = edit.rotate(a, 30)
    c = a.keypoints.mean(1, keepdim=True)
    assert torch.allclose((r30.keypoints - c).norm(dim=-1), (a.keypoints - c).norm(dim=-1), atol=1e-6)
    assert not torch.allclose(r30.keypoints, a.keypoints)
    same(r30, a, skip=("keypoints",))


# ---------------------------------------------------------------------------------------------- appearance
def test_swap_embeddings_all_and_subset(lats):
    a, b = lats
    a2, b2 = edit.swap_embeddings(a, b)
    same(a2, a, skip=("kp_embed",))  # positions identical
    same(b2, b, skip=("kp_embed",))
    assert torch.equal(a2.kp_embed, b.kp_embed) and torch.equal(b2.kp_embed, a.kp_embed)
    a3, b3 = edit.swap_embeddings(a, b, parts=[0, 2])
    assert torch.equal(a3.kp_embed[:, [0, 2]], b.kp_embed[:, [0, 2]])
    assert torch.equal(a3.kp_embed[:, [1, 3]], a.kp_embed[:, [1, 3]])
    back, _ = edit.swap_embeddings(a3, b3, parts=[0, 2])
    same(back, a)


def test_interpolate_embeddings_endpoints(lats):
    a, b = lats
    same(edit.interpolate_embeddings(a, b, 0.0), a)
    one = edit.interpolate_embeddings(a, b, 1.0)
    assert torch.equal(one.kp_embed, b.kp_embed)
    same(one, a, skip=("kp_embed",))
    half = edit.interpolate_embeddings(a, b, 0.5, parts=1)
    assert torch.allclose(half.kp_embed[:, 1], (a.kp_embed[:, 1] + b.kp_embed[:, 1]) / 2, atol=1e-6)
    assert torch.equal(half.kp_embed[:, [0, 2, 3]], a.kp_embed[:, [0, 2, 3]])


def test_background_swap_and_interpolation(G, lats):
    a, b = lats
    a2, b2 = edit.swap_background(a, b)
    same(a2, a, skip=("bg_embed",))
    assert torch.equal(a2.bg_embed, b.bg_embed) and torch.equal(b2.bg_embed, a.bg_embed)
    assert torch.equal(edit.interpolate_background(a, b, 1.0).bg_embed, b.bg_embed)
    same(edit.interpolate_background(a, b, 0.0), a)
    assert not torch.allclose(edit.render(G, a2), edit.render(G, a))


@pytest.mark.parametrize("what", edit.INTERPOLATE_WHAT)
def test_interpolate_endpoints(lats, what):
    a, b = lats
    same(edit.interpolate(a, b, 0.0, what), a)
    end = edit.interpolate(a, b, 1.0, what)
    moved = {"keypoints": ("keypoints",), "embeddings": ("kp_embed",), "background": ("bg_embed",), "all": FIELDS}[what]
    for f in FIELDS:
        assert torch.equal(getattr(end, f), getattr(b if f in moved else a, f)), f


def test_interpolation_frames(G, lats):
    a, b = lats
    frames = edit.interpolation_frames(G, a[0], b[0], steps=5, what="all")
    assert len(frames) == 5 and frames[0].shape == (3, 32, 32)
    assert torch.allclose(frames[0], edit.render(G, a[0])[0], atol=1e-5)  # batch 5 vs 1: float rounding
    assert torch.allclose(frames[-1], edit.render(G, b[0])[0], atol=1e-5)
    assert all(float((f1 - f0).abs().max()) > 0 for f0, f1 in zip(frames, frames[1:], strict=False))
    with pytest.raises(ValueError, match="steps"):
        edit.interpolation_frames(G, a[0], b[0], steps=1)
    with pytest.raises(ValueError, match="batch 1"):
        edit.interpolation_frames(G, a, b, steps=3)


# ------------------------------------------------------------------------------------- removing and adding
def test_remove_and_restore_part(G, lats):
    a, _ = lats
    removed = edit.remove_parts(a, 2)
    assert removed.visible[:, 2].eq(0).all() and removed.visible[:, [0, 1, 3]].eq(1).all()
    same(removed, a, skip=("visible",))
    base, img = edit.render(G, a), edit.render(G, removed)
    assert float((img - base).abs().mean()) > 1e-4  # untrained G: only assert that the image changed
    assert torch.equal(edit.render(G, edit.restore_parts(removed, 2)), base)


def test_add_part(G, lats):
    a, _ = lats
    added = edit.add_part(a, 1, (0.5, -0.5))
    assert added.keypoints.shape == (3, 5, 2) and added.kp_embed.shape == (3, 5, 8) and added.visible.shape == (3, 5)
    assert torch.equal(added.kp_embed[:, 4], a.kp_embed[:, 1]) and added.visible[:, 4].eq(1).all()
    assert torch.allclose(added.keypoints[:, 4], torch.tensor([0.5, -0.5]).expand(3, 2))
    same(Latents(added.keypoints[:, :4], added.kp_embed[:, :4], added.bg_embed, added.visible[:, :4]), a)
    base = edit.render(G, a)
    # An invisible added part adds nothing: the extra-keypoint rendering path equals Generator.render.
    hidden = edit.render(G, edit.remove_parts(added, 4))
    assert torch.allclose(hidden, base, atol=1e-5)
    img = edit.render(G, added)
    assert float((img - base).abs().mean()) > 1e-4
    moved = edit.translate(added, (0.1, 0.0), parts=4)  # added parts are ordinary parts of the latents
    assert torch.allclose(moved.keypoints[:, 4], torch.tensor([0.6, -0.5]).expand(3, 2))
    assert torch.allclose(to_unit(G.render(added)), img, atol=1e-6)  # Generator.render takes added parts too


def test_add_part_needs_sum_conditioning(lats):
    a, _ = lats
    g = gan.Generator(gan.get_config("tiny", {"model.conditioning": "concat"}).model).eval()
    assert edit.render(g, a).shape == (3, 3, 32, 32)
    with pytest.raises(ValueError, match="takes K = 4$"):
        edit.render(g, edit.add_part(a, 0, (0.0, 0.0)))


# ------------------------------------------------------------------------------------------------ bad input
@pytest.mark.parametrize(
    "parts, match",
    [(4, "out of range"), ([0, -1], "out of range"), ([], "empty"), (1.5, "integer"), ([True, False], "integer")],
)
def test_bad_parts(lats, parts, match):
    a, b = lats
    with pytest.raises(ValueError, match=match):
        edit.translate(a, (0.1, 0.0), parts=parts)
    with pytest.raises(ValueError, match=match):
        edit.swap_embeddings(a, b, parts=parts)


def test_bad_inputs(G, lats):
    a, b = lats
    with pytest.raises(ValueError, match="units"):
        edit.translate(a, (1, 0), units="mm")
    with pytest.raises(ValueError, match="size"):
        edit.translate(a, (1, 0), units="px")
    with pytest.raises(ValueError, match="broadcast"):
        edit.translate(a, (1, 0, 0))
    with pytest.raises(ValueError, match="factor"):
        edit.scale(a, float("inf"))
    with pytest.raises(ValueError, match="degrees"):
        edit.rotate(a, float("nan"))
    for t in (-0.1, 1.5, float("nan")):
        with pytest.raises(ValueError, match="t must be"):
            edit.interpolate_embeddings(a, b, t)
    with pytest.raises(ValueError, match="what"):
        edit.interpolate(a, b, 0.5, what="pose")
    with pytest.raises(ValueError, match="match in shape"):
        edit.swap_embeddings(a, edit.add_part(b, 0, (0, 0)))  # K mismatch
    with pytest.raises(ValueError, match="match in shape"):
        edit.interpolate_embeddings(a, b.replace(kp_embed=b.kp_embed[..., :4]), 0.5)  # D mismatch
    with pytest.raises(ValueError, match="match in shape"):
        edit.swap_background(a, b[:2])  # batch mismatch
    with pytest.raises(ValueError, match="explicit"):
        edit.remove_parts(a, None)
    with pytest.raises(ValueError, match="single part"):
        edit.add_part(a, [0, 1], (0, 0))
    with pytest.raises(ValueError, match="K = 4 or more"):
        edit.render(G, Latents(a.keypoints[:, :3], a.kp_embed[:, :3], a.bg_embed, a.visible[:, :3]))
    with pytest.raises(ValueError, match="embedding dim"):
        edit.render(G, a.replace(kp_embed=a.kp_embed[..., :4]))


# -------------------------------------------------------------------------------------------- measures
def test_move_locality_keys(G, lats):
    a, _ = lats
    m = move_locality(G, a, seed=1)
    assert 0 <= m["locality"] <= 1 and 0 < m["locality_chance"] < 1
    assert math.isclose(m["locality_ratio"], m["locality"] / m["locality_chance"])


def test_swap_keypoint_shift_known_answers(G, lats):
    a, b = lats
    seen = []

    def centroid(images):  # a toy detector: the intensity centroid, as one keypoint
        seen.append(images)
        w = images.sum(1)
        grid = torch.arange(32, dtype=torch.float32)
        x = (w.sum(1) * grid).sum(-1) / w.sum((1, 2))
        y = (w.sum(2) * grid).sum(-1) / w.sum((1, 2))
        return torch.stack((x, y), -1)[:, None]

    m = swap_keypoint_shift(G, a, b, centroid)
    imgs = seen[0]
    a2, b2 = edit.swap_embeddings(a, b)
    assert torch.allclose(imgs[6:9], edit.render(G, a2)) and torch.allclose(imgs[9:], edit.render(G, b2))
    kp = centroid(imgs).double()
    expect = torch.cat(((kp[6:9] - kp[:3]).norm(dim=-1), (kp[9:] - kp[3:6]).norm(dim=-1))).mean().item()
    assert math.isclose(m["swap_shift_px"], expect, rel_tol=1e-6) and m["swap_shift_px"] > 0
    assert math.isclose(m["pose_change_px"], (kp[3:6] - kp[:3]).norm(dim=-1).mean().item(), rel_tol=1e-6)
    still = swap_keypoint_shift(G, a, b, lambda im: torch.zeros(len(im), 2, 2), what="background")
    assert still["swap_shift_px"] == 0 and still["pose_change_px"] == 0
    with pytest.raises(ValueError, match="detect must return"):
        swap_keypoint_shift(G, a, b, lambda im: torch.zeros(len(im), 2))
    with pytest.raises(ValueError, match="what"):
        swap_keypoint_shift(G, a, b, centroid, what="pose")
