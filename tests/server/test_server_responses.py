"""``/v1/responses`` with the official OpenAI SDK against ``labeeb serve``: plain and
streamed answers, images, instructions, conversations by previous_response_id, storage."""

from __future__ import annotations

import httpx
import openai
import pytest
from server_kit import png_url

pytestmark = pytest.mark.slow

#: The documented order of a streamed text answer's events.
EVENTS = ["response.created", "response.in_progress", "response.output_item.added", "response.content_part.added",
          "response.output_text.delta", "response.output_text.done", "response.content_part.done",
          "response.output_item.done"]


def test_a_response_with_an_image_and_instructions(client, server, idle):
    response = client.responses.create(
        model=server.vision_model, max_output_tokens=6, instructions="Answer in one word.",
        input=[{"role": "user", "content": [{"type": "input_text", "text": "What colour is the square?"},
                                            {"type": "input_image", "image_url": png_url(), "detail": "low"}]}],
        metadata={"ticket": "42"},
    )
    assert response.object == "response" and response.id.startswith("resp_")
    assert response.status in ("completed", "incomplete") and response.output_text.strip()
    assert response.instructions == "Answer in one word." and response.metadata == {"ticket": "42"}
    assert response.usage.input_tokens > 64 and 0 < response.usage.output_tokens <= 6
    assert response.usage.total_tokens == response.usage.input_tokens + response.usage.output_tokens
    if response.status == "incomplete":
        assert response.incomplete_details.reason == "max_output_tokens"
    assert client.responses.retrieve(response.id).output_text == response.output_text


def test_streamed_events_come_in_the_documented_order_and_add_up(client, server, idle):
    events = list(client.responses.create(model=server.vision_model, input="Say hello.", max_output_tokens=5,
                                          stream=True))
    kinds = [event.type for event in events]
    deltas = [i for i, kind in enumerate(kinds) if kind == "response.output_text.delta"]
    assert deltas and kinds[-1] in ("response.completed", "response.incomplete")
    order = [kind for i, kind in enumerate(kinds) if kind != "response.output_text.delta" or i == deltas[0]]
    assert order[:-1] == EVENTS, kinds
    assert [event.sequence_number for event in events] == list(range(len(events)))
    text = "".join(events[i].delta for i in deltas)
    assert events[-1].response.output_text == text == events[deltas[-1] + 1].text
    assert client.responses.retrieve(events[0].response.id).output_text == text


def test_previous_response_id_continues_the_conversation_and_store_false_keeps_nothing(client, server, idle):
    first = client.responses.create(model=server.vision_model, max_output_tokens=3,
                                    input=[{"role": "user", "content": [
                                        {"type": "input_text", "text": "Describe the picture."},
                                        {"type": "input_image", "image_url": png_url()}]}])
    fresh = client.responses.create(model=server.vision_model, max_output_tokens=3, input="And the colour?")
    follow = client.responses.create(model=server.vision_model, max_output_tokens=3, input="And the colour?",
                                     previous_response_id=first.id)
    assert follow.previous_response_id == first.id
    # The earlier question, its picture and its answer came before the new question.
    assert follow.usage.input_tokens > fresh.usage.input_tokens + 64
    gone = client.responses.create(model=server.vision_model, max_output_tokens=2, input="Hi", store=False)
    with pytest.raises(openai.NotFoundError):
        client.responses.retrieve(gone.id)
    with pytest.raises(openai.NotFoundError) as missing:
        client.responses.create(model=server.vision_model, input="Hi", previous_response_id=gone.id)
    assert missing.value.body["param"] == "previous_response_id"
    assert client.responses.delete(first.id) is None
    with pytest.raises(openai.NotFoundError):
        client.responses.retrieve(first.id)


def test_the_labeeb_model_answers_through_the_plugins(client, idle):
    response = client.responses.create(model="labeeb", input="what can you do?", max_output_tokens=8)
    assert response.status == "completed" and "document" in response.output_text.lower()


@pytest.mark.parametrize(("extra", "param"), [
    ({"tools": [{"type": "web_search"}]}, "tools"),
    ({"reasoning": {"effort": "high"}}, "reasoning"),
    ({"include": ["message.output_text.logprobs"]}, "include"),
    ({"truncation": "auto"}, "truncation"),
    ({"background": True}, "background"),
    ({"prompt_cache_key": "k"}, "prompt_cache_key"),
    ({"input": [{"type": "function_call_output", "call_id": "x", "output": "1"}]}, "input.0"),
    ({"input": [{"role": "user", "content": [{"type": "input_image", "file_id": "file-1"}]}]}, "input.0.content.0"),
    ({"input": [{"role": "user", "content": [{"type": "input_file", "file_data": "x"}]}]}, "input.0.content.0"),
])
def test_what_is_not_supported_is_refused_by_name(server, idle, extra, param):
    body = {"model": server.vision_model, "input": "Hi", "max_output_tokens": 2, **extra}
    response = httpx.post(server.api + "/responses", json=body, timeout=60)
    assert response.status_code == 400, response.text
    assert response.json()["error"]["param"] == param, response.text


def test_text_format_json_schema_comes_back_as_valid_json(client, server, idle):
    import json

    schema = {"type": "object", "properties": {"colour": {"type": "string", "enum": ["red", "green", "blue"]}},
              "required": ["colour"], "additionalProperties": False}
    response = client.responses.create(
        model=server.vision_model, max_output_tokens=40, input="What colour? Answer in JSON.",
        text={"format": {"type": "json_schema", "name": "colour", "schema": schema, "strict": True}})
    assert json.loads(response.output_text)["colour"] in ("red", "green", "blue")
    assert response.text.format.type == "json_schema"
