"""``GET /api/screenshot``: this machine's screen, only with ``server.allow_screen``."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from labeeb.server.errors import ApiError
from labeeb.server.jobs import run_job
from labeeb.server.state import ServerState, server_state

router = APIRouter()


@router.get("/api/screenshot", response_class=Response, responses={200: {
    "description": "A PNG screenshot (only with server.allow_screen)", "content": {"image/png": {}}}})
async def screenshot(request: Request, state: ServerState = Depends(server_state)) -> Response:
    if not state.config.allow_screen:
        raise ApiError(403, "this server does not let clients see its screen (server.allow_screen is off)",
                       "screen_access_disabled")
    from labeeb.server.screen import capture_png

    settings = state.assistant.settings
    png = await run_job(state.work, lambda: capture_png(settings), request)
    return Response(png, media_type="image/png")
