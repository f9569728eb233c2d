"""Request and response bodies, in OpenAI's shape, so any OpenAI client can talk to Labeeb.

A chat completion request's fields are each honoured or refused with a 400 naming the field,
never accepted and ignored: fields Labeeb cannot honour are taken only with the value that
asks for nothing (``logprobs: false``, ``frequency_penalty: 0``, ...), and a field it does not
know is refused by name (``tests/server/test_server_fields.py`` goes through every field the
``openai`` SDK can send).
"""

from __future__ import annotations

import time
import uuid
from typing import Annotated, Any, Literal, Union

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

MAX_TOKENS = 8192
#: Answers one chat completion may ask for (``n``): they are generated one after another, so
#: the bound keeps a request's time and memory within what n separate requests would take.
MAX_CHOICES = 8
#: Alternatives per token ``top_logprobs`` may ask for (OpenAI's limit).
MAX_TOP_LOGPROBS = 20


class _Request(BaseModel):
    model_config = ConfigDict(extra="ignore")


# -- chat completions: request -------------------------------------------------------------


class ImageURL(_Request):
    url: str = Field(min_length=1)
    # "low": one 512 px tile per picture (when every picture of the request asks for it);
    # "auto", "high", "original": Labeeb's usual tiles (labeeb.server.turns).
    detail: Literal["auto", "low", "high", "original"] | None = None


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


#: OpenAI's rule for function and schema names.
NAME_PATTERN = r"^[a-zA-Z0-9_-]{1,64}$"


class FunctionCall(_Request):
    name: str = Field(pattern=NAME_PATTERN)
    arguments: str  # JSON text


class ToolCall(_Request):
    id: str
    type: Literal["function"] = "function"
    function: FunctionCall


class ChatMessage(_Request):
    role: Literal["system", "developer", "user", "assistant", "tool"]
    content: str | list[ContentPart] | None = None
    name: str | None = None
    tool_calls: list[ToolCall] | None = None  # an assistant's earlier calls
    tool_call_id: str | None = None  # which call a tool message answers

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


class JsonSchemaFormat(_Request):
    model_config = ConfigDict(extra="ignore", populate_by_name=True)
    name: str = Field(pattern=NAME_PATTERN)
    description: str | None = None
    schema_: dict[str, Any] | None = Field(None, alias="schema")
    strict: bool | None = None


class ResponseFormat(_Request):
    type: Literal["text", "json_object", "json_schema"]
    json_schema: JsonSchemaFormat | None = None

    @model_validator(mode="after")
    def _schema_given(self) -> ResponseFormat:
        if (self.type == "json_schema") != (self.json_schema is not None):
            raise ValueError('json_schema goes with type "json_schema", and only with it')
        return self

    def asked(self) -> dict[str, Any] | None:
        """What the answer must be, in OpenAI's shape (None: plain text)."""
        return None if self.type == "text" else self.model_dump(by_alias=True, exclude_none=True)


class FunctionDefinition(_Request):
    name: str = Field(pattern=NAME_PATTERN)
    description: str | None = None
    parameters: dict[str, Any] | None = None  # a JSON schema; none: no arguments
    strict: bool | None = None


class Tool(_Request):
    type: Literal["function"]
    function: FunctionDefinition


class ToolChoiceFunction(_Request):
    name: str


class NamedToolChoice(_Request):
    type: Literal["function"]
    function: ToolChoiceFunction


#: Fields Labeeb cannot honour, taken only with the value that asks for nothing (what to say).
NEUTRAL_ONLY: dict[str, tuple[tuple[Any, ...], str]] = {
    "logit_bias": ((None, {}), "logit_bias is not supported"),
    "frequency_penalty": ((None, 0, 0.0), "frequency_penalty is not supported (only 0)"),
    "presence_penalty": ((None, 0, 0.0), "presence_penalty is not supported (only 0)"),
    "modalities": ((None, ["text"]), "only text answers: modalities must be [\"text\"]"),
    "audio": ((None,), "spoken answers come from /v1/audio/speech, not from chat completions"),
    "prediction": ((None,), "predicted outputs are not supported"),
    "reasoning_effort": ((None,), "this model does not reason in steps: reasoning_effort is not supported"),
    "verbosity": ((None,), "verbosity is not supported"),
    "web_search_options": ((None,), "this server does not search the web"),
    "store": ((None, False), "this server keeps no completions for later use (store must be false)"),
    "service_tier": ((None, "auto", "default"), "there is one service tier: auto"),
    "moderation": ((None,), "moderation is not supported"),
    "prompt_cache_options": ((None,), "prompt caching is automatic here (cached_tokens in usage)"),
    "prompt_cache_retention": ((None,), "prompt caching is automatic here (cached_tokens in usage)"),
}


class ChatCompletionRequest(_Request):
    # Every field the official SDK can send is listed here; anything else is a 400 naming it.
    model_config = ConfigDict(extra="forbid")

    model: str = Field(min_length=1)
    messages: list[ChatMessage] = Field(min_length=1)
    max_tokens: int | None = Field(None, ge=1, le=MAX_TOKENS)
    max_completion_tokens: int | None = Field(None, ge=1, le=MAX_TOKENS)
    temperature: float | None = Field(None, ge=0.0, le=2.0)
    top_p: float | None = Field(None, gt=0.0, le=1.0)  # nucleus sampling (with temperature > 0)
    seed: int | None = Field(None, description="the same seed gives the same sampled answer")
    n: int = Field(1, ge=1, le=MAX_CHOICES, description="how many answers (choices) to give")
    stop: str | list[str] | None = None
    stream: bool = False
    stream_options: StreamOptions | None = None
    user: str | None = None
    response_format: ResponseFormat | None = None
    tools: list[Tool] | None = Field(None, max_length=128)
    tool_choice: Literal["none", "auto", "required"] | NamedToolChoice | None = None
    parallel_tool_calls: bool | None = None
    # Deprecated by OpenAI; refused with a 400 that says to send tools (labeeb.server.structure).
    functions: list[Any] | None = None
    function_call: Any = None
    # Labels of the request: they change nothing in the answer (OpenAI uses them to monitor
    # and route); Labeeb takes them as such.
    metadata: dict[str, str] | None = Field(None, max_length=16)
    safety_identifier: str | None = Field(None, max_length=256)
    prompt_cache_key: str | None = Field(None, max_length=256)
    # Each answer token's log probability, with top_logprobs alternatives (labeeb.vision.logprobs).
    logprobs: bool | None = None
    top_logprobs: int | None = Field(None, ge=0, le=MAX_TOP_LOGPROBS)
    # Taken only with the value that asks for nothing (NEUTRAL_ONLY says why).
    logit_bias: dict[str, float] | None = None
    frequency_penalty: float | None = None
    presence_penalty: float | None = None
    modalities: list[str] | None = None
    audio: Any = None
    prediction: Any = None
    reasoning_effort: Any = None
    verbosity: Any = None
    web_search_options: Any = None
    store: bool | None = None
    service_tier: str | None = None
    moderation: Any = None
    prompt_cache_options: Any = None
    prompt_cache_retention: Any = None

    @field_validator(*NEUTRAL_ONLY)
    @classmethod
    def _neutral_only(cls, value: Any, info: Any) -> Any:
        allowed, why = NEUTRAL_ONLY[info.field_name]
        if value not in allowed:
            raise ValueError(f"{why}; this server answers {info.field_name} = {value!r} with a 400 rather than "
                             "ignore it")
        return value

    @field_validator("top_logprobs")
    @classmethod
    def _top_needs_logprobs(cls, value: int | None, info: Any) -> int | None:
        if value and not info.data.get("logprobs"):
            raise ValueError("top_logprobs needs logprobs = true")
        return value

    def logprobs_asked(self) -> int | None:
        """Alternatives per token when log probabilities are asked for (0 to 20), else None."""
        return (self.top_logprobs or 0) if self.logprobs else None

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


class PromptTokensDetails(BaseModel):
    cached_tokens: int = 0  # prompt tokens not computed again (a reused key/value prefix, the answer cache)


class Usage(BaseModel):
    prompt_tokens: int = 0
    completion_tokens: int = 0
    total_tokens: int = 0
    prompt_tokens_details: PromptTokensDetails = PromptTokensDetails()


class AssistantMessage(BaseModel):
    role: Literal["assistant"] = "assistant"
    content: str | None
    tool_calls: list[ToolCall] | None = None


FinishReason = Literal["stop", "length", "tool_calls", "content_filter"]


class TopLogprob(BaseModel):
    token: str
    logprob: float
    bytes: list[int] | None = None


class TokenLogprob(TopLogprob):
    top_logprobs: list[TopLogprob] = []


class ChoiceLogprobs(BaseModel):
    """A choice's token log probabilities (OpenAI's shape): one entry per answer token."""

    content: list[TokenLogprob] | None = None
    refusal: list[TokenLogprob] | None = None


class Choice(BaseModel):
    index: int = 0
    message: AssistantMessage
    finish_reason: FinishReason = "stop"
    logprobs: ChoiceLogprobs | None = None


class ChatCompletion(BaseModel):
    id: str
    object: Literal["chat.completion"] = "chat.completion"
    created: int
    model: str
    choices: list[Choice]
    usage: Usage
    system_fingerprint: str | None = None


class FunctionDelta(BaseModel):
    name: str | None = None
    arguments: str | None = None


class ToolCallDelta(BaseModel):
    """A piece of a streamed tool call: the first has its id, type and name, the rest more of
    its arguments (OpenAI's shape)."""

    index: int
    id: str | None = None
    type: Literal["function"] | None = None
    function: FunctionDelta


class Delta(BaseModel):
    role: Literal["assistant"] | None = None
    content: str | None = None
    tool_calls: list[ToolCallDelta] | None = None


class ChunkChoice(BaseModel):
    index: int = 0
    delta: Delta
    finish_reason: FinishReason | None = None
    logprobs: ChoiceLogprobs | None = None  # the log probabilities of this chunk's tokens


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
