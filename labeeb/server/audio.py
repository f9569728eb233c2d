"""Speech in and out for the API, through the voice plugin's models and engines.

``/v1/audio/transcriptions`` decodes any container PyAV reads (WAV, MP3, OGG, WebM from
a browser's recorder, ...) to 16 kHz mono, checks its length against
``server.max_audio_seconds``, and hands it to the shared faster-whisper transcriber
(``[stt]``). ``/v1/audio/speech`` speaks with the ``[tts]`` engine (pyttsx3 or espeak-ng).
"""

from __future__ import annotations

import io
from typing import TYPE_CHECKING, Any

from labeeb.server.errors import ApiError

if TYPE_CHECKING:  # pragma: no cover
    import numpy as np

SAMPLE_RATE = 16_000
#: OpenAI's voice names; they all get the configured voice (tts.voice).
OPENAI_VOICES = {"alloy", "ash", "ballad", "coral", "echo", "fable", "onyx", "nova", "sage", "shimmer", "verse"}


def _too_long(seconds: float | None, max_seconds: float) -> ApiError:
    length = f"is {seconds:.1f} s long" if seconds is not None else f"is longer than {max_seconds:g} s"
    return ApiError(
        400, f"the audio {length}; this server takes at most {max_seconds:g} s (server.max_audio_seconds)",
        "audio_too_long", "file",
    )


def declared_seconds(container: Any, stream: Any) -> float | None:
    """The length the file's header claims (the stream's, else the container's), if any."""
    if stream.duration and stream.time_base:
        return float(stream.duration * stream.time_base)
    if container.duration:
        return container.duration / 1_000_000  # av.time_base
    return None


def decode_audio(data: bytes, max_seconds: float) -> np.ndarray:
    """16 kHz mono float32 samples, or ApiError when the bytes are not usable audio.

    A few MB of FLAC can hold hours of silence, so the length is checked before decoding
    (from the header) and while decoding (by counting samples): no more than
    ``max_seconds`` of samples, plus one frame, are ever held.
    """
    if not data:
        raise ApiError(400, "the audio file is empty", "invalid_audio", "file")
    import av
    import numpy as np

    cap = int(max_seconds * SAMPLE_RATE)
    chunks: list[np.ndarray] = []
    total = 0
    try:
        with av.open(io.BytesIO(data), metadata_errors="ignore") as container:
            if not container.streams.audio:
                raise ApiError(400, "the file has no audio track", "invalid_audio", "file")
            stream = container.streams.audio[0]
            declared = declared_seconds(container, stream)
            if declared is not None and declared > max_seconds + 0.05:
                raise _too_long(declared, max_seconds)
            resampler = av.AudioResampler(format="flt", layout="mono", rate=SAMPLE_RATE)
            for packet in container.demux(stream):
                try:
                    frames = packet.decode()
                except av.error.InvalidDataError:
                    continue  # a damaged packet: skip it, as faster-whisper does
                for frame in frames if packet.size else [*frames, None]:  # the empty last packet flushes
                    for out in resampler.resample(frame):
                        chunk = out.to_ndarray().reshape(-1)
                        total += len(chunk)
                        if total > cap + SAMPLE_RATE // 20:  # rounding and codec padding allowed
                            raise _too_long(declared if declared and declared > max_seconds else None, max_seconds)
                        chunks.append(chunk)
    except ApiError:
        raise
    except Exception as exc:  # PyAV raises a family of errors for non-audio input
        raise ApiError(
            400, f"the file is not audio Labeeb can read (WAV, MP3, OGG, FLAC, WebM...): {exc.__class__.__name__}",
            "invalid_audio", "file",
        ) from None
    if total == 0:
        raise ApiError(400, "the audio file holds no sound", "invalid_audio", "file")
    return np.concatenate(chunks).astype(np.float32, copy=False)[:cap]


def transcribe(settings: Any, samples: np.ndarray, language: str | None, prompt: str | None) -> Any:
    """Whisper through the voice plugin's shared transcriber (one model for loop and server)."""
    from labeeb.voice import SpeechModelError
    from labeeb.voice.stt import shared_transcriber

    config = settings.stt
    if language and language.lower() not in ("auto", config.language.lower()):
        config = config.model_copy(update={"language": language.lower()})
    try:
        return shared_transcriber(config).transcribe(samples, hotwords=prompt or None)
    except SpeechModelError as exc:
        raise ApiError(503, f"speech recognition is not available: {exc}", "model_unavailable") from None


def _timestamp(seconds: float, separator: str) -> str:
    millis = int(round(seconds * 1000))
    hours, millis = divmod(millis, 3_600_000)
    minutes, millis = divmod(millis, 60_000)
    secs, millis = divmod(millis, 1000)
    return f"{hours:02d}:{minutes:02d}:{secs:02d}{separator}{millis:03d}"


def subtitles(text: str, duration: float, kind: str) -> str:
    """SRT or WebVTT for ``response_format=srt|vtt``: the transcript as one cue."""
    separator = "," if kind == "srt" else "."
    times = f"{_timestamp(0.0, separator)} --> {_timestamp(duration, separator)}"
    if kind == "srt":
        return f"1\n{times}\n{text}\n"
    return f"WEBVTT\n\n{times}\n{text}\n"


# -- speech out --------------------------------------------------------------------------------


def synthesize(settings: Any, text: str, voice: str, speed: float, response_format: str) -> bytes:
    """Speak ``text`` with the voice plugin's configured engine; WAV or FLAC bytes."""
    import soundfile

    from labeeb.voice import SpeechOutputError
    from labeeb.voice.tts import make_synthesizer, speakable

    spoken = speakable(text)
    if not spoken:
        raise ApiError(400, "nothing to say: the input has no words", "invalid_input", "input")
    update: dict[str, Any] = {"rate": max(50, min(500, round(settings.tts.rate * speed)))}
    custom_voice = bool(voice) and voice.lower() not in OPENAI_VOICES
    if custom_voice:
        update["voice"] = voice
    try:
        synthesizer = make_synthesizer(settings.tts.model_copy(update=update))
    except SpeechOutputError as exc:
        if custom_voice and "voice" in str(exc):
            raise ApiError(400, f"unknown voice {voice!r}: {exc}", "invalid_voice", "voice") from None
        raise ApiError(503, f"speech output is not available: {exc}", "speech_unavailable") from None
    try:
        samples, rate = synthesizer.synthesize(spoken)
    except SpeechOutputError as exc:
        raise ApiError(500, f"speech synthesis failed: {exc}", "speech_failed") from None
    buffer = io.BytesIO()
    kind = "FLAC" if response_format == "flac" else "WAV"
    soundfile.write(buffer, samples, rate, format=kind, subtype="PCM_16")
    return buffer.getvalue()
