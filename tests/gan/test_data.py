import numpy as np
import pytest
from PIL import Image

from gan.data import DatasetError, cub_square_box, load_training_images


def test_folder_with_mixed_modes_and_a_corrupt_file(tmp_path):
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 255, (40, 50, 3), dtype=np.uint8)).save(tmp_path / "rgb.jpg")
    (tmp_path / "sub").mkdir()
    Image.fromarray(rng.integers(0, 255, (30, 30), dtype=np.uint8)).save(tmp_path / "sub" / "gray.png")
    Image.fromarray(rng.integers(0, 255, (30, 30, 4), dtype=np.uint8), "RGBA").save(tmp_path / "rgba.png")
    (tmp_path / "broken.jpg").write_bytes(b"this is not a jpeg")
    (tmp_path / "notes.txt").write_text("ignored")
    with pytest.warns(UserWarning, match="broken.jpg"):
        x = load_training_images(tmp_path, 32)
    assert x.shape == (3, 3, 32, 32) and x.dtype.is_floating_point is False
    gray = x[1]  # sorted: broken (skipped), rgb.jpg, rgba.png, sub/gray.png -> gray is last
    assert (x[2][0] == x[2][1]).all() and (x[2][1] == x[2][2]).all()
    assert not (gray[0] == gray[1]).all()


def test_empty_or_missing_folder(tmp_path):
    with pytest.raises(DatasetError, match="no images"):
        load_training_images(tmp_path, 32)
    with pytest.raises(DatasetError, match="does not exist"):
        load_training_images(tmp_path / "nope", 32)
    (tmp_path / "a.png").write_bytes(b"garbage")
    with pytest.warns(UserWarning), pytest.raises(DatasetError, match="could be read"):
        load_training_images(tmp_path, 32)


def test_mtfl_root_uses_training_list_only(tmp_path):
    rng = np.random.default_rng(0)
    (tmp_path / "lfw").mkdir()
    for name in ("a", "b", "c"):
        Image.fromarray(rng.integers(0, 255, (80, 80, 3), dtype=np.uint8)).save(tmp_path / "lfw" / f"{name}.jpg")
    coords = " ".join(["1.0"] * 10)
    (tmp_path / "training.txt").write_text(f"lfw\\a.jpg {coords} 1 2 2 3\nlfw/b.jpg {coords}\n")
    (tmp_path / "testing.txt").write_text(f"lfw/c.jpg {coords}\n")
    assert load_training_images(tmp_path, 32).shape[0] == 2


def test_cub_square_box_is_clipped():
    assert cub_square_box((10, 20, 40, 20), 100, 100) == (10, 10, 50, 50)
    assert cub_square_box((0, 0, 30, 10), 100, 100) == (0, 0, 30, 20)


def test_real_mtfl_loads(data_root):
    x = load_training_images(data_root / "mtfl80", 32)
    assert x.shape == (10000, 3, 32, 32)
    assert 40 < x.float().mean() < 200
