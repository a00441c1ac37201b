"""Issue 20 part 2 options (off by default): normalised part masks, SPADE hidden layers at low resolutions only,
DiffAugment of D's inputs, the background path (composited, shifted, or kept out of low resolutions), the
equivariance penalty, and old checkpoints resuming under the new options' defaults."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

import gan
from gan.checkpoint import load_state, save_state
from gan.diffaug import cutout, diff_augment, parse_policy, translation
from gan.edit import add_part
from gan.generator import SPADE, BackgroundNet, Latents, shift_images
from gan.keypoint_maps import gaussian_heatmaps, grid2d, normalised_part_masks
from gan.losses import equivariance_loss
from gan.train import Trainer


def images(n=16, res=32):
    return torch.randint(0, 256, (n, 3, res, res), dtype=torch.uint8, generator=torch.Generator().manual_seed(1))


def test_defaults_are_todays_model():
    m = gan.ModelConfig()
    assert (m.part_masks, m.spade_wide_until, gan.TrainConfig().diffaug) == ("gaussian", 0, "")
    assert (m.background, m.bg_min_resolution, gan.TrainConfig().bg_shift) == ("shared", 0, 0.0)
    assert gan.TrainConfig().equivariance_whole_pixels is False and m.bg_upsample == "nearest"
    assert (gan.TrainConfig().init_generator, gan.TrainConfig().d_warmup) == ("", 0) and m.mask_refine == 0
    assert not hasattr(gan.Generator(gan.get_config("tiny").model), "bg_net")


@pytest.mark.parametrize("masks", ["gaussian", "normalised"])
def test_composite_background_draws_only_through_the_background_map(masks):
    over = {"model.background": "composite", "model.bg_channels": (8, 8, 8, 8), "model.part_masks": masks}
    torch.manual_seed(0)
    g = gan.Generator(gan.get_config("tiny", over).model).eval()
    x, lat = g(*torch.randn(3, 2, g.cfg.z_dim))
    other = lat.replace(bg_embed=torch.randn_like(lat.bg_embed), kp_embed=torch.randn_like(lat.kp_embed))
    bg_map = g.conditioning(lat, 32).maps[:, -1:]
    with torch.no_grad():
        new_bg = g.render(lat.replace(bg_embed=other.bg_embed))
        new_parts = g.render(lat.replace(kp_embed=other.kp_embed))
        # exactly the background net's change, weighted by the background map
        expected = bg_map * (g.bg_net(other.bg_embed) - g.bg_net(lat.bg_embed))
        assert torch.allclose(new_bg - x, expected, atol=1e-5) and (new_bg - x).abs().max() > 1e-3
        # the parts change nothing where the background map is 1, and something where it is not
        assert ((new_parts - x).abs() <= 2 * (1 - bg_map) + 1e-5).all() and (new_parts - x).abs().max() > 1e-3
    with pytest.raises(ValueError, match="bg_channels"):
        gan.get_config("tiny", {"model.background": "composite"})  # the default widths are for 64 px


def test_refined_mask_starts_as_the_keypoints_own_and_learns_a_bounded_move():
    over = {"model.background": "composite", "model.bg_channels": (8, 8, 8, 8), "model.part_masks": "normalised"}
    torch.manual_seed(0)
    plain = gan.Generator(gan.get_config("tiny", over).model).eval()
    torch.manual_seed(0)
    g = gan.Generator(gan.get_config("tiny", {**over, "model.mask_refine": 3.0}).model).eval()
    assert g.to_rgb.out_channels == 4 and plain.to_rgb.out_channels == 3
    state = {n: t for n, t in plain.state_dict().items() if not n.startswith("to_rgb.")}
    g.load_state_dict(state, strict=False)  # same weights but the zero-initialised 4th channel, which changes nothing
    with torch.no_grad():
        g.to_rgb.weight[:3].copy_(plain.to_rgb.weight)
        g.to_rgb.bias[:3].copy_(plain.to_rgb.bias)
    z = torch.randn(3, 2, g.cfg.z_dim)
    x0, _ = plain(*z)
    x1, _ = g(*z)
    assert torch.allclose(x0, x1, atol=1e-5)
    # the 4th channel gets a gradient through the blend
    x1, _ = g.train()(*z)
    grad = torch.autograd.grad(x1.square().sum(), g.to_rgb.weight)[0]
    assert grad[3].abs().sum() > 0
    # the parts may lower the mask's logit by at most mask_refine, and never raise it: a pixel the keypoints give
    # to the background stays mostly background, and the background cannot take the parts' pixels
    bg_map = torch.tensor([0.5, 0.99, 0.01]).view(1, 1, 1, 3)
    for raw, move in ((1e3, 0.0), (-1e3, -3.0), (-0.5, 3.0 * math.tanh(-0.5))):
        moved = torch.logit(g.refine_mask(bg_map, torch.full_like(bg_map, raw))) - torch.logit(bg_map)
        assert torch.allclose(moved, torch.full_like(moved, move), atol=1e-3)
    with pytest.raises(ValueError, match="mask_refine"):
        gan.get_config("tiny", {"model.mask_refine": 3.0})  # the shared background has no mask to refine
    with pytest.raises(ValueError, match="mask_refine"):
        gan.get_config("tiny", {**over, "model.mask_refine": -1.0})


def test_composite_background_drawn_at_low_resolution_is_upsampled_and_smooth():
    over = {"model.background": "composite", "model.bg_channels": (8, 8)}  # 4 -> 8 px, then up to 32 px
    torch.manual_seed(0)
    g = gan.Generator(gan.get_config("tiny", over).model).eval()
    w = torch.randn(2, g.cfg.embed_dim)
    with torch.no_grad():
        bg = g.bg_net(w)
        x, _ = g(*torch.randn(3, 2, g.cfg.z_dim))
    assert bg.shape == (2, 3, 32, 32) and x.shape == (2, 3, 32, 32)
    net = g.bg_net  # the same net by hand: an 8 px image, bilinearly up-sampled
    with torch.no_grad():
        h = F.leaky_relu(net.fc(w).view(2, 8, 4, 4), 0.2)
        h = F.leaky_relu(net.convs[0](F.interpolate(h, scale_factor=2, mode="nearest")), 0.2)
        low = torch.tanh(net.to_rgb(h))
    assert low.shape == (2, 3, 8, 8)
    assert torch.allclose(bg, F.interpolate(low, size=(32, 32), mode="bilinear", align_corners=False), atol=1e-6)


def test_shift_images_translates_each_image_by_its_offset():
    ramp = torch.linspace(-1, 1, 64).view(1, 1, 1, 64).expand(3, 1, 64, 64)  # x coordinate of each pixel centre
    offsets = torch.tensor([[0.0, 0.0], [0.125, 0.0], [-0.0625, 0.25]])  # 0, +8 and -4 px along x
    inner = (shift_images(ramp, offsets) - ramp)[:, :, 20:44, 20:44]  # away from the reflected border
    step = 2 / 63  # ramp units per pixel
    for moved, px in zip(inner, (0, 8, -4)):
        assert torch.allclose(moved, torch.full_like(moved, -px * step), atol=1e-4)  # content moves right by px
    up = torch.linspace(-1, 1, 64).view(1, 1, 64, 1).expand(1, 1, 64, 64)  # y coordinate
    assert torch.allclose((shift_images(up, torch.tensor([[0.0, 0.125]])) - up)[..., 20:44, :], torch.tensor(-8 * step))


@pytest.mark.parametrize("mode", ["nearest", "bilinear"])
def test_background_net_upsampling(mode):
    # identity convolutions: the output is tanh(LeakyReLU(up(4 x 4 start))), so the up-sampling shows through
    net = BackgroundNet(4, (3, 3), 8, upsample=mode)
    w = torch.randn(5, 4, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        for conv in (net.convs[0], net.to_rgb):
            conv.weight.zero_()
            conv.bias.zero_()
            conv.weight[:, :, 1, 1] = torch.eye(3)
        out = net(w)
        start = F.leaky_relu(net.fc(w).view(5, 3, 4, 4), 0.2)
    up = F.interpolate(start, scale_factor=2, mode=mode, **({} if mode == "nearest" else {"align_corners": False}))
    assert out.shape == (5, 3, 8, 8) and torch.allclose(out, torch.tanh(F.leaky_relu(up, 0.2)), atol=1e-6)
    blocks = torch.equal(out[..., 0::2, :], out[..., 1::2, :]) and torch.equal(out[..., 0::2], out[..., 1::2])
    assert blocks == (mode == "nearest")  # nearest: constant 2 x 2 blocks; bilinear: none
    with pytest.raises(ValueError, match="upsample"):
        BackgroundNet(4, (3, 3), 8, upsample="bicubic")
    with pytest.raises(ValueError, match="bg_upsample"):
        gan.get_config("tiny", {"model.bg_upsample": "bicubic"})


def test_bg_shift_moves_the_composite_background_in_training_only(tmp_path):
    over = {"model.background": "composite", "model.bg_channels": (8, 8, 8, 8), "model.part_masks": "normalised"}
    torch.manual_seed(0)
    g = gan.Generator(gan.get_config("tiny", over).model).eval()
    lat = g.map(*torch.randn(3, 4, g.cfg.z_dim))
    bg_map = g.conditioning(lat, 32).maps[:, -1:]
    offsets = torch.tensor([[0.1, -0.2], [0.0, 0.0], [-0.3, 0.05], [0.2, 0.2]])
    with torch.no_grad():
        x, shifted = g.render(lat), g.render(lat, offsets)
        expected = bg_map * (shift_images(g.bg_net(lat.bg_embed), offsets) - g.bg_net(lat.bg_embed))
        with torch.autocast("cpu", dtype=torch.bfloat16):  # train.amp: grid_sample runs in float32
            assert g.render(lat, offsets).shape == x.shape
    assert torch.allclose(shifted - x, expected, atol=1e-5)  # only the background moves, through its map
    assert (shifted - x)[0].abs().max() > 1e-3 and (shifted - x)[1].abs().max() < 1e-5
    with pytest.raises(ValueError, match="composite"):
        gan.Generator(gan.get_config("tiny").model).render(lat, offsets)
    # the trainer draws offsets within the bound from its own generator, and none when off
    trainer = Trainer(gan.get_config("tiny", {**over, "train.bg_shift": 0.2}), images(), tmp_path / "on")
    drawn = trainer._bg_offsets(4096)
    assert drawn.shape == (4096, 2) and drawn.abs().max() <= 0.2 and drawn.abs().max() > 0.19
    assert Trainer(gan.get_config("tiny", over), images(), tmp_path / "off")._bg_offsets(4) is None
    for bad in ({**over, "train.bg_shift": 0.6}, {"train.bg_shift": 0.1}):
        with pytest.raises(ValueError, match="bg_shift"):
            gan.get_config("tiny", bad)


def test_bg_min_resolution_keeps_the_background_embedding_out_of_low_resolutions():
    torch.manual_seed(0)
    g = gan.Generator(gan.get_config("tiny", {"model.bg_min_resolution": 16}).model).eval()  # 4, 8, 16, 32 px
    x, lat = g(*torch.randn(3, 2, g.cfg.z_dim))
    for size, uses_bg in ((4, False), (8, False), (16, True), (32, True)):
        row = g.conditioning(lat, size).embeds[:, -1]
        assert torch.equal(row, lat.bg_embed) == uses_bg
        assert torch.equal(row, g.bg_const.expand_as(row)) != uses_bg
    never = gan.Generator(gan.get_config("tiny", {"model.bg_min_resolution": 64}).model).eval()
    y, lat = never(*torch.randn(3, 2, g.cfg.z_dim))
    with torch.no_grad():  # a generator that never sees its background embedding ignores it
        assert torch.equal(never.render(lat.replace(bg_embed=torch.randn_like(lat.bg_embed))), y)


def test_normalised_masks_share_every_pixel_and_follow_the_nearest_keypoint():
    kp = torch.tensor([[[-0.5, 0.0], [0.5, 0.0]]])
    heat = gaussian_heatmaps(kp, 16, 0.025)
    masks = normalised_part_masks(heat, 0.1)
    assert masks.shape == (1, 3, 16, 16)
    assert torch.allclose(masks.sum(1), torch.ones(1, 16, 16))
    # pixel (row 8, col 3) is near keypoint 0: its part owns it; a corner belongs to the background
    assert masks[0, 0, 8, 3] > 0.8 and masks[0, 2, 0, 0] > 0.99
    # a part owns more area than the Gaussian disc it is built from (H > 0.5)
    assert (masks[0, 0] > 0.5).sum() > (heat[0, 0] > 0.5).sum()


def test_generator_with_normalised_masks_renders_and_removed_parts_change_it():
    cfg = gan.get_config("tiny", {"model.part_masks": "normalised"}).model
    torch.manual_seed(0)
    g = gan.Generator(cfg).eval()
    x, lat = g(*torch.randn(3, 2, cfg.z_dim))
    assert x.shape == (2, 3, 32, 32) and torch.isfinite(x).all()
    cond = g.conditioning(lat, 8)
    assert torch.allclose(cond.maps.sum(1), torch.ones(2, 8, 8), atol=1e-6)
    gone = g.render(gan.edit.remove_parts(lat, 0))
    assert (gone - x).abs().max() > 1e-4


def test_spade_hidden_layer_only_at_low_resolutions():
    over = {"model.spade_hidden": 8, "model.spade_kernel": 3, "model.spade_wide_until": 8}
    g = gan.Generator(gan.get_config("tiny", over).model)  # tiny: resolutions 4, 8, 16, 32
    wide = [not b.spade1.factorised for b in g.blocks]
    assert wide == [True, True, False, False]
    assert g.blocks[0].spade1.branch[0].kernel_size == (3, 3) and g.blocks[3].spade1.branch.kernel_size == (1, 1)
    assert all(isinstance(b.spade1, SPADE) for b in g.blocks)
    x, _ = g(*torch.randn(3, 2, g.cfg.z_dim))
    assert torch.isfinite(x).all()
    everywhere = gan.Generator(gan.get_config("tiny", {**over, "model.spade_wide_until": 0}).model)
    assert all(not b.spade1.factorised for b in everywhere.blocks)


def test_diffaug_is_differentiable_seeded_and_does_what_it_says():
    x = torch.randn(4, 3, 16, 16, requires_grad=True)
    y1 = diff_augment(x, "color,translation,cutout", torch.Generator().manual_seed(0))
    y2 = diff_augment(x, "color,translation,cutout", torch.Generator().manual_seed(0))
    assert torch.equal(y1, y2) and y1.shape == x.shape
    (g,) = torch.autograd.grad(y1.sum(), x)
    assert torch.isfinite(g).all() and g.abs().sum() > 0
    assert diff_augment(x, "", torch.Generator()) is x
    # translation moves content by whole pixels, zeros coming in; cutout zeroes a quarter of the image
    ones = torch.ones(8, 1, 16, 16)
    t = translation(ones, torch.Generator().manual_seed(1))
    assert set(t.unique().tolist()) <= {0.0, 1.0} and (t.sum((1, 2, 3)) >= 14 * 14).all()
    c = cutout(ones, torch.Generator().manual_seed(1))
    assert ((c == 0).sum((1, 2, 3)) <= 64).all() and (c == 0).any()
    with pytest.raises(ValueError, match="unknown DiffAugment"):
        parse_policy("colour")
    with pytest.raises(ValueError, match="train.diffaug"):
        gan.get_config("tiny", {"train.diffaug": "flip"})


@pytest.mark.parametrize(
    "lever",
    [
        {"train.diffaug": "color,translation,cutout"},
        {"model.background": "composite", "model.bg_channels": (8, 8, 8, 8), "train.bg_shift": 0.2},
        {"model.background": "composite", "model.bg_channels": (8, 8, 8, 8), "model.bg_upsample": "bilinear"},
        {"train.equivariance": 1.0, "train.equivariance_every": 2, "train.equivariance_scale": 0.1},
        {"train.lr_pose_scale": 0.1, "model.kp_init_radius": 0.3, "train.kp_recon": 1.0, "train.kp_recon_every": 2},
        {"train.kp_spread_max": 0.01, "model.app_min_resolution": 16, "train.kp_minor_min": 0.1},
        {"train.d_warmup": 3},
    ],
    ids=["diffaug", "bg_shift", "bg_upsample", "equivariance", "pose", "spread", "d_warmup"],
)
def test_training_with_random_levers_resumes_bit_identically(tmp_path, lever):
    over = {**lever, "train.gp_every": 2, "train.n_metric_pairs": 0}
    cfg = gan.get_config("tiny", {**over, "train.checkpoint_every": 1000, "train.sample_every": 1000})
    straight = Trainer(cfg, images(), tmp_path / "a")
    straight.fit(4, progress=False)
    half = Trainer(cfg, images(), tmp_path / "b")
    half.fit(2, progress=False)
    resumed = Trainer(cfg, images(), tmp_path / "b", resume=True)
    resumed.fit(4, progress=False)
    for p, q in zip(straight.G.state_dict().values(), resumed.G.state_dict().values()):
        assert torch.equal(p, q)
    if "train.diffaug" in lever:
        real = straight.real_batch()
        assert straight._augment(real).shape == real.shape and not torch.equal(straight._augment(real), real)


def test_checkpoint_without_the_new_model_options_still_resumes(tmp_path):
    cfg = gan.get_config("tiny", {"train.sample_every": 1000})
    Trainer(cfg, images(), tmp_path).fit(2, progress=False)
    state = load_state(tmp_path / "checkpoint.pt")
    model_keys = ("part_masks", "mask_bg_level", "spade_wide_until", "background", "bg_channels", "bg_min_resolution")
    model_keys = (*model_keys, "bg_upsample")
    for key in (*model_keys, "kp_init_radius", "app_min_resolution"):
        del state["config"]["model"][key]  # as written before these options existed
    train_keys = ("bg_shift", "equivariance", "equivariance_shift", "equivariance_scale", "equivariance_every")
    new_keys = ("kp_recon", "kp_recon_every", "lr_pose_scale", "kp_spread_max", "kp_spread_weight", "keep_every")
    new_keys = (*new_keys, "kp_minor_min", "kp_minor_weight", "init_generator", "d_warmup")
    for key in (*train_keys, *new_keys):
        del state["config"]["train"][key]
    save_state(tmp_path / "checkpoint.pt", state)
    assert Trainer(cfg, images(), tmp_path, resume=True).step == 2
    other = gan.get_config("tiny", {"train.sample_every": 1000, "model.part_masks": "normalised"})
    with pytest.raises(gan.CheckpointError, match="part_masks"):
        Trainer(other, images(), tmp_path, resume=True)


class BlobGenerator:
    """A stand-in generator that draws a Gaussian blob at each keypoint (``follow``) or at fixed places (not)."""

    def __init__(self, follow: bool, background: str = "shared"):
        self.cfg = gan.ModelConfig(background=background)
        self.follow, self.bg_seen = follow, []

    def render(self, lat, bg_offset=None, bg_scale=None):
        self.bg_seen.append((bg_offset, bg_scale))
        centres = lat.keypoints if self.follow else torch.zeros_like(lat.keypoints)
        d2 = (grid2d(32)[None, None] - centres[:, :, None, None]).pow(2).sum(-1)  # (B, K, 32, 32)
        return torch.exp(-d2 / 0.05).sum(1, keepdim=True).expand(-1, 3, -1, -1) * 2 - 1


def blob_latents(n=4, k=3):
    kp = torch.rand(n, k, 2, generator=torch.Generator().manual_seed(0)) - 0.5
    return Latents(kp, torch.zeros(n, k, 8), torch.zeros(n, 8), torch.ones(n, k))


def test_equivariance_loss_is_near_zero_only_where_the_image_follows_its_keypoints():
    lat = blob_latents()
    offsets = torch.tensor([[0.1, 0.0], [0.0, -0.1], [0.0625, 0.0625], [-0.125, 0.03125]])
    scales = torch.tensor([1.0, 1.2, 0.8, 1.1])
    follows, fixed = BlobGenerator(True), BlobGenerator(False)
    loss_follow = equivariance_loss(follows, lat, follows.render(lat), offsets)
    loss_fixed = equivariance_loss(fixed, lat, fixed.render(lat), offsets)
    assert loss_follow < 0.02 < 0.1 < loss_fixed  # bilinear resampling of the target leaves a small residue
    # zoomed too: blobs at the keypoints pay only for their size, which does not zoom; fixed blobs pay for more
    zoomed = [equivariance_loss(g, lat, g.render(lat), offsets, scales) for g in (follows, fixed)]
    assert 3 * zoomed[0] < zoomed[1]
    assert equivariance_loss(fixed, lat, fixed.render(lat), torch.zeros(4, 2)) == 0
    # blobs whose size does not scale: a zoom alone costs something, and more for larger zooms
    zoom = [
        equivariance_loss(follows, lat, follows.render(lat), torch.zeros(4, 2), torch.full((4,), z)) for z in (1.1, 1.3)
    ]
    assert 0 < zoom[0] < zoom[1]
    assert follows.bg_seen[-1] == (None, None)  # a shared background is drawn from the keypoints: nothing to move
    composite = BlobGenerator(True, "composite")
    bg = torch.full((4, 2), 0.01)
    equivariance_loss(composite, lat, composite.render(lat), offsets, scales, bg_offset=bg)
    seen_offset, seen_scale = composite.bg_seen[-1]  # the background moves with the keypoints: s (p + 2 b) + 2 t
    assert torch.allclose(seen_offset, bg * scales[:, None] + offsets) and torch.equal(seen_scale, scales)
    with pytest.raises(ValueError, match="nothing to compare"):
        equivariance_loss(follows, lat, follows.render(lat), torch.full((4, 2), 1.0))


def test_shift_images_zooms_about_the_centre_then_translates():
    x = grid2d(64).permute(2, 0, 1)[None].repeat(2, 1, 1, 1)  # channel 0 = x, channel 1 = y at each pixel
    out = shift_images(x, torch.tensor([[0.0, 0.0], [0.1, -0.05]]), torch.tensor([2.0, 0.5]))
    q = grid2d(64).permute(2, 0, 1)
    inner = (slice(None), slice(24, 40), slice(24, 40))  # content from inside the image in both
    assert torch.allclose(out[0][inner], q[inner] / 2, atol=1e-5)  # content at p is now at 2 p: shows q / 2
    shift = torch.tensor([0.2, -0.1])[:, None, None]
    assert torch.allclose(out[1][inner], ((q - shift) / 0.5)[inner], atol=1e-5)


def test_whole_pixel_moves_resample_nothing_sub_pixel_moves_blur():
    x = torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(3)) * 2 - 1
    whole = shift_images(x, torch.tensor([[3 / 32, 0.0], [-2 / 32, 5 / 32]]))
    assert torch.allclose(whole[0, :, :, 3:], x[0, :, :, :-3], atol=1e-5)  # content moved right by 3 px, exactly
    assert torch.allclose(whole[1, :, 5:, :-2], x[1, :, :-5, 2:], atol=1e-5)  # ... left 2 px, down 5 px

    def detail(im):  # energy of the finest scale: the image minus its 2 x 2 box average
        return (im - F.avg_pool2d(F.pad(im, (0, 1, 0, 1), mode="replicate"), 2, stride=1)).square().mean()

    half = shift_images(x, torch.tensor([[3.5 / 32, 0.0], [-2.5 / 32, 5.5 / 32]]))
    assert detail(half) < 0.75 * detail(x) and abs(detail(whole) - detail(x)) < 0.1 * detail(x)


def test_equivariance_whole_pixels_rounds_the_trainers_offsets(tmp_path, monkeypatch):
    import gan.train as train_module

    seen = []

    def spy(generator, lat, image, offsets, scales=None, bg_offset=None):
        seen.append(offsets.clone())
        return equivariance_loss(generator, lat, image, offsets, scales, bg_offset)

    monkeypatch.setattr(train_module, "equivariance_loss", spy)
    over = {"train.sample_every": 1000, "train.checkpoint_every": 1000, "train.n_metric_pairs": 0}
    for whole in (False, True):
        torch.manual_seed(0)
        cfg = gan.get_config("tiny", {**over, "train.equivariance": 1.0, "train.equivariance_whole_pixels": whole})
        trainer = Trainer(cfg, images(), tmp_path / str(whole))
        trainer.train_step(trainer.real_batch())
    side = gan.get_config("tiny").model.resolution
    continuous, rounded = seen
    assert not torch.equal(continuous * side, torch.round(continuous * side))
    assert torch.equal(rounded, torch.round(continuous * side) / side)  # the same draw, rounded: the stream is kept


def test_equivariance_penalty_trains_the_renderer_not_the_latents():
    torch.manual_seed(0)
    g = gan.Generator(gan.get_config("tiny").model)
    image, lat = g(*torch.randn(3, 2, g.cfg.z_dim))
    loss = equivariance_loss(g, lat, image, torch.tensor([[0.1, 0.0], [0.0, 0.1]]), torch.tensor([1.1, 0.9]))
    mapping = [*g.pose_mlp.parameters(), *g.app_mlp.parameters(), *g.bg_mlp.parameters()]
    grads = torch.autograd.grad(loss, [*mapping, g.to_rgb.weight, image], allow_unused=True)
    assert all(x is None for x in grads[: len(mapping)]) and grads[-1] is None  # no way into latents or image
    assert grads[-2] is not None and grads[-2].abs().sum() > 0  # the renderer learns


def test_equivariance_penalty_trains_g_on_its_steps_only(tmp_path):
    over = {"train.sample_every": 1000, "train.checkpoint_every": 1000, "train.n_metric_pairs": 0}
    torch.manual_seed(0)
    on = Trainer(
        gan.get_config("tiny", {**over, "train.equivariance": 5.0, "train.equivariance_every": 2}),
        images(),
        tmp_path / "on",
    )
    off = Trainer(gan.get_config("tiny", over), images(), tmp_path / "off")
    due, logged = [], []
    for _ in range(3):
        state = on.rng.get_state()
        real = on.real_batch()
        off.rng.set_state(state)  # the same reals and noise for both
        assert torch.equal(off.real_batch(), real)
        before = on.last_equivariance
        logged.append(on.train_step(real)["equivariance"])
        due.append(logged[-1] != before)  # None before the first
        assert "equivariance" not in off.train_step(real)
    assert due == [True, False, True] and logged[1] == logged[0] > 0  # steps 0 and 2; step 1 logs step 0's value
    assert any(not torch.equal(p, q) for p, q in zip(on.G.parameters(), off.G.parameters()))
    bad_values = ({"train.equivariance": -1.0}, {"train.equivariance_shift": 0.3}, {"train.equivariance_scale": -0.1})
    for bad in (*bad_values, {"train.equivariance_every": 0}):
        with pytest.raises(ValueError, match="equivariance"):
            gan.get_config("tiny", bad)


def test_app_min_resolution_keeps_the_appearance_out_of_low_resolutions():
    torch.manual_seed(0)
    g = gan.Generator(gan.get_config("tiny", {"model.app_min_resolution": 16}).model).eval()  # 4, 8, 16, 32 px
    x, lat = g(*torch.randn(3, 2, g.cfg.z_dim))
    for size, uses_app in ((4, False), (8, False), (16, True), (32, True)):
        rows = g.conditioning(lat, size).embeds[:, :-1]
        assert torch.equal(rows, lat.kp_embed) == uses_app
        assert torch.equal(rows, g.part_const.expand_as(rows)) != uses_app
    with torch.no_grad():  # appearance still changes the image (at 16 and 32 px)
        assert not torch.allclose(g.render(lat.replace(kp_embed=torch.randn_like(lat.kp_embed))), x)
    never = gan.Generator(gan.get_config("tiny", {"model.app_min_resolution": 64}).model).eval()
    y, lat = never(*torch.randn(3, 2, g.cfg.z_dim))
    with torch.no_grad():  # a generator that never sees its part embeddings ignores them, added parts included
        assert torch.equal(never.render(lat.replace(kp_embed=torch.randn_like(lat.kp_embed))), y)
        added = add_part(lat, 2, (0.3, -0.2))
        assert torch.equal(never.part_identities(added)[:, -1], never.part_const[2].expand(2, -1))
    with pytest.raises(ValueError, match="app_min_resolution"):
        gan.get_config("tiny", {"model.app_min_resolution": -1})
