"""``labeeb serve`` in front of an OpenAI-compatible server (vision.backend = "openai"), over real
HTTP with the official openai SDK: what the upstream says about its answer comes back as it
said it (finish_reason, usage, token log probabilities), and what it leaves out is made up for
(usage counted here, also when a stop sequence ends the answer early).

The upstream is a small real HTTP server speaking OpenAI's streamed chat completions, so each
test can choose what it sends: vLLM, llama.cpp's server and litellm differ in exactly these.
"""

from __future__ import annotations

import http.server
import json
import threading
from pathlib import Path
from typing import Any, Iterator

import openai
import pytest
from server_kit import LabeebServer

pytestmark = pytest.mark.slow

WORDS = ["Hello", " there", ",", " friend", "."]
ASK = [{"role": "user", "content": "Say hello."}]


class Upstream(http.server.BaseHTTPRequestHandler):
    """Answers every chat completion with WORDS, one per chunk, as the test configured it."""

    payloads: list[dict[str, Any]] = []
    send_usage = True  # when the client asks for it (stream_options.include_usage)
    send_logprobs = True  # when the client asks for them
    finish_reason = "stop"

    def do_GET(self) -> None:  # noqa: N802
        self._send(200, b'{"object": "list", "data": [{"id": "up", "object": "model"}]}', "application/json")

    def do_POST(self) -> None:  # noqa: N802
        payload = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        Upstream.payloads.append(payload)
        events = [{"choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}}]}]
        for word in WORDS[: payload.get("max_tokens", 99)]:
            choice: dict[str, Any] = {"index": 0, "delta": {"content": word}}
            if payload.get("logprobs") and self.send_logprobs:
                top = [{"token": word, "logprob": -0.25, "bytes": list(word.encode())},
                       {"token": "?", "logprob": -2.0, "bytes": [63]}][: payload.get("top_logprobs", 0)]
                choice["logprobs"] = {"content": [{"token": word, "logprob": -0.25, "bytes": list(word.encode()),
                                                   "top_logprobs": top}]}
            events.append({"choices": [choice]})
        events.append({"choices": [{"index": 0, "delta": {}, "finish_reason": self.finish_reason}]})
        if self.send_usage and (payload.get("stream_options") or {}).get("include_usage"):
            events.append({"choices": [], "usage": {"prompt_tokens": 31, "completion_tokens": len(events) - 2,
                                                    "total_tokens": 31 + len(events) - 2,
                                                    "prompt_tokens_details": {"cached_tokens": 16}}})
        body = "".join(f"data: {json.dumps(event)}\n\n" for event in events) + "data: [DONE]\n\n"
        self._send(200, body.encode(), "text/event-stream")

    def _send(self, status: int, body: bytes, kind: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def upstream() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Upstream)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    finally:
        server.shutdown()


def front_server(workdir: Path, tiny_model_dir: Path, upstream: str, model: str) -> LabeebServer:
    return LabeebServer(workdir, tiny_model_dir, config=f"""
[vision]
backend = "openai"
[vision.cache]
enabled = false
[vision.openai]
base_url = "{upstream}"
model = "{model}"
max_retries = 0
""")


@pytest.fixture(scope="module")
def front(upstream, tiny_model_dir, tmp_path_factory) -> Iterator[LabeebServer]:
    """Labeeb in front of the upstream, serving a model whose tokenizer files are here."""
    with front_server(tmp_path_factory.mktemp("front"), tiny_model_dir, upstream,
                      str(tiny_model_dir)).running() as server:
        yield server


@pytest.fixture
def client(front) -> Iterator[openai.OpenAI]:
    Upstream.payloads, Upstream.send_usage, Upstream.send_logprobs, Upstream.finish_reason = [], True, True, "stop"
    with openai.OpenAI(base_url=front.api, api_key="x", max_retries=0, timeout=120) as sdk:
        yield sdk


def tokens(tiny_model_dir: Path, text: str) -> int:
    from transformers import AutoTokenizer

    return len(AutoTokenizer.from_pretrained(tiny_model_dir)(text, add_special_tokens=False)["input_ids"])


def test_finish_reason_and_usage_are_the_upstreams(front, client):
    Upstream.finish_reason = "length"  # the upstream's own limit, which Labeeb cannot see
    answer = client.chat.completions.create(model=front.vision_model, messages=ASK, max_tokens=100)
    assert answer.choices[0].message.content == "".join(WORDS)
    assert answer.choices[0].finish_reason == "length"
    assert (answer.usage.prompt_tokens, answer.usage.completion_tokens, answer.usage.total_tokens) == (31, 5, 36)
    assert answer.usage.prompt_tokens_details.cached_tokens == 16
    streamed = list(client.chat.completions.create(model=front.vision_model, messages=ASK, max_tokens=100,
                                                   stream=True, stream_options={"include_usage": True}))
    assert [c.choices[0].finish_reason for c in streamed if c.choices and c.choices[0].finish_reason] == ["length"]
    assert streamed[-1].usage.completion_tokens == 5
    Upstream.finish_reason = "content_filter"
    assert client.chat.completions.create(model=front.vision_model, messages=ASK).choices[0].finish_reason \
        == "content_filter"


def test_without_the_upstreams_usage_tokens_are_counted_here(front, client, tiny_model_dir):
    Upstream.send_usage = False  # as servers that ignore stream_options do
    answer = client.chat.completions.create(model=front.vision_model, messages=ASK)
    assert answer.usage.completion_tokens == tokens(tiny_model_dir, "".join(WORDS))
    assert answer.usage.prompt_tokens >= tokens(tiny_model_dir, "Say hello.")
    assert answer.usage.total_tokens == answer.usage.prompt_tokens + answer.usage.completion_tokens


def test_a_stop_sequence_that_fires_here_still_reports_usage(front, client, tiny_model_dir):
    # Labeeb cuts the answer at its stop sequences itself (as for every backend) and stops
    # reading, before the upstream's usage comes, so it counts the tokens itself.
    answer = client.chat.completions.create(model=front.vision_model, messages=ASK, stop=[","])
    assert answer.choices[0].message.content == "Hello there" and answer.choices[0].finish_reason == "stop"
    # Counted as far as it was read: the stop sequence too, as the in-process engine counts it.
    assert answer.usage.completion_tokens == tokens(tiny_model_dir, "Hello there,") and answer.usage.prompt_tokens > 0
    streamed = list(client.chat.completions.create(model=front.vision_model, messages=ASK, stop=[","], stream=True,
                                                   stream_options={"include_usage": True}))
    assert streamed[-1].usage.completion_tokens == answer.usage.completion_tokens


def test_logprobs_come_from_the_upstream(front, client):
    answer = client.chat.completions.create(model=front.vision_model, messages=ASK, logprobs=True, top_logprobs=2)
    assert Upstream.payloads[-1]["logprobs"] is True and Upstream.payloads[-1]["top_logprobs"] == 2
    content = answer.choices[0].logprobs.content
    assert [entry.token for entry in content] == WORDS
    assert all(entry.logprob == -0.25 and [t.token for t in entry.top_logprobs] == [entry.token, "?"]
               for entry in content)
    streamed = [c for c in client.chat.completions.create(model=front.vision_model, messages=ASK, logprobs=True,
                                                          stream=True) if c.choices and c.choices[0].delta.content]
    assert [[e.token for e in c.choices[0].logprobs.content] for c in streamed] == [[w] for w in WORDS]


def test_an_upstream_without_logprobs_is_a_400_naming_them(front, client):
    Upstream.send_logprobs = False
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(model=front.vision_model, messages=ASK, logprobs=True)
    assert caught.value.body["param"] == "logprobs" and "log probabilities" in caught.value.body["message"]


def test_n_choices_ask_the_upstream_once_each_with_their_own_seeds(front, client):
    answer = client.chat.completions.create(model=front.vision_model, messages=ASK, n=3, seed=11, temperature=0.8)
    assert [choice.index for choice in answer.choices] == [0, 1, 2]
    seeds = [payload["seed"] for payload in Upstream.payloads]
    assert len(seeds) == 3 and seeds[0] == 11 and len(set(seeds)) == 3
    assert (answer.usage.prompt_tokens, answer.usage.completion_tokens) == (31, 15)
    client.chat.completions.create(model=front.vision_model, messages=ASK, n=3, seed=11, temperature=0.8)
    assert [payload["seed"] for payload in Upstream.payloads[3:]] == seeds  # reproducible


def test_without_the_tokenizer_files_usage_is_estimated(upstream, tiny_model_dir, tmp_path):
    Upstream.send_usage = False
    with front_server(tmp_path, tiny_model_dir, upstream, "remote/unknown-model").running() as server:
        with openai.OpenAI(base_url=server.api, api_key="x", max_retries=0, timeout=120) as sdk:
            answer = sdk.chat.completions.create(model="remote/unknown-model", messages=ASK)
    # About 4 characters a token (labeeb.vision.backends.token_count): never zero.
    assert answer.usage.completion_tokens == 5 and answer.usage.prompt_tokens == 3
