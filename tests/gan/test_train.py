"""Training loop: exact resume, atomic checkpoints, refusing to clobber or mix runs."""

import copy
import json
import logging

import pytest
import torch

from gan import get_config, load_generator
from gan.checkpoint import CheckpointError, load_state
from gan.train import Trainer


def images(n=16, res=32):
    g = torch.Generator().manual_seed(1)
    return torch.randint(0, 256, (n, 3, res, res), dtype=torch.uint8, generator=g)


def test_resume_is_bit_identical(tmp_path):
    cfg = get_config("tiny", {"train.checkpoint_every": 1000, "train.sample_every": 1000, "train.gp_every": 2})
    straight = Trainer(cfg, images(), tmp_path / "a")
    straight.fit(6, progress=False)

    half = Trainer(cfg, images(), tmp_path / "b")
    half.fit(3, progress=False)
    resumed = Trainer(cfg, images(), tmp_path / "b", resume=True)
    assert resumed.step == 3
    resumed.fit(6, progress=False)

    for (name, p), q in zip(straight.G.state_dict().items(), resumed.G.state_dict().values()):
        assert torch.equal(p, q), name
    for p, q in zip(straight.D.state_dict().values(), resumed.D.state_dict().values()):
        assert torch.equal(p, q)
    for p, q in zip(straight.G_ema.state_dict().values(), resumed.G_ema.state_dict().values()):
        assert torch.equal(p, q)


def test_run_directory_contents_and_release_weights(tmp_path):
    cfg = get_config("tiny")
    t = Trainer(cfg, images(), tmp_path)
    t.fit(10, progress=False)
    assert json.loads((tmp_path / "config.json").read_text()) == json.loads(json.dumps(cfg.to_dict()))
    lines = [json.loads(x) for x in (tmp_path / "stats.jsonl").read_text().splitlines()]
    assert any("loss_d" in r for r in lines) and any("diag" in r for r in lines)
    diag = next(r["diag"] for r in lines if "diag" in r)
    assert len(diag["kp_spread"]) == cfg.model.n_keypoints and 0 <= diag["kp_central"] <= 1
    assert (tmp_path / "samples" / "latest.png").is_file()
    g, info = load_generator(tmp_path / "generator_ema.safetensors")
    assert info["step"] == 10
    for p, q in zip(g.state_dict().values(), t.G_ema.state_dict().values()):
        assert torch.equal(p, q)
    # the EMA moved away from G's initial weights but is not G itself
    assert not all(torch.equal(p, q) for p, q in zip(g.state_dict().values(), t.G.state_dict().values()))


def test_keep_every_keeps_the_ema_weights_of_those_snapshots(tmp_path):
    t = Trainer(get_config("tiny", {"train.sample_every": 2, "train.keep_every": 4}), images(), tmp_path)
    t.fit(9, progress=False)
    kept = sorted(p.name for p in (tmp_path / "snapshots").iterdir())
    assert kept == ["step_0000004.safetensors", "step_0000008.safetensors"]
    g, info = load_generator(tmp_path / "snapshots" / kept[-1])
    assert info["step"] == 8 and info["images_seen"] == 8 * t.cfg.train.batch_size
    Trainer(get_config("tiny", {"train.sample_every": 2}), images(), tmp_path / "off").fit(4, progress=False)
    assert not (tmp_path / "off" / "snapshots").exists()
    with pytest.raises(ValueError, match="keep_every"):
        get_config("tiny", {"train.sample_every": 2, "train.keep_every": 3})


def test_existing_run_is_not_overwritten_and_other_config_refused(tmp_path):
    cfg = get_config("tiny")
    Trainer(cfg, images(), tmp_path).fit(2, progress=False)
    before = (tmp_path / "checkpoint.pt").read_bytes()
    with pytest.raises(CheckpointError, match="--resume"):
        Trainer(cfg, images(), tmp_path)
    other = get_config("tiny", {"model.n_keypoints": 5})
    with pytest.raises(CheckpointError, match="n_keypoints"):
        Trainer(other, images(), tmp_path, resume=True)
    assert (tmp_path / "checkpoint.pt").read_bytes() == before
    with pytest.raises(CheckpointError, match="does not exist"):
        Trainer(cfg, images(), tmp_path / "fresh", resume=True)


def test_corrupt_checkpoint_is_a_clear_error(tmp_path):
    (tmp_path / "checkpoint.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="cannot read"):
        load_state(tmp_path / "checkpoint.pt")


def test_wrong_image_tensor_is_rejected(tmp_path):
    with pytest.raises(ValueError, match="uint8"):
        Trainer(get_config("tiny"), torch.zeros(4, 3, 64, 64, dtype=torch.uint8), tmp_path)


def test_losses_are_finite_and_gp_is_logged(tmp_path):
    cfg = get_config("tiny", {"train.gp_every": 1})
    t = Trainer(cfg, images(), tmp_path)
    out = t.train_step(t.real_batch())
    assert set(out) >= {"loss_g", "loss_d", "gp"} and all(torch.isfinite(torch.tensor(v)) for v in out.values())


def test_release_writes_weights_grid_and_card(tmp_path):
    from gan.release import release

    t = Trainer(get_config("tiny"), images(), tmp_path / "run")
    t.fit(4, progress=False)
    w = release(tmp_path / "run", "toy", "random pixels", out=tmp_path / "weights")
    g, info = load_generator(w)
    assert info["step"] == 4 and info["training_data"] == "random pixels" and len(info["source_sha256"]) == 64
    assert (tmp_path / "weights" / "toy_gan_samples.png").is_file()
    card = (tmp_path / "weights" / "toy_gan.md").read_text()
    assert "| iterations | 4 " in card and "locality" in card and "- layout (" in card and "- extent (" in card
    m = info["metrics"]
    assert m["pairs"] == 128 and 0 <= m["app_share_region"] <= 1.5 and "cpd" in m and "cpd_matrix" in m
    assert f"| all keypoint embeddings | {m['app_share_region']:.2f} |" in card and "CPD" in card


def test_release_with_real_images_stores_the_realism_measure(tmp_path):
    from PIL import Image

    from gan.release import release

    for i, x in enumerate(images(12)):
        Image.fromarray(x.permute(1, 2, 0).numpy()).save(tmp_path / f"{i}.png")
    Trainer(get_config("tiny", {"train.sample_every": 1000}), images(), tmp_path / "run").fit(2, progress=False)
    w = release(tmp_path / "run", "toy", "random pixels", out=tmp_path / "w", real=tmp_path, n_pairs=4, realism_n=8)
    m = load_generator(w)[1]["metrics"]
    assert m["pairs"] == 4 and m["realism_n"] == 8 and m["realism_real_n"] == 8 and m["realism_data"] == str(tmp_path)
    assert 0.5 <= m["c2st_acc"] <= 1 and "two-sample classifier accuracy" in (tmp_path / "w" / "toy_gan.md").read_text()


def test_snapshot_logs_the_label_free_metrics(tmp_path):
    cfg = get_config("tiny", {"train.n_metric_pairs": 3, "train.n_realism": 6, "train.sample_every": 2})
    Trainer(cfg, images(), tmp_path).fit(2, progress=False)
    rec = next(json.loads(x) for x in (tmp_path / "stats.jsonl").read_text().splitlines() if "metrics" in x)
    m = rec["metrics"]
    assert rec["step"] == 2 and m["pairs"] == 3 and "cpd_matrix" not in m and 0 <= m["bg_share_region"] <= 1.5
    assert m["realism_n"] == 6 and 0.5 <= m["c2st_acc"] <= 1 and "kid_x1000" in m
    off = get_config("tiny", {"train.n_metric_pairs": 0, "train.sample_every": 2})
    Trainer(off, images(), tmp_path / "off").fit(2, progress=False)
    assert "metrics" not in (tmp_path / "off" / "stats.jsonl").read_text()


def test_resume_drops_a_torn_last_stats_line(tmp_path, caplog):
    cfg = get_config("tiny", {"train.checkpoint_every": 1000, "train.sample_every": 1000})
    Trainer(cfg, images(), tmp_path).fit(3, progress=False)
    stats = tmp_path / "stats.jsonl"
    good = stats.read_text()
    stats.write_text(good + '{"time": 0.1, "step": 4, "images"')  # killed during the write
    with caplog.at_level(logging.WARNING, logger="gan.stats"):
        t = Trainer(cfg, images(), tmp_path, resume=True)
    assert "torn last line" in caplog.text and str(stats) in caplog.text
    assert stats.read_text() == good
    t.fit(4, progress=False)
    assert [json.loads(x)["step"] for x in stats.read_text().splitlines()][-1] == 4


def test_resume_names_a_corrupt_stats_line_in_the_middle(tmp_path):
    cfg = get_config("tiny", {"train.checkpoint_every": 1000, "train.sample_every": 1000})
    Trainer(cfg, images(), tmp_path).fit(3, progress=False)
    stats = tmp_path / "stats.jsonl"
    lines = stats.read_text().splitlines()
    stats.write_text("\n".join([lines[0], "{not json", *lines[1:]]) + "\n")
    with pytest.raises(CheckpointError, match=r"stats.jsonl:2 is not a JSON line"):
        Trainer(cfg, images(), tmp_path, resume=True)


# step 0 also runs the lazy gradient penalty; "saturated": D rejects every fake with a logit near -100, where
# d loss_d / d logit underflows in float32 and the second pass through D must be taken instead.
@pytest.mark.parametrize("step, saturated", [(1, False), (0, False), (1, True)])
def test_train_step_gradients_match_the_textbook_step(tmp_path, step, saturated):
    """train_step reuses D's forward pass on the fakes for the D step (and, without the penalty, one backward for
    both); its gradients must equal the plain order: G loss through a frozen D, then D on [reals, detached
    fakes] (+ penalty)."""
    from gan.losses import d_logistic_loss, g_nonsaturating_loss, gradient_penalty

    cfg = get_config("tiny")
    t = Trainer(cfg, images(), tmp_path)
    t.step = step
    if saturated:
        with torch.no_grad():
            t.D.head[-1].bias.fill_(-100.0)
    real = t.real_batch()
    rng = torch.Generator().set_state(t.rng.get_state())
    g0, d0 = copy.deepcopy(t.G), copy.deepcopy(t.D)
    t.train_step(real)

    z = torch.randn(3, real.shape[0], cfg.model.z_dim, generator=rng)
    fake, _ = g0(*z)
    d0.requires_grad_(False)
    g_nonsaturating_loss(d0(fake)).backward()
    d0.requires_grad_(True)
    real_ref = real.detach().requires_grad_(step % cfg.train.gp_every == 0)
    logits = d0(torch.cat((real_ref, fake.detach())))
    loss = d_logistic_loss(logits[: len(real)], logits[len(real) :])
    if real_ref.requires_grad:
        loss = loss + gradient_penalty(logits[: len(real)], real_ref) * (cfg.train.gp_weight / 2 * cfg.train.gp_every)
    loss.backward()
    for ref, got in ((g0, t.G), (d0, t.D)):
        for (name, p_ref), p in zip(ref.named_parameters(), got.parameters()):
            if p_ref.grad is None:
                assert p.grad is None or not p.grad.any(), name
                continue
            assert torch.allclose(p.grad, p_ref.grad, rtol=1e-4, atol=1e-6), name
