"""The editor's HTTP layer: every endpoint on a server in a thread (shipped faces GAN, a stand-in detector), 4xx
errors with messages for bad requests, and ``lkdetect editor`` end to end. Latency: benchmarks/editor_latency.py."""

from __future__ import annotations

import http.client
import io
import json
import re
import subprocess
import sys
from importlib import resources

import numpy as np
import pytest
import torch
from editorfixtures import FACES_GAN, png_array, request, start_server, stop
from PIL import Image

from gan.viz import to_pil
from lkdetect.cli import main
from lkdetect.editor import render_edit


def fake_detect(images):
    return torch.arange(20, dtype=torch.float32).view(1, 10, 2).expand(images.shape[0], -1, -1)


@pytest.fixture
def server():
    srv = start_server(fake_detect)
    yield srv
    stop(srv)


def api(server, path, body=None, method=None):
    status, data, headers = request(
        server.url + path.lstrip("/"), method or ("POST" if body is not None else "GET"), body
    )
    return status, (json.loads(data) if headers.get("Content-Type") == "application/json" else data)


def test_page_and_static_files_come_from_the_package(server):
    status, page, headers = request(server.url)
    assert status == 200 and headers["Content-Type"].startswith("text/html")
    assert "default-src 'self'" in headers["Content-Security-Policy"]
    refs = re.findall(rb'(?:src|href)="([^"]+)"', page)
    assert set(refs) == {b"/static/style.css", b"/static/app.js", b"/api/export.png?scale=1", b"/api/export.json"}
    for name, ctype in (("app.js", "text/javascript"), ("style.css", "text/css")):
        status, data, headers = request(server.url + "static/" + name)
        assert status == 200 and headers["Content-Type"] == ctype
        assert data == resources.files("lkdetect.editor").joinpath("static", name).read_bytes()
    for name in ("index.html", "app.js", "style.css"):  # nothing fetched from outside
        text = resources.files("lkdetect.editor").joinpath("static", name).read_text()
        assert not re.search(r"https?://|//cdn|@import|url\(", text), name


def test_state_ops_preview_history_and_detections(server):
    status, v = api(server, "/api/state?detect=1")
    assert status == 200 and v["size"] == 64 and v["n_original"] == 10 and len(v["keypoints"]) == 10
    assert v["detections"] == fake_detect(torch.zeros(1, 3, 64, 64))[0].tolist() and v["detector"]
    assert v["history"] == {"position": 0, "length": 1} and v["edit"]["ops"] == []
    status, p = api(server, "/api/op", {"op": {"op": "move", "parts": [2], "xy": [40, 30]}, "preview": True})
    assert status == 200 and p["preview"] and p["keypoints"][2] == [40.0, 30.0] and p["history"]["length"] == 1
    assert p["change"]["last"]["mean_abs"] > 0 and p["image"] != v["image"]
    ops = [
        {"op": "move", "parts": [2], "xy": [40, 30]},
        {"op": "translate", "offset": [2, 0], "parts": [0, 1]},
        {"op": "scale", "factor": 1.1},
        {"op": "rotate", "degrees": -8},
        {"op": "swap_embeddings", "parts": [3, 4]},
        {"op": "interpolate_embeddings", "t": 0.5},
        {"op": "swap_background"},
        {"op": "interpolate_background", "t": 0.25},
        {"op": "remove", "parts": [5]},
        {"op": "restore", "parts": [5]},
        {"op": "add", "source": 1, "xy": [20, 20]},
    ]
    for i, op in enumerate(ops):
        status, v = api(server, "/api/op", {"op": op, "detect": False})
        assert status == 200, v
        assert v["history"] == {"position": i + 1, "length": i + 2} and v["change"]["last_op"] == op["op"]
        assert v["detections"] is None
    assert len(v["keypoints"]) == 11 and v["sources"][-1] == 1
    assert api(server, "/api/undo", {})[1]["history"]["position"] == len(ops) - 1
    assert api(server, "/api/redo", {"detect": True})[1]["detections"] is not None
    assert api(server, "/api/reset", {})[1]["edit"]["ops"] == []
    status, v = api(server, "/api/sample", {"which": "b", "seed": 4, "index": 2})
    assert v["other_sample"] == {"seed": 4, "index": 2} and v["edit"]["ops"] == []
    status, v = api(server, "/api/sample", {"which": "a", "seed": 9})
    assert v["edit"]["sample"] == {"seed": 9, "index": 0}
    status, v = api(server, "/api/sample", {})  # a random new sample A
    assert status == 200 and v["history"]["position"] == v["history"]["length"] - 1


def test_exports_reproduce_the_image(server):
    api(server, "/api/op", {"op": {"op": "move", "parts": [2], "xy": [40, 30]}})
    api(server, "/api/op", {"op": {"op": "swap_embeddings", "parts": [0, 1]}})
    status, doc = api(server, "/api/export.json")
    assert status == 200 and [o["op"] for o in doc["ops"]] == ["move", "swap_embeddings"]
    status, png = api(server, "/api/export.png")
    image = render_edit(doc, gan=FACES_GAN)
    np.testing.assert_array_equal(png_array(png), np.asarray(to_pil(image)))
    assert torch.equal(image, server.session.image(server.session.state))
    status, big = api(server, "/api/export.png?scale=3")
    assert png_array(big).shape == (192, 192, 3)
    status, gif = api(server, "/api/animation.gif?from=original&to=current&steps=4&scale=2")
    with Image.open(io.BytesIO(gif)) as im:
        assert status == 200 and im.format == "GIF" and im.n_frames == 6 and im.size == (128, 128)
    status, gif = api(server, "/api/animation.gif?from=0&to=2")
    assert status == 200
    # Load the exported edit into a fresh server: the same image.
    other = start_server()
    try:
        status, v = api(other, "/api/load", {"edit": doc})
        assert status == 200 and v["edit"]["ops"] == doc["ops"]
        assert api(other, "/api/export.png")[1] == png
    finally:
        stop(other)


BAD = [
    ("POST", "/api/op", {"op": {"op": "move", "parts": [12], "xy": [1, 1]}}, 400, "unknown part(s) [12]"),
    ("POST", "/api/op", {"op": {"op": "move", "parts": [1], "xy": [500, 1]}}, 400, "in [-32, 96]"),
    ("POST", "/api/op", {"op": {"op": "scale", "factor": 1e9}}, 400, "factor must be a finite number"),
    ("POST", "/api/op", {"op": {"op": "interpolate_background", "t": -0.5}}, 400, "t must be"),
    ("POST", "/api/op", {"op": {"op": "explode"}}, 400, "unknown op 'explode'"),
    ("POST", "/api/op", {"op": {"op": "rotate"}}, 400, "missing ['degrees']"),
    ("POST", "/api/op", {"op": "rotate"}, 400, "must be a JSON object"),
    ("POST", "/api/op", {"op": {"op": "rotate", "degrees": 5}, "preview": "yes"}, 400, "preview must be true or false"),
    ("POST", "/api/op", {"operation": {}}, 400, "unknown fields ['operation']"),
    ("POST", "/api/op", {}, 400, "needs an 'op'"),
    ("POST", "/api/op", b'{"op": {"op": "move", ', 400, "malformed JSON"),
    ("POST", "/api/op", b'{"op": {"op": "rotate", "degrees": Infinity}}', 400, "Infinity is not a JSON number"),
    ("POST", "/api/op", b"\xff\xfe", 400, "malformed JSON"),
    ("POST", "/api/op", [1, 2], 400, "must be a JSON object"),
    ("POST", "/api/undo", {}, 409, "nothing to undo"),
    ("POST", "/api/redo", {}, 409, "nothing to redo"),
    ("POST", "/api/sample", {"which": "z"}, 400, "which must be"),
    ("POST", "/api/sample", {"seed": 2**40}, 400, "seed must be in"),
    ("POST", "/api/load", {"edit": {"format": "x"}}, 400, "format must be 'lkdetect-edit'"),
    ("GET", "/api/state?detect=1&foo=2", None, 400, "unknown query parameters ['foo']"),
    ("GET", "/api/export.png?scale=99", None, 400, "scale must be in [1, 16]"),
    ("GET", "/api/export.png?scale=big", None, 400, "scale must be an integer"),
    ("GET", "/api/animation.gif?steps=1000", None, 400, "steps must be in [2, 120]"),
    ("GET", "/api/animation.gif?from=7", None, 400, "state must be in [0, 0]"),
    ("GET", "/api/nothing", None, 404, "no such page"),
    ("GET", "/static/../session.py", None, 404, "no such file"),
    ("GET", "/api/op", None, 405, "GET is not allowed on /api/op"),
    ("PUT", "/api/state", b"{}", 405, "PUT is not allowed"),
    ("PATCH", "/api/op", b"{}", 405, "PATCH is not allowed"),
    ("GET", "/api/state?detect=maybe", None, 400, "detect must be 0 or 1"),
]


@pytest.mark.parametrize(
    ("method", "path", "body", "status", "message"), BAD, ids=[f"{b[0]} {b[1]} {b[4]}" for b in BAD]
)
def test_bad_requests_get_4xx_with_a_message(server, method, path, body, status, message):
    raw = body if isinstance(body, bytes) else None
    got, data, headers = request(server.url + path.lstrip("/"), method, None if raw else body, raw=raw)
    assert got == status and headers["Content-Type"] == "application/json"
    err = json.loads(data)
    assert message in err["error"] and err["status"] == status
    status, v = api(server, "/api/state")  # still serving, nothing changed
    assert status == 200 and v["history"] == {"position": 0, "length": 1}


def test_limits_host_check_and_keep_alive(server):
    host, port = server.server_address[:2]
    conn = http.client.HTTPConnection(host, port, timeout=30)
    conn.request("POST", "/api/op", body=b"x" * (2 << 20), headers={"Content-Type": "application/json"})
    r = conn.getresponse()
    assert r.status == 413 and "over" in json.loads(r.read())["error"]
    conn.close()
    status, data, _ = request(server.url + "api/state", headers={"Host": "evil.example:80"})
    assert status == 403 and "localhost only" in json.loads(data)["error"]
    conn = http.client.HTTPConnection(host, port, timeout=30)  # one connection, many requests (a drag)
    for x in (30, 31, 32):
        body = json.dumps({"op": {"op": "move", "parts": [0], "xy": [x, 30]}, "preview": True})
        conn.request("POST", "/api/op", body=body, headers={"Content-Type": "application/json"})
        r = conn.getresponse()
        assert r.status == 200 and json.loads(r.read())["keypoints"][0] == [float(x), 30.0]
    conn.close()


def test_cli_editor_serves_and_refuses_bad_arguments(capsys):
    assert main(["editor", "--port", "70000", "--no-detector"]) == 2
    assert "--port must be in [0, 65535]" in capsys.readouterr().err
    assert main(["editor", "--gan", "missing.safetensors", "--no-detector", "--port", "0"]) == 2
    proc = subprocess.Popen(
        [sys.executable, "-m", "lkdetect.cli", "editor", "--gan", str(FACES_GAN), "--no-detector", "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={"OMP_NUM_THREADS": "1", "PATH": "/usr/bin:/bin"},
    )
    try:
        line = proc.stdout.readline()
        url = re.search(r"http://127\.0\.0\.1:\d+/", line)
        assert url, (line, proc.stderr.read() if proc.poll() is not None else "")
        status, data, _ = request(url.group(0) + "api/state")
        v = json.loads(data)
        assert status == 200 and v["edit"]["gan"]["file"] == "faces_gan.safetensors" and not v["detector"]
        assert "domain" not in v["edit"]["gan"]  # weights given by path: render_edit needs gan=PATH
    finally:
        proc.terminate()
        proc.wait(timeout=30)
