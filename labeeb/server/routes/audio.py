"""``/v1/audio/transcriptions``, ``/v1/audio/translations`` and ``/v1/audio/speech``.

The work is in labeeb.server.audio (decoding uploads), transcription (Whisper) and speech
(synthesis and encoding); it runs on the audio queue. A streamed answer starts once its first
piece is ready, so every refusal before that is a plain OpenAI error with its status.
"""

from __future__ import annotations

import base64
import json
import logging
from typing import TYPE_CHECKING, Annotated, Any, AsyncIterator

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response, StreamingResponse

from labeeb.server import audio, audio_schemas, speech, transcription
from labeeb.server.audio_encode import FORMATS, content_type
from labeeb.server.errors import error_body, to_api_error
from labeeb.server.jobs import next_event, run_job
from labeeb.server.state import ServerState, server_state

if TYPE_CHECKING:  # pragma: no cover
    from labeeb.server.queue import Job

log = logging.getLogger("labeeb.server")
router = APIRouter()

SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
_TEXT = {"schema": {"type": "string"}}


def _events(description: str) -> dict[str, Any]:
    """A server-sent event stream: the schema describes each event (OpenAPI before 3.2)."""
    data = {"type": "string", "contentMediaType": "application/json", "description": description}
    return {"schema": {"type": "object", "required": ["data"], "properties": {"event": {"type": "string"}, "data": data}}}


TRANSCRIPT_RESPONSES: dict[int | str, dict[str, Any]] = {200: {
    "description": "The transcript: JSON for json/verbose_json, plain text for text/srt/vtt; with stream=true, "
                   "server-sent transcript.text.delta events and a transcript.text.done",
    "content": {"application/json": {}, "text/plain": _TEXT, "text/event-stream": _events(
        'a transcript.text.delta ({"type", "delta"}) or transcript.text.done ({"type", "text"}) event, '
        'or an OpenAI error object')}}}
SPEECH_RESPONSES: dict[int | str, dict[str, Any]] = {200: {
    "description": "The spoken audio in response_format (24 kHz mono); with stream_format=sse, server-sent "
                   "speech.audio.delta events and a speech.audio.done",
    "content": {**{kind: {"schema": {"type": "string", "format": "binary"}} for _, _, kind in FORMATS.values()},
                "text/event-stream": _events(
                    'a speech.audio.delta ({"type", "audio": base64}) or speech.audio.done ({"type", "usage"}) '
                    'event, or an OpenAI error object')}}}


@router.post("/v1/audio/transcriptions", responses=TRANSCRIPT_RESPONSES)
async def create_transcription(request: Request, form: Annotated[audio_schemas.TranscriptionForm, Form()],
                               state: ServerState = Depends(server_state)) -> Any:
    whisper = transcription.from_form(form)
    return await _whisper(request, state, await form.file.read(), whisper)


@router.post("/v1/audio/translations", responses=TRANSCRIPT_RESPONSES)
async def create_translation(request: Request, form: Annotated[audio_schemas.TranslationForm, Form()],
                             state: ServerState = Depends(server_state)) -> Any:
    whisper = transcription.WhisperRequest(task="translate", response_format=form.response_format, prompt=form.prompt,
                                           temperature=form.temperature)
    return await _whisper(request, state, await form.file.read(), whisper)


async def _whisper(request: Request, state: ServerState, data: bytes, whisper: transcription.WhisperRequest) -> Any:
    settings, max_seconds = state.assistant.settings, state.config.max_audio_seconds

    def work(job: Job | None = None) -> transcription.Heard:
        samples = audio.decode_audio(data, max_seconds)
        if job is None:  # nothing streamed
            return transcription.run(settings, samples, whisper)
        return transcription.run(settings, samples, whisper, lambda text: job.emit("chunk", text), job.cancel.is_set)

    if not whisper.stream:
        heard = await run_job(state.audio_work, work, request)
        media, body = transcription.answer(heard, whisper)
        return JSONResponse(body) if media == "application/json" else PlainTextResponse(body)
    job, first = await _started(state, work, request)

    async def events() -> AsyncIterator[str]:
        async for kind, value in _relay(job, first):
            if kind == "chunk":
                yield _sse(audio_schemas.TranscriptTextDelta(delta=value))
            elif kind == "done":
                yield _sse(audio_schemas.TranscriptTextDone(text=value.text))
            else:
                yield _sse_error(value)

    return StreamingResponse(events(), media_type="text/event-stream", headers=SSE_HEADERS)


@router.post("/v1/audio/speech", response_class=Response, responses=SPEECH_RESPONSES)
async def create_speech(body: audio_schemas.SpeechRequest, request: Request,
                        state: ServerState = Depends(server_state)) -> Response:
    speech.check(body)
    settings = state.assistant.settings
    media = content_type(body.response_format)
    if body.stream_format is None:
        data = await run_job(state.audio_work, lambda: b"".join(speech.encoded(settings, body, False)), request)
        return Response(data, media_type=media)

    def work(job: Job) -> None:
        for data in speech.encoded(settings, body, True, job.cancel.is_set):
            job.emit("chunk", data)

    job, first = await _started(state, work, request)
    if body.stream_format == "sse":
        return StreamingResponse(_speech_events(job, first), media_type="text/event-stream", headers=SSE_HEADERS)
    return StreamingResponse(_audio_bytes(job, first), media_type=media, headers={"Cache-Control": "no-cache"})


async def _speech_events(job: Job, first: tuple[str, Any]) -> AsyncIterator[str]:
    async for kind, value in _relay(job, first):
        if kind == "chunk":
            yield _sse(audio_schemas.SpeechAudioDelta(audio=base64.b64encode(value).decode()))
        elif kind == "done":
            yield _sse(audio_schemas.SpeechAudioDone())
        else:
            yield _sse_error(value)


async def _audio_bytes(job: Job, first: tuple[str, Any]) -> AsyncIterator[bytes]:
    async for kind, value in _relay(job, first):
        if kind == "chunk":
            yield value
        elif kind == "error":
            # The headers are sent: break the connection, so the client sees a cut-off transfer
            # rather than a short file that looks whole.
            error = to_api_error(value)
            log.warning("speech stream stopped: %s", error.message)
            raise RuntimeError(f"speech stream stopped: {error.message}")


# -- streaming from a queued job -------------------------------------------------------------


async def _started(state: ServerState, work: Any, request: Request) -> tuple[Job, tuple[str, Any]]:
    """Queue ``work`` and wait for its first event; a failure before it is a plain error."""
    job = state.audio_work.submit(work)  # QueueFull: a 429 (errors.py)
    first = await next_event(job, request)
    if first[0] == "error":
        raise to_api_error(first[1])
    return job, first


async def _relay(job: Job, first: tuple[str, Any]) -> AsyncIterator[tuple[str, Any]]:
    """The job's events from ``first`` to its end; a client that stops reading stops the job."""
    try:
        kind, value = first
        while True:
            yield kind, value
            if kind != "chunk":
                return
            kind, value = await job.next()
    finally:
        if not job.finished:
            job.stop()


def _sse(event: Any) -> str:
    return f"data: {event.model_dump_json()}\n\n"


def _sse_error(exc: BaseException) -> str:
    error = to_api_error(exc)
    return f"data: {json.dumps(error_body(error.status, error.message, error.code, error.param))}\n\n"
