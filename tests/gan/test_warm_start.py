"""Issue 20's warm start: a new run takes the tensors of a generator weights file that fit (``train.init_generator``),
and D learns alone for ``train.d_warmup`` iterations before G moves."""

from __future__ import annotations

import json

import pytest
import torch

import gan
from gan.checkpoint import load_matching, save_generator
from gan.train import Trainer

OVER = {"train.sample_every": 1000, "train.checkpoint_every": 1000, "train.n_metric_pairs": 0}


def images(n=16, res=32):
    return torch.randint(0, 256, (n, 3, res, res), dtype=torch.uint8, generator=torch.Generator().manual_seed(1))


def weights_file(tmp_path, over=None, seed=5):
    torch.manual_seed(seed)
    g = gan.Generator(gan.get_config("tiny", over or {}).model)
    path = tmp_path / "source.safetensors"
    save_generator(path, g, {"step": 0})
    return g, path


def test_warm_start_from_the_same_model_takes_every_tensor(tmp_path):
    source, path = weights_file(tmp_path)
    t = Trainer(gan.get_config("tiny", {**OVER, "train.init_generator": str(path)}), images(), tmp_path / "run")
    for name, value in source.state_dict().items():
        assert torch.equal(t.G.state_dict()[name], value) and torch.equal(t.G_ema.state_dict()[name], value)
    warm = json.loads((tmp_path / "run" / "warm_start.json").read_text())
    assert warm["fresh"] == [] and warm["dropped"] == [] and len(warm["kept"]) == len(source.state_dict())
    assert warm["kept_share"] == 1 and len(warm["sha256"]) == 64
    cold = Trainer(gan.get_config("tiny", OVER), images(), tmp_path / "cold")
    assert not torch.equal(cold.G.to_rgb.weight, source.to_rgb.weight)  # so the copy above did something
    t.fit(2, progress=False)
    resumed = Trainer(t.cfg, images(), tmp_path / "run", resume=True)  # the checkpoint's G, not the file's again
    assert all(torch.equal(p, q) for p, q in zip(t.G.state_dict().values(), resumed.G.state_dict().values()))
    assert not torch.equal(resumed.G.to_rgb.weight, source.to_rgb.weight)


def test_warm_start_into_a_composite_background_keeps_only_the_new_parts_fresh(tmp_path):
    source, path = weights_file(tmp_path)
    composite = {"model.background": "composite", "model.bg_channels": (8, 8, 8, 8)}
    g = gan.Generator(gan.get_config("tiny", composite).model)
    fresh_bg = {k: v.clone() for k, v in g.state_dict().items() if k.startswith("bg_net") or k == "bg_const"}
    warm = load_matching(g, path)
    assert sorted(fresh_bg) == warm["fresh"] and warm["dropped"] == [] and 0.5 < warm["kept_share"] < 1
    for name, value in g.state_dict().items():
        assert torch.equal(value, fresh_bg[name] if name in fresh_bg else source.state_dict()[name])


def test_warm_start_takes_what_fits_and_refuses_a_file_of_which_nothing_fits(tmp_path):
    _, path = weights_file(tmp_path)
    g = gan.Generator(gan.get_config("tiny", {"model.embed_dim": 16}).model)
    partly = load_matching(g, path)  # the mapping of pose, the convolutions and to_rgb do not depend on D
    assert "pose_mlp.0.weight" in partly["kept"] and "to_rgb.weight" in partly["kept"]
    assert "part_const" in partly["fresh"] and "part_const" in partly["dropped"]
    other = {"model.n_keypoints": 3, "model.embed_dim": 16, "model.z_dim": 12, "model.g_channels": (12, 12, 6, 6)}
    with pytest.raises(gan.CheckpointError, match="less than 50%"):
        load_matching(gan.Generator(gan.get_config("tiny", other).model), path)
    with pytest.raises(gan.CheckpointError, match="not found"):
        Trainer(gan.get_config("tiny", {**OVER, "train.init_generator": str(tmp_path / "x")}), images(), tmp_path)


def test_d_warmup_trains_d_alone_first(tmp_path):
    cfg = gan.get_config("tiny", {**OVER, "train.d_warmup": 2, "train.gp_every": 2})
    t = Trainer(cfg, images(), tmp_path / "a")
    g0 = [p.clone() for p in t.G.parameters()]
    d0 = [p.clone() for p in t.D.parameters()]
    t.fit(2, progress=False)
    assert all(torch.equal(p, q) for p, q in zip(g0, t.G.parameters()))
    assert any(not torch.equal(p, q) for p, q in zip(d0, t.D.parameters()))
    t.fit(3, progress=False)
    assert any(not torch.equal(p, q) for p, q in zip(g0, t.G.parameters()))
    with pytest.raises(ValueError, match="d_warmup"):
        gan.get_config("tiny", {"train.d_warmup": -1})
