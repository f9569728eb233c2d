"""Structured output and tool calls over real HTTP, with the official openai SDK, against a real
``labeeb serve`` whose model is a real language model (SmolLM2-135M-Instruct inside SmolVLM,
labeeb.real_lm): the answers must parse and validate, plain and streamed, through the model's
own id and through ``labeeb``; what cannot be honoured is a 400 naming the field."""

from __future__ import annotations

import json
from typing import Any, Literal

import httpx
import jsonschema
import openai
import pytest
from pydantic import BaseModel, Field
from server_kit import CITY, WEATHER, LabeebServer, assert_error


pytestmark = pytest.mark.slow

CITY_FORMAT = {"type": "json_schema", "json_schema": {"name": "city", "schema": CITY, "strict": True}}
TIME = {"type": "function", "function": {
    "name": "get_time", "description": "The local time in a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string", "maxLength": 40}},
                   "required": ["city"], "additionalProperties": False}}}
ASK_CITY = [{"role": "user", "content": "Tell me about Paris."}]
ASK_WEATHER = [{"role": "user", "content": "What will the weather be in Paris for the next 3 days?"}]


class City(BaseModel):
    name: str = Field(max_length=40)
    country: Literal["France", "Germany", "Italy"]
    population_millions: int = Field(ge=0, le=99)


class GetWeather(BaseModel):
    """Get the weather forecast for a city"""

    city: str = Field(max_length=40)
    days: int = Field(ge=1, le=14)


@pytest.fixture
def real_server(real_lm_server) -> LabeebServer:
    """The session's real-model server (conftest.py), shared with the llm and litellm tests."""
    return real_lm_server


@pytest.fixture
def client(real_server) -> openai.OpenAI:
    real_server.wait_idle()
    return openai.OpenAI(base_url=real_server.api, api_key="x", max_retries=0, timeout=900)


def streamed(client: openai.OpenAI, **request: Any) -> tuple[str, dict[int, dict[str, str]], str | None]:
    """(content, tool calls by index, finish reason) put together from the raw chunks."""
    content, calls, finish = "", {}, None
    for chunk in client.chat.completions.create(stream=True, **request):
        if not chunk.choices:
            continue
        delta = chunk.choices[0].delta
        content += delta.content or ""
        for piece in delta.tool_calls or []:
            call = calls.setdefault(piece.index, {"id": "", "name": "", "arguments": ""})
            if piece.id:  # only the first piece of a call has its id, type and name
                assert not call["id"] and piece.type == "function" and piece.function.name
                call.update(id=piece.id, name=piece.function.name)
            call["arguments"] += piece.function.arguments or ""
        finish = chunk.choices[0].finish_reason or finish
    return content, calls, finish


def test_json_object_parses_plain_and_streamed(client, real_server):
    request = {"model": real_server.vision_model, "max_tokens": 60, "response_format": {"type": "json_object"},
               "messages": [{"role": "user", "content": "Describe Paris as a JSON object with a name and a country."}]}
    answer = client.chat.completions.create(**request)
    assert answer.choices[0].finish_reason == "stop"
    assert isinstance(json.loads(answer.choices[0].message.content), dict)
    content, calls, finish = streamed(client, **request)
    assert content == answer.choices[0].message.content and not calls and finish == "stop"


def test_a_strict_json_schema_validates_plain_and_streamed(client, real_server):
    request = {"model": real_server.vision_model, "max_tokens": 60, "response_format": CITY_FORMAT,
               "messages": ASK_CITY}
    answer = client.chat.completions.create(**request)
    assert answer.choices[0].finish_reason == "stop"
    jsonschema.validate(json.loads(answer.choices[0].message.content), CITY)
    content, _, finish = streamed(client, **request)
    assert finish == "stop"
    jsonschema.validate(json.loads(content), CITY)


def test_parse_with_a_pydantic_model_plain_and_streamed(client, real_server):
    answer = client.chat.completions.parse(model=real_server.vision_model, max_tokens=60, response_format=City,
                                           messages=ASK_CITY)
    assert isinstance(answer.choices[0].message.parsed, City)
    with client.chat.completions.stream(model=real_server.vision_model, max_tokens=60, response_format=City,
                                        messages=ASK_CITY) as stream:
        final = stream.get_final_completion()
    assert isinstance(final.choices[0].message.parsed, City)


def test_model_labeeb_honours_response_format_through_its_fallback_skill(client):
    answer = client.chat.completions.create(model="labeeb", max_tokens=60, response_format=CITY_FORMAT,
                                            messages=ASK_CITY)
    jsonschema.validate(json.loads(answer.choices[0].message.content), CITY)
    content, _, _ = streamed(client, model="labeeb", max_tokens=60, response_format=CITY_FORMAT, messages=ASK_CITY)
    jsonschema.validate(json.loads(content), CITY)
    _, calls, finish = streamed(client, model="labeeb", max_tokens=60, tools=[WEATHER], tool_choice="required",
                                parallel_tool_calls=False, messages=ASK_WEATHER)
    assert finish == "tool_calls" and calls[0]["name"] == "get_weather"
    jsonschema.validate(json.loads(calls[0]["arguments"]), WEATHER["function"]["parameters"])


def test_a_required_call_is_well_formed_plain_and_streamed(client, real_server):
    request = {"model": real_server.vision_model, "max_tokens": 60, "tools": [WEATHER],
               "tool_choice": "required", "parallel_tool_calls": False, "messages": ASK_WEATHER}
    answer = client.chat.completions.create(**request)
    choice = answer.choices[0]
    assert choice.finish_reason == "tool_calls" and choice.message.content is None
    [call] = choice.message.tool_calls
    assert call.id.startswith("call_") and call.type == "function" and call.function.name == "get_weather"
    jsonschema.validate(json.loads(call.function.arguments), WEATHER["function"]["parameters"])
    content, calls, finish = streamed(client, **request)
    assert content == "" and finish == "tool_calls" and list(calls) == [0]
    assert calls[0]["name"] == "get_weather" and calls[0]["id"].startswith("call_")
    assert json.loads(calls[0]["arguments"]) == json.loads(call.function.arguments)  # greedy: the same call


def test_a_named_function_is_the_one_called(client, real_server):
    answer = client.chat.completions.create(
        model=real_server.vision_model, max_tokens=60, tools=[WEATHER, TIME], parallel_tool_calls=False,
        tool_choice={"type": "function", "function": {"name": "get_time"}}, messages=ASK_WEATHER)
    [call] = answer.choices[0].message.tool_calls
    assert call.function.name == "get_time"
    jsonschema.validate(json.loads(call.function.arguments), TIME["function"]["parameters"])


def test_sdk_parsed_tool_arguments_streamed(client, real_server):
    with client.chat.completions.stream(
            model=real_server.vision_model, max_tokens=60, messages=ASK_WEATHER, parallel_tool_calls=False,
            tools=[openai.pydantic_function_tool(GetWeather)], tool_choice="required") as stream:
        final = stream.get_final_completion()
    assert final.choices[0].finish_reason == "tool_calls"
    assert isinstance(final.choices[0].message.tool_calls[0].function.parsed_arguments, GetWeather)


def test_auto_answers_text_or_a_well_formed_call_and_none_answers_text(client, real_server):
    base = {"model": real_server.vision_model, "max_tokens": 30, "tools": [WEATHER], "messages": ASK_WEATHER}
    message = client.chat.completions.create(**base).choices[0].message  # tool_choice "auto"
    for call in message.tool_calls or []:
        jsonschema.validate(json.loads(call.function.arguments), WEATHER["function"]["parameters"])
    assert message.tool_calls or message.content
    message = client.chat.completions.create(**base, tool_choice="none").choices[0].message
    assert message.content and not message.tool_calls


def test_tool_results_go_back_to_the_model(client, real_server):
    call = {"id": "call_1", "type": "function",
            "function": {"name": "get_weather", "arguments": '{"city": "Paris", "days": 3}'}}
    messages = [*ASK_WEATHER, {"role": "assistant", "content": None, "tool_calls": [call]},
                {"role": "tool", "tool_call_id": "call_1", "content": '{"forecast": "sunny, 24 C"}'}]
    answer = client.chat.completions.create(model=real_server.vision_model, max_tokens=20, tools=[WEATHER],
                                            tool_choice="none", messages=messages)
    assert answer.choices[0].message.content and not answer.choices[0].message.tool_calls
    without = client.chat.completions.create(model=real_server.vision_model, max_tokens=1, messages=ASK_WEATHER)
    assert answer.usage.prompt_tokens > without.usage.prompt_tokens + 20  # the call and its result were read


def bad(real_server: LabeebServer, status: int, param: str, **fields: Any) -> dict[str, Any]:
    body = {"model": real_server.vision_model, "messages": ASK_CITY, **fields}
    response = httpx.post(real_server.api + "/chat/completions", json=body, timeout=60)
    error = assert_error(response, status, None if status != 400 else response.json()["error"]["code"])
    assert error["param"] == param, error
    return error


def test_what_cannot_be_honoured_is_a_400_naming_the_field(real_server):
    uncompilable = {"type": "json_schema", "json_schema": {"name": "x", "schema": {
        "type": "object", "properties": {"a": {"type": "string", "pattern": "(?<=a)b"}}}}}
    assert bad(real_server, 400, "response_format", response_format=uncompilable)["code"] == "invalid_schema"
    tool = {"type": "function", "function": {"name": "f", "parameters": {"type": "strnig"}}}
    assert bad(real_server, 400, "tools", tools=[tool])["code"] == "invalid_schema"
    bad(real_server, 400, "tool_choice", tools=[WEATHER], tool_choice={"type": "function", "function": {"name": "nope"}})
    bad(real_server, 400, "tool_choice", tool_choice="required")
    bad(real_server, 400, "tools", tools=[WEATHER, WEATHER])
    bad(real_server, 400, "functions", functions=[WEATHER["function"]])
    bad(real_server, 400, "function_call", function_call="auto")
    bad(real_server, 400, "response_format", response_format={"type": "json_schema"})
    body = {"model": "labeeb", "messages": [{"role": "user", "content": "help"}], "response_format": CITY_FORMAT}
    response = httpx.post(real_server.api + "/chat/completions", json=body, timeout=60)
    error = assert_error(response, 400, "invalid_request", "general.help", "response_format")
    assert error["param"] == "response_format"
    body = {**body, "response_format": None, "tools": [WEATHER], "tool_choice": "required"}
    assert httpx.post(real_server.api + "/chat/completions", json=body, timeout=60).json()["error"]["param"] == "tools"
    with pytest.raises(openai.BadRequestError) as caught:
        openai.OpenAI(base_url=real_server.api, api_key="x", max_retries=0).chat.completions.create(
            model=real_server.vision_model, messages=ASK_CITY, response_format=uncompilable)
    assert caught.value.param == "response_format"
