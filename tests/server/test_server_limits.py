"""Every limit and bad input gets a clear 4xx in OpenAI's error shape; good requests still work.

The server under test runs with small limits (conftest.MAIN_CONFIG): 3 images, 1,000,000
pixels per image, 2 MB bodies, 10 s of audio, one waiting request.
"""

from __future__ import annotations

import base64
import io
import threading
from typing import Any

import httpx
import openai
import pytest
from PIL import Image
from server_kit import assert_error, data_url, image_bytes, png_url, user_message

pytestmark = pytest.mark.slow


def post(server, path: str, **kwargs: Any) -> httpx.Response:
    return httpx.post(server.api + path, timeout=60, **kwargs)


def chat(server, body: dict[str, Any]) -> httpx.Response:
    return post(server, "/chat/completions", json=body)


def good(server) -> None:
    """A normal request succeeds after the refused one."""
    response = chat(server, {"model": server.vision_model, "max_tokens": 2,
                             "messages": [user_message("What is it?", png_url())]})
    assert response.status_code == 200, response.text
    assert response.json()["choices"][0]["message"]["content"]


def body(server, *urls: str, text: str = "What is it?", **extra: Any) -> dict[str, Any]:
    return {"model": server.vision_model, "max_tokens": 2, "messages": [user_message(text, *urls)], **extra}


# -- images ----------------------------------------------------------------------------------


def test_too_many_images(server, idle):
    error = assert_error(chat(server, body(server, *[png_url()] * 4)), 400, "too_many_images", "4 images", "at most 3")
    assert error["param"] == "messages"
    good(server)


def test_too_many_images_counts_the_whole_conversation(server, idle):
    messages = [user_message("one", png_url(), png_url()), {"role": "assistant", "content": "ok"},
                user_message("two", png_url(), png_url())]
    response = chat(server, {"model": "labeeb", "messages": messages})
    assert_error(response, 400, "too_many_images")
    good(server)


def test_image_with_too_many_pixels(server, idle):
    error = assert_error(chat(server, body(server, png_url((1001, 1000)))), 400, "image_too_large",
                         "1001x1000", "1,000,000")
    assert error["param"] == "messages[0].content[0].image_url"
    good(server)


def test_not_base64(server, idle):
    assert_error(chat(server, body(server, "data:image/png;base64,%%%not-base64%%%")), 400, "invalid_image", "base64")
    good(server)


def test_data_url_that_is_not_base64_encoded(server, idle):
    assert_error(chat(server, body(server, "data:image/png,rawbytes")), 400, "invalid_image", "base64")
    good(server)


def test_bytes_that_are_not_an_image_whatever_the_claimed_type(server, idle):
    fake = data_url(b"<svg xmlns='http://www.w3.org/2000/svg'></svg>", "image/png")
    assert_error(chat(server, body(server, fake)), 400, "invalid_image", "PNG, JPEG, WebP or GIF")
    tiff = io.BytesIO()
    Image.new("RGB", (8, 8)).save(tiff, format="TIFF")
    assert_error(chat(server, body(server, data_url(tiff.getvalue(), "image/tiff"))), 400, "invalid_image")
    good(server)


def test_truncated_png(server, idle):
    data = image_bytes((300, 200))
    assert_error(chat(server, body(server, data_url(data[: len(data) // 2]))), 400, "invalid_image", "damaged")
    good(server)


def test_empty_image(server, idle):
    assert_error(chat(server, body(server, "data:image/png;base64,")), 400, "invalid_image", "empty")
    good(server)


def test_remote_image_urls_are_off_by_default(server, idle):
    response = chat(server, body(server, "http://127.0.0.1:1/cat.png"))
    assert_error(response, 403, "remote_images_disabled", "turned off")
    good(server)


def test_file_urls_are_refused(server, idle):
    assert_error(chat(server, body(server, "file:///etc/passwd")), 400, "invalid_image_url")
    good(server)


# -- the request itself ----------------------------------------------------------------------


def test_body_too_large_by_content_length(server, idle):
    big = data_url(b"\x89PNG\r\n\x1a\n" + b"\0" * (3 * 1024 * 1024))
    assert_error(chat(server, body(server, big)), 413, "request_too_large", "2 MB")
    good(server)


def test_body_too_large_without_content_length(server, idle):
    payload = b'{"model": "labeeb", "messages": [{"role": "user", "content": "' + b"a" * (3 * 1024 * 1024) + b'"}]}'

    def chunks():
        for start in range(0, len(payload), 65536):
            yield payload[start : start + 65536]

    response = post(server, "/chat/completions", content=chunks(), headers={"Content-Type": "application/json"})
    assert_error(response, 413, "request_too_large")
    good(server)


def test_invalid_json(server, idle):
    response = post(server, "/chat/completions", content=b"{not json", headers={"Content-Type": "application/json"})
    assert_error(response, 400, "invalid_request", "not valid JSON")
    good(server)


@pytest.mark.parametrize(
    ("change", "param"),
    [
        ({"messages": []}, "messages"),
        ({"model": ""}, "model"),
        ({"max_tokens": 0}, "max_tokens"),
        ({"max_tokens": 100000}, "max_tokens"),
        ({"max_completion_tokens": -1}, "max_completion_tokens"),
        ({"temperature": 3}, "temperature"),
        ({"n": 9}, "n"),
        ({"stop": ["a", "b", "c", "d", "e"]}, "stop"),
        ({"messages": [{"role": "function", "content": "x"}]}, "messages[0].role"),
        ({"messages": [{"role": "user", "content": [{"type": "input_audio", "input_audio": {}}]}]}, "messages[0].content[0]"),
    ],
)
def test_invalid_parameters(server, idle, change, param):
    request = {**body(server, png_url()), **change}
    error = assert_error(chat(server, request), 400, "invalid_request")
    assert error["param"] == param
    good(server)


def test_missing_messages_field(server, idle):
    error = assert_error(chat(server, {"model": "labeeb"}), 400, "invalid_request", "Field required")
    assert error["param"] == "messages"


def test_last_message_must_be_from_the_user(server, idle):
    messages = [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}]
    assert_error(chat(server, {"model": "labeeb", "messages": messages}), 400, "invalid_request", "from the user")
    good(server)


def test_empty_user_message(server, idle):
    assert_error(chat(server, {"model": "labeeb", "messages": [{"role": "user", "content": ""}]}),
                 400, "invalid_request", "neither text nor images")
    good(server)


def test_unknown_model(server, idle, client):
    with pytest.raises(openai.NotFoundError) as caught:
        client.chat.completions.create(model="gpt-9", messages=[{"role": "user", "content": "hi"}])
    assert caught.value.body["code"] == "model_not_found"
    assert "labeeb" in caught.value.body["message"]
    assert_error(httpx.get(server.api + "/models/gpt-9"), 404, "model_not_found")
    good(server)


def test_unknown_endpoint_and_wrong_method(server, idle):
    assert_error(httpx.get(server.api + "/nothing-here"), 404, None, "no such endpoint")
    assert_error(httpx.get(server.api + "/chat/completions"), 405, None, "GET is not allowed")
    good(server)


def test_screen_questions_are_refused_unless_allowed(server, idle):
    response = chat(server, {"model": "labeeb", "messages": [{"role": "user", "content": "what's on my screen?"}]})
    assert_error(response, 403, "screen_access_disabled", "server.allow_screen")
    assert_error(httpx.get(server.url + "/api/screenshot"), 403, "screen_access_disabled")
    good(server)


# -- the queue -------------------------------------------------------------------------------


def test_full_queue_answers_429_with_retry_after(server, idle):
    results: dict[str, httpx.Response] = {}
    rejected = server.health()["queue"]["rejected"]
    with server.busy():
        waiting = threading.Thread(target=lambda: results.setdefault("waiting", chat(server, body(server, png_url()))))
        waiting.start()
        server.wait_for(lambda h: h["queue"]["waiting"] == 1, what="a request waiting")
        response = chat(server, body(server, png_url()))
        assert_error(response, 429, "queue_full", "busy", "try again")
        assert int(response.headers["retry-after"]) >= 1
        assert server.health()["queue"]["rejected"] == rejected + 1
    waiting.join(timeout=120)
    # The waiting request ran once the long answer was cancelled (its client went away).
    assert results["waiting"].status_code == 200
    good(server)


# -- audio -----------------------------------------------------------------------------------


def wav(seconds: float, rate: int = 16000) -> bytes:
    import numpy as np
    import soundfile

    t = np.arange(int(seconds * rate)) / rate
    buffer = io.BytesIO()
    soundfile.write(buffer, (0.2 * np.sin(2 * np.pi * 440 * t)).astype("float32"), rate, format="WAV")
    return buffer.getvalue()


def transcribe(server, data: bytes | None, **fields: str) -> httpx.Response:
    files = {"file": ("audio.wav", data, "audio/wav")} if data is not None else None
    return post(server, "/audio/transcriptions", files=files, data={"model": "whisper-1", **fields})


def test_audio_too_long(server, idle):
    assert_error(transcribe(server, wav(12.0)), 400, "audio_too_long", "12.0 s", "at most 10 s")
    assert transcribe(server, wav(1.0)).status_code == 200


def test_audio_that_is_not_audio(server, idle):
    assert_error(transcribe(server, b"this is not audio" * 10), 400, "invalid_audio", "not audio")
    assert_error(transcribe(server, b""), 400, "invalid_audio", "empty")
    assert transcribe(server, wav(1.0)).status_code == 200


def test_transcription_without_a_file_or_with_a_bad_format(server, idle):
    error = assert_error(transcribe(server, None), 400, "invalid_request", "Field required")
    assert error["param"] == "file"
    assert_error(transcribe(server, wav(1.0), response_format="mp4"), 400, "invalid_request")
    assert transcribe(server, wav(1.0)).status_code == 200


def test_speech_bad_inputs(server, idle):
    def speak(**payload: Any) -> httpx.Response:
        return post(server, "/audio/speech", json={"model": "tts-1", "voice": "alloy", **payload})

    assert_error(speak(input=""), 400, "invalid_request")
    assert_error(speak(input="x" * 5000), 400, "invalid_request")
    assert_error(speak(input="***"), 400, "invalid_input", "no words")
    assert_error(speak(input="hello", response_format="ogg"), 400, "invalid_request", "'wav' or 'pcm'")
    assert_error(speak(input="hello", speed=10), 400, "invalid_request")
    assert_error(speak(input="hello", voice="no-such-voice-anywhere"), 400, "invalid_voice")
    ok = speak(input="hello", response_format="wav")
    assert ok.status_code == 200 and ok.content[:4] == b"RIFF"


def test_multipart_body_over_the_limit(server, idle):
    assert_error(transcribe(server, b"\0" * (3 * 1024 * 1024)), 413, "request_too_large")
    assert transcribe(server, wav(1.0)).status_code == 200


def test_base64_decoding_tolerates_whitespace_and_missing_padding(server, idle):
    encoded = base64.b64encode(image_bytes()).decode().rstrip("=")
    spaced = "\n".join(encoded[i : i + 76] for i in range(0, len(encoded), 76))
    response = chat(server, body(server, "data:image/png;base64," + spaced))
    assert response.status_code == 200, response.text
