"""What the server's routes share: the assistant, the work queues, the model's readiness."""

from __future__ import annotations

import logging
import threading
import time
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from fastapi import Request

from labeeb import __version__
from labeeb.history import write_health
from labeeb.server.chat import ChatService
from labeeb.server.errors import ApiError
from labeeb.server.middleware import key_matches
from labeeb.server.queue import WorkQueue
from labeeb.server.responses import ResponseStore

if TYPE_CHECKING:  # pragma: no cover
    from labeeb.assistant import Assistant
    from labeeb.config import ServerConfig
    from labeeb.router import Router

log = logging.getLogger("labeeb.server")
#: Seconds between attempts to load a model that failed (checked when /health is asked).
RELOAD_AFTER = 10.0
#: Seconds a running answer may take to finish once the server is told to stop.
DRAIN_GRACE = 3.0


class ServerState:
    """What the routes share: the assistant, the queues, the model's readiness."""

    def __init__(self, assistant: Assistant, config: ServerConfig, screen_router: Router | None) -> None:
        self.assistant = assistant
        self.config = config
        self.work = WorkQueue(config.queue_size, name="labeeb-model")
        self.audio_work = WorkQueue(config.queue_size, name="labeeb-audio")
        self.chat = ChatService(assistant, config, self.work, screen_router)
        self.responses = ResponseStore()  # stored /v1/responses, for previous_response_id
        self.started = time.time()
        self.loading = False
        self.last_load = 0.0

    def drain(self, grace: float = DRAIN_GRACE) -> None:
        """SIGTERM/Ctrl-C: waiting requests get a 503 now, running ones ``grace`` s to finish.

        Called before uvicorn waits for open connections, so every client gets an answer
        or a clean OpenAI error (a streamed answer ends with an error event and [DONE]).
        """
        log.info("shutting down: finishing the running answers for up to %g s", grace)
        error = ApiError(503, "the server is shutting down; try again in a moment", "server_shutting_down")
        self.work.drain(error, grace)
        self.audio_work.drain(error, grace)

    def start_loading(self) -> None:
        if not self.loading:
            self.loading, self.last_load = True, time.monotonic()
            threading.Thread(target=self.preload, name="labeeb-preload", daemon=True).start()

    def preload(self) -> None:
        """Load the vision model in the background so the first request is not the slow one."""
        self.loading = True
        try:
            self.assistant.vision.backend()
        except Exception as exc:
            log.warning("the vision model is not ready: %s", exc)
        finally:
            self.loading = False

    def authenticated(self, request: Request) -> bool:
        """Whether ``request`` carries the API key (always true when none is configured)."""
        if not self.config.api_key:
            return True
        return key_matches(request.headers.get("authorization", ""), self.config.api_key)

    def health(self, detailed: bool = True) -> tuple[int, dict[str, Any]]:
        """The server's status; ``detailed`` adds what names local files (the model's path)."""
        processor = self.assistant.vision
        backend_status = processor.status()
        if not processor.loaded and time.monotonic() - self.last_load > RELOAD_AFTER:
            self.start_loading()  # a model server that was down may be back: keep trying
        if processor.loaded:
            status = "ok"
        elif self.loading or backend_status == "not loaded":
            status = "loading"
        else:
            status = "error"
        body = {
            "status": status,
            "model": self.chat.vision_model_id(),
            "models": self.chat.model_ids(),
            "backend": self.assistant.settings.vision.backend,
            "backend_status": backend_status,
            "ready": processor.loaded,
            "uptime_s": round(time.time() - self.started, 3),
            "version": __version__,
            "timestamp": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "queue": self.work.stats().to_dict(),
            "features": {"auth": bool(self.config.api_key), "screen": self.config.allow_screen},
            "history": write_health(),  # a failing history otherwise shows only in the log file
        }
        if not detailed:  # a model given as a local path, or a load error, names this machine's files
            for key in ("model", "models", "backend_status"):
                body.pop(key)
        return (200 if status == "ok" else 503), body


def server_state(request: Request) -> ServerState:
    """The running server's state (a FastAPI dependency for the routes; ``Request`` is
    imported at run time for FastAPI to see it)."""
    return request.app.state.labeeb  # type: ignore[no-any-return]
