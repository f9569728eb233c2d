"""The FastAPI app: thin routes over the chat service, the audio helpers and the web page.

Schemas live in schemas.py, errors are converted in errors.py, the model sits behind the
queue in queue.py. ``create_app`` wires them to one running :class:`Assistant`.
"""

from __future__ import annotations

import hmac
import logging
import threading
import time
from contextlib import asynccontextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, AsyncIterator, Callable, Literal

from fastapi import FastAPI, File, Form, Request, UploadFile
from fastapi.responses import FileResponse, JSONResponse, PlainTextResponse, Response
from fastapi.staticfiles import StaticFiles

from labeeb import __version__
from labeeb.history import write_health
from labeeb.server import audio, schemas
from labeeb.server.chat import ChatService, next_event, to_api_error
from labeeb.server.errors import ApiError, document_errors, install_error_handlers
from labeeb.server.middleware import ApiKeyMiddleware, BodyLimitMiddleware, HostOriginMiddleware
from labeeb.server.queue import WorkQueue

if TYPE_CHECKING:  # pragma: no cover
    from labeeb.assistant import Assistant
    from labeeb.config import ServerConfig
    from labeeb.router import Router

log = logging.getLogger("labeeb.server")
STATIC = Path(__file__).with_name("static")
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
        given = request.headers.get("authorization", "").strip().encode("latin-1", "replace")
        return hmac.compare_digest(given, f"Bearer {self.config.api_key}".encode())

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

    async def run(self, work_queue: WorkQueue, fn: Callable[[], Any], request: Request) -> Any:
        """Run ``fn`` on ``work_queue`` and wait for its result (no streaming); a client that
        leaves meanwhile gives up its place."""
        job = work_queue.submit(lambda job: fn())  # QueueFull: a 429 (errors.py)
        while True:
            kind, value = await next_event(job, request)
            if kind == "done":
                return value
            if kind == "error":
                raise to_api_error(value)


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
        yield
        state.work.stop()
        state.audio_work.stop()
        assistant.stop()

    app = FastAPI(title="Labeeb", version=__version__, lifespan=lifespan, docs_url=None, redoc_url=None)
    app.state.labeeb = state
    install_error_handlers(app)
    document_errors(app)
    app.add_middleware(BodyLimitMiddleware, limit=int(config.max_body_mb * 1024 * 1024),
                       idle_timeout=config.request_timeout)
    if config.api_key:
        app.add_middleware(ApiKeyMiddleware, api_key=config.api_key)
    if config.cors_origins:  # outermost, so refusals carry CORS headers too
        from fastapi.middleware.cors import CORSMiddleware

        app.add_middleware(
            CORSMiddleware, allow_origins=list(config.cors_origins), allow_methods=["GET", "POST"],
            allow_headers=["Authorization", "Content-Type"],
        )
    # Outermost of all: a request for another host name or from a foreign page goes no further.
    app.add_middleware(HostOriginMiddleware, host=config.host, allowed_hosts=list(config.allowed_hosts),
                       cors_origins=list(config.cors_origins))

    # -- the web page ------------------------------------------------------------------------

    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    @app.get("/", include_in_schema=False)
    async def index() -> FileResponse:
        return FileResponse(STATIC / "index.html")

    # -- status and models -------------------------------------------------------------------

    @app.get("/health")
    async def health(request: Request) -> JSONResponse:
        code, body = state.health(detailed=state.authenticated(request))
        return JSONResponse(body, status_code=code)

    @app.get("/v1/models")
    async def models() -> dict[str, Any]:
        created = int(state.started)
        cards = [
            schemas.ModelCard(id=schemas_id, created=created, owned_by=owner)
            for schemas_id, owner in zip(state.chat.model_ids(), ("labeeb", "labeeb-vision"))
        ]
        return schemas.ModelList(data=cards).model_dump()

    @app.get("/v1/models/{model_id:path}")
    async def model(model_id: str) -> dict[str, Any]:
        ids = state.chat.model_ids()
        if model_id not in ids:
            raise ApiError(404, f"the model {model_id!r} does not exist", "model_not_found", "model")
        owner = "labeeb" if model_id == ids[0] else "labeeb-vision"
        return schemas.ModelCard(id=model_id, created=int(state.started), owned_by=owner).model_dump()

    # -- chat --------------------------------------------------------------------------------

    @app.post("/v1/chat/completions", responses={200: {
        "description": "The answer; with stream=true, server-sent events of chat.completion.chunk objects",
        "content": {"application/json": {}, "text/event-stream": {"schema": {"type": "string"}}}}})
    async def chat_completions(body: schemas.ChatCompletionRequest, request: Request) -> Any:
        return await state.chat.complete(body, request)

    # -- audio -------------------------------------------------------------------------------

    @app.post("/v1/audio/transcriptions", responses={200: {
        "description": "The transcript: JSON for json/verbose_json, plain text for text/srt/vtt",
        "content": {"application/json": {}, "text/plain": {"schema": {"type": "string"}}}}})
    async def transcriptions(
        request: Request,
        file: UploadFile = File(...),
        model: str = Form("whisper-1"),
        language: str | None = Form(None),
        prompt: str | None = Form(None),
        response_format: Literal["json", "text", "verbose_json", "srt", "vtt"] = Form("json"),
        temperature: float = Form(0.0, ge=0.0, le=1.0),  # accepted; decoding is greedy/beam
    ) -> Any:
        data = await file.read()

        def work() -> Any:
            samples = audio.decode_audio(data, config.max_audio_seconds)
            return audio.transcribe(assistant.settings, samples, language, prompt)

        transcript = await state.run(state.audio_work, work, request)
        text, duration = transcript.text, round(transcript.duration, 3)
        if response_format == "text":
            return PlainTextResponse(text)
        if response_format in ("srt", "vtt"):
            return PlainTextResponse(audio.subtitles(text, duration, response_format))
        if response_format == "verbose_json":
            return schemas.VerboseTranscription(
                language=transcript.language, duration=duration, text=text,
                segments=[schemas.TranscriptionSegment(id=0, start=0.0, end=duration, text=text)] if text else [],
            ).model_dump()
        return schemas.Transcription(text=text).model_dump()

    @app.post("/v1/audio/speech", response_class=Response, responses={200: {
        "description": "The spoken audio", "content": {"audio/wav": {}, "audio/flac": {}}}})
    async def speech(body: schemas.SpeechRequest, request: Request) -> Response:
        data = await state.run(
            state.audio_work,
            lambda: audio.synthesize(assistant.settings, body.input, body.voice, body.speed, body.response_format),
            request,
        )
        return Response(data, media_type=f"audio/{body.response_format}")

    # -- the screen, only when allowed -----------------------------------------------------

    @app.get("/api/screenshot", response_class=Response, responses={200: {
        "description": "A PNG screenshot (only with server.allow_screen)", "content": {"image/png": {}}}})
    async def screenshot(request: Request) -> Response:
        if not config.allow_screen:
            raise ApiError(403, "this server does not let clients see its screen (server.allow_screen is off)",
                           "screen_access_disabled")
        from labeeb.server.screen import capture_png

        png = await state.run(state.work, lambda: capture_png(assistant.settings), request)
        return Response(png, media_type="image/png")

    return app
