"""Issue 20's pose levers (off by default): the keypoints' initial layout (``model.kp_init_radius``), the pose
mapping network's learning rate (``train.lr_pose_scale``), a bound on the keypoints' spread
(``train.kp_spread_max``) and a floor on their mean configuration's width (``train.kp_minor_min``)."""

from __future__ import annotations

import pytest
import torch

import gan
from gan.generator import initial_keypoint_bias, sunflower
from gan.losses import configuration_minor_shortfall, keypoint_spread_excess
from gan.train import Trainer

OVER = {"train.sample_every": 1000, "train.checkpoint_every": 1000, "train.n_metric_pairs": 0}


def images(n=16, res=32):
    return torch.randint(0, 256, (n, 3, res, res), dtype=torch.uint8, generator=torch.Generator().manual_seed(1))


def test_sunflower_spreads_points_evenly_over_the_disc():
    p = sunflower(10, 0.3)
    r = p.norm(dim=-1)
    assert p.shape == (10, 2) and r.max() <= 0.3 and r.max() > 0.25 and r.min() < 0.1
    d = torch.cdist(p, p) + torch.eye(10)
    assert d.min() > 0.08  # no two close: a disc of radius 0.3 holds 10 points about 0.15 apart
    assert p.mean(0).norm() < 0.05  # centred
    assert torch.equal(initial_keypoint_bias(10, 0.0, 20.0), torch.zeros(20))


def test_keypoints_start_on_the_layout_and_only_the_pose_bias_differs():
    base = gan.get_config("tiny").model
    torch.manual_seed(0)
    g0 = gan.Generator(base)
    torch.manual_seed(0)
    g = gan.Generator(gan.get_config("tiny", {"model.kp_init_radius": 0.4}).model)
    zero = torch.zeros(1, base.z_dim)
    kp = g.map(zero, zero, zero).keypoints[0]  # a zero input reaches the output as its bias alone
    assert torch.allclose(kp, sunflower(base.n_keypoints, 0.4), atol=1e-5)
    assert torch.allclose(g0.map(zero, zero, zero).keypoints, torch.zeros(1, base.n_keypoints, 2))
    differ = [n for (n, p), q in zip(g.named_parameters(), g0.parameters()) if not torch.equal(p, q)]
    assert differ == [f"pose_mlp.{len(g.pose_mlp) - 1}.bias"]
    with pytest.raises(ValueError, match="kp_init_radius"):
        gan.get_config("tiny", {"model.kp_init_radius": 1.0})


def test_pose_network_learns_at_its_scale_of_the_learning_rate(tmp_path):
    steps = {}
    for scale in (1.0, 0.01):
        cfg = gan.get_config("tiny", {**OVER, "train.lr_pose_scale": scale, "train.gp_weight": 0.0})
        t = Trainer(cfg, images(), tmp_path / str(scale))
        before = {n: p.clone() for n, p in t.G.named_parameters()}
        t.train_step(t.real_batch())
        moved = {n: (p - before[n]).abs().max().item() for n, p in t.G.named_parameters()}
        steps[scale] = (max(v for n, v in moved.items() if n.startswith("pose_mlp")), moved["to_rgb.weight"])
    lr = gan.TrainConfig().lr_g  # Adam's first step moves each weight by about the learning rate
    assert steps[1.0][0] == pytest.approx(lr, rel=0.05) and steps[1.0][1] == pytest.approx(lr, rel=0.05)
    assert steps[0.01][0] == pytest.approx(0.01 * lr, rel=0.05) and steps[0.01][1] == pytest.approx(lr, rel=0.05)
    with pytest.raises(ValueError, match="lr_pose_scale"):
        gan.get_config("tiny", {"train.lr_pose_scale": 0.0})


def test_resume_takes_the_configured_learning_rates_and_refuses_another_optimiser_layout(tmp_path):
    cfg = gan.get_config("tiny", {**OVER, "train.lr_pose_scale": 0.1})
    Trainer(cfg, images(), tmp_path).fit(2, progress=False)
    faster = gan.get_config("tiny", {**OVER, "train.lr_pose_scale": 0.5, "train.lr_g": 2e-4})
    t = Trainer(faster, images(), tmp_path, resume=True)
    assert [g["lr"] for g in t.opt_g.param_groups] == [2e-4, 1e-4]  # not the checkpoint's 1e-4 and 1e-5
    with pytest.raises(gan.CheckpointError, match="lr_pose_scale"):
        Trainer(gan.get_config("tiny", OVER), images(), tmp_path, resume=True)


def test_keypoint_spread_excess_counts_only_the_spread_beyond_the_bound():
    kp = torch.zeros(4, 2, 2)
    kp[:, 0, 0] = torch.tensor([0.6, -0.6, 0.6, -0.6])  # keypoint 0: spread 0.6 = 0.3 of the side; keypoint 1 still
    assert keypoint_spread_excess(kp, 0.1).item() == pytest.approx((0.3 - 0.1) ** 2 / 2)
    assert keypoint_spread_excess(kp, 0.3).item() == pytest.approx(0.0, abs=1e-9)
    kp.requires_grad_(True)
    keypoint_spread_excess(kp, 0.1).backward()
    assert torch.all(kp.grad[:, 0, 0] * kp.detach()[:, 0, 0] > 0) and torch.all(kp.grad[:, 1] == 0)  # pulls inwards


def test_keypoint_spread_bound_pulls_the_keypoints_together_through_the_pose_network(tmp_path):
    over = {**OVER, "train.lr_g": 0.01}
    z = torch.randn(64, gan.get_config("tiny").model.z_dim, generator=torch.Generator().manual_seed(3))
    spreads = {}
    for name, extra in (("off", {}), ("on", {"train.kp_spread_max": 0.01, "train.kp_spread_weight": 1000.0})):
        torch.manual_seed(0)
        trainer = Trainer(gan.get_config("tiny", {**over, **extra}), images(), tmp_path / name)
        logs = [trainer.train_step(trainer.real_batch()) for _ in range(8)]
        assert ("kp_spread_excess" in logs[-1]) == (name == "on")
        with torch.no_grad():
            spreads[name] = trainer.G.map(z, z, z).keypoints.var(0).sum(-1).sqrt().mean().item()
    assert spreads["on"] < 0.85 * spreads["off"]  # 0.68 here
    with pytest.raises(ValueError, match="kp_spread_max"):
        gan.get_config("tiny", {"train.kp_spread_max": -0.1})


def test_minor_shortfall_measures_the_narrow_axis_of_the_mean_configuration():
    line = torch.zeros(3, 5, 2)
    line[:, :, 1] = torch.linspace(-0.4, 0.4, 5)  # a vertical chain: minor 0
    assert configuration_minor_shortfall(line, 0.05).item() == pytest.approx(0.05**2, rel=1e-3)
    square = torch.tensor([[-0.2, -0.2], [0.2, -0.2], [-0.2, 0.2], [0.2, 0.2]]).expand(3, 4, 2)
    assert configuration_minor_shortfall(square, 0.05).item() == pytest.approx(0.0, abs=1e-9)  # minor 0.1
    assert configuration_minor_shortfall(square, 0.15).item() == pytest.approx(0.05**2, rel=1e-3)
    rotated = square @ torch.tensor([[0.6, 0.8], [-0.8, 0.6]])  # a turned configuration: the same width
    assert configuration_minor_shortfall(rotated, 0.15).item() == pytest.approx(0.05**2, rel=1e-3)
    tilted = line.clone()
    tilted[:, :, 0] = torch.tensor([0.01, -0.01, 0.02, -0.02, 0.0])
    tilted.requires_grad_(True)
    configuration_minor_shortfall(tilted, 0.05).backward()
    assert torch.isfinite(tilted.grad).all()
    assert torch.all(tilted.grad[:, :, 0] * tilted.detach()[:, :, 0] <= 0)  # widens the chain sideways
    assert tilted.grad[:, :, 0].abs().sum() > 10 * tilted.grad[:, :, 1].abs().sum()


def test_minor_floor_widens_a_chain_through_the_pose_network(tmp_path):
    over = {**OVER, "train.lr_g": 0.01, "model.kp_init_radius": 0.0}
    z = torch.randn(64, gan.get_config("tiny").model.z_dim, generator=torch.Generator().manual_seed(3))
    minors = {}
    for name, extra in (("off", {}), ("on", {"train.kp_minor_min": 0.2, "train.kp_minor_weight": 1000.0})):
        torch.manual_seed(0)
        trainer = Trainer(gan.get_config("tiny", {**over, **extra}), images(), tmp_path / name)
        logs = [trainer.train_step(trainer.real_batch()) for _ in range(8)]
        assert ("kp_minor_shortfall" in logs[-1]) == (name == "on")
        with torch.no_grad():
            minors[name] = 0.2 - configuration_minor_shortfall(trainer.G.map(z, z, z).keypoints, 0.2).sqrt().item()
    assert minors["on"] > 1.5 * minors["off"]  # 2.0 here
    with pytest.raises(ValueError, match="kp_minor_min"):
        gan.get_config("tiny", {"train.kp_minor_min": 0.6})
