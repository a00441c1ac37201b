import math

import pytest
import torch
import torch.nn.functional as F

from gan.config import get_config
from gan.generator import SPADE, Conditioning, InstanceNormNHWC, Modulate, SPADEResBlock, is_channels_last
from gan.keypoint_maps import (
    background_map,
    conditioning_map,
    gaussian_heatmaps,
    grid2d,
    keypoint_offsets,
    to_normalized,
    to_pixels,
)


def test_grid_pixel_centres():
    g = grid2d(4)
    assert g.shape == (4, 4, 2)
    assert torch.allclose(g[0, :, 0], torch.tensor([-0.75, -0.25, 0.25, 0.75]))
    assert torch.allclose(to_pixels(g, 4)[1, 2], torch.tensor([2.0, 1.0]))  # (x, y) of row 1, column 2


def test_pixel_round_trip():
    xy = torch.rand(5, 3, 2) * 2 - 1
    assert torch.allclose(to_normalized(to_pixels(xy, 64), 64), xy, atol=1e-6)


def test_heatmap_peak_at_keypoint_and_matches_formula():
    kp = torch.tensor([[[to_normalized(torch.tensor(5.0), 16).item(), to_normalized(torch.tensor(9.0), 16).item()]]])
    h = gaussian_heatmaps(kp, 16, tau=0.02)
    assert h.shape == (1, 1, 16, 16)
    assert divmod(h.flatten().argmax().item(), 16) == (9, 5)  # row y=9, column x=5
    assert torch.isclose(h[0, 0, 9, 5], torch.tensor(1.0))
    g = grid2d(16)
    direct = torch.exp(-((g - kp[0, 0]) ** 2).sum(-1) / 0.02)
    assert torch.allclose(h[0, 0], direct, atol=1e-6)


def test_heatmap_gradcheck():
    kp = (torch.rand(2, 3, 2, dtype=torch.double) * 1.6 - 0.8).requires_grad_()
    assert torch.autograd.gradcheck(lambda k: gaussian_heatmaps(k, 6, 0.05), (kp,))
    tau = torch.full((2, 3), 0.05, dtype=torch.double, requires_grad=True)
    assert torch.autograd.gradcheck(lambda t: gaussian_heatmaps(kp.detach(), 6, t), (tau,))


def test_conditioning_sum_and_concat():
    b, k, d, s = 2, 3, 4, 8
    heat = torch.rand(b, k, s, s)
    w, wb = torch.randn(b, k, d), torch.randn(b, d)
    c = conditioning_map(heat, w, wb, "sum")
    expected = (
        sum(heat[:, i, None] * w[:, i, :, None, None] for i in range(k)) + background_map(heat) * wb[..., None, None]
    )
    assert torch.allclose(c, expected, atol=1e-5)
    cc = conditioning_map(heat, w, wb, "concat")
    assert cc.shape == (b, (k + 1) * d, s, s)
    assert torch.allclose(cc.view(b, k + 1, d, s, s).sum(1), c, atol=1e-5)


def test_factorised_spade_equals_dense_conditioning_map():
    """The cheap SPADE path is the paper's 1x1 conv on the conditioning map, computed in another order."""
    spade = SPADE(channels=6, cond_channels=5)
    maps, embeds = torch.rand(2, 4, 8, 8), torch.randn(2, 4, 5)
    cond = Conditioning(maps, embeds, "sum")
    assert spade.factorised
    scale, shift = spade.scale_shift(cond)
    assert torch.allclose(torch.cat((scale - 1, shift), dim=1), spade.branch(cond.dense()), atol=1e-5)


def test_keypoint_offsets_layout():
    kp = torch.tensor([[[0.25, -0.5]]])
    off = keypoint_offsets(kp, 4)
    g = grid2d(4)
    assert off.shape == (1, 2, 4, 4)
    assert torch.allclose(off[0, 0], g[..., 0] - 0.25) and torch.allclose(off[0, 1], g[..., 1] + 0.5)


def test_presets_resolve():
    for name in ("tiny", "cpu64", "paper128"):
        cfg = get_config(name)
        assert cfg.model.resolution in (32, 64, 128)


def test_block_upsamples_inside_as_if_upsampled_before():
    """Normalising and the 1x1 shortcut at the low resolution equal the textbook order (up-sample first)."""
    torch.manual_seed(0)
    block = SPADEResBlock(6, 4, cond_channels=5, hidden=0, kernel=1)
    x = torch.randn(2, 6, 8, 8) * 3 + 1
    cond = Conditioning(torch.rand(2, 4, 16, 16), torch.randn(2, 4, 5), "sum")
    up = F.interpolate(x, scale_factor=2, mode="nearest")
    scale, shift = block.spade1.scale_shift(cond)
    h = block.conv1(F.leaky_relu(F.instance_norm(up, eps=1e-5) * scale + shift, 0.2))
    scale, shift = block.spade2.scale_shift(cond)
    h = block.conv2(F.leaky_relu(F.instance_norm(h, eps=1e-5) * scale + shift, 0.2))
    expected = (h + block.shortcut(up)) / math.sqrt(2)
    assert torch.allclose(block(x, cond, upsample=True), expected, atol=1e-5)


@pytest.mark.parametrize("size", [8, 32])  # both branches: small maps (manual) and group norm's kernel
def test_channels_last_instance_norm_matches_and_gradchecks(size):
    x = (torch.randn(2, 3, size, size, dtype=torch.double) * 3 + 1).contiguous(memory_format=torch.channels_last)
    y = InstanceNormNHWC.apply(x, 1e-5)
    assert y.is_contiguous(memory_format=torch.channels_last)
    assert torch.allclose(y, F.instance_norm(x, eps=1e-5), atol=1e-10)
    if size == 8:  # gradcheck is slow on 32 x 32 maps in double
        assert torch.autograd.gradcheck(lambda t: InstanceNormNHWC.apply(t, 1e-5), (x.requires_grad_(),))
    else:
        xr, xc = x.clone().requires_grad_(), x.contiguous().requires_grad_()
        g = torch.randn_like(xc)
        (a,) = torch.autograd.grad(InstanceNormNHWC.apply(xr, 1e-5), xr, g)
        (b,) = torch.autograd.grad(F.instance_norm(xc, eps=1e-5), xc, g)
        assert torch.allclose(a, b, atol=1e-10)


def test_modulate_gradchecks():
    args = [torch.randn(2, 3, 4, 4, dtype=torch.double, requires_grad=True) for _ in range(3)]
    assert torch.allclose(Modulate.apply(*args), args[0] * args[1] + args[2])
    assert torch.autograd.gradcheck(Modulate.apply, args)


def test_channels_last_block_equals_contiguous_block():
    """The channels-last path (own norm, bias on a constant map) computes what the NCHW path computes, and keeps
    channels-last order through the block; gradients agree too."""
    torch.manual_seed(0)
    block = SPADEResBlock(6, 4, cond_channels=5, hidden=0, kernel=1)
    x = torch.randn(2, 6, 8, 8) * 3 + 1
    maps, embeds = torch.rand(2, 4, 16, 16, requires_grad=True), torch.randn(2, 4, 5, requires_grad=True)
    outs, grads = [], []
    for fmt in (torch.contiguous_format, torch.channels_last):
        xi = x.contiguous(memory_format=fmt).requires_grad_()
        y = block(xi, Conditioning(maps, embeds, "sum"), upsample=True)
        outs.append(y)
        grads.append(torch.autograd.grad(y.square().sum(), [xi, maps, embeds, *block.parameters()]))
    assert is_channels_last(outs[1]) and not is_channels_last(outs[0])
    assert torch.allclose(outs[0], outs[1], atol=1e-5)
    # conv1's bias feeds an instance norm: its true gradient is 0 and both paths give float32 rounding noise of
    # about 1e-6 of the block's largest gradient (2e-4 here), so the absolute tolerance scales with that.
    atol = 1e-6 * max(g.abs().max().item() for g in grads[0])
    for a, b in zip(*grads):
        assert torch.allclose(a, b, atol=atol, rtol=1e-4)
