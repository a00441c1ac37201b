"""The detector network: soft-argmax maths, confidence, gradients, backbone truncation."""

from __future__ import annotations

import pytest
import torch

from lkdetect.network import Backbone, KeypointNet, heatmap_cross_entropy, soft_argmax


def gaussian_logits(h: int, w: int, centres_cells: list[tuple[float, float]], sigma: float = 1.0) -> torch.Tensor:
    """(1, K, h, w) log of Gaussians at (x, y) heatmap-cell positions (cell centres at integers)."""
    gy, gx = torch.meshgrid(torch.arange(h, dtype=torch.float64), torch.arange(w, dtype=torch.float64), indexing="ij")
    maps = [-((gx - x) ** 2 + (gy - y) ** 2) / (2 * sigma**2) for x, y in centres_cells]
    return torch.stack(maps)[None]


@pytest.mark.parametrize("hw,input_hw", [((16, 16), (64, 64)), ((8, 12), (32, 96)), ((16, 16), (16, 16))])
def test_render_then_soft_argmax_round_trip(hw, input_hw):
    h, w = hw
    cells = [(3.25, h / 2 - 0.5), (w - 4.0, h / 2 - 0.75), (w / 2, 4.1)]
    xy, scores, prob = soft_argmax(gaussian_logits(h, w, cells, sigma=0.8), input_hw)
    sx, sy = input_hw[1] / w, input_hw[0] / h
    expected = torch.tensor([[(x + 0.5) * sx - 0.5, (y + 0.5) * sy - 0.5] for x, y in cells], dtype=torch.float64)
    assert torch.allclose(xy[0], expected, atol=0.01)  # Gaussians inside the map: expectation = centre
    assert torch.allclose(prob.sum((-1, -2)), torch.ones(1, 3, dtype=torch.float64))
    assert (scores > 0.6).all() and (scores <= 1).all()


def test_confidence_sharp_versus_flat_versus_bimodal():
    sharp = gaussian_logits(16, 16, [(8, 8)], sigma=0.5) * 1.0
    flat = torch.zeros(1, 1, 16, 16)
    two = torch.logsumexp(
        torch.cat([gaussian_logits(16, 16, [(2, 2)], 0.5), gaussian_logits(16, 16, [(13, 13)], 0.5)], 1),
        dim=1,
        keepdim=True,
    )
    s_sharp = soft_argmax(sharp, (64, 64))[1].item()
    s_flat = soft_argmax(flat, (64, 64))[1].item()
    s_two = soft_argmax(two, (64, 64))[1].item()
    assert s_sharp > 0.99
    assert s_flat == pytest.approx(4 / 256, abs=1e-6)  # the mean falls between 4 cells, all within 1.5 cells
    assert s_two < 0.01  # the mean lies between the two modes, where there is no mass


def test_soft_argmax_gradcheck():
    logits = torch.randn(1, 2, 5, 6, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda t: soft_argmax(t, (20, 24))[0], (logits,))


def test_heatmap_cross_entropy_is_smallest_at_the_target():
    target = torch.tensor([[[5.0, 9.0]]])
    at = heatmap_cross_entropy(gaussian_logits(16, 16, [(5, 9)]).float(), target, sigma=1.0)
    off = heatmap_cross_entropy(gaussian_logits(16, 16, [(8, 4)]).float(), target, sigma=1.0)
    assert at < off
    weight = torch.zeros(1, 1)
    assert heatmap_cross_entropy(gaussian_logits(16, 16, [(8, 4)]).float(), target, 1.0, weight=weight) == 0


def test_network_shapes_range_and_finite_gradients():
    net = KeypointNet(
        "mobilenetv3_small_100",
        num_keypoints=5,
        input_size=(32, 32),
        stride=8,
        upsample=2,
        head_channels=8,
        head_depth=1,
    )
    assert net.heatmap_stride == 4
    x = torch.rand(3, 3, 32, 32)
    assert net.heatmap_logits(x).shape == (3, 5, 8, 8)
    xy, scores = net(x)
    assert xy.shape == (3, 5, 2) and scores.shape == (3, 5)
    assert (xy >= -0.5).all() and (xy <= 31.5).all()  # an expectation over cell centres inside the image
    assert ((scores >= 0) & (scores <= 1)).all()
    (xy.sum() + net.heatmap_logits(x).square().mean()).backward()
    for name, p in net.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name


def test_normalisation_is_inside_the_network():
    net = KeypointNet(
        "mobilenetv3_small_100",
        2,
        (32, 32),
        stride=8,
        upsample=2,
        head_channels=8,
        head_depth=1,
        mean=(0.5, 0.5, 0.5),
        std=(0.25, 0.25, 0.25),
    ).eval()
    assert net.normalization() == {"mean": [0.5] * 3, "std": [0.25] * 3}
    assert "mean" not in net.state_dict()  # comes from metadata, not from the tensors


def test_backbone_stride_and_errors():
    b = Backbone("resnet18", 8)
    assert b.channels == 128 and b(torch.rand(1, 3, 64, 64)).shape == (1, 128, 8, 8)
    assert sum(p.numel() for p in b.model.layer3.parameters()) == 0  # later stages pruned
    with pytest.raises(ValueError, match="output strides"):
        Backbone("resnet18", 3)
    with pytest.raises(ValueError, match="unknown timm backbone"):
        Backbone("no_such_net_xyz", 8)
    with pytest.raises(ValueError, match="upsample"):
        KeypointNet("resnet18", 2, stride=8, upsample=3)


def test_network_keys_agree_with_the_network_and_the_training_config():
    """NETWORK_KEYS is the one list: the network's config, build_network and the training config follow it."""
    import dataclasses

    from lkdetect.network import NETWORK_KEYS, build_network
    from lkdetect.training.config import NetworkConfig, get_config, network_kwargs

    assert NETWORK_KEYS == (
        "backbone",
        "num_keypoints",
        "input_size",
        "stride",
        "head_channels",
        "head_depth",
        "upsample",
        "temperature",
        "confidence_radius",
    )  # the order of the weights' metadata
    assert {f.name for f in dataclasses.fields(NetworkConfig)} == set(NETWORK_KEYS) - {"num_keypoints"}
    kwargs = network_kwargs(get_config("tiny", {"network.head_channels": 8}), 3, 32)
    assert tuple(kwargs) == NETWORK_KEYS and kwargs["head_channels"] == 8 and kwargs["input_size"] == (32, 32)
    net = KeypointNet(**kwargs)
    assert tuple(net.config) == NETWORK_KEYS
    assert build_network(net.config).config == net.config
    with pytest.raises(KeyError, match="unknown network keys"):
        build_network({**net.config, "width": 2})
