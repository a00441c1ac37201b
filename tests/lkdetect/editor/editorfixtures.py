"""Shared by the editor tests: the shipped faces GAN in a Session served on a free port in a thread."""

from __future__ import annotations

import json
import threading
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

REPO = Path(__file__).resolve().parents[3]
FACES_GAN = REPO / "weights" / "faces_gan.safetensors"


def start_server(detect: Any = None, seed: int = 0) -> Any:
    """An EditorServer on 127.0.0.1 and a free port, serving in a daemon thread; stop with ``stop(server)``."""
    import gan
    from lkdetect.editor.server import make_server
    from lkdetect.editor.session import Session, gan_identity

    generator, _ = gan.load_generator(FACES_GAN)
    server = make_server(Session(generator, gan_identity(FACES_GAN, "faces"), detect, seed=seed), port=0)
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    return server


def stop(server: Any) -> None:
    server.shutdown()
    server.server_close()


def request(
    url: str, method: str = "GET", body: Any = None, raw: bytes | None = None, headers: dict | None = None
) -> tuple[int, bytes, dict]:
    """(status, body bytes, headers) of one request; 4xx/5xx are returned, not raised."""
    data = raw if raw is not None else None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method=method, headers={"Content-Type": "application/json"})
    for k, v in (headers or {}).items():
        req.add_header(k, v)
    try:
        with urllib.request.urlopen(req, timeout=60) as r:
            return r.status, r.read(), dict(r.headers)
    except urllib.error.HTTPError as e:
        return e.code, e.read(), dict(e.headers)


def png_array(data: bytes) -> np.ndarray:
    import io

    with Image.open(io.BytesIO(data)) as im:
        return np.asarray(im.convert("RGB")).astype(np.int16)


def change_near(before: np.ndarray, after: np.ndarray, xy: tuple[float, float], radius: float) -> tuple[float, float]:
    """Mean absolute change (0-255) within ``radius`` px of ``xy`` and beyond ``2 radius`` of it."""
    d = np.abs(after - before).mean(-1)
    yy, xx = np.mgrid[: d.shape[0], : d.shape[1]]
    r2 = (xx - xy[0]) ** 2 + (yy - xy[1]) ** 2
    return float(d[r2 <= radius**2].mean()), float(d[r2 > (2 * radius) ** 2].mean())
