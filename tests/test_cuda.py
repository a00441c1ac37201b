"""GPU paths: GAN training, checkpoints moving between GPU and CPU, detection on CUDA. Skipped without CUDA."""

import pytest
import torch

from gan import get_config, load_generator
from gan.sampling import sample
from gan.train import Trainer

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


def images(n=16, res=32):
    g = torch.Generator().manual_seed(1)
    return torch.randint(0, 256, (n, 3, res, res), dtype=torch.uint8, generator=g)


@pytest.mark.parametrize("amp", ["off", "bf16"])
def test_gan_trains_on_cuda_and_resumes_on_cpu(tmp_path, amp):
    cfg = get_config(
        "tiny", {"train.checkpoint_every": 2, "train.sample_every": 2, "train.gp_every": 2, "train.amp": amp}
    )
    gpu = Trainer(cfg, images(), tmp_path, device="cuda")
    assert next(gpu.G.parameters()).is_cuda
    gpu.fit(4, progress=False)  # two snapshots (sample grid, diagnostics) and checkpoints on the GPU
    assert (tmp_path / "samples" / "latest.png").is_file()
    for p in gpu.G.parameters():
        assert torch.isfinite(p).all()

    cpu = Trainer(cfg, images(), tmp_path, resume=True, device="cpu")
    assert cpu.step == 4 and not next(cpu.G.parameters()).is_cuda
    cpu.fit(5, progress=False)  # optimiser state moved from the GPU to the CPU and steps there
    assert cpu.step == 5

    g, info = load_generator(tmp_path / "generator_ema.safetensors")
    assert info["step"] == 5
    on_cpu = sample(g, 8, seed=3)
    on_gpu = sample(g.cuda(), 8, seed=3)
    assert torch.allclose(on_cpu.keypoints, on_gpu.keypoints.cpu(), atol=1e-3)
    assert (on_cpu.images - on_gpu.images.cpu()).abs().max() < 2e-2


def test_detector_on_cuda_matches_cpu():
    from lkdetect import Detector

    g = torch.Generator().manual_seed(0)
    frames = [torch.randint(0, 256, (80, 80, 3), dtype=torch.uint8, generator=g).numpy() for _ in range(3)]
    cpu = Detector.load("faces").detect_batch(frames)
    gpu_det = Detector.load("faces", device="cuda")
    gpu = gpu_det.detect_batch(frames)
    for a, b in zip(cpu, gpu):
        assert abs(a.xy - b.xy).max() < 0.05 and abs(a.scores - b.scores).max() < 1e-2
    assert abs(gpu_det.detect(frames[0]).xy - cpu[0].xy).max() < 0.05


def test_detector_pairs_render_on_cuda(tmp_path):
    """train-detector --device cuda renders its GAN pairs on the GPU; they come back as the CPU's pairs."""
    from lkdetect.training.pairs import GanPairs

    cfg = get_config("tiny", {"train.checkpoint_every": 2, "train.sample_every": 100})
    Trainer(cfg, images(), tmp_path, device="cpu").fit(2, progress=False)
    path = tmp_path / "generator_ema.safetensors"
    cpu_images, cpu_kps = GanPairs(path).get(5, 0, 8)
    gpu = GanPairs(path, device="cuda")
    assert next(gpu.generator.parameters()).is_cuda
    gpu_images, gpu_kps = gpu.get(5, 0, 8)
    assert abs(gpu_kps - cpu_kps).max() < 1e-2
    assert abs(gpu_images.astype(int) - cpu_images.astype(int)).max() <= 6
