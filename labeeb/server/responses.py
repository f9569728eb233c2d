"""``/v1/responses``: OpenAI's Responses API over the same work as chat completions.

A request's ``input`` (text, or messages with ``input_text`` and ``input_image`` parts) and
``instructions`` become chat messages; :class:`labeeb.server.chat.ChatService` admits and
answers them as it does ``/v1/chat/completions``; the answer comes back as a ``response``
object, or streamed as the documented event sequence (``response.created``,
``response.in_progress``, ``response.output_item.added``, ``response.content_part.added``,
``response.output_text.delta``..., ``response.output_text.done``, ``response.content_part.done``,
``response.output_item.done``, ``response.completed``).

``previous_response_id`` continues a stored response: its input and output come before the
new input (its ``instructions`` do not, as OpenAI documents), and the chain shares one
session, so what plugins keep for the conversation (a confirmation) carries over. Stored
responses are kept in memory, the least recently used dropped first, within a byte budget.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from dataclasses import dataclass
from typing import Any, AsyncIterator, Literal

from pydantic import BaseModel, ConfigDict, Field

from labeeb.lru import LRU
from labeeb.server import schemas
from labeeb.server.errors import ApiError, to_api_error

#: Stored responses kept for previous_response_id and GET /v1/responses/{id}.
MAX_STORED = 256
#: Bytes of stored input (pictures included) kept at most; older responses are dropped first.
MAX_STORED_BYTES = 64 * 1024 * 1024


class _Strict(BaseModel):
    """Every field a client may send is listed; any other is refused by name (400)."""

    model_config = ConfigDict(extra="forbid")


class TextFormat(_Strict):
    type: Literal["text", "json_object", "json_schema"] = "text"
    name: str | None = None
    schema_: dict[str, Any] | None = Field(None, alias="schema")
    description: str | None = None
    strict: bool | None = None


class TextOptions(_Strict):
    format: TextFormat = TextFormat()


class ResponsesRequest(_Strict):
    model: str = Field(min_length=1)
    input: str | list[dict[str, Any]] = Field(min_length=1)
    instructions: str | None = None
    max_output_tokens: int | None = Field(None, ge=1, le=schemas.MAX_TOKENS)
    temperature: float | None = Field(None, ge=0.0, le=2.0)
    top_p: float | None = Field(None, gt=0.0, le=1.0)
    stream: bool = False
    store: bool = True
    previous_response_id: str | None = None
    metadata: dict[str, str] | None = Field(None, max_length=16)
    text: TextOptions | None = None
    user: str | None = None
    safety_identifier: str | None = None
    # Accepted only with the value that asks for nothing (checked in to_chat):
    tools: list[dict[str, Any]] | None = None
    tool_choice: Literal["none", "auto"] | None = None
    parallel_tool_calls: bool | None = None
    truncation: Literal["disabled"] | None = None
    include: list[str] | None = Field(None, max_length=0)
    reasoning: None = None


@dataclass
class Stored:
    response: dict[str, Any]
    messages: list[dict[str, Any]]  # the conversation so far, as chat messages (no instructions)
    session: str  # the chain's session name
    size: int


class ResponseStore:
    """Stored responses by id: LRU, at most MAX_STORED of them and MAX_STORED_BYTES of input."""

    def __init__(self) -> None:
        self._items: LRU = LRU(MAX_STORED)
        self._lock = threading.Lock()

    def get(self, response_id: str) -> Stored | None:
        with self._lock:
            return self._items.get_fresh(response_id)  # type: ignore[no-any-return]

    def put(self, stored: Stored) -> None:
        with self._lock:
            self._items.put(stored.response["id"], stored)
            while sum(item.size for item in self._items.values()) > MAX_STORED_BYTES and len(self._items) > 1:
                self._items.popitem(last=False)

    def delete(self, response_id: str) -> bool:
        with self._lock:
            return self._items.pop(response_id, None) is not None


# -- input: items -> chat messages -------------------------------------------------------


def _part(part: Any, where: str) -> dict[str, Any]:
    kind = part.get("type") if isinstance(part, dict) else None
    if kind in ("input_text", "output_text"):
        return {"type": "text", "text": str(part.get("text", ""))}
    if kind == "input_image":
        if part.get("file_id") or not part.get("image_url"):
            raise ApiError(400, "input_image needs an image_url (a data: URL or a link); "
                                "file_id is not supported (this server has no files API)", "invalid_request", where)
        image = {"url": part["image_url"], **({"detail": part["detail"]} if part.get("detail") else {})}
        return {"type": "image_url", "image_url": image}
    raise ApiError(400, f"content parts of type {kind!r} are not supported; use input_text or input_image",
                   "invalid_request", where)


def input_messages(value: str | list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The request's ``input`` as chat messages."""
    if isinstance(value, str):
        return [{"role": "user", "content": value}]
    messages = []
    for index, item in enumerate(value):
        where = f"input.{index}"
        if item.get("type", "message") != "message" or "role" not in item:
            raise ApiError(400, f"input items of type {item.get('type')!r} are not supported; send messages "
                                "(role and content)", "invalid_request", where)
        content = item.get("content")
        if isinstance(content, list):
            content = [_part(part, f"{where}.content.{n}") for n, part in enumerate(content)]
        messages.append({"role": item["role"], "content": content})
    return messages


def to_chat(body: ResponsesRequest, earlier: list[dict[str, Any]]) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """(the chat completion request, the conversation to store) for ``body`` after ``earlier``."""
    if body.tools:
        raise ApiError(400, "tools are not supported on /v1/responses yet", "invalid_request", "tools")
    fmt = body.text.format if body.text else TextFormat()
    messages = [*earlier, *input_messages(body.input)]
    chat: dict[str, Any] = {
        "model": body.model, "max_tokens": body.max_output_tokens, "temperature": body.temperature,
        "top_p": body.top_p,
        "messages": ([{"role": "system", "content": body.instructions}] if body.instructions else []) + messages,
    }
    if fmt.type != "text":
        chat["response_format"] = ({"type": "json_object"} if fmt.type == "json_object" else {
            "type": "json_schema", "json_schema": {"name": fmt.name or "response", "schema": fmt.schema_ or {},
                                                   "strict": bool(fmt.strict), "description": fmt.description}})
    return chat, messages


# -- output: the response object and its events ----------------------------------------------


def new_id(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex}"


def response_object(body: ResponsesRequest, response_id: str, created: float, status: str,
                    text: str | None = None, usage: schemas.Usage | None = None,
                    finish: str | None = None, message_id: str = "") -> dict[str, Any]:
    """The ``response`` object; ``text`` None while it is still being written."""
    output = []
    if text is not None:
        output = [message_item(message_id, text, "completed")]
    incomplete = status == "incomplete"
    return {
        "id": response_id, "object": "response", "created_at": int(created), "status": status,
        "model": body.model, "output": output, "instructions": body.instructions,
        "previous_response_id": body.previous_response_id, "max_output_tokens": body.max_output_tokens,
        "temperature": body.temperature, "top_p": body.top_p, "metadata": body.metadata or {},
        "store": body.store, "text": {"format": (body.text.format if body.text else TextFormat()).model_dump(
            by_alias=True, exclude_none=True)},
        "tools": [], "tool_choice": "auto", "parallel_tool_calls": True, "truncation": "disabled",
        "user": body.user, "safety_identifier": body.safety_identifier, "error": None,
        "incomplete_details": {"reason": "max_output_tokens"} if incomplete else None,
        "usage": _usage(usage) if usage is not None else None,
    }


def message_item(message_id: str, text: str, status: str) -> dict[str, Any]:
    return {"type": "message", "id": message_id, "status": status, "role": "assistant",
            "content": [{"type": "output_text", "text": text, "annotations": [], "logprobs": []}] if text or
            status == "completed" else []}


def _usage(usage: schemas.Usage) -> dict[str, Any]:
    return {"input_tokens": usage.prompt_tokens, "output_tokens": usage.completion_tokens,
            "total_tokens": usage.total_tokens,
            "input_tokens_details": {"cached_tokens": usage.prompt_tokens_details.cached_tokens},
            "output_tokens_details": {"reasoning_tokens": 0}}


def status_of(finish_reason: str) -> str:
    return "incomplete" if finish_reason == "length" else "completed"


class EventWriter:
    """Server-sent events in the Responses API's shape, numbered in order."""

    def __init__(self) -> None:
        self.sequence = 0

    def __call__(self, kind: str, **fields: Any) -> str:
        event = {"type": kind, "sequence_number": self.sequence, **fields}
        self.sequence += 1
        return f"event: {kind}\ndata: {json.dumps(event, ensure_ascii=False)}\n\n"


async def stream_events(events: AsyncIterator[tuple[str, Any]], body: ResponsesRequest, response_id: str,
                        created: float, finished: Any) -> AsyncIterator[str]:
    """The event sequence for an answer whose job yields ("chunk", text) then ("done",
    outcome) or ("error", exception); ``finished(outcome)`` stores the response."""
    write, message_id = EventWriter(), new_id("msg")
    started = response_object(body, response_id, created, "in_progress")
    yield write("response.created", response=started)
    yield write("response.in_progress", response=started)
    yield write("response.output_item.added", output_index=0, item=message_item(message_id, "", "in_progress"))
    part = {"type": "output_text", "text": "", "annotations": [], "logprobs": []}
    place = {"item_id": message_id, "output_index": 0, "content_index": 0}
    yield write("response.content_part.added", **place, part=part)
    text = ""
    async for kind, value in events:
        if kind == "chunk":
            text += value
            yield write("response.output_text.delta", **place, delta=value, logprobs=[])
        elif kind == "done":
            yield write("response.output_text.done", **place, text=value.text, logprobs=[])
            yield write("response.content_part.done", **place, part={**part, "text": value.text})
            yield write("response.output_item.done", output_index=0,
                        item=message_item(message_id, value.text, "completed"))
            status = status_of(value.finish_reason)
            final = response_object(body, response_id, created, status, value.text, value.usage,
                                    message_id=message_id)
            finished(final)
            yield write("response.completed" if status == "completed" else "response.incomplete", response=final)
            return
        else:
            error = to_api_error(value)
            yield write("error", code=error.code, message=error.message, param=error.param)
            failed = {**response_object(body, response_id, created, "failed", text),
                      "error": {"code": error.code or "server_error", "message": error.message}}
            yield write("response.failed", response=failed)
            return


def now() -> float:
    return time.time()
