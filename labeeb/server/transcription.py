"""``/v1/audio/transcriptions`` and ``/v1/audio/translations``: faster-whisper's real segments
in OpenAI's shapes.

Every field the openai SDK can send becomes a faster-whisper option, or a 400 naming it when
Whisper cannot honour it (speaker diarization, token log probabilities). The segments come
lazily from the shared transcriber's model (one model for ``labeeb listen`` and the server),
so a stream sends each one as soon as it is decoded.
"""

from __future__ import annotations

import itertools
import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Iterator

from labeeb.server import audio_schemas
from labeeb.server.errors import ApiError
from labeeb.server.whisper_languages import LANGUAGES, language_name

if TYPE_CHECKING:  # pragma: no cover
    import numpy as np

    from labeeb.config import SttConfig
    from labeeb.voice.stt import Transcriber

SAMPLE_RATE = 16_000
#: Silence added around the audio (as the listening loop does): Whisper mishears words that
#: start right at the edge. Timestamps are moved back by it.
PAD_S = 0.5
#: What faster-whisper does for temperature 0, as OpenAI describes it: start greedy, and
#: raise the temperature while the result looks like a failure.
FALLBACK_TEMPERATURES = (0.0, 0.2, 0.4, 0.6, 0.8, 1.0)
#: Where to point an administrator whose model cannot do what was asked.
MULTILINGUAL_HINT = 'set stt.model to a multilingual Whisper model (e.g. "base" or "small", or its directory)'


@dataclass
class WhisperRequest:
    """What one request asks of Whisper, checked before its audio is decoded."""

    task: str = "transcribe"  # or "translate"
    response_format: str = "json"
    language: str | None = None
    languages: list[str] = field(default_factory=list)
    prompt: str | None = None
    keywords: list[str] = field(default_factory=list)
    temperature: float = 0.0
    words: bool = False
    segments: bool = True
    stream: bool = False
    vad: dict[str, Any] | None = None


@dataclass
class Heard:
    """The transcript: its text, the language code, the audio's length, segments and words."""

    text: str
    language: str
    duration: float
    segments: list[audio_schemas.TranscriptionSegment] = field(default_factory=list)
    words: list[audio_schemas.TranscriptionWord] = field(default_factory=list)


def _refuse(param: str, message: str, code: str = "unsupported_value") -> ApiError:
    return ApiError(400, message, code, param)


def _language_code(value: str, param: str) -> str:
    code = value.strip().lower()
    if code not in LANGUAGES:
        raise _refuse(param, f"{param}: {value!r} is not a language Whisper knows; use an ISO-639-1 code such as 'en' or 'fr'",
                      "invalid_language")
    return code


def vad_options(form: audio_schemas.TranscriptionForm) -> dict[str, Any] | None:
    """``chunking_strategy`` as faster-whisper's VAD options: "auto" is Labeeb's default VAD
    (always on, so silence never reaches the decoder); ``server_vad`` sets its threshold,
    the silence that ends a chunk and the speech padding."""
    given: dict[str, Any] = {}
    raw = (form.chunking_strategy or "").strip()
    if raw and raw != "auto":
        try:
            given = json.loads(raw)
        except ValueError:
            given = {}
        if not isinstance(given, dict) or not given:
            raise _refuse("chunking_strategy", 'chunking_strategy must be "auto" or a server_vad object', "invalid_value")
    given.update({k: v for k, v in {"type": form.vad_type, "threshold": form.vad_threshold,
                                    "prefix_padding_ms": form.vad_prefix_padding_ms,
                                    "silence_duration_ms": form.vad_silence_duration_ms}.items() if v is not None})
    if not given:
        return None
    if given.get("type") != "server_vad":
        raise _refuse("chunking_strategy", 'chunking_strategy: the only object type is "server_vad"', "invalid_value")
    try:
        options = {"threshold": float(given.get("threshold", 0.5)),
                   "min_silence_duration_ms": int(given.get("silence_duration_ms", 2000)),
                   "speech_pad_ms": int(given.get("prefix_padding_ms", 400))}
    except (TypeError, ValueError):
        raise _refuse("chunking_strategy", "chunking_strategy: threshold must be a number, the durations whole milliseconds",
                      "invalid_value") from None
    if not 0.0 < options["threshold"] < 1.0 or min(options["min_silence_duration_ms"], options["speech_pad_ms"]) < 0:
        raise _refuse("chunking_strategy", "chunking_strategy: threshold is between 0 and 1, durations are not negative",
                      "invalid_value")
    return options


def from_form(form: audio_schemas.TranscriptionForm) -> WhisperRequest:
    """The request, or a 400 naming the first field Whisper cannot honour."""
    if form.response_format == "diarized_json":
        raise _refuse("response_format", "diarized_json needs speaker diarization, which Whisper does not do; "
                      "use json, text, srt, vtt or verbose_json")
    for name in ("known_speaker_names", "known_speaker_references"):
        if getattr(form, name):
            raise _refuse(name, f"{name}: Whisper does not tell speakers apart (no diarization)", "unsupported_parameter")
    if form.include:
        raise _refuse("include", f"include {form.include}: faster-whisper does not give per-token log probabilities; "
                      "verbose_json has each segment's avg_logprob")
    if form.timestamp_granularities and form.response_format != "verbose_json":
        raise _refuse("timestamp_granularities", "timestamp_granularities needs response_format=verbose_json")
    if form.stream and form.response_format not in ("json", "text"):
        raise _refuse("stream", "stream=true sends text events; use response_format json or text "
                      f"(not {form.response_format}), or leave stream off")
    language = None
    if form.language and form.language.strip().lower() not in ("", "auto"):
        language = _language_code(form.language, "language")
    granularities = set(form.timestamp_granularities)
    return WhisperRequest(
        response_format=form.response_format, language=language,
        languages=[_language_code(code, "languages") for code in form.languages],
        prompt=form.prompt or None, keywords=[k.strip() for k in form.keywords if k.strip()],
        temperature=form.temperature, words="word" in granularities,
        segments="segment" in granularities or not granularities, stream=form.stream, vad=vad_options(form),
    )


# -- the work, on the audio queue's thread ---------------------------------------------------


def _choose_language(request: WhisperRequest, config: SttConfig, model: Any, audio: np.ndarray) -> str | None:
    """The language to decode in (None: let Whisper detect it), or a 400 the model cannot meet."""
    multilingual = bool(model.model.is_multilingual)
    if not multilingual and request.task == "translate":
        raise ApiError(400, f"translation needs a multilingual Whisper model, and this server's (stt.model = "
                       f"{config.model!r}) is English-only; {MULTILINGUAL_HINT}", "model_not_multilingual")
    wanted = [request.language] if request.language else request.languages
    if not multilingual:
        if wanted and "en" not in wanted:
            param = "language" if request.language else "languages"
            raise ApiError(400, f"this server's Whisper model (stt.model = {config.model!r}) is English-only and cannot "
                           f"hear {', '.join(language_name(c) for c in wanted)}; {MULTILINGUAL_HINT}",
                           "model_not_multilingual", param)
        return "en"
    if len(wanted) == 1:
        return wanted[0]
    if wanted:  # several allowed: the likeliest of them
        _, _, probabilities = model.detect_language(audio=audio, vad_filter=True)
        return next((code for code, _ in probabilities if code in wanted), wanted[0])
    return None if config.language in ("", "auto") else config.language


def _segments(transcriber: Transcriber, audio: np.ndarray, options: dict[str, Any]) -> tuple[Iterator[Any], Any]:
    """faster-whisper's lazy segments; if the device fails at once (``auto`` picked a CUDA
    whose libraries are missing), the transcriber's own fallback decodes them on the CPU."""
    try:
        segments, info = transcriber.load().transcribe(audio, **options)
        segments = iter(segments)
        first = next(segments, None)
    except RuntimeError:
        listed, info = transcriber.decode(audio, **options)
        return iter(listed), info
    return itertools.chain([] if first is None else [first], segments), info


def _unlikely(segment: Any) -> bool:
    """Whisper's own rules for a segment that is not speech or is a repetition loop."""
    if segment.no_speech_prob > 0.6 and segment.avg_logprob < -1.0:
        return True
    return segment.compression_ratio > 2.4 or not any(ch.isalnum() for ch in segment.text)


def run(settings: Any, samples: np.ndarray, request: WhisperRequest,
        on_text: Callable[[str], None] | None = None, cancelled: Callable[[], bool] = lambda: False) -> Heard:
    """Transcribe (or translate) ``samples``; ``on_text`` gets each segment's text as it is decoded."""
    import numpy as np

    from labeeb.voice import SpeechModelError
    from labeeb.voice.stt import shared_transcriber

    config = settings.stt
    duration = round(len(samples) / SAMPLE_RATE, 3)
    transcriber = shared_transcriber(config)
    try:
        model = transcriber.load()
    except SpeechModelError as exc:
        raise ApiError(503, f"speech recognition is not available: {exc}", "model_unavailable") from None
    pad = np.zeros(int(PAD_S * SAMPLE_RATE), np.float32)
    audio = np.concatenate([pad, samples.astype(np.float32, copy=False), pad])
    language = _choose_language(request, config, model, audio)
    if duration < 0.1:
        return Heard("", language or "en", duration)
    options = dict(
        language=language, task=request.task, beam_size=config.beam_size,
        temperature=request.temperature or FALLBACK_TEMPERATURES,
        initial_prompt=request.prompt, hotwords=" ".join(request.keywords) or None,
        vad_filter=True, vad_parameters=request.vad,  # silence and noise never reach the decoder
        condition_on_previous_text=False, word_timestamps=request.words, without_timestamps=False,
    )
    try:
        segments, info = _segments(transcriber, audio, options)
        heard = Heard("", info.language or language or "", duration)
        for segment in segments:
            if cancelled():
                break
            if not _unlikely(segment):
                _keep(heard, segment, on_text)
    except SpeechModelError as exc:
        raise ApiError(503, f"speech recognition failed: {exc}", "model_unavailable") from None
    return heard


def _keep(heard: Heard, segment: Any, on_text: Callable[[str], None] | None) -> None:
    def at(seconds: float) -> float:
        return round(min(max(float(seconds) - PAD_S, 0.0), heard.duration), 3)

    text = segment.text.strip()
    delta = f" {text}" if heard.text else text
    heard.text += delta
    heard.segments.append(audio_schemas.TranscriptionSegment(
        id=len(heard.segments), seek=int(segment.seek), start=at(segment.start), end=at(segment.end),
        text=segment.text, tokens=[int(t) for t in segment.tokens], temperature=float(segment.temperature or 0.0),
        avg_logprob=float(segment.avg_logprob), compression_ratio=float(segment.compression_ratio),
        no_speech_prob=float(segment.no_speech_prob),
    ))
    heard.words += [audio_schemas.TranscriptionWord(word=w.word.strip(), start=at(w.start), end=at(w.end))
                    for w in segment.words or [] if w.word.strip()]
    if on_text is not None:
        on_text(delta)


# -- answers ---------------------------------------------------------------------------------


def _timestamp(seconds: float, separator: str) -> str:
    millis = int(round(seconds * 1000))
    hours, millis = divmod(millis, 3_600_000)
    minutes, millis = divmod(millis, 60_000)
    secs, millis = divmod(millis, 1000)
    return f"{hours:02d}:{minutes:02d}:{secs:02d}{separator}{millis:03d}"


def subtitles(segments: list[audio_schemas.TranscriptionSegment], kind: str) -> str:
    """SRT or WebVTT: one cue per segment, at the segment's own times."""
    separator = "," if kind == "srt" else "."
    cues = []
    for number, segment in enumerate(segments, 1):
        times = f"{_timestamp(segment.start, separator)} --> {_timestamp(segment.end, separator)}"
        cues.append(f"{number}\n{times}\n{segment.text.strip()}\n" if kind == "srt" else f"{times}\n{segment.text.strip()}\n")
    return "\n".join(cues) if kind == "srt" else "WEBVTT\n\n" + "\n".join(cues)


def answer(heard: Heard, request: WhisperRequest) -> tuple[str, Any]:
    """(media type, body) for ``request.response_format``: JSON as a dict, the rest as text."""
    kind = request.response_format
    if kind == "text":
        return "text/plain", heard.text
    if kind in ("srt", "vtt"):
        return "text/plain", subtitles(heard.segments, kind)
    translating = request.task == "translate"
    usage = None if translating else audio_schemas.TranscriptionUsage(seconds=heard.duration)
    if kind == "verbose_json":
        return "application/json", audio_schemas.VerboseTranscription(
            task=request.task, language="english" if translating else language_name(heard.language),
            duration=heard.duration, text=heard.text, usage=usage,
            segments=heard.segments if request.segments else None, words=heard.words if request.words else None,
        ).model_dump(exclude_none=True)
    return "application/json", audio_schemas.Transcription(text=heard.text, usage=usage).model_dump(exclude_none=True)
