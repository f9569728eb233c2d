"""With ``server.allow_screen`` on, clients may see the server's screen (a real Xvfb here),
with the configured private areas blacked out before any pixel leaves the machine."""

from __future__ import annotations

import io
import os
import subprocess
from pathlib import Path
from typing import Iterator

import httpx
import pytest
from PIL import Image
from server_kit import CHROMIUM, CHROMIUM_ARGS, LabeebServer

pytestmark = pytest.mark.slow

BACKGROUND = (40, 90, 140)
SCREEN_CONFIG = """
[vision.cache]
enabled = false

[screen]
exclude_regions = ["0,0,200,100"]

[server]
allow_screen = true
"""


@pytest.fixture(scope="module")
def display() -> Iterator[str]:
    read_fd, write_fd = os.pipe()
    xvfb = subprocess.Popen(
        ["Xvfb", "-displayfd", str(write_fd), "-screen", "0", "640x480x24", "-nolisten", "tcp", "-noreset"],
        pass_fds=(write_fd,), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    os.close(write_fd)
    with os.fdopen(read_fd) as pipe:
        number = pipe.readline().strip()
    assert number, "Xvfb did not start"
    name = f":{number}"
    subprocess.run(["xsetroot", "-solid", "#%02x%02x%02x" % BACKGROUND], env={**os.environ, "DISPLAY": name},
                   check=True, timeout=10)
    try:
        yield name
    finally:
        xvfb.terminate()
        xvfb.wait(10)


@pytest.fixture(scope="module")
def screen_server(display: str, tiny_model_dir: Path, tmp_path_factory) -> Iterator[LabeebServer]:
    with LabeebServer(tmp_path_factory.mktemp("screen-server"), tiny_model_dir, config=SCREEN_CONFIG,
                      env={"DISPLAY": display}).running() as srv:
        yield srv


def test_screenshot_endpoint_returns_the_redacted_screen(screen_server):
    response = httpx.get(screen_server.url + "/api/screenshot", timeout=60)
    assert response.status_code == 200 and response.headers["content-type"] == "image/png"
    shot = Image.open(io.BytesIO(response.content)).convert("RGB")
    assert shot.size == (640, 480)
    assert shot.getpixel((50, 50)) == (0, 0, 0)  # inside screen.exclude_regions
    assert shot.getpixel((400, 300)) == BACKGROUND


def test_screen_questions_over_the_api_use_a_screenshot(screen_server):
    health = httpx.get(screen_server.url + "/health").json()
    assert health["features"]["screen"] is True
    response = httpx.post(screen_server.api + "/chat/completions", timeout=120, json={
        "model": "labeeb", "max_tokens": 3, "messages": [{"role": "user", "content": "what's on my screen?"}],
    })
    assert response.status_code == 200, response.text
    # The client sent no image; the screen plugin attached the screenshot (its tiles' tokens).
    assert response.json()["usage"]["prompt_tokens"] > 64


def test_the_page_offers_a_screenshot_button(screen_server):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page()
            page.goto(screen_server.url + "/")
            page.wait_for_selector("#screenshot:visible", timeout=60_000)
            page.click("#screenshot")
            page.wait_for_selector("#attachments .thumb img")
            size = page.evaluate("""() => {
                const img = document.querySelector('#attachments .thumb img');
                return [img.naturalWidth, img.naturalHeight];
            }""")
            assert size == [640, 480]
        finally:
            browser.close()
