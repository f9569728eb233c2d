"""The FastAPI app: the routes (labeeb.server.routes) over one running :class:`Assistant`.

Schemas live in schemas.py, errors are converted in errors.py, the model sits behind the
queue in queue.py, what the routes share is in state.py.
"""

from __future__ import annotations

from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, AsyncIterator

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from labeeb import __version__
from labeeb.screen.background import start_for
from labeeb.server.errors import document_errors, install_error_handlers
from labeeb.server.middleware import (
    ApiKeyMiddleware,
    BodyLimitMiddleware,
    HostOriginMiddleware,
    RequestIdMiddleware,
)
from labeeb.server.routes import audio, chat, responses, screen, status
from labeeb.server.routes.status import STATIC
from labeeb.server.state import ServerState

if TYPE_CHECKING:  # pragma: no cover
    from labeeb.assistant import Assistant
    from labeeb.config import ServerConfig
    from labeeb.router import Router


def create_app(
    assistant: Assistant,
    config: ServerConfig,
    screen_router: Router | None = None,
    preload: bool = True,
) -> FastAPI:
    state = ServerState(assistant, config, screen_router)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        state.work.start()
        state.audio_work.start()
        assistant.start()
        if preload:
            state.start_loading()
        # Clients that may see the screen get the screen already seen (labeeb.screen.background).
        looking = start_for(assistant) if config.allow_screen else None
        yield
        if looking is not None:
            looking.stop()
        state.work.stop()
        state.audio_work.stop()
        assistant.stop()

    app = FastAPI(title="Labeeb", version=__version__, lifespan=lifespan, docs_url=None, redoc_url=None)
    app.state.labeeb = state
    install_error_handlers(app)
    _add_middleware(app, config)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    for routes in (status, chat, responses, audio, screen):
        app.include_router(routes.router)
    document_errors(app)
    return app


def _add_middleware(app: FastAPI, config: ServerConfig) -> None:
    """Body limits and the API key inside; CORS outside them (so refusals carry CORS
    headers); then the Host/Origin check: a request for another host name or from a foreign
    page goes no further; outermost, the request id every response carries."""
    app.add_middleware(BodyLimitMiddleware, limit=int(config.max_body_mb * 1024 * 1024),
                       idle_timeout=config.request_timeout)
    if config.api_key:
        app.add_middleware(ApiKeyMiddleware, api_key=config.api_key)
    if config.cors_origins:
        from fastapi.middleware.cors import CORSMiddleware

        app.add_middleware(
            CORSMiddleware, allow_origins=list(config.cors_origins), allow_methods=["GET", "POST"],
            allow_headers=["Authorization", "Content-Type", "X-Request-Id", "X-Labeeb-Session"],
            expose_headers=["X-Request-Id", "Retry-After"],
        )
    app.add_middleware(HostOriginMiddleware, host=config.host, allowed_hosts=list(config.allowed_hosts),
                       cors_origins=list(config.cors_origins))
    app.add_middleware(RequestIdMiddleware)  # outside every refusal, so each one carries its id
