"""Chat completions over real HTTP with the official OpenAI SDK, against ``labeeb serve``."""

from __future__ import annotations

import httpx
import pytest
from server_kit import data_url, image_bytes, png_url, user_message

pytestmark = pytest.mark.slow


def test_health_reports_model_readiness_uptime_version_and_time(server):
    response = httpx.get(server.url + "/health")
    assert response.status_code == 200
    health = response.json()
    assert health["status"] == "ok" and health["ready"] is True
    assert health["model"] == server.vision_model
    assert health["backend"] == "transformers" and health["backend_status"] == "ready"
    assert health["uptime_s"] > 0
    assert health["version"] == __import__("labeeb").__version__
    assert health["timestamp"].endswith("+00:00")
    assert health["queue"]["size"] == 1
    assert health["features"] == {"auth": False, "screen": False}


def test_models_list_has_labeeb_and_the_vision_model(client, server):
    ids = [m.id for m in client.models.list().data]
    assert ids == ["labeeb", server.vision_model]
    assert client.models.retrieve("labeeb").owned_by == "labeeb"


def test_completion_with_a_base64_png_from_the_model_directly(client, server, idle):
    completion = client.chat.completions.create(
        model=server.vision_model, max_tokens=8,
        messages=[user_message("What is in this image?", png_url())],
    )
    assert completion.object == "chat.completion" and completion.id.startswith("chatcmpl-")
    assert completion.model == server.vision_model
    choice = completion.choices[0]
    assert choice.message.role == "assistant" and choice.message.content.strip()
    # The greedy tiny model never stops by itself: the answer is cut at max_tokens.
    assert choice.finish_reason == "length"
    usage = completion.usage
    assert usage.completion_tokens == 8
    # SmolVLM's processor turns one image into many 64-token tiles: real token ids, counted.
    assert usage.prompt_tokens > 64
    assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens


def test_completion_through_the_plugins_with_model_labeeb(client, server, idle):
    completion = client.chat.completions.create(
        model="labeeb", max_tokens=6, messages=[user_message("What is in this image?", png_url())],
    )
    assert completion.model == "labeeb"
    assert completion.choices[0].message.content.strip()
    assert completion.usage.prompt_tokens > 64


def test_labeeb_routes_to_a_plugin_skill(client, idle):
    completion = client.chat.completions.create(model="labeeb", messages=[{"role": "user", "content": "help"}])
    text = completion.choices[0].message.content
    assert text.startswith("I can help with:")
    # No model ran, so no tokens were used.
    assert completion.usage.total_tokens == 0


def test_streamed_completion_yields_chunks_then_usage(client, server, idle):
    stream = client.chat.completions.create(
        model=server.vision_model, max_tokens=10, stream=True, stream_options={"include_usage": True},
        messages=[user_message("Describe the picture.", png_url())],
    )
    chunks = list(stream)
    assert chunks[0].choices[0].delta.role == "assistant"
    pieces = [c.choices[0].delta.content for c in chunks if c.choices and c.choices[0].delta.content]
    assert len(pieces) >= 2, "the answer should arrive in several chunks"
    finals = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
    assert finals == ["length"]
    assert chunks[-1].choices == [] and chunks[-1].usage.completion_tokens == 10
    # The same request without streaming gives the same (greedy) text.
    plain = client.chat.completions.create(
        model=server.vision_model, max_tokens=10, messages=[user_message("Describe the picture.", png_url())],
    )
    assert "".join(pieces) == plain.choices[0].message.content


def test_raw_stream_is_server_sent_events_ending_with_done(server, idle):
    body = {"model": "labeeb", "stream": True, "messages": [{"role": "user", "content": "help"}]}
    with httpx.stream("POST", server.api + "/chat/completions", json=body, timeout=60) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        lines = [line for line in response.iter_lines() if line]
    assert all(line.startswith("data: ") for line in lines)
    assert lines[-1] == "data: [DONE]"


def test_several_images_in_one_message_and_every_format(client, server, idle):
    one = client.chat.completions.create(
        model=server.vision_model, max_tokens=2, messages=[user_message("Compare.", png_url())],
    )
    urls = [
        data_url(image_bytes(fmt="PNG"), "image/png"),
        data_url(image_bytes(color=(30, 200, 30), fmt="JPEG"), "image/jpeg"),
        data_url(image_bytes(color=(30, 30, 200), fmt="WEBP"), "image/webp"),
    ]
    three = client.chat.completions.create(
        model=server.vision_model, max_tokens=2, messages=[user_message("Compare.", *urls)],
    )
    # Every image reached the model: each one adds its tiles' tokens to the prompt.
    assert three.usage.prompt_tokens > 2.5 * (one.usage.prompt_tokens - 40)
    gif = client.chat.completions.create(
        model=server.vision_model, max_tokens=2,
        messages=[user_message("What is it?", data_url(image_bytes(fmt="GIF"), "image/gif"))],
    )
    assert gif.choices[0].message.content


def test_the_real_bytes_decide_the_format_not_the_claimed_mime_type(client, server, idle):
    jpeg_claimed_png = data_url(image_bytes(fmt="JPEG"), "image/png")
    completion = client.chat.completions.create(
        model=server.vision_model, max_tokens=2, messages=[user_message("What is it?", jpeg_claimed_png)],
    )
    assert completion.choices[0].message.content


def test_stop_sequence_cuts_the_answer(client, server, idle):
    messages = [user_message("Describe the picture.", png_url())]
    full = client.chat.completions.create(model=server.vision_model, max_tokens=12, messages=messages)
    text = full.choices[0].message.content
    words = text.split()
    stop = words[2]
    cut = client.chat.completions.create(model=server.vision_model, max_tokens=12, messages=messages, stop=[stop])
    assert cut.choices[0].message.content == text[: text.index(stop)]
    assert cut.choices[0].finish_reason == "stop"
    # Tokens the model generated before it was stopped (how many depends on timing).
    assert 0 < cut.usage.completion_tokens <= 12
    streamed = client.chat.completions.create(
        model=server.vision_model, max_tokens=12, messages=messages, stop=stop, stream=True,
    )
    pieces = [c.choices[0].delta.content or "" for c in streamed if c.choices]
    assert "".join(pieces) == text[: text.index(stop)]


def test_max_completion_tokens_and_temperature(client, server, idle):
    completion = client.chat.completions.create(
        model=server.vision_model, max_completion_tokens=3, temperature=0.8,
        messages=[user_message("Say something.", png_url())],
    )
    assert completion.usage.completion_tokens == 3


def test_follow_up_questions_see_the_earlier_image(client, server, idle):
    first = user_message("What is in this image?", png_url())
    no_image = client.chat.completions.create(
        model=server.vision_model, max_tokens=2, messages=[{"role": "user", "content": "And the colour?"}],
    )
    follow_up = client.chat.completions.create(
        model=server.vision_model, max_tokens=2,
        messages=[
            {"role": "system", "content": "You answer briefly."},
            first,
            {"role": "assistant", "content": "A red square."},
            {"role": "user", "content": "And the colour?"},
        ],
    )
    # The earlier image (its tiles) and the history are part of the follow-up's prompt.
    assert follow_up.usage.prompt_tokens > no_image.usage.prompt_tokens + 64


def test_a_follow_up_reports_the_prompt_tokens_it_did_not_compute_again(client, server, idle):
    picture = {"type": "image_url", "image_url": {"url": png_url((1100, 900))}}
    first = [{"role": "user", "content": [{"type": "text", "text": "Describe this."}, picture]}]
    fresh = client.chat.completions.create(model=server.vision_model, max_tokens=2, messages=first)
    follow = client.chat.completions.create(model=server.vision_model, max_tokens=2, messages=[
        *first, {"role": "assistant", "content": fresh.choices[0].message.content},
        {"role": "user", "content": "And the colours?"}])
    # The follow-up reuses the picture's part of the prompt (an earlier request may have left
    # the chat template's first tokens for the fresh one too).
    cached = follow.usage.prompt_tokens_details.cached_tokens
    assert fresh.usage.prompt_tokens_details.cached_tokens + 64 < cached < follow.usage.prompt_tokens
