"""evaluation.split_root: a training split cut in two, read back by the MTFL reader."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from evalfixtures import write_mtfl

from evaluation.benchmarks import load_benchmark
from evaluation.split_root import main, split_root


def test_the_two_parts_cover_the_training_split_once_and_read_as_a_benchmark(tmp_path: Path) -> None:
    root, out = tmp_path / "root", tmp_path / "split"
    truth = write_mtfl(root, n_train=20, n_test=5)
    assert split_root(root, out, n_train=14, seed=3) == (14, 6)
    bench = load_benchmark("mtfl", out)
    assert (len(bench.train), len(bench.test)) == (14, 6)
    train = {s.path.relative_to(out).as_posix() for s in bench.train}
    test = {s.path.relative_to(out).as_posix() for s in bench.test}
    assert not train & test and train | test == {rel for rel, _ in truth["train"]}  # no AFLW face in either part
    landmarks = dict(truth["train"])
    for s in bench.train + bench.test:
        assert s.path.is_file()  # through the symlinked folder
        np.testing.assert_allclose(s.landmarks, landmarks[s.path.relative_to(out).as_posix()], atol=6e-4)
    again = tmp_path / "again"
    split_root(root, again, n_train=14, seed=3)  # the split is a function of the seed
    assert (again / "training.txt").read_text() == (out / "training.txt").read_text()
    other = tmp_path / "other"
    split_root(root, other, n_train=14, seed=4)
    assert (other / "training.txt").read_text() != (out / "training.txt").read_text()


def test_it_refuses_a_non_empty_out_and_an_impossible_size(tmp_path: Path) -> None:
    root, out = tmp_path / "root", tmp_path / "split"
    write_mtfl(root, n_train=6, n_test=2)
    out.mkdir()
    (out / "training.txt").write_text("mine\n")
    with pytest.raises(ValueError, match="not empty"):
        split_root(root, out, n_train=3)
    assert (out / "training.txt").read_text() == "mine\n"  # nothing overwritten
    for n in (0, 6):
        with pytest.raises(ValueError, match="between 1 and 5"):
            split_root(root, tmp_path / f"n{n}", n_train=n)
    with pytest.raises(FileNotFoundError):
        split_root(tmp_path / "nowhere", tmp_path / "x")


def test_the_command_prints_the_sizes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write_mtfl(tmp_path / "root", n_train=10, n_test=2)
    assert main(["--root", str(tmp_path / "root"), "--out", str(tmp_path / "s"), "--train", "7"]) == 0
    assert "7 training, 3 testing faces (seed 0)" in capsys.readouterr().out
