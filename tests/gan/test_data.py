from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from gan.data import DatasetError, cub_square_box, data_record, load_training_images, load_training_sets


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


def solid_folder(folder: Path, colours: list[int], size: int = 20) -> Path:
    """One PNG per grey level in ``colours`` (named 0.png, 1.png, ... so the folder's order is the list's)."""
    folder.mkdir(parents=True)
    for i, c in enumerate(colours):
        Image.fromarray(np.full((size, size, 3), c, np.uint8)).save(folder / f"{i}.png")
    return folder


def tiny_cub(root: Path, per_class: int = 4) -> Path:
    """A CUB_200_2011 layout with classes 1 and 2 (grey 60 and 120), every other image in the training split; the
    box is the whole image."""
    cub = root / "CUB_200_2011"
    lines: dict[str, list[str]] = {"images": [], "boxes": [], "split": [], "labels": []}
    image_id = 0
    for c, grey in ((1, 60), (2, 120)):
        for j in range(per_class):
            image_id += 1
            rel = f"{c:03d}.Bird_{c}/{image_id}.jpg"
            (cub / "images" / rel).parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(np.full((24, 24, 3), grey, np.uint8)).save(cub / "images" / rel, quality=100)
            lines["images"].append(f"{image_id} {rel}")
            lines["boxes"].append(f"{image_id} 0 0 24 24")
            lines["split"].append(f"{image_id} {1 - j % 2}")
            lines["labels"].append(f"{image_id} {c}")
    files = {"images": "images.txt", "boxes": "bounding_boxes.txt", "split": "train_test_split.txt"}
    files["labels"] = "image_class_labels.txt"
    for key, name in files.items():
        (cub / name).write_text("\n".join(lines[key]) + "\n")
    return root


def greys(x: torch.Tensor) -> list[int]:
    return [round(v) for v in x.float().mean(dim=(1, 2, 3)).tolist()]


def test_two_folders_are_concatenated_in_the_order_given(tmp_path):
    a = solid_folder(tmp_path / "a", [10, 20])
    b = solid_folder(tmp_path / "b", [200, 210, 220])
    ab, ba = load_training_sets([a, b], 16), load_training_sets([str(b), str(a)], 16)
    assert ab.shape == (5, 3, 16, 16) and ab.dtype == torch.uint8
    assert greys(ab) == [10, 20, 200, 210, 220] and greys(ba) == [200, 210, 220, 10, 20]
    assert torch.equal(ab, torch.cat([load_training_images(a, 16), load_training_images(b, 16)]))
    assert torch.equal(load_training_sets(a, 16), load_training_images(a, 16))  # one root: as before


def test_classes_restrict_the_cub_roots_only(tmp_path):
    cub = tiny_cub(tmp_path / "cub")
    folder = solid_folder(tmp_path / "folder", [240, 250])
    every = load_training_sets([cub, folder], 16)
    assert greys(every) == [60, 60, 120, 120, 240, 250]  # the training split of both classes, then the folder
    assert greys(load_training_sets([cub, folder], 16, classes=[2])) == [120, 120, 240, 250]
    assert greys(load_training_sets([folder, cub], 16, classes=[1])) == [240, 250, 60, 60]


def test_a_root_twice_or_inside_another_raises(tmp_path):
    a = solid_folder(tmp_path / "a", [10])
    (a / "sub").mkdir()
    Image.fromarray(np.zeros((20, 20, 3), np.uint8)).save(a / "sub" / "x.png")
    with pytest.raises(DatasetError, match=r"a is given twice"):
        load_training_sets([a, tmp_path / "a" / ".." / "a"], 16)
    with pytest.raises(DatasetError, match=r"sub is inside .*a, also given"):
        load_training_sets([a, a / "sub"], 16)
    with pytest.raises(DatasetError, match="no data folder"):
        load_training_sets([], 16)


def test_a_missing_or_empty_second_root_is_named(tmp_path):
    a = solid_folder(tmp_path / "a", [10])
    with pytest.raises(DatasetError, match=r"data folder .*nope does not exist"):
        load_training_sets([a, tmp_path / "nope"], 16)
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetError, match=r"no images found in image folder .*empty"):
        load_training_sets([a, tmp_path / "empty"], 16)


def test_data_record_is_a_string_for_one_root_and_a_list_for_several(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert data_record("a") == str(tmp_path / "a")
    assert data_record(["a"]) == str(tmp_path / "a")
    assert data_record(["b", tmp_path / "a"]) == [str(tmp_path / "b"), str(tmp_path / "a")]
