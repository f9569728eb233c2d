"""``n`` choices and token ``logprobs`` on /v1/chat/completions, over real HTTP with the official
openai SDK, against a real ``labeeb serve`` whose model is a real language model (SmolLM2-135M-
Instruct inside SmolVLM, labeeb.real_lm), so seeds, answers and probabilities mean something;
and what cannot be honoured is a 400 naming the field (the tiny random model's server)."""

from __future__ import annotations

import asyncio
import math
from typing import Any

import httpx
import openai
import pytest
from transformers import AutoTokenizer
from server_kit import LabeebServer, assert_error

from labeeb import real_lm
from labeeb.server.queue import QueueFull, WorkQueue

pytestmark = pytest.mark.slow

CAPITAL = [{"role": "user", "content": "What is the capital of France?"}]
STORY = [{"role": "user", "content": "Write one sentence about a cat."}]


@pytest.fixture(scope="module")
def real_server(smolvlm_files_dir, _converted_models, tmp_path_factory) -> Any:
    model = real_lm.smollm2_smolvlm_dir(_converted_models)
    with LabeebServer(tmp_path_factory.mktemp("choices"), model, config="[vision.cache]\nenabled = false\n").running() \
            as server:
        yield server


@pytest.fixture
def real(real_server) -> openai.OpenAI:
    real_server.wait_idle()
    return openai.OpenAI(base_url=real_server.api, api_key="x", max_retries=0, timeout=900)


def ask(real: openai.OpenAI, server: LabeebServer, **request: Any) -> Any:
    return real.chat.completions.create(model=server.vision_model, **request)


def streamed_choices(real: openai.OpenAI, server: LabeebServer, **request: Any) -> tuple[dict, dict, dict, Any]:
    """(text, finish reason, logprob entries) by choice index, and the usage, from the raw chunks."""
    text: dict[int, str] = {}
    finish: dict[int, str] = {}
    logprobs: dict[int, list] = {}
    usage = None
    for chunk in ask(real, server, stream=True, stream_options={"include_usage": True}, **request):
        usage = chunk.usage or usage
        for choice in chunk.choices:
            text[choice.index] = text.get(choice.index, "") + (choice.delta.content or "")
            if choice.finish_reason:
                assert choice.index not in finish, "one finish_reason per choice"
                finish[choice.index] = choice.finish_reason
            if choice.logprobs is not None:
                logprobs.setdefault(choice.index, []).extend(choice.logprobs.content)
    return text, finish, logprobs, usage


def test_n_sampled_choices_differ_and_a_seed_repeats_them(real_server, real):
    request = {"messages": STORY, "n": 3, "temperature": 1.0, "seed": 42, "max_tokens": 12}
    answer = ask(real, real_server, **request)
    texts = [choice.message.content for choice in answer.choices]
    assert [choice.index for choice in answer.choices] == [0, 1, 2] and len(set(texts)) == 3, texts
    assert all(choice.finish_reason == "length" for choice in answer.choices)
    one = ask(real, real_server, **{**request, "n": 1})
    # The prompt is counted once, the three answers' tokens summed; choice 0 is the n = 1 answer.
    assert answer.usage.prompt_tokens == one.usage.prompt_tokens
    assert answer.usage.completion_tokens == 3 * 12 and texts[0] == one.choices[0].message.content
    assert [c.message.content for c in ask(real, real_server, **request).choices] == texts  # reproducible
    assert [c.message.content for c in ask(real, real_server, **{**request, "seed": 43}).choices] != texts
    text, finish, _, usage = streamed_choices(real, real_server, **request)
    assert [text[i] for i in range(3)] == texts and finish == {0: "length", 1: "length", 2: "length"}
    assert usage.completion_tokens == 36 and usage.prompt_tokens == one.usage.prompt_tokens


def test_n_greedy_choices_are_the_same_answer(real_server, real):
    answer = ask(real, real_server, messages=CAPITAL, n=2, temperature=0, max_tokens=10, stop=["."])
    first, second = (choice.message.content for choice in answer.choices)
    assert first == second and "Paris" in first, first
    assert [choice.finish_reason for choice in answer.choices] == ["stop", "stop"]


def test_logprobs_of_a_greedy_answer(real_server, real):
    answer = ask(real, real_server, messages=CAPITAL, max_tokens=10, logprobs=True, top_logprobs=5)
    content = answer.choices[0].logprobs.content
    # Every answer token has an entry; the special ones (SmolLM2's <|im_end|>, which SmolVLM's
    # generation config does not stop at) are left out of the text, as skip_special_tokens does.
    special = set(AutoTokenizer.from_pretrained(real_server.model_dir).all_special_tokens)
    assert len(content) == answer.usage.completion_tokens
    assert "".join(e.token for e in content if e.token not in special) == answer.choices[0].message.content
    for entry in content:
        assert bytes(entry.bytes).decode() == entry.token
        tops = [alternative.logprob for alternative in entry.top_logprobs]
        assert len(tops) == 5 and tops == sorted(tops, reverse=True) and sum(map(math.exp, tops)) <= 1 + 1e-4
        assert entry.logprob == tops[0] and entry.token == entry.top_logprobs[0].token  # greedy: the likeliest
    paris = next(entry for entry in content if entry.token.strip() == "Paris")
    assert math.exp(paris.logprob) > 0.5  # the model is sure of it
    text, _, logprobs, _ = streamed_choices(real, real_server, messages=CAPITAL, max_tokens=10, logprobs=True,
                                            top_logprobs=5)
    assert text[0] == answer.choices[0].message.content
    assert [(e.token, e.logprob) for e in logprobs[0]] == [(e.token, e.logprob) for e in content]


def test_logprobs_of_sampled_choices_and_up_to_a_stop_sequence(real_server, real):
    answer = ask(real, real_server, messages=STORY, n=2, temperature=0.8, top_p=0.9, seed=5, max_tokens=16,
                 logprobs=True, stop=["."])
    for choice in answer.choices:
        content = choice.logprobs.content
        joined = "".join(entry.token for entry in content)
        assert joined.startswith(choice.message.content) and all(entry.top_logprobs == [] for entry in content)
        # Tokens past the stop sequence are not given: at most the one that holds it.
        assert len(joined) - len(choice.message.content) <= len(content[-1].token)
        assert all(-9999 < entry.logprob <= 0 for entry in content)


def test_what_cannot_be_honoured_is_a_400_naming_it(server, idle):
    def post(**body: Any) -> httpx.Response:
        base = {"model": server.vision_model, "max_tokens": 1, "messages": [{"role": "user", "content": "Hi"}]}
        return httpx.post(server.api + "/chat/completions", json={**base, **body}, timeout=120)

    assert assert_error(post(n=9), 400, "invalid_request", "less than or equal to 8")["param"] == "n"
    assert assert_error(post(top_logprobs=21, logprobs=True), 400, "invalid_request")["param"] == "top_logprobs"
    assert assert_error(post(top_logprobs=2), 400, "invalid_request", "logprobs = true")["param"] == "top_logprobs"
    assert assert_error(post(model="labeeb", n=2), 400, "unsupported_parameter", "skills")["param"] == "n"
    assert assert_error(post(model="labeeb", logprobs=True), 400, "unsupported_parameter")["param"] == "logprobs"
    tool = {"type": "function", "function": {"name": "f", "parameters": {"type": "object", "properties": {}}}}
    error = assert_error(post(logprobs=True, tools=[tool], tool_choice="required"), 400, "unsupported_parameter")
    assert error["param"] == "logprobs"
    assert post(n=2, logprobs=True, top_logprobs=20).status_code == 200


def test_a_request_for_n_answers_waits_like_n_requests():
    async def fill() -> None:
        queue = WorkQueue(size=3)  # not started: every job waits
        queue.submit(lambda job: None, weight=3)
        with pytest.raises(QueueFull):
            queue.submit(lambda job: None)
        other = WorkQueue(size=3)
        other.submit(lambda job: None, weight=2)
        other.submit(lambda job: None)  # 2 waiting: room for one more request's work

    asyncio.run(fill())
