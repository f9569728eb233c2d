"""Every field the official ``openai`` SDK can send to /v1/chat/completions is honoured or
refused with a 400 naming it: none is accepted and then ignored."""

from __future__ import annotations

import httpx
import pytest

from labeeb.server.schemas import NEUTRAL_ONLY, ChatCompletionRequest

pytestmark = pytest.mark.slow

#: A value that asks for something Labeeb cannot do, per field taken only when neutral.
ASKING = {
    "logit_bias": {"50256": -100}, "frequency_penalty": 0.5,
    "presence_penalty": 0.5, "modalities": ["text", "audio"], "audio": {"voice": "alloy", "format": "wav"},
    "prediction": {"type": "content", "content": "x"}, "reasoning_effort": "high", "verbosity": "low",
    "web_search_options": {}, "store": True, "service_tier": "flex", "moderation": {"model": "x"},
    "prompt_cache_options": {"x": 1}, "prompt_cache_retention": "24h",
}


def sdk_fields() -> set[str]:
    from openai.types.chat import completion_create_params

    fields = set(completion_create_params.CompletionCreateParamsBase.__annotations__)
    return fields | {"stream"}


def test_every_field_the_sdk_knows_is_listed_and_each_refusable_one_says_why():
    known = set(ChatCompletionRequest.model_fields)
    assert sdk_fields() <= known, f"fields the SDK sends that the server does not list: {sdk_fields() - known}"
    assert set(ASKING) == set(NEUTRAL_ONLY)


def ask(server, **extra):
    body = {"model": server.vision_model, "max_tokens": 1, "messages": [{"role": "user", "content": "Hi"}], **extra}
    return httpx.post(server.api + "/chat/completions", json=body, timeout=120)


@pytest.mark.parametrize("field", sorted(ASKING))
def test_a_field_asking_for_what_cannot_be_done_is_a_400_naming_it(server, idle, field):
    answer = ask(server, **{field: ASKING[field]})
    assert answer.status_code == 400, answer.text
    error = answer.json()["error"]
    assert error["param"] == field and "400 rather than ignore it" in error["message"], error


def test_neutral_values_labels_and_unknown_fields(server, idle):
    neutral = {"logprobs": False, "top_logprobs": 0, "frequency_penalty": 0, "presence_penalty": 0.0,
               "modalities": ["text"], "store": False, "service_tier": "auto", "user": "u-1",
               "metadata": {"ticket": "42"}, "safety_identifier": "s", "prompt_cache_key": "k"}
    assert ask(server, **neutral).status_code == 200
    unknown = ask(server, made_up_option=1)
    assert unknown.status_code == 400 and unknown.json()["error"]["param"] == "made_up_option"
    assert ask(server, n=9).json()["error"]["param"] == "n"  # n and logprobs: tests/server/test_server_choices.py
