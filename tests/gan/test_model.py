import math

import torch

from gan import Generator, get_config, sample
from gan.discriminator import Discriminator
from gan.generator import Latents


def tiny_g(**over) -> Generator:
    torch.manual_seed(0)
    return Generator(get_config("tiny", over).model).eval()


def test_shapes_and_ranges():
    cfg = get_config("tiny")
    g, d = tiny_g(), Discriminator(cfg.model)
    z = torch.randn(3, 5, cfg.model.z_dim)
    img, lat = g(*z)
    assert img.shape == (5, 3, 32, 32) and img.abs().max() <= 1
    assert lat.keypoints.shape == (5, cfg.model.n_keypoints, 2)
    assert lat.kp_embed.shape == (5, cfg.model.n_keypoints, cfg.model.embed_dim)
    assert d(img).shape == (5,)


def test_concat_conditioning_and_paper_spade_build_and_run():
    g = tiny_g(**{"model.conditioning": "concat", "model.spade_hidden": 8, "model.spade_kernel": 3})
    img, _ = g(*torch.randn(3, 2, 16))
    assert img.shape == (2, 3, 32, 32) and torch.isfinite(img).all()


def test_keypoints_start_near_centre():
    """tanh(MLP(z) / 20): a fresh generator puts keypoints near the centre, not at the borders."""
    g = tiny_g()
    kp = g.map(*torch.randn(3, 64, 16)).keypoints
    assert kp.abs().max() < 0.5


def test_every_parameter_gets_a_finite_gradient():
    cfg = get_config("tiny")
    g, d = tiny_g(), Discriminator(cfg.model)
    img, _ = g(*torch.randn(3, 4, 16))
    d(img).sum().backward()
    for name, p in list(g.named_parameters()) + list(d.named_parameters()):
        assert p.grad is not None, name
        assert torch.isfinite(p.grad).all(), name
        assert p.grad.abs().sum() > 0, name


def test_sampling_is_deterministic_and_batch_independent():
    g = tiny_g()
    a, b = sample(g, 6, seed=3), sample(g, 6, seed=3)
    assert torch.equal(a.images, b.images) and torch.equal(a.keypoints, b.keypoints)
    alone = sample(g, 1, seed=3, start=4)
    assert torch.allclose(alone.images[0], a.images[4], atol=1e-5)
    assert torch.allclose(alone.keypoints[0], a.keypoints[4], atol=1e-6)
    small_batches = sample(g, 6, seed=3, batch_size=4)
    assert torch.allclose(small_batches.images, a.images, atol=1e-5)
    other = sample(g, 6, seed=4)
    assert not torch.allclose(other.images, a.images)
    # keypoints are returned in pixels of the R x R image
    assert torch.allclose(a.keypoints, (a.latents.keypoints + 1) * 16 - 0.5)


def test_removed_part_changes_image_only_through_its_heatmap():
    g = tiny_g()
    lat = g.map(*torch.randn(3, 1, 16))
    vis = lat.visible.clone()
    vis[0, 1] = 0
    with torch.no_grad():
        a, b = g.render(lat), g.render(lat.replace(visible=vis))
    assert not torch.allclose(a, b)
    assert isinstance(Latents.cat([lat, lat]), Latents)


def test_discriminator_residual_scale():
    d = Discriminator(get_config("tiny").model)
    x = torch.randn(8, 3, 32, 32)
    out = d(x)
    assert torch.isfinite(out).all() and out.std() < 100 * math.sqrt(8)
