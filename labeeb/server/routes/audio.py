"""``/v1/audio/transcriptions`` and ``/v1/audio/speech`` (the work is in labeeb.server.audio)."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Depends, File, Form, Request, UploadFile
from fastapi.responses import PlainTextResponse, Response

from labeeb.server import audio, schemas
from labeeb.server.jobs import run_job
from labeeb.server.state import ServerState, server_state

router = APIRouter()


@router.post("/v1/audio/transcriptions", responses={200: {
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
    state: ServerState = Depends(server_state),
) -> Any:
    data = await file.read()
    settings = state.assistant.settings

    def work() -> Any:
        samples = audio.decode_audio(data, state.config.max_audio_seconds)
        return audio.transcribe(settings, samples, language, prompt)

    transcript = await run_job(state.audio_work, work, request)
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


@router.post("/v1/audio/speech", response_class=Response, responses={200: {
    "description": "The spoken audio", "content": {"audio/wav": {}, "audio/flac": {}}}})
async def speech(body: schemas.SpeechRequest, request: Request,
                 state: ServerState = Depends(server_state)) -> Response:
    settings = state.assistant.settings
    data = await run_job(
        state.audio_work,
        lambda: audio.synthesize(settings, body.input, body.voice, body.speed, body.response_format),
        request,
    )
    return Response(data, media_type=f"audio/{body.response_format}")
