"""The editor's HTTP layer: a stdlib ``ThreadingHTTPServer`` that serves the page and forwards to a Session.

Routes (JSON in and out unless said otherwise; every error is a 4xx JSON ``{"error": message}``):

- ``GET /``, ``GET /static/<file>``: the page, its script and style (package data; nothing from outside).
- ``GET /api/state?detect=0|1``: the current view (:meth:`Session.view`).
- ``POST /api/op {"op": {...}, "preview": bool, "detect": bool}``: apply an operation (or only show it).
- ``POST /api/undo``, ``/api/redo``, ``/api/reset`` ``{"detect": bool}``; ``POST /api/sample {"which": "a"|"b",
  "seed": S|null, "index": I}``; ``POST /api/load {"edit": {...}}`` (an exported edit).
- ``GET /api/export.json``, ``GET /api/export.png?scale=N``, ``GET /api/animation.gif?from=&to=&steps=&scale=``.

One lock serialises the session: the page is one user's, and the generator renders one image at a time. Bound to
127.0.0.1 by default; on a loopback address, requests naming another host are refused (DNS rebinding).
"""

from __future__ import annotations

import ipaddress
import json
import logging
import socket
import threading
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from typing import Any
from urllib.parse import parse_qs, urlsplit

from .ops import EditError
from .session import HistoryError, Session

logger = logging.getLogger(__name__)

MAX_BODY = 1 << 20  # bytes of a request body
# a body over MAX_BODY but at most this long is read and dropped before the 413 answer, so that a client still sending
# it reads the answer instead of a broken pipe; a longer one gets the answer and the connection closed unread
DRAIN_BODY = 16 << 20
STATIC = {"index.html": "text/html; charset=utf-8", "app.js": "text/javascript", "style.css": "text/css"}
CSP = "default-src 'self'; img-src 'self' data: blob:; object-src 'none'; base-uri 'none'; frame-ancestors 'none'"
LOOPBACK_NAMES = {"localhost", "127.0.0.1", "::1"}
GETS = {"/", "/index.html", "/api/state", "/api/export.json", "/api/export.png", "/api/animation.gif"}
POSTS = {"/api/op", "/api/undo", "/api/redo", "/api/reset", "/api/sample", "/api/load"}


class RequestError(Exception):
    def __init__(self, status: HTTPStatus, message: str):
        super().__init__(message)
        self.status = status


def _json_constant(name: str) -> None:
    raise ValueError(f"{name} is not a JSON number")


def parse_json(body: bytes) -> Any:
    """Strict JSON (no NaN/Infinity) or RequestError 400."""
    try:
        return json.loads(body.decode("utf-8"), parse_constant=_json_constant)
    except (UnicodeDecodeError, ValueError) as e:
        raise RequestError(HTTPStatus.BAD_REQUEST, f"malformed JSON: {e}") from None


def _flag(value: Any, what: str) -> bool:
    if value in (None, False, True):
        return bool(value)
    raise EditError(f"{what} must be true or false, got {value!r}")


def _fields(body: Any, allowed: set[str]) -> dict[str, Any]:
    if body is None:
        return {}
    if not isinstance(body, dict):
        raise EditError(f"the request body must be a JSON object, got {type(body).__name__}")
    extra = sorted(set(body) - allowed)
    if extra:
        raise EditError(f"unknown fields {extra}; this request takes {sorted(allowed)}")
    return body


class EditorServer(ThreadingHTTPServer):
    """The editor's server; ``url`` is where it listens. Stop with ``shutdown()`` then ``server_close()``."""

    daemon_threads = True

    def __init__(self, session: Session, host: str = "127.0.0.1", port: int = 8765):
        self.session, self.lock = session, threading.Lock()
        try:
            self.loopback = host in LOOPBACK_NAMES or ipaddress.ip_address(host).is_loopback
        except ValueError:
            self.loopback = False
        super().__init__((host, port), Handler)

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{f'[{host}]' if ':' in str(host) else host}:{port}/"

    # ---- routes: (method, path, query, body) -> (content type, bytes); errors raise
    def route(self, method: str, path: str, query: dict[str, str], body: Any) -> tuple[str, bytes]:
        s = self.session
        if method == "GET" and path in ("/", "/index.html"):
            return _static("index.html")
        if method == "GET" and path.startswith("/static/"):
            return _static(path[len("/static/") :])
        if path == "/api/state" and method == "GET":
            _only(query, {"detect"})
            flag = query.get("detect", "0")
            if flag not in ("0", "1", "false", "true"):
                raise EditError(f"detect must be 0 or 1, got {flag!r}")
            return _view(s, flag in ("1", "true"))
        if path == "/api/export.json" and method == "GET":
            _only(query, set())
            return "application/json", json.dumps(s.document(), indent=1).encode()
        if path == "/api/export.png" and method == "GET":
            _only(query, {"scale"})
            return "image/png", s.png(_int(query.get("scale", "1"), "scale"))
        if path == "/api/animation.gif" and method == "GET":
            _only(query, {"from", "to", "steps", "scale"})
            ends = [query.get(k, d) for k, d in (("from", "original"), ("to", "current"))]
            ends = [e if e in ("original", "current") else _int(e, "state") for e in ends]
            steps, scale = _int(query.get("steps", "16"), "steps"), _int(query.get("scale", "4"), "scale")
            return "image/gif", s.animation(ends[0], ends[1], steps, scale)
        if path in POSTS and method == "POST":
            return self.post(path, body)
        if path in POSTS or path in GETS:
            raise RequestError(HTTPStatus.METHOD_NOT_ALLOWED, f"{method} is not allowed on {path}")
        raise RequestError(HTTPStatus.NOT_FOUND, f"no such page: {path}")

    def post(self, path: str, body: Any) -> tuple[str, bytes]:
        s = self.session
        if path == "/api/op":
            b = _fields(body, {"op", "preview", "detect"})
            if "op" not in b:
                raise EditError("the request needs an 'op' object")
            if _flag(b.get("preview"), "preview"):
                return "application/json", json.dumps(s.view(_flag(b.get("detect"), "detect"), b["op"])).encode()
            s.apply(b["op"])
        elif path == "/api/sample":
            b = _fields(body, {"which", "seed", "index", "detect"})
            s.new_sample(b.get("which", "a"), b.get("seed"), b.get("index", 0))
        elif path == "/api/load":
            b = _fields(body, {"edit", "detect"})
            s.load(b.get("edit"))
        else:
            b = _fields(body, {"detect"})
            {"/api/undo": s.undo, "/api/redo": s.redo, "/api/reset": s.reset}[path]()
        return _view(s, _flag(b.get("detect"), "detect"))


def _view(s: Session, detect: bool) -> tuple[str, bytes]:
    return "application/json", json.dumps(s.view(detect)).encode()


def _only(query: dict[str, str], allowed: set[str]) -> None:
    extra = sorted(set(query) - allowed)
    if extra:
        raise EditError(f"unknown query parameters {extra}; allowed: {sorted(allowed)}")


def _int(text: str, what: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise EditError(f"{what} must be an integer, got {text!r}") from None


def _static(name: str) -> tuple[str, bytes]:
    if name not in STATIC:  # a fixed list: no path from the request ever reaches the file system
        raise RequestError(HTTPStatus.NOT_FOUND, f"no such file: {name}")
    return STATIC[name], resources.files(__package__).joinpath("static", name).read_bytes()


class Handler(BaseHTTPRequestHandler):
    server: EditorServer
    protocol_version = "HTTP/1.1"  # keep-alive: a drag sends many small requests
    timeout = 120  # seconds a connection may sit idle (or a body take to arrive) before its thread lets go

    def setup(self) -> None:
        super().setup()
        # Headers and body go out as two writes; with Nagle's algorithm the second waits for the client's delayed
        # ACK (about 40 ms on Linux), which would dominate a drag's round trip.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def do_GET(self) -> None:  # noqa: N802 (BaseHTTPRequestHandler's names)
        self.handle_request("GET")

    def do_POST(self) -> None:  # noqa: N802
        self.handle_request("POST")

    def do_PUT(self) -> None:  # noqa: N802
        self.handle_request("PUT")

    def do_DELETE(self) -> None:  # noqa: N802
        self.handle_request("DELETE")

    def do_PATCH(self) -> None:  # noqa: N802
        self.handle_request("PATCH")

    def do_OPTIONS(self) -> None:  # noqa: N802
        self.handle_request("OPTIONS")

    def handle_request(self, method: str) -> None:
        try:
            body = self.read_body()
            self.check_host()
            parts = urlsplit(self.path)
            query = {k: v[-1] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
            with self.server.lock:
                ctype, data = self.server.route(method, parts.path, query, body)
            self.send(HTTPStatus.OK, ctype, data)
        except TimeoutError:  # a body that never came: drop the connection, nobody is listening for a reply
            self.close_connection = True
        except RequestError as e:
            self.send_error_json(e.status, str(e))
        except HistoryError as e:
            self.send_error_json(HTTPStatus.CONFLICT, str(e))
        except (EditError, ValueError, TypeError) as e:
            self.send_error_json(HTTPStatus.BAD_REQUEST, str(e))
        except Exception as e:  # a bug, not the request's fault: report it, keep serving
            logger.exception("editor request %s %s failed", method, self.path)
            self.send_error_json(HTTPStatus.INTERNAL_SERVER_ERROR, f"internal error: {type(e).__name__}: {e}")

    def read_body(self) -> Any:
        length = self.headers.get("Content-Length")
        if length is None:
            return None
        try:
            n = int(length)
        except ValueError:
            self.close_connection = True
            raise RequestError(HTTPStatus.BAD_REQUEST, f"bad Content-Length {length!r}") from None
        if n > MAX_BODY or n < 0:
            self.close_connection = True
            if n <= DRAIN_BODY:
                while n > 0 and (chunk := self.rfile.read(min(n, 1 << 16))):
                    n -= len(chunk)
            raise RequestError(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, f"request body over {MAX_BODY} bytes")
        data = self.rfile.read(n)
        return parse_json(data) if data.strip() else None

    def check_host(self) -> None:
        if not self.server.loopback:
            return
        host = (self.headers.get("Host") or "").strip()
        name = host[1:].split("]")[0] if host.startswith("[") else host.rsplit(":", 1)[0] if ":" in host else host
        if name.lower() not in LOOPBACK_NAMES:
            raise RequestError(HTTPStatus.FORBIDDEN, f"host {host!r} refused: this editor serves localhost only")

    def send(self, status: HTTPStatus, ctype: str, data: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Cache-Control", "no-store")
        self.send_header("X-Content-Type-Options", "nosniff")
        if ctype.startswith("text/html"):
            self.send_header("Content-Security-Policy", CSP)
        self.end_headers()
        self.wfile.write(data)

    def send_error_json(self, status: HTTPStatus, message: str) -> None:
        self.send(status, "application/json", json.dumps({"error": message, "status": int(status)}).encode())

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 (the base class's name)
        logger.debug("%s %s", self.address_string(), format % args)


def make_server(session: Session, host: str = "127.0.0.1", port: int = 8765) -> EditorServer:
    """Bind the editor (``port=0``: a free port); call ``serve_forever()`` on the result."""
    return EditorServer(session, host, port)
