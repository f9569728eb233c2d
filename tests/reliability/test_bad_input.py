"""Bad input where the other suites leave gaps: each gets a clear error, nothing is lost,
and the process keeps serving.

Covered elsewhere (see docs/reliability.md): truncated/corrupt/empty images and wrong
extensions (tests/test_images.py), encrypted/empty/damaged PDFs (tests/documents), audio
(tests/voice, tests/server/test_server_audio.py), API limits (tests/server/test_server_limits.py),
config (tests/test_config.py).
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st
from PIL import Image

from cli_runner import REPO, run_labeeb
from labeeb.config import Settings
from labeeb.documents import DocumentError, open_document
from labeeb.images import open_image
from labeeb.messages import Command
from labeeb.server import schemas
from labeeb.server.errors import ApiError
from labeeb.server.images import ImagePolicy
from labeeb.server.turns import Turn, parse_turn
from labeeb.testing import FakeVision, make_assistant
from reliability_kit import (
    assert_openai_error,
    bomb_png,
    chat_body,
    data_url,
    encode,
    modes,
    save_options,
    served,
    text_pdf,
)

VISION_ID = Settings().vision.model
PNG = data_url(encode(Image.new("RGB", (32, 24), (200, 30, 30))))


@pytest.fixture(scope="module")
def fake() -> FakeVision:
    return FakeVision(lambda request: f"saw {len(request.images)} images: {' '.join(i.mode for i in request.images)}")


@pytest.fixture(scope="module")
def client(fake, tmp_path_factory):
    """An in-process ``labeeb serve`` app (real FastAPI, queue and plugins; a fake model)."""
    from fastapi.testclient import TestClient

    settings = Settings()
    settings.history.enabled = False  # module-scoped: set up before each test's isolated home
    assistant = make_assistant(vision=fake, settings=settings)
    with TestClient(served(assistant, max_images=4), base_url="http://127.0.0.1") as http:
        yield http


def ask(client, body) -> object:
    return client.post("/v1/chat/completions", json=body)


def still_serving(client) -> None:
    response = ask(client, chat_body("what is this", PNG))
    assert response.status_code == 200, response.text
    assert response.json()["choices"][0]["message"]["content"] == "saw 1 images: RGB"


# -- request parsing, property-based ------------------------------------------------------

json_leaf = st.none() | st.booleans() | st.integers(-10**6, 10**6) | st.floats(allow_nan=False) | st.text(max_size=12)
json_value = st.recursive(json_leaf, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3), max_leaves=8)
# Any character, lone surrogates included (they arrive as "\ud800" escapes in JSON).
any_text = st.text(st.characters(codec=None, exclude_categories=()), max_size=40)
urls = st.one_of(
    st.just(PNG),
    st.binary(max_size=64).map(data_url),
    st.sampled_from([
        "data:image/png;base64,", "data:,", "data:image/png,raw", "data:image/png;base64,@@@",
        "http://127.0.0.1/x.png", "https://10.0.0.1/y.jpg", "file:///etc/passwd", "/etc/passwd",
        "../../../etc/shadow", "~/.ssh/id_rsa", "C:\\Windows\\win.ini", "\\\\host\\share\\a.png", "",
    ]),
    any_text,
)
part = st.one_of(
    st.fixed_dictionaries({"type": st.just("text"), "text": any_text}),
    st.fixed_dictionaries({"type": st.just("image_url"), "image_url": st.one_of(urls, st.fixed_dictionaries({"url": urls}))}),
    json_value,
)
message = st.fixed_dictionaries(
    {"role": st.sampled_from(["user", "assistant", "system", "developer", "tool", ""]) | json_value,
     "content": st.one_of(any_text, st.lists(part, max_size=4), json_value)},
    optional={"name": json_value},
)
body = st.fixed_dictionaries(
    {"model": st.sampled_from(["labeeb", VISION_ID, "gpt-4o", ""]) | json_value,
     "messages": st.lists(message, min_size=0, max_size=4) | json_value},
    optional={
        "max_tokens": st.integers(-3, 9000) | json_value,
        "temperature": st.floats(-1, 3, allow_nan=False) | json_value,
        "stream": st.booleans() | json_value,
        "stop": st.lists(any_text, max_size=6) | any_text | json_value,
        "n": st.integers(-1, 3),
        "stream_options": st.fixed_dictionaries({"include_usage": st.booleans()}) | json_value,
    },
)


@settings(max_examples=300, deadline=None)
@given(body)
def test_request_parsing_gives_a_turn_or_a_4xx_error_for_any_body(data):
    from pydantic import ValidationError

    try:
        request = schemas.ChatCompletionRequest.model_validate(data)
    except ValidationError:
        return  # answered 400 by the error handlers
    try:
        turn = parse_turn(request, ImagePolicy(max_pixels=16_000_000, max_bytes=1 << 20), max_images=4)
    except ApiError as exc:
        assert 400 <= exc.status < 500 and exc.message
        return
    assert isinstance(turn, Turn) and (turn.text or turn.images)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=body)
def test_any_request_body_gets_an_answer_or_an_openai_4xx_never_a_5xx(client, data):
    response = client.post("/v1/chat/completions", content=json.dumps(data), headers={"content-type": "application/json"})
    if response.status_code == 200:
        if response.headers["content-type"].startswith("text/event-stream"):
            assert response.text.rstrip().endswith("data: [DONE]") and '"error"' not in response.text
        else:
            assert response.json()["choices"][0]["message"]["role"] == "assistant"
        return
    assert_openai_error(response)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(raw=st.binary(max_size=200) | any_text.map(lambda t: t.encode("utf-8", "surrogatepass")))
def test_bytes_that_are_not_json_get_a_400(client, raw):
    response = client.post("/v1/chat/completions", content=raw, headers={"content-type": "application/json"})
    assert_openai_error(response)


def test_the_server_keeps_serving_after_all_that(client):
    still_serving(client)


# -- images ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    ["/etc/passwd", "file:///etc/passwd", "../../../../etc/passwd", "~/.ssh/id_rsa", "C:\\Windows\\win.ini",
     "\\\\server\\share\\photo.png", "photo.png", "./photo.png", "ftp://example.org/photo.png",
     "javascript:alert(1)", "data:image/png;base64,../../photo.png"],
)
def test_path_like_image_urls_never_read_a_file(client, fake, tmp_path, monkeypatch, url):
    """A real image waits at the path the URL names; the server must not open it."""
    monkeypatch.chdir(tmp_path)
    Image.new("RGB", (8, 8)).save(tmp_path / "photo.png")
    asked = len(fake.requests)
    error = assert_openai_error(ask(client, chat_body("describe it", url)), 400)
    assert error["code"] in ("invalid_image_url", "invalid_image") and error["param"].endswith("image_url")
    assert len(fake.requests) == asked


@pytest.mark.parametrize("size", [(100_000, 100_000), (20_000, 20_000), (8_000, 8_000)])
def test_decompression_bombs_are_refused_from_the_header(client, size):
    error = assert_openai_error(ask(client, chat_body("describe it", data_url(bomb_png(*size)))), 400)
    assert error["code"] == "image_too_large"
    still_serving(client)


def test_decompression_bomb_files_are_refused_on_the_command_line(tmp_path):
    bomb = tmp_path / "bomb.png"
    bomb.write_bytes(bomb_png(100_000, 100_000))
    result = run_labeeb("ask", "--image", str(bomb), "describe it")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "bomb.png: refused" in result.stderr and "decompression bomb" in result.stderr
    with pytest.raises(DocumentError, match="refused"):
        open_document(bomb)


@pytest.mark.parametrize("name", list(modes()))
def test_every_image_mode_reaches_the_model_as_rgb_over_the_api(client, name):
    image, fmt = modes()[name]
    data = encode(image, fmt, **save_options(name))
    response = ask(client, chat_body("describe it", data_url(data)))
    if fmt == "TIFF":  # the API takes PNG, JPEG, WebP and GIF only, decided by the bytes
        assert assert_openai_error(response, 400)["code"] == "invalid_image"
    else:
        assert response.json()["choices"][0]["message"]["content"] == "saw 1 images: RGB"


def test_animated_images_over_the_api_use_the_first_frame(client, fake):
    frames = [Image.new("RGB", (32, 24), c) for c in [(255, 0, 0), (0, 255, 0), (0, 0, 255)]]
    for fmt, mime in [("WEBP", "image/webp"), ("GIF", "image/gif"), ("PNG", "image/png")]:
        data = encode(frames[0], fmt, save_all=True, append_images=frames[1:], duration=100, loop=0)
        response = ask(client, chat_body("describe it", data_url(data, mime)))
        assert response.status_code == 200, (fmt, response.text)
        red = fake.requests[-1].images[0].convert("RGB").getpixel((16, 12))
        assert red[0] > 200 and red[1] < 60 and red[2] < 60, (fmt, red)


@pytest.mark.slow
def test_every_image_mode_through_the_whole_assistant_with_the_real_model(tiny_model_dir, tmp_path):
    """Files in each mode, opened as the CLI opens them, answered by the real (tiny) SmolVLM."""
    settings = Settings()
    settings.vision.model = str(tiny_model_dir)
    settings.vision.max_new_tokens = 3
    settings.vision.cache.enabled = False
    with make_assistant(settings=settings) as assistant:
        for name, (image, fmt) in modes().items():
            path = tmp_path / f"{name.replace(' ', '_')}.{fmt.lower()}"
            image.save(path, format=fmt, **save_options(name))
            opened = open_image(path)
            assert opened.mode == image.mode or fmt == "JPEG"
            reply = assistant.handle(Command("describe this picture", images=[opened], files=[path]))
            assert not reply.error, (name, reply.text)
            assert reply.usage.completion_tokens >= 1 and reply.plugin == "general"
        for odd in [Image.new("RGB", (1, 1)), Image.new("RGB", (4000, 2)), Image.new("L", (2, 3000))]:
            assert not assistant.handle(Command("describe this picture", images=[odd])).error


# -- documents and text ----------------------------------------------------------------------


def test_a_thousand_page_pdf_costs_no_more_than_max_pages(tmp_path):
    path = tmp_path / "thousand.pdf"
    path.write_bytes(text_pdf(1000, "Chapter"))
    fake = FakeVision("a page")
    with make_assistant(vision=fake) as assistant:
        reply = assistant.handle(Command("read this document", files=[path]))
        assert not reply.error, reply.text
        assert len(fake.requests) == Settings().documents.max_pages  # 20 pages rendered, not 1000
        assert "of 1000" in reply.text and "--pages" in reply.text
        fake.requests.clear()
        reply = assistant.handle(Command("read page 1000", files=[path]))
        assert len(fake.requests) == 1 and "Chapter 1000" in fake.requests[0].prompt
    last = open_document(path, "998-")
    assert [p.number for p in last.pages] == [998, 999, 1000] and last.page_count == 1000


@pytest.mark.parametrize(
    ("name", "content"),
    [("latin1.txt", "café naïve".encode("latin-1")), ("utf16.txt", "hello".encode("utf-16")),
     ("binary.txt", bytes(range(256))), ("notes.md", b"\xff\xfe\x00# title")],
)
def test_text_files_that_are_not_utf8_get_one_clear_line(tmp_path, name, content):
    path = tmp_path / name
    path.write_bytes(content)
    result = run_labeeb("ask", "--image", str(path), "summarise this")
    assert result.returncode == 2, result.stdout
    assert name in result.stderr and "not an image Labeeb can read" in result.stderr
    assert "Traceback" not in result.stderr and result.stderr.count("\n") == 1


def test_a_file_name_that_is_not_utf8(tmp_path):
    path = Path(str(tmp_path / "bad") + "\udcff\udcfe.png")  # the bytes b"\xff\xfe" on disk
    Image.new("RGB", (20, 20), (9, 9, 9)).save(path, format="PNG")
    result = run_labeeb("ask", "--image", str(path), "--json", "describe this", env={"LABEEB_VISION__MODEL": str(tmp_path / "none")})
    assert "Traceback" not in result.stderr
    reply = json.loads(result.stdout)
    assert reply["error"] and "not" in reply["text"]  # no model here: a clear answer all the same


def test_chat_input_that_is_not_utf8_is_answered_and_recorded(history_path):
    # A strict decoder, as in a desktop's UTF-8 locale: undecodable bytes used to crash chat.
    done = subprocess.run(
        [sys.executable, "-m", "labeeb", "chat"], input=b"\xff\xfe what can you do\nhelp\n",
        capture_output=True, cwd=REPO, timeout=120, env={**os.environ, "PYTHONIOENCODING": "utf-8:strict"},
    )
    assert done.returncode == 0 and b"Traceback" not in done.stderr, done.stderr
    assert done.stdout.count(b"I can help with") == 2
    with sqlite3.connect(history_path) as db:
        texts = [t for (t,) in db.execute("SELECT text FROM turns ORDER BY id")]
    assert texts == ["\ufffd\ufffd what can you do", "help"]


def test_lone_surrogates_in_api_text_are_answered_and_recorded(history_path):
    from fastapi.testclient import TestClient

    raw = b'{"model": "labeeb", "messages": [{"role": "user", "content": "what can you do \\ud800"}]}'
    with TestClient(served(make_assistant(vision=FakeVision())), base_url="http://127.0.0.1") as http:
        response = http.post("/v1/chat/completions", content=raw, headers={"content-type": "application/json"})
    assert response.status_code == 200 and "I can help with" in response.text
    with sqlite3.connect(history_path) as db:
        assert [t for (t,) in db.execute("SELECT text FROM turns")] == ["what can you do \ufffd"]


@pytest.mark.slow
def test_lone_surrogates_reach_the_real_model_as_text(tiny_model_dir):
    """The tokenizer refuses lone surrogates; the vision processor replaces them first."""
    settings = Settings()
    settings.vision.model = str(tiny_model_dir)
    settings.vision.max_new_tokens = 2
    with make_assistant(settings=settings) as assistant:
        reply = assistant.handle(Command("describe \ud800 this", images=[Image.new("RGB", (32, 32))], source="api"))
    assert not reply.error, reply.text


# -- audio -----------------------------------------------------------------------------------


def test_a_ten_minute_recording_is_refused_before_any_transcription(client):
    import io as _io

    import numpy as np
    import soundfile

    buffer = _io.BytesIO()
    samples = (np.sin(np.arange(16_000 * 600) * 0.05) * 3000).astype(np.int16)  # 10 minutes
    soundfile.write(buffer, samples, 16_000, format="WAV", subtype="PCM_16")
    response = client.post("/v1/audio/transcriptions", files={"file": ("long.wav", buffer.getvalue(), "audio/wav")},
                           data={"model": "whisper-1"})
    error = assert_openai_error(response, 400, "audio_too_long")
    assert "600.0 s long" in error["message"] and "server.max_audio_seconds" in error["message"]
    still_serving(client)
