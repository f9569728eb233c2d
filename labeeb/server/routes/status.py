"""The web page, ``/health`` and the model list."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import FileResponse, JSONResponse

from labeeb.server import schemas
from labeeb.server.errors import ApiError
from labeeb.server.state import ServerState, server_state

STATIC = Path(__file__).parent.parent / "static"

router = APIRouter()


@router.get("/", include_in_schema=False)
async def index() -> FileResponse:
    return FileResponse(STATIC / "index.html")


@router.get("/health")
async def health(request: Request, state: ServerState = Depends(server_state)) -> JSONResponse:
    code, body = state.health(detailed=state.authenticated(request))
    return JSONResponse(body, status_code=code)


@router.get("/v1/models")
async def models(state: ServerState = Depends(server_state)) -> dict[str, Any]:
    created = int(state.started)
    cards = [
        schemas.ModelCard(id=model_id, created=created, owned_by=owner)
        for model_id, owner in zip(state.chat.model_ids(), ("labeeb", "labeeb-vision"))
    ]
    return schemas.ModelList(data=cards).model_dump()


@router.get("/v1/models/{model_id:path}")
async def model(model_id: str, state: ServerState = Depends(server_state)) -> dict[str, Any]:
    ids = state.chat.model_ids()
    if model_id not in ids:
        raise ApiError(404, f"the model {model_id!r} does not exist", "model_not_found", "model")
    owner = "labeeb" if model_id == ids[0] else "labeeb-vision"
    return schemas.ModelCard(id=model_id, created=int(state.started), owned_by=owner).model_dump()
