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
    from labeeb.vision.logprobs import TokenLogprob

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
    """A finished answer: its text (None when it is only calls), calls, usage and finish reason,
    and its tokens' log probabilities when they were asked for."""

    text: str | None
    usage: schemas.Usage
    finish_reason: schemas.FinishReason
    calls: list[Call] = field(default_factory=list)
    logprobs: list[TokenLogprob] | None = None

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
    request's job the text pieces (``chunk``) and call pieces (``call``) as they come; with
    ``logprobs`` (the backend's list, growing as it generates), each text piece's tokens'
    log probabilities go just before it (``logprobs``)."""

    def __init__(self, job: Job, stops: list[str], structure: Structure,
                 logprobs: list[TokenLogprob] | None = None) -> None:
        self.job = job
        self.cutter = StopCutter(stops)
        self.reader = CallReader(structure.calls_allowed)
        self.feed_logprobs = LogprobFeed(logprobs) if logprobs is not None else None

    @property
    def stopped(self) -> bool:
        """Whether a stop sequence ended the answer."""
        return self.cutter.stopped

    def feed(self, piece: str) -> None:
        self._send(self.reader.feed(self.cutter.feed(piece)))

    def flush(self) -> None:
        self._send(self.reader.feed(self.cutter.flush()) + self.reader.flush())
        if self.feed_logprobs is not None and not self.stopped:  # tokens after the last text (special ones)
            rest = self.feed_logprobs.rest()
            if rest:
                self.job.emit("logprobs", rest)

    def _send(self, pieces: list[str | CallPiece]) -> None:
        for piece in pieces:
            if isinstance(piece, CallPiece):
                self.job.emit("call", piece)
                continue
            if self.feed_logprobs is not None:
                self.job.emit("logprobs", self.feed_logprobs.take(piece))
            self.job.emit("chunk", piece)

    def outcome(self, usage: schemas.Usage, limit: int, text: str | None = None,
                finish: str | None = None) -> Outcome:
        """The finished answer (``text``: the final text, when hooks may have changed it;
        ``finish``: why it ended, when the backend was told by its upstream)."""
        calls = self.reader.calls
        if finish in ("stop", "length", "content_filter") and not self.stopped:
            reason = "tool_calls" if calls and finish == "stop" else finish
        else:
            cut = not self.stopped and usage.completion_tokens >= limit
            reason = "length" if cut else "tool_calls" if calls else "stop"
        content = self.reader.text if calls else (self.cutter.text if text is None else text)
        logprobs = self.feed_logprobs.sent if self.feed_logprobs is not None else None
        return Outcome(content or (None if calls else ""), usage, reason, list(calls), logprobs)  # type: ignore[arg-type]


class LogprobFeed:
    """Hands out an answer's token log probabilities with the text they belong to: a token goes
    with the piece of text where it starts, so tokens past a stop sequence are never sent."""

    def __init__(self, entries: list[TokenLogprob]) -> None:
        self.entries = entries  # the backend's list: it grows while the answer is generated
        self.sent: list[TokenLogprob] = []
        self.shown = 0  # bytes of text sent
        self.start = 0  # where the next token's text starts, in bytes

    def take(self, text: str) -> list[TokenLogprob]:
        """The tokens that start within ``text``, the next piece sent."""
        self.shown += len(text.encode())
        taken = []
        while len(self.sent) < len(self.entries) and self.start < self.shown:
            entry = self.entries[len(self.sent)]
            self.sent.append(entry)
            taken.append(entry)
            self.start += entry.shown
        return taken

    def rest(self) -> list[TokenLogprob]:
        """Every token not sent yet (the answer was not cut)."""
        rest = self.entries[len(self.sent):]
        self.sent += rest
        return rest


def call_delta(piece: CallPiece) -> schemas.Delta:
    """A streamed piece of a tool call, as OpenAI sends it."""
    first = piece.id is not None
    return schemas.Delta(tool_calls=[schemas.ToolCallDelta(
        index=piece.index, id=piece.id, type="function" if first else None,
        function=schemas.FunctionDelta(name=piece.name, arguments=piece.arguments))])
