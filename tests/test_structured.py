"""Structured output and tool calls enforced while decoding (labeeb.vision.grammar), and read
back (labeeb.tool_calls). A random-weights model writes nonsense, so whatever it writes under
a grammar is a test of the grammar: it must parse and validate every time."""

from __future__ import annotations

import json

import jsonschema
import pytest
import torch

from labeeb.config import VisionConfig
from labeeb.messages import Tools
from labeeb.structured import format_calls, grammar_text
from labeeb.tool_calls import CallPiece, CallReader
from labeeb.vision.grammar import GrammarError, apply_bitmask, compile_grammar, constraint
from labeeb.vision.processor import VisionProcessor
from labeeb.vision.backends.transformers import TransformersBackend

#: Bounded answers: a random model writes digits and letters without end where it may.
BOUNDED = {
    "type": "object",
    "properties": {
        "colour": {"enum": ["red", "green", "blue"]},
        "ok": {"type": "boolean"},
        "count": {"type": "integer", "minimum": 0, "maximum": 99},
    },
    "required": ["colour", "ok", "count"],
    "additionalProperties": False,
}
SCHEMA_FORMAT = {"type": "json_schema", "json_schema": {"name": "answer", "schema": BOUNDED, "strict": True}}
WEATHER = {"name": "get_weather", "description": "The weather for a city",
           "parameters": {"type": "object", "properties": {"city": {"enum": ["Paris", "Oslo"]}, "days": {
               "type": "integer", "minimum": 1, "maximum": 7}}, "required": ["city", "days"],
               "additionalProperties": False}}
EMAIL = {"name": "send_email", "parameters": {"type": "object", "properties": {"urgent": {"type": "boolean"}},
                                              "required": ["urgent"], "additionalProperties": False}}


def test_grammars_for_every_shape_compile():
    tools = (WEATHER, EMAIL)
    assert grammar_text(None, None) is None
    assert grammar_text({"type": "text"}, None) is None
    assert grammar_text(None, Tools(tools, "none")) is None
    for response_format in (None, {"type": "json_object"}, SCHEMA_FORMAT):
        for choice in ("auto", "required"):
            for parallel in (True, False):
                assert compile_grammar(response_format, Tools(tools, choice, parallel=parallel))
    assert compile_grammar(None, Tools(tools, "function", "send_email"))
    assert compile_grammar({"type": "json_object"}, None)


def test_a_schema_the_library_cannot_compile_names_its_field():
    bad = {"type": "json_schema", "json_schema": {"name": "x", "schema": {"type": "object", "properties": {
        "a": {"type": "strnig"}}}}}
    with pytest.raises(GrammarError, match="strnig") as caught:
        compile_grammar(bad, None)
    assert caught.value.param == "response_format" and caught.value.code == "invalid_schema"
    tool = {"name": "f", "parameters": {"type": "object", "properties": {"a": {"type": "string", "pattern": "(?<=a)b"}}}}
    with pytest.raises(GrammarError, match="look-around") as caught:
        compile_grammar(None, Tools((tool,), "required"))
    assert caught.value.param == "tools"


def test_the_bitmask_leaves_exactly_the_allowed_tokens():
    logits = torch.zeros(70)
    bitmask = torch.tensor([0b1011, -(2**31), 0], dtype=torch.int32)  # tokens 0, 1, 3 and 63
    apply_bitmask(logits, bitmask)
    assert torch.isfinite(logits).nonzero().flatten().tolist() == [0, 1, 3, 63]
    wider = torch.zeros(100)  # tokens past the bitmask's end are never allowed
    apply_bitmask(wider, torch.full((3,), -1, dtype=torch.int32))
    assert torch.isfinite(wider).sum() == 96


def test_the_end_token_is_allowed_only_where_the_grammar_is_complete(smolvlm_files_dir):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(smolvlm_files_dir)
    eos = tokenizer.convert_tokens_to_ids("<end_of_utterance>")
    grammar = constraint(SCHEMA_FORMAT, None, tokenizer, {eos})
    answer = tokenizer('{"colour": "red", "ok": true, "count": 42}', add_special_tokens=False)["input_ids"]
    for index, token in enumerate(answer):
        logits = torch.zeros(len(tokenizer))
        grammar.mask(logits)
        assert torch.isfinite(logits[token]) and not torch.isfinite(logits[eos])
        assert grammar.advance(token) == (index == len(answer) - 1)  # complete: nothing more may follow
    logits = torch.zeros(len(tokenizer))
    grammar.mask(logits)
    assert torch.isfinite(logits).nonzero().flatten().tolist() == [eos]


@pytest.mark.parametrize("size", [1, 3, 8, 1000])
def test_calls_are_read_back_as_they_stream(size):
    text = format_calls([("get_weather", '{"city": "Paris", "days": 3}'), ("send_email", '{"note": "a}b"}')])
    reader, pieces = CallReader(), []
    for start in range(0, len(text), size):
        pieces += reader.feed(text[start:start + size])
    pieces += reader.flush()
    assert [(c.name, c.arguments) for c in reader.calls] == [
        ("get_weather", '{"city": "Paris", "days": 3}'), ("send_email", '{"note": "a}b"}')]
    assert reader.text == "" and not reader.cut_short
    assert all(isinstance(p, CallPiece) for p in pieces)
    firsts = [p for p in pieces if p.id]
    assert [(p.index, p.name) for p in firsts] == [(0, "get_weather"), (1, "send_email")]
    assert firsts[0].id.startswith("call_") and firsts[0].id != firsts[1].id
    joined = {i: "".join(p.arguments for p in pieces if p.index == i) for i in (0, 1)}
    assert joined == {0: '{"city": "Paris", "days": 3}', 1: '{"note": "a}b"}'}


def test_text_is_text_and_a_call_cut_short_keeps_what_it_has():
    reader = CallReader()
    assert reader.feed("<b>bold</b> words") + reader.flush() == ["<b>bold</b> words"]  # not a call after all
    reader = CallReader(calls_allowed=False)
    call = format_calls([("f", "{}")])
    assert reader.feed(call) + reader.flush() == [call] and not reader.calls
    reader = CallReader()
    reader.feed(call[:-15])
    reader.flush()
    assert reader.cut_short and reader.calls[0].name == "f" and reader.calls[0].arguments == "{"
    reader = CallReader()  # cut short before the second call's name was whole
    assert [p.name for p in reader.feed(call + "\n" + call[:20]) + reader.flush() if p.id] == ["f"]
    assert reader.text == "" and len(reader.calls) == 1


@pytest.fixture(scope="module", params=["fast", "plain"])
def vision(request, tiny_model_dir):
    config = VisionConfig(model=str(tiny_model_dir), max_new_tokens=60, engine=request.param,
                          cache={"enabled": False})
    return VisionProcessor(config, {"transformers": TransformersBackend})


def test_random_weights_answer_json_that_validates(vision):
    for seed in range(3):
        answer = vision.generate("Describe the weather.", [], response_format=SCHEMA_FORMAT,
                                 temperature=1.0, seed=seed)
        jsonschema.validate(json.loads(answer.text), BOUNDED)
    greedy = vision.generate("Describe the weather.", [], response_format=SCHEMA_FORMAT)
    jsonschema.validate(json.loads(greedy.text), BOUNDED)


def test_random_weights_call_the_tool_they_must(vision):
    for choice, name in (("required", None), ("function", "send_email")):
        tools = Tools((WEATHER, EMAIL), choice, name, parallel=False)
        answer = vision.generate("What is the weather in Paris?", [], tools=tools, temperature=1.0, seed=1)
        reader = CallReader()
        reader.feed(answer.text)
        reader.flush()
        assert len(reader.calls) == 1 and reader.text == "", answer.text
        call = reader.calls[0]
        assert call.name == (name or call.name) and call.name in ("get_weather", "send_email")
        schema = (WEATHER if call.name == "get_weather" else EMAIL)["parameters"]
        jsonschema.validate(json.loads(call.arguments), schema)


def test_labeeb_ask_json_schema_answers_json_that_validates(tiny_model_dir, tmp_path, labeeb_cli):
    env = {"LABEEB_VISION__MODEL": str(tiny_model_dir)}
    path = tmp_path / "answer.schema.json"
    path.write_text(json.dumps(BOUNDED))
    result = labeeb_cli("ask", "--json-schema", str(path), "--max-tokens", "60", "describe the weather", env=env)
    assert result.returncode == 0, result.stderr
    jsonschema.validate(json.loads(result.stdout), BOUNDED)
    result = labeeb_cli("ask", "--json-object", "--json", "--max-tokens", "60", "describe the weather", env=env)
    assert result.returncode == 0, result.stderr
    reply = json.loads(result.stdout)
    assert reply["skill"] == "ask"
    if reply["usage"]["completion_tokens"] < 60:  # a random model may not close its object in time
        assert isinstance(json.loads(reply["text"]), dict)


def test_labeeb_ask_refuses_a_schema_it_cannot_enforce(tiny_model_dir, labeeb_cli):
    env = {"LABEEB_VISION__MODEL": str(tiny_model_dir)}
    result = labeeb_cli("ask", "--json-schema", '{"type": "strnig"}', "hi", env=env)
    assert result.returncode == 2 and "--json-schema" in result.stderr and "strnig" in result.stderr
    result = labeeb_cli("ask", "--json-object", "help", env=env)  # help writes its own answer
    assert result.returncode == 1 and "response_format" in result.stderr, result.stderr


def test_earlier_calls_and_tool_results_are_rendered_into_the_history():
    from labeeb.server.images import ImagePolicy
    from labeeb.server.schemas import ChatCompletionRequest
    from labeeb.server.turns import parse_turn

    call = {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'}}
    body = ChatCompletionRequest.model_validate({"model": "m", "messages": [
        {"role": "user", "content": "Weather in Paris?"},
        {"role": "assistant", "content": None, "tool_calls": [call]},
        {"role": "tool", "tool_call_id": "call_1", "content": '{"forecast": "sunny"}'},
    ]})
    turn = parse_turn(body, ImagePolicy(max_pixels=10**6, max_bytes=10**6), 4)
    assert turn.history == [("Weather in Paris?", format_calls([("get_weather", '{"city": "Paris"}')]))]
    assert turn.text == '<tool_response>\n{"forecast": "sunny"}\n</tool_response>'


def test_the_request_s_shape_is_checked_before_it_waits():
    from labeeb.server.errors import ApiError
    from labeeb.server.schemas import ChatCompletionRequest
    from labeeb.server.structure import requested

    def shape(**fields):
        return requested(ChatCompletionRequest.model_validate({"model": "m", "messages": [
            {"role": "user", "content": "hi"}], **fields}))

    tool = {"type": "function", "function": WEATHER}
    tools = shape(tools=[tool, {"type": "function", "function": {"name": "ping"}}], parallel_tool_calls=False).tools
    assert (tools.choice, tools.parallel) == ("auto", False)
    assert tools.functions[1]["parameters"] == {"type": "object", "properties": {}, "additionalProperties": False}
    named = shape(tools=[tool], tool_choice={"type": "function", "function": {"name": "get_weather"}}).tools
    assert (named.choice, named.function, named.callable()) == ("function", "get_weather", [named.functions[0]])
    assert shape(response_format={"type": "text"}).response_format is None
    for fields, param in (({"tool_choice": "auto"}, "tool_choice"), ({"functions": []}, "functions"),
                          ({"parallel_tool_calls": True}, "parallel_tool_calls"),
                          ({"tools": [tool], "tool_choice": {"type": "function", "function": {"name": "x"}}},
                           "tool_choice")):
        with pytest.raises(ApiError) as caught:
            shape(**fields)
        assert (caught.value.status, caught.value.param) == (400, param)


def test_an_upstream_s_streamed_calls_are_written_as_labeeb_s_own():
    from labeeb.vision.backends.openai import CallText

    writer = CallText()
    text = writer.feed([{"index": 0, "id": "a", "function": {"name": "get_weather", "arguments": ""}}])
    text += writer.feed([{"index": 0, "function": {"arguments": '{"city": '}}, {"index": 0, "function": {
        "arguments": '"Oslo"}'}}, {"index": 1, "id": "b", "function": {"name": "ping"}}])
    text += writer.end()
    assert text == format_calls([("get_weather", '{"city": "Oslo"}'), ("ping", "{}")])
