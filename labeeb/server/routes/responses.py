"""``/v1/responses`` (create, retrieve, delete); the shapes are in labeeb.server.responses."""

from __future__ import annotations

import json
from typing import Any, AsyncIterator

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import ValidationError

from labeeb.server import schemas
from labeeb.server.errors import ApiError
from labeeb.server.queue import Job
from labeeb.server.responses import (
    ResponsesRequest,
    Stored,
    new_id,
    now,
    response_object,
    status_of,
    stream_events,
    to_chat,
)
from labeeb.server.state import ServerState, server_state

router = APIRouter()


def _earlier(state: ServerState, body: ResponsesRequest) -> tuple[list[dict[str, Any]], str | None]:
    """The stored conversation ``previous_response_id`` continues, and its session's name."""
    if body.previous_response_id is None:
        return [], None
    stored = state.responses.get(body.previous_response_id)
    if stored is None:
        raise ApiError(404, f"no stored response {body.previous_response_id!r} (responses are kept in memory, "
                            "only with store=true, until the server restarts or needs the room)",
                       "response_not_found", "previous_response_id")
    return stored.messages, stored.session


@router.post("/v1/responses", responses={200: {
    "description": "A response object; with stream=true, server-sent events (response.created ... response.completed)",
    "content": {"application/json": {}, "text/event-stream": {"schema": {"type": "string"}}}}})
async def create_response(body: ResponsesRequest, request: Request,
                          state: ServerState = Depends(server_state)) -> Any:
    earlier, session = _earlier(state, body)
    chat, messages = to_chat(body, earlier)
    try:
        chat_body = schemas.ChatCompletionRequest.model_validate(chat)
    except ValidationError as exc:
        problem = exc.errors()[0]
        raise ApiError(400, f"input: {problem.get('msg', 'invalid')}", "invalid_request", "input") from None
    response_id, created = new_id("resp"), now()
    session = session or response_id  # a chain of responses is one conversation

    def finished(final: dict[str, Any]) -> None:
        if body.store:
            text = "".join(part["text"] for item in final["output"] for part in item["content"])
            kept = [*messages, {"role": "assistant", "content": text}]
            state.responses.put(Stored(final, kept, session, len(json.dumps(kept))))

    job, first = await state.chat.admit(chat_body, request, session)
    if body.stream:
        return StreamingResponse(stream_events(_events(job, first), body, response_id, created, finished),
                                 media_type="text/event-stream",
                                 headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})
    outcome = await state.chat.outcome(job, first, request)
    final = response_object(body, response_id, created, status_of(outcome.finish_reason), outcome.text,
                            outcome.usage, message_id=new_id("msg"))
    finished(final)
    return JSONResponse(final)


async def _events(job: Job, first: tuple[str, Any]) -> AsyncIterator[tuple[str, Any]]:
    """The job's events from ``first`` on; a client that stops reading stops the job."""
    event = first
    try:
        while True:
            yield event
            if event[0] != "chunk":
                return
            event = await job.next()
    finally:
        if not job.finished:
            job.stop()


# One route for both methods, so a 405 on this path names both in its Allow header.
@router.api_route("/v1/responses/{response_id}", methods=["GET", "DELETE"])
async def stored_response(response_id: str, request: Request,
                          state: ServerState = Depends(server_state)) -> dict[str, Any]:
    """GET: the stored response; DELETE: forget it."""
    stored = state.responses.get(response_id)
    if stored is None or (request.method == "DELETE" and not state.responses.delete(response_id)):
        raise ApiError(404, f"no stored response {response_id!r}", "response_not_found", "response_id")
    if request.method == "DELETE":
        return {"id": response_id, "object": "response.deleted", "deleted": True}
    return stored.response
