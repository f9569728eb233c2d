"""The web page in headless Chromium (Debian's, driven by Playwright): a real user's clicks.

Set WEB_SCREENSHOT=/path.png to keep a screenshot of the answered page for a look by eye
(somewhere outside the repository).
"""

from __future__ import annotations

import base64
import os
import shutil
import subprocess
from pathlib import Path
from typing import Iterator

import pytest
from server_kit import CHROMIUM, CHROMIUM_ARGS, image_bytes

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def speech_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("mic") / "fox.wav"
    subprocess.run(["espeak-ng", "-w", str(path), "The quick brown fox jumps over the lazy dog."], check=True)
    return path


@pytest.fixture(scope="module")
def browser(speech_file: Path) -> Iterator[object]:
    from playwright.sync_api import sync_playwright

    assert shutil.which(CHROMIUM), "Debian's chromium is needed (apt install chromium)"
    media = [
        "--use-fake-ui-for-media-stream",  # grant the microphone without a prompt
        "--use-fake-device-for-media-stream",
        f"--use-file-for-fake-audio-capture={speech_file}%noloop",  # the microphone "hears" this
        "--autoplay-policy=no-user-gesture-required",
    ]
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS + media)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def page(browser, server, idle, tmp_path):
    context = browser.new_context(viewport={"width": 1100, "height": 760})
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(server.url + "/")
    page.wait_for_selector("#status.ok", timeout=60_000)
    yield page
    context.close()
    assert not errors, errors


def attach(page, tmp_path: Path, name: str = "red.png", size: tuple[int, int] = (320, 200)) -> None:
    path = tmp_path / name
    path.write_bytes(image_bytes(size))
    page.set_input_files("#file", str(path))


def test_send_a_message_with_an_image_and_see_the_streamed_answer(page, server, tmp_path):
    assert page.title() == "Labeeb"
    assert page.is_hidden("#screenshot")  # screen access is off on this server
    page.select_option("#model", server.vision_model)
    attach(page, tmp_path)
    page.wait_for_selector("#attachments .thumb img")
    # Record every change of the answer's text, to see it arrive in pieces.
    page.evaluate("""() => {
        window.__lengths = [];
        new MutationObserver(() => {
            const answer = document.querySelector('.msg.assistant .text');
            if (answer) window.__lengths.push(answer.textContent.length);
        }).observe(document.getElementById('log'), {subtree: true, childList: true, characterData: true});
    }""")
    page.fill("#input", "What is in this picture?")
    page.press("#input", "Enter")
    page.wait_for_selector(".msg.assistant[data-done=true]", timeout=120_000)
    user = page.locator(".msg.user")
    assert user.inner_text().strip() == "What is in this picture?"
    assert user.locator(".images img").count() == 1  # the image went with the message
    assert page.locator("#attachments .thumb").count() == 0
    answer = page.inner_text(".msg.assistant .text")
    assert answer.strip()
    lengths = page.evaluate("window.__lengths")
    assert len(set(lengths)) > 3, "the answer should have been streamed in several pieces"
    assert "tokens" in page.inner_text(".msg.assistant .meta")
    keep = os.environ.get("WEB_SCREENSHOT")
    if keep:
        page.screenshot(path=keep)


def test_default_model_goes_through_the_plugins(page):
    page.fill("#input", "help")
    page.click("#send")
    page.wait_for_selector(".msg.assistant[data-done=true]", timeout=60_000)
    assert page.inner_text(".msg.assistant .text").startswith("I can help with:")


def test_paste_and_drop_images_with_thumbnails_that_can_be_removed(page):
    png = base64.b64encode(image_bytes((80, 60))).decode()
    make_file = f"""(name) => {{
        const bytes = Uint8Array.from(atob("{png}"), c => c.charCodeAt(0));
        const data = new DataTransfer();
        data.items.add(new File([bytes], name, {{type: "image/png"}}));
        return data;
    }}"""
    page.evaluate(f"""() => {{
        const data = ({make_file})("pasted.png");
        document.dispatchEvent(new ClipboardEvent("paste", {{clipboardData: data, bubbles: true}}));
    }}""")
    page.wait_for_selector("#attachments .thumb >> nth=0")
    page.evaluate(f"""() => {{
        const data = ({make_file})("dropped.png");
        document.dispatchEvent(new DragEvent("dragenter", {{dataTransfer: data, bubbles: true}}));
        document.dispatchEvent(new DragEvent("drop", {{dataTransfer: data, bubbles: true, cancelable: true}}));
    }}""")
    page.wait_for_selector("#attachments .thumb >> nth=1")
    assert page.is_hidden("#drop")
    page.click("#attachments .thumb >> nth=0 >> button")
    assert page.locator("#attachments .thumb").count() == 1


def test_wrong_files_and_server_errors_are_shown(page, tmp_path):
    text = tmp_path / "notes.txt"
    text.write_text("not an image")
    page.set_input_files("#file", str(text))
    page.wait_for_selector(".msg.error")
    assert "not a PNG, JPEG, WebP or GIF image" in page.inner_text(".msg.error")
    page.fill("#input", "what's on my screen?")
    page.click("#send")
    page.wait_for_selector(".msg.error >> nth=1")
    assert "does not let clients see its screen" in page.locator(".msg.error").nth(1).inner_text()


def test_push_to_talk_transcribes_and_asks(page, speech_file):
    mic = page.locator("#mic")
    mic.hover()
    page.mouse.down()
    page.wait_for_selector("#mic.recording")
    # Hold until the fake microphone has played the whole sentence (the file is ~3 s).
    page.wait_for_timeout(3500)
    page.mouse.up()
    page.wait_for_selector(".msg.user", timeout=60_000)
    said = page.inner_text(".msg.user").lower()
    assert "quick" in said and "lazy dog" in said, said
    page.wait_for_selector(".msg.assistant[data-done=true]", timeout=120_000)


def test_answers_are_spoken_through_the_speech_endpoint(page):
    page.check("#speak")
    with page.expect_response(lambda r: r.url.endswith("/v1/audio/speech")) as speech:
        page.fill("#input", "help")
        page.click("#send")
    response = speech.value
    assert response.status == 200 and response.headers["content-type"] == "audio/wav"
    # The page plays it: an <audio> element with the WAV, whose length the browser decoded.
    duration = page.wait_for_function("""() => {
        const audio = document.querySelector('audio[data-labeeb=answer]');
        return audio && audio.duration > 0 && audio.duration;
    }""", timeout=30_000).json_value()
    assert duration > 1.0
