"""Request and response bodies, in OpenAI's shape, so any OpenAI client can talk to Labeeb.

Unknown request fields are ignored rather than refused: clients such as Open WebUI send
extras (``user``, ``seed``, ``logit_bias``) that make no difference to a local model.
"""

from __future__ import annotations

import time
import uuid
from typing import Annotated, Literal, Union

from pydantic import BaseModel, ConfigDict, Field, field_validator

MAX_TOKENS = 8192


class _Request(BaseModel):
    model_config = ConfigDict(extra="ignore")


# -- chat completions: request -------------------------------------------------------------


class ImageURL(_Request):
    url: str = Field(min_length=1)
    detail: Literal["auto", "low", "high"] | None = None


class TextPart(_Request):
    type: Literal["text"]
    text: str


class ImagePart(_Request):
    type: Literal["image_url"]
    image_url: ImageURL

    @field_validator("image_url", mode="before")
    @classmethod
    def _plain_string(cls, value: object) -> object:
        # Some clients send {"image_url": "data:..."} instead of {"image_url": {"url": ...}}.
        return {"url": value} if isinstance(value, str) else value


ContentPart = Annotated[Union[TextPart, ImagePart], Field(discriminator="type")]


class ChatMessage(_Request):
    role: Literal["system", "developer", "user", "assistant"]
    content: str | list[ContentPart] | None = None
    name: str | None = None

    def text(self) -> str:
        if isinstance(self.content, str):
            return self.content
        return "\n".join(part.text for part in self.content or [] if isinstance(part, TextPart))

    def image_urls(self) -> list[str]:
        if isinstance(self.content, str) or not self.content:
            return []
        return [part.image_url.url for part in self.content if isinstance(part, ImagePart)]


class StreamOptions(_Request):
    include_usage: bool = False


class ChatCompletionRequest(_Request):
    model: str = Field(min_length=1)
    messages: list[ChatMessage] = Field(min_length=1)
    max_tokens: int | None = Field(None, ge=1, le=MAX_TOKENS)
    max_completion_tokens: int | None = Field(None, ge=1, le=MAX_TOKENS)
    temperature: float | None = Field(None, ge=0.0, le=2.0)
    top_p: float | None = Field(None, gt=0.0, le=1.0)  # nucleus sampling (with temperature > 0)
    seed: int | None = Field(None, description="the same seed gives the same sampled answer")
    n: int = Field(1, ge=1, le=1, description="one answer per request")
    stop: str | list[str] | None = None
    stream: bool = False
    stream_options: StreamOptions | None = None
    user: str | None = None

    @field_validator("stop")
    @classmethod
    def _stop_list(cls, value: str | list[str] | None) -> str | list[str] | None:
        if isinstance(value, list) and len(value) > 4:
            raise ValueError("at most 4 stop sequences")
        return value

    def stop_list(self) -> list[str]:
        if self.stop is None:
            return []
        return [self.stop] if isinstance(self.stop, str) else [s for s in self.stop if s]

    def token_limit(self) -> int | None:
        return self.max_completion_tokens or self.max_tokens


# -- chat completions: response ------------------------------------------------------------


class Usage(BaseModel):
    prompt_tokens: int = 0
    completion_tokens: int = 0
    total_tokens: int = 0


class AssistantMessage(BaseModel):
    role: Literal["assistant"] = "assistant"
    content: str


FinishReason = Literal["stop", "length"]


class Choice(BaseModel):
    index: int = 0
    message: AssistantMessage
    finish_reason: FinishReason = "stop"
    logprobs: None = None


class ChatCompletion(BaseModel):
    id: str
    object: Literal["chat.completion"] = "chat.completion"
    created: int
    model: str
    choices: list[Choice]
    usage: Usage
    system_fingerprint: str | None = None


class Delta(BaseModel):
    role: Literal["assistant"] | None = None
    content: str | None = None


class ChunkChoice(BaseModel):
    index: int = 0
    delta: Delta
    finish_reason: FinishReason | None = None
    logprobs: None = None


class ChatCompletionChunk(BaseModel):
    id: str
    object: Literal["chat.completion.chunk"] = "chat.completion.chunk"
    created: int
    model: str
    choices: list[ChunkChoice]
    usage: Usage | None = None


def completion_id() -> str:
    return f"chatcmpl-{uuid.uuid4().hex[:24]}"


def now() -> int:
    return int(time.time())


# -- models ----------------------------------------------------------------------------------


class ModelCard(BaseModel):
    id: str
    object: Literal["model"] = "model"
    created: int
    owned_by: str


class ModelList(BaseModel):
    object: Literal["list"] = "list"
    data: list[ModelCard]


# -- audio -----------------------------------------------------------------------------------


class SpeechRequest(_Request):
    model: str = "tts-1"
    input: str = Field(min_length=1, max_length=4096)
    # OpenAI's voice names (alloy, echo, ...) get the configured voice (tts.voice); any
    # other name picks that voice of the speech engine (e.g. "en-us", "ar" with espeak-ng).
    voice: str = "alloy"
    response_format: Literal["wav", "flac"] = "wav"
    speed: float = Field(1.0, ge=0.25, le=4.0)


class Transcription(BaseModel):
    text: str


class TranscriptionSegment(BaseModel):
    id: int
    start: float
    end: float
    text: str


class VerboseTranscription(BaseModel):
    task: Literal["transcribe"] = "transcribe"
    language: str
    duration: float
    text: str
    segments: list[TranscriptionSegment]
