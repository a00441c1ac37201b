"""Dataset readers in their official layouts: parsing, preprocessing transform of landmarks, clear errors."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from evalfixtures import celeba_header, fmt, noise_image, save_image, write_cub, write_mtfl

from evaluation import AnnotationError, celeba, cub, load_benchmark, mtfl
from evaluation.samples import image_size, resize_crop


def blob_image(w: int, h: int, centres: np.ndarray, sigma: float) -> np.ndarray:
    """Black image with one Gaussian blob per channel at ``centres`` (3, 2), pixel centres at integers."""
    ys, xs = np.mgrid[0:h, 0:w]
    im = np.zeros((h, w, 3))
    for c, (x, y) in enumerate(centres[:3]):
        im[..., c] = 255 * np.exp(-((xs - x) ** 2 + (ys - y) ** 2) / (2 * sigma**2))
    return np.round(im).astype(np.uint8)


def centroids(image: np.ndarray) -> np.ndarray:
    """(3, 2) intensity-weighted centroid (x, y) of each channel."""
    h, w = image.shape[:2]
    ys, xs = np.mgrid[0:h, 0:w]
    im = image.astype(np.float64)
    return np.array(
        [[(xs * im[..., c]).sum() / im[..., c].sum(), (ys * im[..., c]).sum() / im[..., c].sum()] for c in range(3)]
    )


# ---------------------------------------------------------------------------------------------------------- MTFL
@pytest.mark.parametrize("official", [False, True])
def test_mtfl_parses_both_layouts(tmp_path: Path, official: bool) -> None:
    truth = write_mtfl(tmp_path, n_train=5, n_test=3, official=official)
    bench = load_benchmark("mtfl", tmp_path)
    assert (len(bench.train), len(bench.test)) == (5, 3)
    for samples, split in ((bench.train, "train"), (bench.test, "test")):
        for s, (rel, lm) in zip(samples, truth[split]):
            assert s.path == tmp_path / rel  # backslashes of the official layout became folders
            np.testing.assert_allclose(s.landmarks, lm, atol=6e-4)  # x1..x5 then y1..y5
            assert s.visible.all()
    image, lm = mtfl.load_image(bench.test[0])
    assert image.dtype == np.uint8 and image.ndim == 3 and image.shape[2] == 3
    np.testing.assert_array_equal(lm, bench.test[0].landmarks)  # used as it is


def test_mtfl_grayscale_image_becomes_rgb(tmp_path: Path) -> None:
    write_mtfl(tmp_path, n_train=2, n_test=1)
    from PIL import Image

    Image.fromarray(np.full((80, 80), 77, np.uint8)).save(tmp_path / "AFLW/img_0000.jpg", format="PNG")
    image, _ = mtfl.load_image(mtfl.read_split(tmp_path, "test")[0])
    assert image.shape == (80, 80, 3) and (image == 77).all()


def test_mtfl_malformed_line_names_file_and_line(tmp_path: Path) -> None:
    write_mtfl(tmp_path, n_train=4, n_test=2)
    lines = (tmp_path / "training.txt").read_text().splitlines()
    lines[2] = lines[2].rsplit(" ", 1)[0]  # drop a coordinate: 10 fields
    (tmp_path / "training.txt").write_text("\n".join(lines) + "\n")
    with pytest.raises(AnnotationError, match=r"training\.txt:3: expected 11 or 15 fields"):
        mtfl.read_split(tmp_path, "train")
    lines[2] = lines[2] + " abc"
    (tmp_path / "training.txt").write_text("\n".join(lines) + "\n")
    with pytest.raises(AnnotationError, match=r"training\.txt:3: expected numbers.*abc"):
        mtfl.read_split(tmp_path, "train")


def test_mtfl_missing_image_names_image_and_line(tmp_path: Path) -> None:
    write_mtfl(tmp_path, n_train=2, n_test=3)
    (tmp_path / "AFLW/img_0001.jpg").unlink()
    with pytest.raises(FileNotFoundError, match=r"img_0001\.jpg.*testing\.txt:2"):
        load_benchmark("mtfl", tmp_path)


# ---------------------------------------------------------------------------------------------------------- MAFL
def write_mafl(
    root: Path, names_train: list[str], names_test: list[str], landmarks: dict[str, np.ndarray], nested: bool = False
) -> None:
    img_dir, anno, mafl = (root / "Img", root / "Anno", root / "MAFL") if nested else (root, root, root)
    rows = [f"{n} " + " ".join(fmt(v) for v in lm.ravel()) for n, lm in landmarks.items()]
    anno.mkdir(parents=True, exist_ok=True)
    mafl.mkdir(parents=True, exist_ok=True)
    header = celeba_header(
        len(rows),
        "lefteye_x lefteye_y righteye_x righteye_y nose_x nose_y leftmouth_x leftmouth_y rightmouth_x rightmouth_y",
    )
    (anno / "list_landmarks_align_celeba.txt").write_text(header + "\n".join(rows) + "\n")
    (mafl / "training.txt").write_text("\n".join(names_train) + "\n")
    (mafl / "testing.txt").write_text("\n".join(names_test) + "\n")
    rng = np.random.default_rng(0)
    for n in landmarks:
        save_image(img_dir / "img_align_celeba" / n, noise_image(rng, 178, 218))


def test_mafl_transform_known_values(tmp_path: Path) -> None:
    """Image centre (88.5, 108.5) of the 178x218 image -> centre (63.5, 63.5) of the 128 crop; the image point
    16 * (178, 218) / 160 - 0.5 -> the crop's top-left pixel edge (-0.5, -0.5)."""
    lm = np.array([[88.5, 108.5], [17.8 - 0.5, 21.8 - 0.5], [0.0, 0.0], [177.0, 217.0], [100.0, 50.0]])
    write_mafl(tmp_path, ["000001.jpg"], ["000002.jpg"], {"000001.jpg": lm, "000002.jpg": lm})
    bench = load_benchmark("mafl", tmp_path)
    image, out = bench.load_image(bench.train[0])
    assert image.shape == (128, 128, 3)
    expected = (lm + 0.5) * [160 / 178, 160 / 218] - 0.5 - 16
    np.testing.assert_allclose(out, expected, atol=1e-9)
    np.testing.assert_allclose(out[0], [63.5, 63.5], atol=1e-9)
    np.testing.assert_allclose(out[1], [-0.5, -0.5], atol=1e-9)


@pytest.mark.parametrize("nested", [False, True])
def test_mafl_image_and_landmarks_move_together(tmp_path: Path, nested: bool) -> None:
    rng = np.random.default_rng(3)
    lm = np.array([[60.0, 90.0], [120.0, 95.0], [90.0, 130.0], [70.0, 150.0], [110.0, 152.0]])
    names = ["000001.jpg", "000002.jpg", "000003.jpg"]
    lms = {n: lm + rng.uniform(-5, 5, (5, 2)) for n in names}
    write_mafl(tmp_path, names[:2], names[2:], lms, nested)
    for n in names:
        save_image(tmp_path / ("Img" if nested else "") / "img_align_celeba" / n, blob_image(178, 218, lms[n], 4.0))
    bench = load_benchmark("mafl", tmp_path)
    assert [s.name for s in bench.train] == names[:2] and [s.name for s in bench.test] == names[2:]
    for s in bench.train + bench.test:
        np.testing.assert_allclose(s.landmarks, lms[s.name], atol=6e-4)
        image, out = bench.load_image(s)
        np.testing.assert_allclose(centroids(image), out[:3], atol=0.15)


def test_mafl_unknown_name_and_bad_landmark_line(tmp_path: Path) -> None:
    lm = np.zeros((5, 2)) + 50
    write_mafl(tmp_path, ["000001.jpg", "000009.jpg"], ["000002.jpg"], {"000001.jpg": lm, "000002.jpg": lm})
    with pytest.raises(AnnotationError, match=r"training\.txt:2: image 000009\.jpg has no line in .*align_celeba"):
        load_benchmark("mafl", tmp_path)
    path = tmp_path / "list_landmarks_align_celeba.txt"
    path.write_text(path.read_text().replace("000002.jpg 50.000 50.000", "000002.jpg 50.000"))
    with pytest.raises(AnnotationError, match=r"list_landmarks_align_celeba\.txt:4: expected 11 fields"):
        load_benchmark("mafl", tmp_path)


# ------------------------------------------------------------------------------------------------ CelebA in the wild
def write_wild(
    root: Path,
    sizes: dict[str, tuple[int, int]],
    boxes: dict[str, tuple[int, int, int, int]],
    landmarks: dict[str, np.ndarray],
    partition: dict[str, int] | None = None,
    mafl: tuple[list[str], list[str]] | None = None,
) -> None:
    rng = np.random.default_rng(0)
    for name, (w, h) in sizes.items():
        save_image(root / "img_celeba" / name, noise_image(rng, w, h))
    lm_rows = [f"{n} " + " ".join(str(int(round(v))) for v in lm.ravel()) for n, lm in landmarks.items()]
    (root / "list_landmarks_celeba.txt").write_text(celeba_header(len(lm_rows), "lefteye_x ...") + "\n".join(lm_rows))
    box_rows = [f"{n} " + " ".join(str(v) for v in b) for n, b in boxes.items()]
    (root / "list_bbox_celeba.txt").write_text(
        celeba_header(len(box_rows), "image_id x_1 y_1 width height") + "\n".join(box_rows) + "\n"
    )
    if partition is not None:
        (root / "list_eval_partition.txt").write_text("".join(f"{n} {p}\n" for n, p in partition.items()))
    if mafl is not None:
        (root / "training.txt").write_text("\n".join(mafl[0]) + "\n")
        (root / "testing.txt").write_text("\n".join(mafl[1]) + "\n")


def test_celeba_wild_filter_split_and_resize(tmp_path: Path) -> None:
    names = [f"{i:06d}.jpg" for i in range(1, 7)]
    sizes = {n: (200, 160) for n in names}
    # box area / image area: 0.36, 0.25 (dropped), 0.3 (kept: at least 30 %), 0.5, 0.1 (dropped), 0.45
    boxes = {
        names[0]: (10, 10, 120, 96),
        names[1]: (0, 0, 100, 80),
        names[2]: (5, 5, 120, 80),
        names[3]: (0, 0, 200, 80),
        names[4]: (0, 0, 40, 80),
        names[5]: (0, 0, 180, 80),
    }
    lms = {n: np.array([[60, 50], [120, 52], [90, 80], [70, 110], [115, 112]], float) for n in names}
    write_wild(tmp_path, sizes, boxes, lms, partition={n: p for n, p in zip(names, [0, 0, 0, 1, 2, 2])})
    bench = load_benchmark("celeba-wild", tmp_path)
    assert [s.name for s in bench.train] == [names[0], names[2]]  # partition 0, boxes >= 30 %
    assert [s.name for s in bench.test] == [names[5]]  # partition 2 (1 = validation unused), 0.1 dropped
    assert "list_eval_partition" in bench.notes["split"]
    assert bench.train[0].box == (10.0, 10.0, 120.0, 96.0)
    image, out = bench.load_image(bench.train[0])
    assert image.shape == (128, 128, 3)
    np.testing.assert_allclose(out, (lms[names[0]] + 0.5) * [128 / 200, 128 / 160] - 0.5, atol=1e-9)

    # MAFL lists take precedence over the CelebA partition
    write_wild(tmp_path, sizes, boxes, lms, mafl=([names[3], names[1]], [names[0]]))
    bench = load_benchmark("celeba-wild", tmp_path)
    assert [s.name for s in bench.train] == [names[3]] and [s.name for s in bench.test] == [names[0]]
    assert "MAFL" in bench.notes["split"]


def test_celeba_wild_image_and_landmarks_move_together(tmp_path: Path) -> None:
    lm = np.array([[80, 60], [140, 62], [110, 100], [90, 130], [130, 131]], float)
    write_wild(
        tmp_path,
        {"000001.jpg": (220, 180)},
        {"000001.jpg": (20, 10, 180, 160)},
        {"000001.jpg": lm},
        partition={"000001.jpg": 0},
    )
    s = load_benchmark("celeba-wild", tmp_path).train[0]
    save_image(s.path, blob_image(220, 180, lm, sigma=4.0))
    image, out = celeba.load_wild_image(s)
    np.testing.assert_allclose(centroids(image), out[:3], atol=0.15)


# ----------------------------------------------------------------------------------------------------------- CUB
def test_cub_parsing_visibility_classes_and_split(tmp_path: Path) -> None:
    write_cub(tmp_path, classes=(1, 2, 3), per_class=4)
    lines = (tmp_path / "CUB_200_2011/parts/part_locs.txt").read_text().splitlines()
    bench = load_benchmark("cub", tmp_path, classes=[1, 3])  # the parent of CUB_200_2011 works too
    assert {s.class_id for s in bench.train + bench.test} == {1, 3}
    assert len(bench.train) == 4 and len(bench.test) == 4  # even j -> is_training_image 1
    assert bench.landmark_names[6] == "left_eye" and bench.num_landmarks == 15 and bench.per_part
    first = bench.train[0]
    assert first.path.name.endswith("_101.jpg")
    for p, line in enumerate(lines[:15]):
        image_id, part, x, y, vis = line.split()
        assert (image_id, int(part)) == ("101", p + 1)
        assert first.visible[p] == (vis == "1")
        np.testing.assert_allclose(first.landmarks[p], [float(x), float(y)])
    assert (~np.concatenate([s.visible for s in bench.train])).any()  # some parts are invisible
    assert len(load_benchmark("cub", tmp_path / "CUB_200_2011").train) == 6  # all classes present


def test_cub_crop_box_and_transform_known_values() -> None:
    assert cub.crop_box((10, 20, 40, 60), 100, 100) == (0.0, 20.0, 60.0, 80.0)  # centre (30, 50), side 60
    assert cub.crop_box((0, 0, 20, 80), 100, 100) == (0.0, 0.0, 50.0, 80.0)  # clipped: no longer square
    assert cub.crop_box((60, 70, 30, 20), 100, 100) == (60.0, 65.0, 90.0, 95.0)
    assert cub.crop_box((85, 70, 15, 30), 100, 100) == (77.5, 70.0, 100.0, 100.0)  # clipped right and bottom
    image = np.zeros((100, 100, 3), np.uint8)
    crop, transform = resize_crop(image, (0.0, 20.0, 60.0, 80.0), (128, 128))
    assert crop.shape == (128, 128, 3)
    np.testing.assert_allclose(transform(np.array([[29.5, 49.5], [-0.5, 19.5]])), [[63.5, 63.5], [-0.5, -0.5]])


def test_cub_image_and_parts_move_together(tmp_path: Path) -> None:
    write_cub(tmp_path, classes=(5,), per_class=2, invisible_fraction=0.0)
    s = load_benchmark("cub", tmp_path).train[0]
    w, h = image_size(s.path)
    x0, y0, x1, y1 = cub.crop_box(s.box, w, h)
    frac = np.array([[0.3, 0.4], [0.6, 0.5], [0.5, 0.7]])  # of the crop, from its top-left pixel edge
    centres = np.array([x0, y0]) + frac * [x1 - x0, y1 - y0] - 0.5
    save_image(s.path, blob_image(w, h, centres, sigma=3.0))
    s = replace(s, landmarks=np.concatenate([centres, s.landmarks[3:]]))
    image, out = cub.load_image(s)
    assert image.shape == (128, 128, 3)
    np.testing.assert_allclose(centroids(image), out[:3], atol=0.2)
    np.testing.assert_allclose(out[:3], frac * 128 - 0.5, atol=1e-9)


def test_cub_errors_name_file_and_line(tmp_path: Path) -> None:
    cub_dir = write_cub(tmp_path, classes=(1,), per_class=3)
    path = cub_dir / "parts/part_locs.txt"
    good = path.read_text()
    path.write_text(good.replace("101 3 ", "101 16 ", 1))
    with pytest.raises(AnnotationError, match=r"part_locs\.txt:3: part id must be an integer in 1\.\.15"):
        load_benchmark("cub", tmp_path)
    path.write_text(good)
    boxes = cub_dir / "bounding_boxes.txt"
    rows = boxes.read_text().splitlines()
    boxes.write_text("\n".join([rows[0], rows[1] + " 7", rows[2]]) + "\n")
    with pytest.raises(AnnotationError, match=r"bounding_boxes\.txt:2: expected 5 fields"):
        load_benchmark("cub", tmp_path)
    boxes.write_text("\n".join(rows) + "\n")
    with pytest.raises(ValueError, match=r"classes \[7\] have no images"):
        load_benchmark("cub", tmp_path, classes=[7])
    next((cub_dir / "images").rglob("*_102.jpg")).unlink()
    with pytest.raises(FileNotFoundError, match=r"_102\.jpg.*images\.txt:2"):
        load_benchmark("cub", tmp_path)


def test_unknown_benchmark_and_classes_outside_cub(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown benchmark"):
        load_benchmark("aflw", tmp_path)
    with pytest.raises(ValueError, match="cub only"):
        load_benchmark("mtfl", tmp_path, classes=[1])
    with pytest.raises(FileNotFoundError, match="training.txt not found"):
        load_benchmark("mtfl", tmp_path)


def test_self_training_reads_only_the_given_cub_classes(tmp_path: Path) -> None:
    """train.real_classes (lkdetect learn --classes): the real images of a CUB root come from those classes' training
    split only, as the GAN's did."""
    from lkdetect.training.pseudo_labels import real_images

    write_cub(tmp_path, classes=(1, 2, 3), per_class=4)
    assert real_images(tmp_path, 32).shape == (6, 32, 32, 3)  # 2 training images a class
    two = real_images(tmp_path, 32, classes=[2])
    assert two.shape == (2, 32, 32, 3)
    assert any(np.array_equal(two[0], x) for x in real_images(tmp_path, 32)[2:4])
