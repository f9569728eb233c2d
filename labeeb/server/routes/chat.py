"""``POST /v1/chat/completions`` (the work is in labeeb.server.chat)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request

from labeeb.server import schemas
from labeeb.server.state import ServerState, server_state

router = APIRouter()


@router.post("/v1/chat/completions", responses={200: {
    "description": "The answer; with stream=true, server-sent events of chat.completion.chunk objects",
    "content": {"application/json": {}, "text/event-stream": {"schema": {"type": "string"}}}}})
async def chat_completions(body: schemas.ChatCompletionRequest, request: Request,
                           state: ServerState = Depends(server_state)) -> Any:
    return await state.chat.complete(body, request)
