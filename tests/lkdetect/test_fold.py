"""Folding BatchNorm into convolutions for inference: same keypoints, no BatchNorm left, safe fallback."""

from __future__ import annotations

import logging

import torch
from torch import nn

from lkdetect import Detector
from lkdetect import network as network_module
from lkdetect.network import KeypointNet, fold_batchnorm, fold_for_inference
from lkdetect.weights import make_metadata


def trained_like_net() -> KeypointNet:
    """A small detector whose BatchNorms hold non-trivial statistics and affine parameters (as after training)."""
    torch.manual_seed(0)
    net = KeypointNet("mobilenetv3_small_100", 4, (32, 32), stride=8, upsample=2, head_channels=8, head_depth=1)
    g = torch.Generator().manual_seed(1)
    for m in net.modules():
        if isinstance(m, nn.BatchNorm2d):
            n = m.num_features
            m.running_mean.copy_(torch.randn(n, generator=g) * 0.3)
            m.running_var.copy_(torch.rand(n, generator=g) + 0.5)
            m.weight.data.copy_(torch.rand(n, generator=g) + 0.5)
            m.bias.data.copy_(torch.randn(n, generator=g) * 0.2)
    return net.eval()


def count_bn(module: nn.Module) -> int:
    return sum(isinstance(m, nn.BatchNorm2d) for m in module.modules())


def test_fold_keeps_outputs_and_removes_every_batchnorm() -> None:
    net = trained_like_net()
    before = count_bn(net)
    folded = fold_for_inference(net)
    assert folded is not net and count_bn(net) == before > 0  # the original is untouched
    assert count_bn(folded) == 0
    x = torch.rand(3, 3, 32, 32, generator=torch.Generator().manual_seed(2))
    with torch.inference_mode():
        (xy0, s0), (xy1, s1) = net(x), folded(x)
    assert torch.allclose(xy0, xy1, atol=1e-3) and torch.allclose(s0, s1, atol=1e-4)
    # activations of timm's BatchNormAct2d survive the fold (a fold that dropped them would change the output)
    assert any(isinstance(m, nn.Hardswish) for m in folded.modules())


def test_fold_falls_back_when_the_result_differs(monkeypatch, caplog) -> None:
    net = trained_like_net()

    def broken_fold(module: nn.Module) -> int:  # a fold whose pairing was wrong: perturbs one conv
        conv = next(m for m in module.modules() if isinstance(m, nn.Conv2d))
        conv.weight.data.mul_(3.0)
        return 1

    monkeypatch.setattr(network_module, "fold_batchnorm", broken_fold)
    with caplog.at_level(logging.WARNING):
        assert fold_for_inference(net) is net
    assert "unfolded" in caplog.text


def test_detector_folds_by_default_and_results_match() -> None:
    net = trained_like_net()
    meta = make_metadata(net)
    fast, plain = Detector(net, meta), Detector(net, meta, fold=False)
    assert count_bn(fast.network) == 0 and count_bn(plain.network) > 0
    images = torch.rand(4, 3, 40, 48, generator=torch.Generator().manual_seed(3))
    a, b = fast.detect_batch(images), plain.detect_batch(images)
    assert abs(a.xy - b.xy).max() < 1e-3 and abs(a.scores - b.scores).max() < 1e-4


def test_fold_batchnorm_pairs_only_conv_then_batchnorm() -> None:
    seq = nn.Sequential(nn.BatchNorm2d(4), nn.Conv2d(4, 4, 1), nn.ReLU(), nn.BatchNorm2d(4)).eval()
    assert fold_batchnorm(seq) == 0  # BN before the conv, and a BN after a ReLU: nothing to fold
    seq = nn.Sequential(nn.Conv2d(4, 6, 1), nn.Identity(), nn.BatchNorm2d(6)).eval()
    assert fold_batchnorm(seq) == 1 and count_bn(seq) == 0
