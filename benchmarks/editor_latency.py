"""Round-trip latency of the editor while dragging a keypoint: request sent -> view received and decoded.

Usage::

    python benchmarks/editor_latency.py                    # shipped faces GAN, torch threads 1 and 2
    python benchmarks/editor_latency.py --threads 2 --n 300 --domain birds

Starts ``lkdetect editor --port 0`` in its own process (the real server, as a user runs it), then plays a drag
the way the page does: one request in flight at a time on one keep-alive connection, each the next position of a
keypoint moving around a circle. Rows:

    drag preview          ``POST /api/op`` with ``preview`` (render, difference image, four PNGs, measures)
    drag preview + det    the same with the detector's keypoints (the page's toggle on)
    commit                ``POST /api/op`` applying the move (what a drag's release sends)
    translate all         ``POST /api/op`` translating every keypoint (a button)

Columns: median, 90th percentile, 99th percentile and max round trip in ms, and the server's own time (median).
The client shares the CPU with the server, as a browser would.

With ``--browser`` (needs selenium, chromium and chromedriver) headless Chromium loads the page and drags a handle
in ``--n`` small steps; the row is the page's own preview round trips (fetch sent -> JSON parsed), the same figure
the page shows under the images.
"""

from __future__ import annotations

import argparse
import http.client
import json
import math
import os
import platform
import re
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager


@contextmanager
def editor(threads: int, domain: str) -> Iterator[tuple[str, int]]:
    cmd = [sys.executable, "-m", "lkdetect.cli", "editor", "--domain", domain, "--port", "0"]
    env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
    proc = subprocess.Popen([*cmd, "--threads", str(threads)], stdout=subprocess.PIPE, text=True, env=env)
    try:
        line = proc.stdout.readline()
        m = re.search(r"http://([\d.]+):(\d+)/", line)
        if not m:
            raise RuntimeError(f"the editor did not start: {line!r}")
        yield m.group(1), int(m.group(2))
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def timed_requests(conn: http.client.HTTPConnection, bodies: Callable[[int], dict], n: int, warmup: int = 10):
    """(round trips in ms, server ms) of ``n`` POST /api/op requests after ``warmup`` untimed ones."""
    rtt, server = [], []
    for i in range(warmup + n):
        data = json.dumps(bodies(i))
        t = time.perf_counter()
        conn.request("POST", "/api/op", body=data, headers={"Content-Type": "application/json"})
        r = conn.getresponse()
        view = json.loads(r.read())
        dt = 1000 * (time.perf_counter() - t)
        if r.status != 200:
            raise RuntimeError(f"{r.status}: {view}")
        if i >= warmup:
            rtt.append(dt)
            server.append(view["server_ms"])
    return rtt, server


def row(name: str, rtt: list[float], server: list[float]) -> str:
    q = statistics.quantiles(rtt, n=100)
    return (
        f"| {name:<20} | {statistics.median(rtt):6.1f} | {q[89]:6.1f} | {q[98]:6.1f} | {max(rtt):6.1f} "
        f"| {f'{statistics.median(server):6.1f}' if server else '     -'} |"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--domain", default="faces")
    ap.add_argument("--threads", default="1,2", help="comma-separated torch thread counts of the server")
    ap.add_argument("--n", type=int, default=200, help="timed requests per row")
    ap.add_argument("--part", type=int, default=9)
    ap.add_argument("--browser", action="store_true", help="also drag in headless Chromium (selenium)")
    args = ap.parse_args()
    cpu = platform.processor() or platform.machine()
    try:
        cpu = next(x.split(":", 1)[1].strip() for x in open("/proc/cpuinfo") if x.startswith("model name"))
    except (OSError, StopIteration):
        pass
    print(f"{os.cpu_count()} x {cpu}; {args.domain} GAN; {args.n} requests per row, one in flight\n")
    for threads in [int(t) for t in args.threads.split(",")]:
        with editor(threads, args.domain) as (host, port):
            conn = http.client.HTTPConnection(host, port, timeout=60)
            conn.request("GET", "/api/state")
            state = json.loads(conn.getresponse().read())
            x0, y0 = state["keypoints"][args.part]

            def drag(i: int, detect: bool = False, x0: float = x0, y0: float = y0) -> dict:
                a, r = 2 * math.pi * i / 50, 6 + 0.01 * i  # a new position every time: no cached render
                xy = [round(x0 + r * math.cos(a), 2), round(y0 + r * math.sin(a), 2)]
                return {"op": {"op": "move", "parts": [args.part], "xy": xy}, "preview": True, "detect": detect}

            rows = [
                ("drag preview", lambda i: drag(i)),
                ("drag preview + det", lambda i: drag(i, True)),
                ("commit", lambda i: {**drag(i), "preview": False}),
                ("translate all", lambda i: {"op": {"op": "translate", "offset": [(-1) ** i * 0.5, 0]}}),
            ]
            print(f"server torch threads {threads}\n")
            print("| request              | median |    p90 |    p99 |    max | server |")
            print("|----------------------|--------|--------|--------|--------|--------|")
            for name, body in rows:
                conn.request("POST", "/api/reset", body=b"{}", headers={"Content-Type": "application/json"})
                conn.getresponse().read()
                print(row(name, *timed_requests(conn, body, args.n)), flush=True)
            conn.close()
            if args.browser:
                rtt = browser_drag(f"http://{host}:{port}/", args.part, args.n)
                print(row(f"browser drag ({len(rtt)})", rtt, []), flush=True)
            print()


def browser_drag(url: str, part: int, n: int) -> list[float]:
    """The page's preview round trips (ms) while headless Chromium drags ``part`` in ``n`` steps of one CSS pixel."""
    import shutil

    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.support.ui import WebDriverWait

    opts = Options()
    opts.binary_location = shutil.which("chromium") or shutil.which("google-chrome")
    for arg in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--window-size=1700,1300",
    ):
        opts.add_argument(arg)
    d = webdriver.Chrome(service=Service(shutil.which("chromedriver")), options=opts)
    try:
        d.get(url)
        WebDriverWait(d, 30).until(lambda x: x.find_element("tag name", "body").get_attribute("data-busy") == "0")
        handle = d.find_element("css selector", f'#handles [data-part="{part}"]')
        chain = ActionChains(d).click_and_hold(handle)
        for i in range(n):
            chain.move_by_offset(*((1, 0) if i < n // 2 else (0, 1))).pause(0.02)  # never the same place twice
        chain.release().perform()
        WebDriverWait(d, 30).until(lambda x: x.find_element("tag name", "body").get_attribute("data-busy") == "0")
        return [float(t) for t in d.execute_script("return timings;")]
    finally:
        d.quit()


if __name__ == "__main__":
    main()
