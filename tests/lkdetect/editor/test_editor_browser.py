"""The editor in a real browser: headless Chromium (Debian's ``chromium`` + ``chromium-driver``) driven by selenium.

Loads the page on the shipped faces GAN, drags a keypoint handle, exchanges part embeddings with the second sample,
shows the detector's keypoints, undoes, and checks that the exported JSON reproduces the image through Python.
Screenshots of each state go to ``$LKDETECT_TEST_OUT/editor_browser`` when set, else to the test's tmp_path.
Skips when chromium, chromedriver or selenium are missing.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
from editorfixtures import FACES_GAN, change_near, png_array, request, start_server, stop

webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed")
CHROMIUM = next((p for p in map(shutil.which, ("chromium", "chromium-browser", "google-chrome")) if p), None)
CHROMEDRIVER = shutil.which("chromedriver")
pytestmark = pytest.mark.skipif(
    CHROMIUM is None or CHROMEDRIVER is None,
    reason="chromium and chromedriver are needed (apt-get install chromium chromium-driver)",
)

PART, DRAG_PX = 9, 12  # drag part 9 of seed 0 by 12 image pixels to the right


@pytest.fixture(scope="module")
def server():
    from lkdetect.demo import load_detector

    srv = start_server(load_detector(None, "faces"))
    yield srv
    stop(srv)


@pytest.fixture(scope="module")
def browser():
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    opts = Options()
    opts.binary_location = CHROMIUM
    for arg in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--window-size=1700,1300",
    ):
        opts.add_argument(arg)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=opts)
    driver.set_page_load_timeout(30)
    yield driver
    driver.quit()


@pytest.fixture
def out_dir(tmp_path) -> Path:
    root = os.environ.get("LKDETECT_TEST_OUT")
    out = Path(root) / "editor_browser" if root else tmp_path
    out.mkdir(parents=True, exist_ok=True)
    return out


def wait_idle(driver, after_version: int, timeout: float = 15) -> int:
    """Wait until the page shows a committed view newer than ``after_version`` and nothing is in flight."""
    from selenium.webdriver.support.ui import WebDriverWait

    def ready(d):
        body = d.find_element("tag name", "body")
        v = int(body.get_attribute("data-version"))
        return v if v > after_version and body.get_attribute("data-busy") == "0" else False

    return WebDriverWait(driver, timeout, poll_frequency=0.05).until(ready)


def page_image(driver) -> np.ndarray:
    src = driver.find_element("id", "after").get_attribute("src")
    return png_array(base64.b64decode(src.split(",", 1)[1]))


def test_drag_exchange_detect_export_in_chromium(server, browser, out_dir):
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.ui import WebDriverWait

    from gan.viz import to_pil
    from lkdetect.editor import render_edit

    d = browser
    d.get(server.url)
    v = wait_idle(d, 0)
    assert d.find_element("id", "error").text == ""
    d.save_screenshot(str(out_dir / "01_loaded.png"))
    before = page_image(d)
    _, png, _ = request(server.url + "api/export.png")
    np.testing.assert_array_equal(png_array(png), before)  # the page shows what the server exports
    x0, y0 = server.session.view()["keypoints"][PART]

    # Drag one handle: the image changes, most where the keypoint went.
    scale = d.execute_script("return scale;")
    handle = d.find_element("css selector", f'#handles [data-part="{PART}"]')
    step = DRAG_PX * scale // 3
    ActionChains(d).click_and_hold(handle).move_by_offset(step, 0).move_by_offset(step, 0).move_by_offset(
        DRAG_PX * scale - 2 * step, 0
    ).release().perform()
    v = wait_idle(d, v)
    d.save_screenshot(str(out_dir / "02_dragged.png"))
    moved = page_image(d)
    last = server.session.document()["ops"][-1]
    assert last["op"] == "move" and last["parts"] == [PART]
    assert last["xy"][0] == pytest.approx([x0 + DRAG_PX, y0], abs=0.6)
    near, far = change_near(before, moved, (x0 + DRAG_PX, y0), radius=8)
    assert near > 1.3 * far and near > 10  # measured on seed 0: near 39.6, far about 20 (0-255 units)

    # Exchange the embeddings of three parts with sample B: the image changes (a no-op would give exactly 0).
    d.find_element("id", "sel-none").click()  # the dragged part stays selected after a drag
    for p in (0, 1, 2):
        d.find_element("css selector", f'#parts input[data-part="{p}"]').click()
    d.find_element("id", "swap").click()
    v = wait_idle(d, v)
    d.save_screenshot(str(out_dir / "03_exchanged.png"))
    swapped = page_image(d)
    last = server.session.document()["ops"][-1]
    assert last["op"] == "swap_embeddings" and sorted(last["parts"]) == [0, 1, 2]
    diff = np.abs(swapped - moved)
    assert diff.mean() > 0.5 and (diff.max(-1) > 8).mean() > 0.01
    assert "swap_embeddings" in d.find_element("id", "change-last").text

    # The detector's keypoints beside the latent ones.
    d.find_element("id", "show-det").click()
    v = wait_idle(d, v)
    assert len(d.find_elements("css selector", "#dets .det")) == 10
    d.save_screenshot(str(out_dir / "04_detections.png"))

    # Export: the JSON on the page reproduces the page's image bit for bit through Python.
    doc = json.loads(d.find_element("id", "edit-json").get_attribute("value"))
    assert [o["op"] for o in doc["ops"]] == ["move", "swap_embeddings"]
    np.testing.assert_array_equal(np.asarray(to_pil(render_edit(doc, gan=FACES_GAN))).astype(np.int16), swapped)

    # An animation from the unedited sample to here, made in the page.
    d.find_element("id", "gif").click()
    WebDriverWait(d, 15).until(
        lambda x: x.execute_script(
            "const g = document.getElementById('gif-view');return !g.hidden && g.complete && g.naturalWidth > 0;"
        )
    )
    assert d.execute_script("return document.getElementById('gif-view').naturalWidth;") == 64 * 4
    d.save_screenshot(str(out_dir / "05_animation.png"))

    # Undo brings back the dragged image exactly.
    d.find_element("id", "undo").click()
    wait_idle(d, v)
    d.save_screenshot(str(out_dir / "06_undone.png"))
    np.testing.assert_array_equal(page_image(d), moved)

    # Several keypoints at once: click one handle, shift-click another, drag: one translate of both.
    v = int(d.find_element("tag name", "body").get_attribute("data-version"))
    d.find_element("id", "sel-none").click()
    d.find_element("css selector", '#handles [data-part="3"]').click()
    ActionChains(d).key_down(Keys.SHIFT).click(d.find_element("css selector", '#handles [data-part="4"]')).key_up(
        Keys.SHIFT
    ).perform()
    handle = d.find_element("css selector", '#handles [data-part="4"]')
    ActionChains(d).click_and_hold(handle).move_by_offset(0, 3 * scale).move_by_offset(0, 2 * scale).release().perform()
    wait_idle(d, v)
    d.save_screenshot(str(out_dir / "07_moved_two.png"))
    last = server.session.document()["ops"][-1]
    assert last["op"] == "translate" and last["parts"] == [3, 4] and last["offset"] == pytest.approx([0, 5], abs=0.5)
    assert d.find_element("id", "error").text == ""
