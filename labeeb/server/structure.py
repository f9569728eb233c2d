"""The answer's shape in a chat completion: ``response_format`` and ``tools`` checked before the
request waits for the model, and the answer written back as text or tool calls.

The model enforces the shape while decoding (labeeb.vision.grammar); here a schema the grammar
library cannot compile, a ``tool_choice`` naming no tool, or the deprecated ``functions`` are a
400 naming the field, before any model time is spent.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from labeeb.messages import Tools
from labeeb.server import schemas
from labeeb.server.errors import ApiError
from labeeb.server.turns import StopCutter
from labeeb.tool_calls import Call, CallPiece, CallReader

if TYPE_CHECKING:  # pragma: no cover
    from labeeb.server.queue import Job

#: The JSON schema of a function declared without ``parameters``: no arguments.
NO_ARGUMENTS = {"type": "object", "properties": {}, "additionalProperties": False}


@dataclass(frozen=True)
class Structure:
    """What the request asks of its answer's shape (both None: plain text)."""

    response_format: dict[str, Any] | None = None
    tools: Tools | None = None

    @property
    def calls_allowed(self) -> bool:
        return self.tools is not None and self.tools.choice != "none"


def requested(body: schemas.ChatCompletionRequest) -> Structure:
    """The answer's shape ``body`` asks for, checked and compiled once (a 400 naming the field
    when it cannot be)."""
    from labeeb.vision.grammar import GrammarError, compile_grammar

    for deprecated, instead in (("functions", "tools"), ("function_call", "tool_choice")):
        if getattr(body, deprecated) is not None:
            raise ApiError(400, f"{deprecated} is deprecated and not supported; send {instead} instead",
                           "unsupported_parameter", deprecated)
    structure = Structure(body.response_format.asked() if body.response_format else None, _tools(body))
    try:
        compile_grammar(structure.response_format, structure.tools)
    except GrammarError as exc:
        raise ApiError(400, str(exc), "invalid_schema", exc.param) from None
    return structure


def _tools(body: schemas.ChatCompletionRequest) -> Tools | None:
    choice = body.tool_choice
    if not body.tools:
        if choice is not None and choice != "none":
            raise ApiError(400, "tool_choice needs tools", "invalid_request", "tool_choice")
        if body.parallel_tool_calls is not None:
            raise ApiError(400, "parallel_tool_calls needs tools", "invalid_request", "parallel_tool_calls")
        return None
    names = [tool.function.name for tool in body.tools]
    if len(set(names)) < len(names):
        raise ApiError(400, "two tools have the same name", "invalid_request", "tools")
    named = choice.function.name if isinstance(choice, schemas.NamedToolChoice) else None
    if named is not None and named not in names:
        raise ApiError(400, f"tool_choice names {named!r}, which is not among the tools ({', '.join(names)})",
                       "invalid_request", "tool_choice")
    functions = tuple(
        {"name": tool.function.name, "parameters": tool.function.parameters or NO_ARGUMENTS,
         **({"description": tool.function.description} if tool.function.description else {})}
        for tool in body.tools)
    mode = "function" if named else (choice if isinstance(choice, str) else "auto")
    return Tools(functions, mode, named, parallel=body.parallel_tool_calls is not False)


@dataclass
class Outcome:
    """A finished answer: its text (None when it is only calls), calls, usage and finish reason."""

    text: str | None
    usage: schemas.Usage
    finish_reason: schemas.FinishReason
    calls: list[Call] = field(default_factory=list)

    def message(self) -> dict[str, Any]:
        """The answer's ``message`` in OpenAI's shape (``tool_calls`` only when there are some)."""
        calls = [schemas.ToolCall(id=c.id, function=schemas.FunctionCall(name=c.name, arguments=c.arguments))
                 for c in self.calls]
        message = schemas.AssistantMessage(content=self.text, tool_calls=calls or None).model_dump()
        if not calls:
            del message["tool_calls"]
        return message


class AnswerWriter:
    """Cuts an answer at its stop sequences and reads the tool calls out of it, sending the
    request's job the text pieces (``chunk``) and call pieces (``call``) as they come."""

    def __init__(self, job: Job, stops: list[str], structure: Structure) -> None:
        self.job = job
        self.cutter = StopCutter(stops)
        self.reader = CallReader(structure.calls_allowed)

    @property
    def stopped(self) -> bool:
        """Whether a stop sequence ended the answer."""
        return self.cutter.stopped

    def feed(self, piece: str) -> None:
        self._send(self.reader.feed(self.cutter.feed(piece)))

    def flush(self) -> None:
        self._send(self.reader.feed(self.cutter.flush()) + self.reader.flush())

    def _send(self, pieces: list[str | CallPiece]) -> None:
        for piece in pieces:
            self.job.emit("call" if isinstance(piece, CallPiece) else "chunk", piece)

    def outcome(self, usage: schemas.Usage, limit: int, text: str | None = None) -> Outcome:
        """The finished answer (``text``: the final text, when hooks may have changed it)."""
        calls = self.reader.calls
        cut = not self.stopped and usage.completion_tokens >= limit
        finish = "length" if cut else "tool_calls" if calls else "stop"
        content = self.reader.text if calls else (self.cutter.text if text is None else text)
        return Outcome(content or (None if calls else ""), usage, finish, list(calls))


def call_delta(piece: CallPiece) -> schemas.Delta:
    """A streamed piece of a tool call, as OpenAI sends it."""
    first = piece.id is not None
    return schemas.Delta(tool_calls=[schemas.ToolCallDelta(
        index=piece.index, id=piece.id, type="function" if first else None,
        function=schemas.FunctionDelta(name=piece.name, arguments=piece.arguments))])
