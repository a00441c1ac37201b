"""The editor's state model (lkdetect.editor.session / ops) without HTTP: exact replay, gan.edit semantics,
validation, history, animation."""

from __future__ import annotations

import io
import json
import subprocess
import sys

import numpy as np
import pytest
import torch
from editorfixtures import FACES_GAN
from PIL import Image

import gan
from gan import edit
from gan.viz import to_pil
from lkdetect.editor import render_edit
from lkdetect.editor.ops import MAX_ADDED, EditError
from lkdetect.editor.session import HistoryError, Session, gan_identity, sample_latents

# One of every operation, in an order where each acts on the previous result (add, then edit the added part).
ALL_OPS = [
    {"op": "move", "parts": [3], "xy": [40.5, 20.25]},
    {"op": "move", "parts": [0, 1], "xy": [[30, 30], [34.125, 28]]},
    {"op": "translate", "offset": [1.5, -2], "parts": [4, 5]},
    {"op": "translate", "offset": [0.5, 0.5]},
    {"op": "scale", "factor": 1.1},
    {"op": "scale", "factor": [0.9, 1.2], "parts": [6, 7], "centre": [32, 32]},
    {"op": "rotate", "degrees": 12.5},
    {"op": "swap_embeddings", "other": {"seed": 0, "index": 1}, "parts": [0, 2]},
    {"op": "interpolate_embeddings", "other": {"seed": 5, "index": 2}, "t": 0.3},
    {"op": "swap_background", "other": {"seed": 0, "index": 1}},
    {"op": "interpolate_background", "other": {"seed": 3, "index": 0}, "t": 0.75},
    {"op": "remove", "parts": [8]},
    {"op": "add", "source": 9, "xy": [20, 44]},
    {"op": "swap_embeddings", "other": {"seed": 0, "index": 1}, "parts": [10]},
    {"op": "restore"},
]


@pytest.fixture(scope="module")
def generator():
    return gan.load_generator(FACES_GAN)[0]


@pytest.fixture
def session(generator):
    return Session(generator, gan_identity(FACES_GAN, "faces"))


def test_exported_edit_reproduces_the_image_bit_for_bit(session, generator, tmp_path):
    for op in ALL_OPS:
        session.apply(op)
    image = session.image(session.state)
    doc = session.document()
    assert doc["sample"] == {"seed": 0, "index": 0} and len(doc["ops"]) == len(ALL_OPS)
    assert doc["gan"] == {
        "file": "faces_gan.safetensors",
        "sha256": gan_identity(FACES_GAN)["sha256"],
        "domain": "faces",
    }
    path = tmp_path / "edit.json"
    path.write_text(json.dumps(doc))
    for source in (doc, json.dumps(doc), path):  # a dict, JSON text, a file
        assert torch.equal(render_edit(source), image)  # shipped weights found through gan.domain
    assert torch.equal(render_edit(doc, gan=generator), image)
    with Image.open(io.BytesIO(session.png())) as im:
        np.testing.assert_array_equal(np.asarray(im), np.asarray(to_pil(image)))
    # ... and in a fresh process (same thread count: float results may differ in the last bit across thread counts)
    script = (
        "import sys, torch; torch.set_num_threads(int(sys.argv[2])); from pathlib import Path; "
        "from lkdetect.editor import render_edit; torch.save(render_edit(Path(sys.argv[1])), sys.argv[3])"
    )
    out = tmp_path / "image.pt"
    res = subprocess.run(
        [sys.executable, "-c", script, str(path), str(torch.get_num_threads()), str(out)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert res.returncode == 0, res.stderr
    assert torch.equal(torch.load(out, weights_only=True), image)


def test_operations_are_gan_edit_operations(session, generator):
    lat = sample_latents(generator, 0, 0)
    b = sample_latents(generator, 0, 1)
    px = {"units": "px", "size": 64}
    expected = edit.translate(edit.set_positions(lat, [40.5, 20.25], [3], **px), [1.5, -2], [4, 5], **px)
    expected, _ = edit.swap_embeddings(edit.rotate(expected, 12.5), b, [0, 2])
    for op in (ALL_OPS[0], ALL_OPS[2], ALL_OPS[6], ALL_OPS[7]):
        session.apply(op)
    got, sources = session.latents(session.state)
    for f in ("keypoints", "kp_embed", "bg_embed", "visible"):
        assert torch.equal(getattr(got, f), getattr(expected, f)), f
    assert sources == list(range(10))
    # An added part copies its source; exchanging its embedding takes B's embedding of that source part.
    session.apply({"op": "add", "source": 9, "xy": [20, 44]})
    session.apply({"op": "swap_embeddings", "parts": [10]})  # B filled in: the session's second sample
    got, sources = session.latents(session.state)
    assert sources == [*range(10), 9] and got.keypoints.shape == (1, 11, 2)
    assert torch.equal(got.kp_embed[0, 10], b.kp_embed[0, 9]) and torch.equal(
        got.kp_embed[0, :10], expected.kp_embed[0]
    )
    assert session.document()["ops"][-1]["other"] == {"seed": 0, "index": 1}


@pytest.mark.parametrize(
    ("op", "message"),
    [
        ({"op": "move", "parts": [10], "xy": [1, 2]}, "unknown part(s) [10]"),
        ({"op": "move", "parts": [-1], "xy": [1, 2]}, "unknown part(s) [-1]"),
        ({"op": "move", "parts": [1, 1], "xy": [1, 2]}, "must not repeat"),
        ({"op": "move", "parts": [True], "xy": [1, 2]}, "must be an integer"),
        ({"op": "move", "parts": [1], "xy": [1000, 2]}, "xy x must be a finite number in [-32, 96]"),
        ({"op": "move", "parts": [1, 2], "xy": [[1, 2], [3, 4], [5, 6]]}, "list of 2 [x, y] pairs"),
        ({"op": "move", "parts": [1], "xy": ["a", 2]}, "must be a number"),
        ({"op": "translate", "offset": [float("nan"), 0]}, "finite number"),
        ({"op": "translate", "offset": [60, 0]}, "outside [-32, 96] px"),  # in range itself, the result is not
        ({"op": "scale", "factor": 0}, "at least 0.05"),
        ({"op": "scale", "factor": 50}, "[-20, 20]"),
        ({"op": "rotate", "degrees": 720}, "[-360, 360]"),
        ({"op": "interpolate_embeddings", "t": 1.5}, "t must be a finite number in [0, 1]"),
        ({"op": "swap_background", "other": {"seed": -1, "index": 0}}, "other.seed must be in"),
        ({"op": "swap_background", "other": [0, 1]}, "'seed': S, 'index': I"),
        ({"op": "remove"}, "missing ['parts']"),
        ({"op": "rotate", "degrees": 1, "speed": 2}, "unknown ['speed']"),
        ({"op": "add", "source": [1, 2], "xy": [1, 2]}, "single part index"),
        ({"op": "warp"}, "unknown op 'warp'"),
        (["move"], "must be a JSON object"),
    ],
)
def test_bad_operations_are_refused_with_a_message(session, op, message):
    before = session.state
    with pytest.raises(EditError) as e:
        session.apply(op)
    assert message in str(e.value)
    assert session.state == before and len(session.history) == 1


def test_history_undo_redo_reset_and_samples(session):
    original = session.image(session.state)
    with pytest.raises(HistoryError):
        session.undo()
    session.apply(ALL_OPS[0])
    moved = session.image(session.state)
    assert not torch.equal(moved, original)
    session.undo()
    assert torch.equal(session.image(session.state), original)
    session.redo()
    assert torch.equal(session.image(session.state), moved)
    with pytest.raises(HistoryError):
        session.redo()
    session.reset()
    assert session.state.ops == () and torch.equal(session.image(session.state), original)
    session.undo()  # reset is undoable
    assert torch.equal(session.image(session.state), moved)
    session.new_sample("a", seed=7, index=3)
    assert (session.state.seed, session.state.index, session.state.ops) == (7, 3, ())
    # the sample gan.sample draws (there in a batch of 4, so equal to float rounding)
    torch.testing.assert_close(session.image(session.state), gan.sample(session.G, 4, seed=7).images[3])
    session.new_sample("b", seed=2, index=5)
    assert session.other == (2, 5) and session.state.seed == 7
    session.new_sample("a")  # a random seed
    assert session.state.index == 0 and len(session.history) == 4  # the undone reset was dropped
    with pytest.raises(EditError, match="which must be"):
        session.new_sample("c")


def test_view_measures_change_and_preview_commits_nothing(session):
    def detect(images):
        return torch.full((images.shape[0], 10, 2), 5.0)

    session.detect = detect
    v = session.view(detect=True, preview={"op": "move", "parts": [3], "xy": [40, 20]})
    assert v["preview"] and session.state.ops == () and v["keypoints"][3] == [40.0, 20.0]
    assert v["change"]["last"]["mean_abs"] > 0 and v["change"]["last"] == v["change"]["original"]
    assert v["detections"] == [[5.0, 5.0]] * 10 and v["image"].startswith("data:image/png;base64,")
    v = session.view()
    assert v["change"]["original"] == {"mean_abs": 0.0, "max_abs": 0.0, "changed_share": 0.0}
    assert v["change"]["last"] is None and v["detections"] is None and v["history"] == {"position": 0, "length": 1}


def test_load_validates_and_canonicalises(session, generator):
    other = Session(generator, gan_identity(FACES_GAN, "faces"))
    for op in ALL_OPS:
        other.apply(op)
    doc = other.document()
    doc["ops"][0] = {"xy": [40.5, 20.25], "parts": 3, "op": "move"}  # another spelling of the same op
    session.load(doc)
    assert session.state == other.state and torch.equal(session.image(session.state), other.image(other.state))
    bad = json.loads(json.dumps(doc))
    bad["ops"][4]["factor"] = 99
    with pytest.raises(EditError, match=r"operation 4 \(scale\): factor"):
        session.load(bad)
    with pytest.raises(EditError, match="other GAN weights"):
        session.load({**doc, "gan": {"sha256": "0" * 64}})
    with pytest.raises(EditError, match="format must be"):
        session.load({"ops": []})
    with pytest.raises(EditError, match="made with GAN weights sha256 000000000000"):
        render_edit({**doc, "gan": {"sha256": "0" * 64}}, gan=FACES_GAN)
    with pytest.raises(EditError, match="names no shipped GAN domain"):
        render_edit({**doc, "gan": {}})


def test_long_edits_and_added_part_limit(session):
    state = session.state
    for i in range(999):
        state = state.with_op({"op": "translate", "offset": [0.01 if i % 2 else -0.01, 0]})
    session.load({"format": "lkdetect-edit", "version": 1, "sample": {"seed": 0, "index": 0}, "ops": state.op_list()})
    fresh = Session(session.G, session.gan)
    fresh.history = [session.state]  # cold caches: replayed iteratively, no recursion limit
    assert torch.equal(fresh.image(fresh.state), session.image(session.state))
    session.reset()
    for _ in range(MAX_ADDED):
        session.apply({"op": "add", "source": 0, "xy": [30, 30]})
    with pytest.raises(EditError, match="at most 16 parts can be added"):
        session.apply({"op": "add", "source": 0, "xy": [30, 30]})


def test_animation_gif_goes_there_and_back(session):
    session.apply({"op": "add", "source": 9, "xy": [20, 44]})  # a part only the end state has: it fades in
    session.apply({"op": "translate", "offset": [4, 0]})
    with Image.open(io.BytesIO(session.animation("original", "current", steps=5, scale=2))) as gif:
        assert gif.n_frames == 8 and gif.size == (128, 128)
        frames = []
        for i in range(gif.n_frames):
            gif.seek(i)
            frames.append(np.asarray(gif.convert("RGB")).astype(int))
    assert np.abs(frames[4] - frames[0]).mean() > 1  # the end differs from the start
    np.testing.assert_array_equal(frames[3], frames[5])  # ping-pong
    with pytest.raises(EditError, match="steps must be in"):
        session.animation(steps=1)
    with pytest.raises(EditError, match="state must be in"):
        session.animation(start=99)


def test_import_editor_stays_light():
    code = "import sys, lkdetect.editor; print(sorted(m for m in ('torch', 'gan') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"
