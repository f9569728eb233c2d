"""Structured answers: what OpenAI's ``response_format`` and ``tools`` ask of the model, as the
grammar that enforces it (run by labeeb.vision.grammar) and the words that tell the model.

A tool call is written in one shape, which the grammar enforces and labeeb.tool_calls reads
back (also in the conversation's history, so the model sees its earlier calls as it made them)::

    <tool_call>
    {"name": "get_weather", "arguments": {"city": "Paris"}}
    </tool_call>

Several calls follow each other, one per line. A tool's result goes back to the model as
``<tool_response>...</tool_response>`` in the user's turn.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    from labeeb.messages import Tools

CALL_START = "<tool_call>\n"
CALL_END = "\n</tool_call>"
#: One JSON style, ``{"a": 1, "b": [2]}``: llguidance's compile options (``x-guidance``).
JSON_STYLE = {"whitespace_flexible": False, "item_separator": ", ", "key_separator": ": "}
#: A text answer when a call is allowed too (tool_choice "auto"): anything not starting with
#: "<", which would begin a call, so that a call is enforced from its first character.
TEXT = r"/[^<](?s:.*)/"


def json_schema(response_format: dict[str, Any] | None) -> dict[str, Any] | None:
    """The JSON schema ``response_format`` asks the answer to follow; None for plain text."""
    kind = (response_format or {}).get("type", "text")
    if kind == "json_object":
        return {"type": "object"}
    if kind == "json_schema":
        schema = (response_format or {}).get("json_schema", {}).get("schema")
        return schema if schema else {"type": "object"}
    return None


def _json_rule(schema: dict[str, Any]) -> str:
    return "%json " + json.dumps({**schema, "x-guidance": JSON_STYLE})


def call_prefix(name: str) -> str:
    """How a call to ``name`` begins; its arguments and ``}`` + CALL_END follow."""
    return CALL_START + '{"name": ' + json.dumps(name) + ', "arguments": '


def grammar_text(response_format: dict[str, Any] | None, tools: Tools | None) -> str | None:
    """The Lark grammar (llguidance's dialect) an answer must follow, or None for free text."""
    schema = json_schema(response_format)
    calling = tools is not None and tools.choice != "none"
    if schema is None and not calling:
        return None
    rules = []
    if schema is not None:
        rules.append(f"answer: {_json_rule(schema)}")
    if not calling:
        return "start: answer\n" + "\n".join(rules)
    assert tools is not None
    functions = tools.callable()
    for index, function in enumerate(functions):
        prefix = json.dumps(call_prefix(function["name"]))
        rules.append(f'call_{index}: {prefix} args_{index} {json.dumps("}" + CALL_END)}')
        rules.append(f"args_{index}: {_json_rule(function.get('parameters') or {'type': 'object'})}")
    rules.append("call: " + " | ".join(f"call_{i}" for i in range(len(functions))))
    calls = 'call ("\\n" call)*' if tools.parallel else "call"
    if tools.choice != "auto":
        return f"start: {calls}\n" + "\n".join(rules)
    answer = "answer" if schema is not None else "TEXT"
    return f"start: {answer} | {calls}\nTEXT: {TEXT}\n" + "\n".join(rules)


def instructions(response_format: dict[str, Any] | None, tools: Tools | None) -> str:
    """What to tell the model (after the question) about the tools and the answer's format."""
    lines = []
    if tools is not None and tools.choice != "none":
        lines.append("You can call these functions (their arguments follow the JSON schemas given):")
        for function in tools.callable():
            lines.append(json.dumps({key: function[key] for key in ("name", "description", "parameters")
                                     if function.get(key)}))
        lines.append(f'To call a function, reply with {CALL_START}{{"name": NAME, "arguments": ARGUMENTS}}{CALL_END}')
        if tools.choice == "required":
            lines.append("Call a function now.")
        elif tools.choice == "function":
            lines.append(f"Call {tools.function} now.")
    schema = json_schema(response_format)
    if schema == {"type": "object"}:
        lines.append("Reply with a JSON object.")
    elif schema is not None:
        lines.append(f"Reply with a JSON object that follows this JSON schema: {json.dumps(schema)}")
    return "\n".join(lines)


def with_instructions(prompt: str, response_format: dict[str, Any] | None, tools: Tools | None) -> str:
    """``prompt`` followed by :func:`instructions`, when there are any."""
    said = instructions(response_format, tools)
    return f"{prompt}\n\n{said}" if said else prompt


def format_calls(calls: list[tuple[str, str]]) -> str:
    """(name, arguments JSON) calls written as the model writes them."""
    return "\n".join(call_prefix(name) + (arguments.strip() or "{}") + "}" + CALL_END for name, arguments in calls)


def format_tool_result(content: str) -> str:
    """A tool's result as the model reads it, in the user's turn."""
    return f"<tool_response>\n{content}\n</tool_response>"
