"""The ``openai`` vision backend over real HTTP, against ``labeeb serve``: one Labeeb using another.

Covers answers (plain and streamed, with usage), routing through the remote plugins, and
what goes wrong in real deployments: the server is down, refuses the key, is busy (429,
retried with backoff), too slow (timeout), or dies in the middle of an answer.
"""

from __future__ import annotations

import threading
from typing import Any

import httpx
import pytest
from PIL import Image, ImageDraw
from server_kit import KEY, LabeebServer, free_port, png_url, user_message

from labeeb.config import OpenAIBackendConfig, Settings, VisionConfig
from labeeb.testing import make_assistant, run_command
from labeeb.vision.backend import GenerationStats, ModelUnavailableError, VisionError, VisionRequest
from labeeb.vision.backends.openai import OpenAIBackend

pytestmark = pytest.mark.slow

#: Answered by the general (fallback) skill, which asks the model with exactly this prompt.
QUESTION = "Name the colour of the square."


def picture() -> Image.Image:
    image = Image.new("RGB", (64, 48), (245, 245, 240))
    ImageDraw.Draw(image).rectangle((16, 12, 48, 36), fill=(200, 30, 30))
    return image


def backend(base_url: str, model: str, **settings: Any) -> OpenAIBackend:
    config = VisionConfig(backend="openai", openai=OpenAIBackendConfig(base_url=base_url, model=model, **settings))
    return OpenAIBackend(config)


def ask(remote: OpenAIBackend, prompt: str = "What is in this image?", tokens: int = 8) -> tuple[list[str], GenerationStats]:
    stats = GenerationStats()
    chunks = list(remote.stream(VisionRequest(prompt, [picture()], max_new_tokens=tokens), stats))
    return chunks, stats


def test_one_labeeb_answers_through_another(server, client, idle):
    settings = Settings()
    settings.vision.backend = "openai"
    settings.vision.max_new_tokens = 8
    settings.vision.openai.base_url = server.api
    settings.vision.openai.model = server.vision_model
    assistant = make_assistant(settings=settings)
    reply = run_command(assistant, QUESTION, images=[picture()])
    assert not reply.error, reply.text
    assert reply.plugin == "general" and reply.skill == "ask"
    # Usage travelled back from the remote model: real token counts.
    assert reply.usage.prompt_tokens > 64 and reply.usage.completion_tokens == 8
    # The remote (greedy) model gives exactly what asking the server directly gives.
    direct = client.chat.completions.create(
        model=server.vision_model, max_tokens=8,
        messages=[user_message(QUESTION, png_url())],
    )
    assert reply.text == direct.choices[0].message.content
    # Nothing is looked at ahead of a question through a remote model (screen.look_while_listening).
    assert assistant.vision.loaded and not assistant.vision.can_look


def test_streams_chunks_and_usage(server, idle):
    remote = backend(server.api, server.vision_model)
    remote.load()
    chunks, stats = ask(remote, tokens=10)
    assert len(chunks) >= 2
    assert stats.completion_tokens == 10 and stats.prompt_tokens > 64


def test_model_labeeb_uses_the_remote_plugins(server, idle):
    remote = backend(server.api, "labeeb")
    remote.load()
    stats = GenerationStats()
    text = "".join(remote.stream(VisionRequest("help", []), stats))
    assert text.startswith("I can help with:")


def test_server_down_is_a_clear_error():
    remote = backend(f"http://127.0.0.1:{free_port()}/v1", "any")
    with pytest.raises(ModelUnavailableError) as caught:
        remote.load()
    assert "unreachable" in str(caught.value) and "labeeb serve" in str(caught.value)


def test_server_down_through_the_assistant():
    settings = Settings()
    settings.vision.backend = "openai"
    settings.vision.openai.base_url = f"http://127.0.0.1:{free_port()}/v1"
    reply = run_command(make_assistant(settings=settings), "What is in this image?", images=[picture()])
    assert reply.error and reply.data.get("model_unavailable")
    assert "unreachable" in reply.text


def test_wrong_base_url_says_so(server):
    remote = backend(server.url, server.vision_model)  # forgot the /v1
    with pytest.raises(ModelUnavailableError) as caught:
        remote.load()
    assert "/v1" in str(caught.value)


def test_refused_api_key(secure):
    with pytest.raises(ModelUnavailableError) as caught:
        backend(secure.api, secure.vision_model, api_key="wrong").load()
    assert "refused the API key" in str(caught.value)
    remote = backend(secure.api, secure.vision_model, api_key=KEY)
    remote.load()
    chunks, _ = ask(remote, tokens=2)
    assert chunks


def test_busy_server_429_without_retries(server, idle):
    remote = backend(server.api, server.vision_model, max_retries=0)
    remote.load()
    done: dict[str, httpx.Response] = {}
    with server.busy():
        waiting = threading.Thread(target=lambda: done.setdefault("b", httpx.post(
            server.api + "/chat/completions", timeout=120,
            json={"model": server.vision_model, "max_tokens": 2, "messages": [user_message("hi", png_url())]})))
        waiting.start()
        server.wait_for(lambda h: h["queue"]["waiting"] == 1, what="a request waiting")
        with pytest.raises(VisionError) as caught:
            ask(remote)
        assert "429" in str(caught.value) and "busy" in str(caught.value)
    waiting.join(120)
    assert done["b"].status_code == 200


def test_busy_server_429_is_retried_with_backoff(server, idle):
    remote = backend(server.api, server.vision_model, max_retries=5)
    remote.load()
    results: dict[str, Any] = {}

    def call() -> None:
        try:
            results["answer"] = ask(remote, tokens=4)
        except Exception as exc:  # reported by the assertion below
            results["error"] = exc

    rejected = server.health()["queue"]["rejected"]
    with server.busy():
        waiting = threading.Thread(target=lambda: httpx.post(
            server.api + "/chat/completions", timeout=120,
            json={"model": server.vision_model, "max_tokens": 2, "messages": [user_message("hi", png_url())]}))
        waiting.start()
        server.wait_for(lambda h: h["queue"]["waiting"] == 1, what="a request waiting")
        retrying = threading.Thread(target=call)
        retrying.start()
        server.wait_for(lambda h: h["queue"]["rejected"] > rejected, what="the backend's request refused with 429")
    # The long answer is gone now; the backend's next try gets in.
    retrying.join(180)
    waiting.join(120)
    assert "error" not in results, results.get("error")
    chunks, stats = results["answer"]
    assert chunks and stats.completion_tokens == 4


def test_timeout_is_a_clear_error(server, idle):
    remote = backend(server.api, server.vision_model, timeout=1.0, max_retries=0)
    remote.load()
    with server.busy():  # the backend's request waits in the queue, sending nothing back
        with pytest.raises(VisionError) as caught:
            ask(remote)
    assert "did not answer within 1 s" in str(caught.value) and "vision.openai.timeout" in str(caught.value)


def test_server_dying_mid_answer_and_then_gone(tiny_model_dir, tmp_path):
    dying = LabeebServer(tmp_path, tiny_model_dir, config="[vision.cache]\nenabled = false\n").start()
    try:
        remote = backend(dying.api, dying.vision_model, max_retries=1)
        remote.load()
        stats = GenerationStats()
        stream = remote.stream(VisionRequest("Describe this in great detail.", [picture()], max_new_tokens=7000), stats)
        assert next(stream)
        dying.process.kill()  # dies: a SIGTERM would end the answer cleanly ("shutting down")
        dying.process.wait()
        with pytest.raises(VisionError) as caught:
            for _ in stream:
                pass
        assert "broke off" in str(caught.value)
        with pytest.raises(VisionError) as caught:
            ask(remote)
        assert "cannot reach" in str(caught.value)
    finally:
        dying.stop()


def test_a_labeeb_in_front_of_a_model_server_that_comes_up_later(tiny_model_dir, tmp_path, client):
    port = free_port()
    front = LabeebServer(tmp_path / "front", tiny_model_dir, config=f"""
[vision]
backend = "openai"
[vision.openai]
base_url = "http://127.0.0.1:{port}/v1"
model = "{tiny_model_dir}"
max_retries = 0
""")
    (tmp_path / "front").mkdir()
    (tmp_path / "back").mkdir()
    back = LabeebServer(tmp_path / "back", tiny_model_dir, config="[vision.cache]\nenabled = false\n", port=port)
    front.start(wait=False)
    try:
        health = front.wait_for_status("error")
        assert "unreachable" in health["backend_status"]
        back.start()
        # The front keeps trying; it is ready once the model server answers.
        front.wait_for_status("ok")
        body = {"model": str(tiny_model_dir), "max_tokens": 6, "messages": [user_message(QUESTION, png_url())]}
        through_front = httpx.post(front.api + "/chat/completions", json=body, timeout=120).json()
        direct = httpx.post(back.api + "/chat/completions", json=body, timeout=120).json()
        assert through_front["choices"][0]["message"]["content"] == direct["choices"][0]["message"]["content"]
        counts = ("prompt_tokens", "completion_tokens", "total_tokens")
        assert [through_front["usage"][k] for k in counts] == [direct["usage"][k] for k in counts]
        # The second time the model server reuses the first request's prefix, and says so.
        assert direct["usage"]["prompt_tokens_details"]["cached_tokens"] > 0
    finally:
        front.stop()
        back.stop()


def test_response_format_and_tools_go_upstream_and_its_calls_come_back(server, idle):
    """The upstream (here another Labeeb) enforces them; its tool_calls come back as Labeeb's own."""
    import json

    import jsonschema
    from test_structured import BOUNDED, EMAIL, SCHEMA_FORMAT, WEATHER

    from labeeb.messages import Tools
    from labeeb.tool_calls import CallReader

    remote = backend(server.api, server.vision_model)
    remote.load()
    request = VisionRequest("Describe it.", [], max_new_tokens=60, response_format=SCHEMA_FORMAT)
    jsonschema.validate(json.loads("".join(remote.stream(request, GenerationStats()))), BOUNDED)
    tools = Tools((WEATHER, EMAIL), "function", "send_email", parallel=False)
    text = "".join(remote.stream(VisionRequest("Mail it.", [], max_new_tokens=60, tools=tools), GenerationStats()))
    reader = CallReader()
    reader.feed(text)
    reader.flush()
    assert [call.name for call in reader.calls] == ["send_email"] and not reader.cut_short, text
    jsonschema.validate(json.loads(reader.calls[0].arguments), EMAIL["parameters"])


def test_logprobs_and_finish_reason_come_from_the_upstream(server, client, idle):
    """Another Labeeb gives token log probabilities; they come back as it gave them."""
    remote = backend(server.api, server.vision_model)
    remote.load()
    stats = GenerationStats()
    text = "".join(remote.stream(VisionRequest(QUESTION, [picture()], max_new_tokens=4, logprobs=2), stats))
    direct = client.chat.completions.create(model=server.vision_model, max_tokens=4, logprobs=True, top_logprobs=2,
                                            messages=[user_message(QUESTION, png_url())])
    assert text == direct.choices[0].message.content and stats.finish_reason == "length"
    expected = [(e.token, e.logprob, [t.token for t in e.top_logprobs]) for e in direct.choices[0].logprobs.content]
    assert [(e.token, e.logprob, [t.token for t in e.top]) for e in stats.logprobs] == expected
