"""``train.kp_recon``: the keypoint reader (gan/reader.py) and how the trainer uses it (issue 20's drift)."""

from __future__ import annotations

import pytest
import torch

import gan
from gan.checkpoint import load_state, save_state
from gan.generator import Latents
from gan.keypoint_maps import grid2d
from gan.reader import KeypointReader, keypoint_reading_error
from gan.train import Trainer

OVER = {"train.sample_every": 1000, "train.checkpoint_every": 1000, "train.n_metric_pairs": 0}


def images(n=16, res=32):
    return torch.randint(0, 256, (n, 3, res, res), dtype=torch.uint8, generator=torch.Generator().manual_seed(1))


def blobs(keypoints: torch.Tensor, res: int = 32) -> torch.Tensor:
    """Images in [-1, 1] with one coloured blob per keypoint (channel k % 3), (B, 3, res, res)."""
    d2 = (grid2d(res)[None, None] - keypoints[:, :, None, None]).pow(2).sum(-1)  # (B, K, res, res)
    out = torch.zeros(keypoints.shape[0], 3, res, res)
    for k in range(keypoints.shape[1]):
        out[:, k % 3] += torch.exp(-d2[:, k] / 0.01)
    return out * 2 - 1


def latents(kp: torch.Tensor) -> Latents:
    n, k = kp.shape[:2]
    return Latents(kp, torch.zeros(n, k, 4), torch.zeros(n, 4), torch.ones(n, k))


def test_reader_learns_to_read_keypoints_drawn_where_they_are_and_not_ones_drawn_elsewhere():
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(0)
    test_kp = torch.rand(64, 3, 2, generator=g) * 1.4 - 0.7
    errors = {}
    for follow in (True, False):
        reader = KeypointReader(3, 32, width=8)
        opt = torch.optim.Adam(reader.parameters(), lr=3e-3)
        for _ in range(250 if follow else 100):  # reading what is not drawn converges fast: to the spread
            kp = torch.rand(16, 3, 2, generator=g) * 1.4 - 0.7
            drawn = kp if follow else torch.zeros_like(kp)  # an image that ignores its keypoints
            opt.zero_grad()
            keypoint_reading_error(reader, blobs(drawn), latents(kp)).backward()
            opt.step()
        with torch.no_grad():
            drawn = test_kp if follow else torch.zeros_like(test_kp)
            errors[follow] = keypoint_reading_error(reader, blobs(drawn), latents(test_kp)).item() * 16  # px at 32
    assert errors[True] < 2.0 and errors[False] > 3 * errors[True]  # unreadable keypoints: about their spread


def test_reading_error_counts_visible_keypoints_only_and_rejects_bad_sizes():
    reader = KeypointReader(2, 16, width=4)
    x = torch.zeros(2, 3, 16, 16)
    lat = latents(torch.zeros(2, 2, 2))
    read = reader(x)
    assert read.shape == (2, 2, 2) and read.abs().max() <= 1
    far = lat.replace(keypoints=torch.tensor([[[0.0, 0.0], [5.0, 5.0]]] * 2), visible=torch.tensor([[1.0, 0.0]] * 2))
    near = lat.replace(keypoints=torch.zeros(2, 2, 2), visible=far.visible)
    assert torch.equal(keypoint_reading_error(reader, x, far), keypoint_reading_error(reader, x, near))
    with pytest.raises(ValueError, match="resolution"):
        KeypointReader(2, 30)


def test_keypoint_reading_trains_the_renderer_and_the_reader_never_the_latents(tmp_path):
    t = Trainer(gan.get_config("tiny", {**OVER, "train.kp_recon": 1.0}), images(), tmp_path)
    g = t.G
    lat = g.map(*torch.randn(3, 4, g.cfg.z_dim))
    before = [p.clone() for p in t.reader.parameters()]
    loss = t._keypoint_reading(lat, None)
    assert any(not torch.equal(p, q) for p, q in zip(before, t.reader.parameters()))  # the reader took its step
    assert all(p.requires_grad for p in t.reader.parameters())
    mapping = [*g.pose_mlp.parameters(), *g.app_mlp.parameters(), *g.bg_mlp.parameters(), g.part_const]
    grads = torch.autograd.grad(loss, [*mapping, g.to_rgb.weight, *t.reader.parameters()], allow_unused=True)
    assert all(x is None for x in grads[: len(mapping)])  # no way into the latents
    assert grads[len(mapping)] is not None and grads[len(mapping)].abs().sum() > 0  # the renderer learns
    assert all(x is None for x in grads[len(mapping) + 1 :])  # the reader is frozen in G's term


def test_keypoint_reading_acts_on_its_steps_only_and_is_logged(tmp_path):
    torch.manual_seed(0)
    cfg = gan.get_config("tiny", {**OVER, "train.kp_recon": 2.0, "train.kp_recon_every": 2})
    on = Trainer(cfg, images(), tmp_path / "on")
    off = Trainer(gan.get_config("tiny", OVER), images(), tmp_path / "off")
    assert off.reader is None
    logged = []
    for _ in range(3):
        state = on.rng.get_state()
        real = on.real_batch()
        off.rng.set_state(state)
        off.real_batch()
        logged.append(on.train_step(real)["kp_reading_px"])
        assert "kp_reading_px" not in off.train_step(real)
    assert logged[0] == logged[1] != logged[2] and logged[0] > 0  # due at steps 0 and 2
    assert any(not torch.equal(p, q) for p, q in zip(on.G.parameters(), off.G.parameters()))
    for bad in ({"train.kp_recon": -1.0}, {"train.kp_recon_every": 0}):
        with pytest.raises(ValueError, match="kp_recon"):
            gan.get_config("tiny", bad)


def test_a_run_without_a_reader_resumes_with_a_new_one_and_checkpoints_it(tmp_path, caplog):
    # bit-identical resumes with the reader: test_levers.py::test_training_with_random_levers_resumes_bit_identically
    cfg = gan.get_config("tiny", {**OVER, "train.kp_recon": 1.0, "train.kp_recon_every": 1})
    Trainer(gan.get_config("tiny", OVER), images(), tmp_path / "c").fit(2, progress=False)  # written without a reader
    state = load_state(tmp_path / "c" / "checkpoint.pt")
    del state["config"]["train"]["kp_recon"], state["config"]["train"]["kp_recon_every"]  # as before the option
    save_state(tmp_path / "c" / "checkpoint.pt", state)
    with caplog.at_level("WARNING"):
        late = Trainer(cfg, images(), tmp_path / "c", resume=True)
    assert late.step == 2 and "no keypoint reader" in caplog.text
    late.fit(3, progress=False)
    assert "reader" in load_state(tmp_path / "c" / "checkpoint.pt")


def test_mixed_reading_renders_the_keypoints_with_other_samples_embeddings(tmp_path):
    cfg = gan.get_config("tiny", {**OVER, "train.kp_recon": 1.0, "train.kp_recon_mix": True})
    t = Trainer(cfg, images(), tmp_path)
    lat = t.G.map(*torch.randn(3, 4, t.G.cfg.z_dim))
    seen = []
    render = t.G.render
    t.G.render = lambda lat_, bg=None: seen.append(lat_) or render(lat_, bg)
    t._keypoint_reading(lat, None)
    (mixed,) = seen
    assert torch.equal(mixed.keypoints, lat.keypoints) and torch.equal(mixed.visible, lat.visible)
    assert torch.equal(mixed.kp_embed, lat.kp_embed.roll(1, 0)) and torch.equal(mixed.bg_embed, lat.bg_embed.roll(2, 0))
