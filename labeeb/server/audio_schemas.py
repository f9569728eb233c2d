"""The audio endpoints' request and response bodies, in OpenAI's shape (the chat and model
bodies are in labeeb.server.schemas)."""

from __future__ import annotations

from typing import Literal

from fastapi import UploadFile
from pydantic import BaseModel, ConfigDict, Field

from labeeb.server.schemas import _Request


class VoiceID(_Request):
    id: str = Field(min_length=1, max_length=200)


class SpeechRequest(_Request):
    model: str = "tts-1"
    input: str = Field(min_length=1, max_length=4096)
    # OpenAI's voice names map to installed voices (labeeb.server.speech.OPENAI_VOICES); any
    # other name, or {"id": name}, picks that voice of the speech engine (e.g. "en-us", "ar").
    voice: str | VoiceID = "alloy"
    instructions: str | None = Field(None, max_length=4096, description="refused: espeak-ng cannot follow them")
    response_format: Literal["mp3", "opus", "aac", "flac", "wav", "pcm"] = "mp3"
    speed: float = Field(1.0, ge=0.25, le=4.0)
    stream_format: Literal["sse", "audio"] | None = Field(
        None, description="absent: the whole file; audio: the file streamed as it is made; sse: speech.audio.delta events")

    def voice_name(self) -> str:
        return self.voice.id if isinstance(self.voice, VoiceID) else self.voice


class TranscriptionForm(_Request):
    """The multipart fields of /v1/audio/transcriptions, as the openai SDK names them; any
    other field is a 400 naming it (never taken and ignored)."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)
    file: UploadFile
    model: str = "whisper-1"
    language: str | None = Field(None, max_length=20)
    prompt: str | None = Field(None, max_length=4096)
    response_format: Literal["json", "text", "verbose_json", "srt", "vtt", "diarized_json"] = "json"
    temperature: float = Field(0.0, ge=0.0, le=1.0)
    timestamp_granularities: list[Literal["word", "segment"]] = Field([], alias="timestamp_granularities[]")
    stream: bool = False
    include: list[str] = Field([], alias="include[]")
    keywords: list[str] = Field([], alias="keywords[]", max_length=100)
    languages: list[str] = Field([], alias="languages[]", max_length=100)
    known_speaker_names: list[str] = Field([], alias="known_speaker_names[]")
    known_speaker_references: list[str] = Field([], alias="known_speaker_references[]")
    chunking_strategy: str | None = Field(None, description='"auto", or a JSON server_vad object')
    vad_type: str | None = Field(None, alias="chunking_strategy[type]")
    vad_threshold: float | None = Field(None, alias="chunking_strategy[threshold]", gt=0.0, lt=1.0)
    vad_prefix_padding_ms: int | None = Field(None, alias="chunking_strategy[prefix_padding_ms]", ge=0, le=10_000)
    vad_silence_duration_ms: int | None = Field(
        None, alias="chunking_strategy[silence_duration_ms]", ge=0, le=60_000)


class TranslationForm(_Request):
    """The multipart fields of /v1/audio/translations; any other field is a 400 naming it
    (``language`` too: a translation is always into English)."""

    model_config = ConfigDict(extra="forbid")
    file: UploadFile
    model: str = "whisper-1"
    prompt: str | None = Field(None, max_length=4096)
    response_format: Literal["json", "text", "verbose_json", "srt", "vtt"] = "json"
    temperature: float = Field(0.0, ge=0.0, le=1.0)


class TranscriptionUsage(BaseModel):
    type: Literal["duration"] = "duration"
    seconds: float


class Transcription(BaseModel):
    text: str
    usage: TranscriptionUsage | None = None


class TranscriptionSegment(BaseModel):
    id: int
    seek: int
    start: float
    end: float
    text: str
    tokens: list[int]
    temperature: float
    avg_logprob: float
    compression_ratio: float
    no_speech_prob: float


class TranscriptionWord(BaseModel):
    word: str
    start: float
    end: float


class VerboseTranscription(BaseModel):
    task: Literal["transcribe", "translate"] = "transcribe"
    language: str  # the language's name, as OpenAI gives it ("english")
    duration: float
    text: str
    segments: list[TranscriptionSegment] | None = None
    words: list[TranscriptionWord] | None = None
    usage: TranscriptionUsage | None = None


class TranscriptTextDelta(BaseModel):
    type: Literal["transcript.text.delta"] = "transcript.text.delta"
    delta: str


class TranscriptTextDone(BaseModel):
    type: Literal["transcript.text.done"] = "transcript.text.done"
    text: str


class SpeechAudioDelta(BaseModel):
    type: Literal["speech.audio.delta"] = "speech.audio.delta"
    audio: str  # base64 of the next bytes of the response_format file


class SpeechUsage(BaseModel):
    input_tokens: int = 0  # the speech engine has no tokens
    output_tokens: int = 0
    total_tokens: int = 0


class SpeechAudioDone(BaseModel):
    type: Literal["speech.audio.done"] = "speech.audio.done"
    usage: SpeechUsage = Field(default_factory=SpeechUsage)
