"""Per-request generation options travel with the command, never through shared config
(issue 16), and the samplers honour seed and top_p."""

from __future__ import annotations

import sys
import threading
from pathlib import Path

import pytest
from PIL import Image

from labeeb.config import VisionConfig
from labeeb.messages import Command, Generation
from labeeb.testing import FakeVision, make_assistant
from labeeb.vision.processor import VisionProcessor
from labeeb.vision.backends.transformers import TransformersBackend

sys.path.insert(0, str(Path(__file__).parent / "reliability"))


def test_the_commands_options_reach_every_model_call_and_cap_the_skills():
    fake = FakeVision("an answer of five words")
    assistant = make_assistant(vision=fake)
    before = assistant.vision.config.model_copy()
    command = Command("describe this", images=[Image.new("RGB", (32, 32))],
                      generation=Generation(max_tokens=3, temperature=0.7, top_p=0.5, seed=42, stop=("five",)))
    assistant.handle(command)
    [request] = fake.requests
    assert (request.max_new_tokens, request.temperature, request.top_p, request.seed) == (3, 0.7, 0.5, 42)
    assert "five" in request.stop
    assert assistant.vision.config == before  # nothing was written to the shared config


def test_a_skill_asking_for_more_than_the_request_allows_is_capped():
    from labeeb.skills import Request, Skill

    fake = FakeVision("x")
    assistant = make_assistant(vision=fake)
    command = Command("x", generation=Generation(max_tokens=5))
    request = Request(command=command, skill=Skill("s", lambda r: "", "s"), assistant=assistant,
                      session=assistant.session, cancel=threading.Event())
    assert request.command_generation({"max_new_tokens": 48})["max_new_tokens"] == 5
    assert request.command_generation({"max_new_tokens": 2})["max_new_tokens"] == 2
    assert request.command_generation({})["max_new_tokens"] == 5


def test_api_requests_each_get_their_own_max_tokens_and_leave_the_config_alone():
    """Through the plugins, each request's limit reaches the model while the shared config
    keeps its default (the server used to set it for the length of each request)."""
    from fastapi.testclient import TestClient
    from reliability_kit import chat_body, served

    seen: dict[str, tuple[int, int]] = {}
    fake = FakeVision(lambda request: seen.setdefault(
        request.prompt, (request.max_new_tokens, assistant.vision.config.max_new_tokens)) and "ok")
    assistant = make_assistant(vision=fake)
    with TestClient(served(assistant), base_url="http://127.0.0.1") as http:
        results = []

        def ask(text: str, limit: int) -> None:
            results.append(http.post("/v1/chat/completions",
                                     json=chat_body(text, max_tokens=limit)).status_code)

        threads = [threading.Thread(target=ask, args=(f"describe the sky {n}", n)) for n in (3, 7)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
    assert results == [200, 200]
    default = VisionConfig().max_new_tokens
    assert sorted(seen.values()) == [(3, default), (7, default)]


@pytest.fixture(scope="module")
def vision(tiny_model_dir):
    processor = VisionProcessor(VisionConfig(model=str(tiny_model_dir), dtype="float32", max_new_tokens=8),
                                {"transformers": TransformersBackend})
    processor.backend()
    return processor


def test_seeds_repeat_and_differ_and_no_seed_varies(vision):
    picture = Image.new("RGB", (64, 48), "red")

    def sampled(**kw):
        return vision.generate("describe", [picture], temperature=1.5, **kw).text

    assert sampled(seed=1) == sampled(seed=1)
    assert len({sampled(seed=s) for s in range(5)}) > 1
    assert len({sampled() for _ in range(5)}) > 1  # without a seed, each answer is drawn anew


def test_a_tiny_top_p_keeps_only_the_likeliest_token(vision):
    picture = Image.new("RGB", (64, 48), "blue")
    greedy = vision.generate("describe", [picture]).text
    assert vision.generate("describe", [picture], temperature=1.0, top_p=1e-9, seed=3).text == greedy


def test_token_logprobs_come_from_the_distribution_each_token_was_chosen_from(vision):
    import math

    picture = Image.new("RGB", (64, 48), "green")
    for sampling in ({}, {"temperature": 0.9, "top_p": 0.8, "seed": 4}):
        stream = vision.stream("describe", [picture], logprobs=5, **sampling)
        text = "".join(stream)
        entries = stream.stats.logprobs
        assert len(entries) == stream.stats.completion_tokens == 8  # the tiny model never ends early
        assert "".join(bytes(e.bytes).decode("utf-8", "replace") for e in entries if e.shown) == text
        for entry in entries:
            tops = [alternative.logprob for alternative in entry.top]
            assert len(tops) == 5 and tops == sorted(tops, reverse=True)
            assert sum(math.exp(t) for t in tops) <= 1 + 1e-4 and entry.logprob <= tops[0]
            if not sampling:  # greedy: the likeliest token
                assert entry.logprob == tops[0] and entry.token == entry.top[0].token
            else:  # sampled from the kept tokens: never one of probability 0 (-9999)
                assert entry.logprob > -9999
    # With a tiny top_p only the likeliest token is kept: it is certain, the others impossible.
    stream = vision.stream("describe", [picture], logprobs=2, temperature=1.0, top_p=1e-9, seed=3)
    list(stream)
    assert all(e.logprob == 0.0 and [a.logprob for a in e.top] == [0.0, -9999.0] for e in stream.stats.logprobs)


def test_the_plain_engine_refuses_logprobs_by_name(tiny_model_dir):
    from labeeb.vision.backend import UnsupportedRequestError

    plain = VisionProcessor(VisionConfig(model=str(tiny_model_dir), engine="plain", max_new_tokens=2),
                            {"transformers": TransformersBackend})
    with pytest.raises(UnsupportedRequestError) as caught:
        plain.generate("describe", [], logprobs=0)
    assert caught.value.param == "logprobs" and "plain engine" in str(caught.value)
