import pytest
import torch

from gan import Generator, get_config, load_generator, sample, save_generator
from gan.checkpoint import CheckpointError, atomic_write


def test_release_weights_round_trip(tmp_path):
    g = Generator(get_config("tiny").model).eval()
    save_generator(tmp_path / "g.safetensors", g, {"data": "test"})
    g2, info = load_generator(tmp_path / "g.safetensors")
    assert info == {"data": "test"}
    contiguous = sample(g, 3).images
    assert g2.to_rgb.weight.is_contiguous(memory_format=torch.channels_last)  # loaded in its fast layout
    assert torch.allclose(sample(g2, 3).images, contiguous, atol=1e-5)
    g.to(memory_format=torch.channels_last)
    assert torch.equal(sample(g, 3).images, sample(g2, 3).images)  # same layout: the same bits


def test_bad_weights_files(tmp_path):
    with pytest.raises(CheckpointError, match="not found"):
        load_generator(tmp_path / "missing.safetensors")
    (tmp_path / "junk.safetensors").write_bytes(b"\x00" * 64)
    with pytest.raises(CheckpointError, match="safetensors"):
        load_generator(tmp_path / "junk.safetensors")
    from safetensors.torch import save_file

    save_file({"x": torch.zeros(2)}, str(tmp_path / "other.safetensors"), metadata={"format": "something-else"})
    with pytest.raises(CheckpointError, match="format"):
        load_generator(tmp_path / "other.safetensors")


def test_mismatched_tensors_raise(tmp_path):
    g = Generator(get_config("tiny").model)
    save_generator(tmp_path / "g.safetensors", g)
    from safetensors.torch import load_file, safe_open, save_file

    with safe_open(str(tmp_path / "g.safetensors"), framework="pt") as f:
        meta = f.metadata()
    tensors = load_file(str(tmp_path / "g.safetensors"))
    tensors["part_const"] = torch.zeros(7, 3)
    save_file(tensors, str(tmp_path / "bad.safetensors"), metadata=meta)
    with pytest.raises(CheckpointError, match="wrong shape"):
        load_generator(tmp_path / "bad.safetensors")


def test_atomic_write_keeps_old_file_when_writing_fails(tmp_path):
    target = tmp_path / "f.bin"
    target.write_bytes(b"old")

    def broken(tmp):
        with open(tmp, "wb") as f:
            f.write(b"half")
        raise RuntimeError("killed")

    with pytest.raises(RuntimeError):
        atomic_write(target, broken)
    assert target.read_bytes() == b"old"
    assert list(tmp_path.iterdir()) == [target]
