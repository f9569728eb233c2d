"""The small dataclasses that flow through Labeeb: commands in, replies out."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:  # pragma: no cover
    from PIL.Image import Image

Source = Literal["chat", "cli", "voice", "api", "image"]


class UserError(Exception):
    """Raised by a skill when the command cannot be done as asked (nothing attached, page 9 of
    3): the user is told what to do; it is their mistake to fix, not a fault (the API's 400)."""


@dataclass
class Usage:
    prompt_tokens: int = 0
    completion_tokens: int = 0
    #: Of the prompt tokens, those not computed again (an earlier prompt's key/value cache, or
    #: the answer cache): OpenAI's ``prompt_tokens_details.cached_tokens``.
    cached_tokens: int = 0

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            self.prompt_tokens + other.prompt_tokens,
            self.completion_tokens + other.completion_tokens,
            self.cached_tokens + other.cached_tokens,
        )

    def to_dict(self) -> dict[str, int]:
        return {**asdict(self), "total_tokens": self.total_tokens}


@dataclass
class Timings:
    """Seconds spent in each stage; ``None`` where a stage did not happen."""

    load: float | None = None  # loading the model, on the first request only
    preprocess: float | None = None
    ttft: float | None = None
    total: float | None = None
    route: float | None = None

    def to_dict(self) -> dict[str, float | None]:
        return {k: (round(v, 4) if v is not None else None) for k, v in asdict(self).items()}


@dataclass(frozen=True)
class Tools:
    """Functions the model may call (OpenAI's ``tools``) and whether it must (``tool_choice``).

    Each function is OpenAI's ``{"name", "description", "parameters", "strict"}``; the calls
    are enforced by a grammar (labeeb.structured) and read back by labeeb.tool_calls.
    """

    functions: tuple[dict[str, Any], ...]
    #: "auto" (text or calls), "required" (calls), "none" (text) or "function" (``function``).
    choice: Literal["auto", "required", "none", "function"] = "auto"
    function: str | None = None  # the one function to call, with choice "function"
    parallel: bool = True  # several calls in one answer may be made (parallel_tool_calls)

    def callable(self) -> list[dict[str, Any]]:
        """The functions this answer may call."""
        if self.choice == "none":
            return []
        if self.choice == "function":
            return [f for f in self.functions if f["name"] == self.function]
        return list(self.functions)


@dataclass(frozen=True)
class Generation:
    """How this one request's answers are generated: they travel with the command (the CLI's
    ``--max-tokens``, an API request's ``max_tokens``/``temperature``/``top_p``/``seed``/``stop``),
    never through the shared config, so concurrent requests cannot see each other's. ``None``
    means the ``[vision]`` default. ``max_tokens`` caps every model call the skill makes.

    ``response_format`` (OpenAI's: ``{"type": "json_object"}`` or ``{"type": "json_schema",
    "json_schema": {"name", "schema", "strict"}}``) and ``tools`` shape the answer itself:
    only skills that declare ``Skill.structured`` get them (their answer is the model's).
    """

    max_tokens: int | None = None
    temperature: float | None = None
    top_p: float | None = None
    seed: int | None = None
    stop: tuple[str, ...] = ()
    response_format: dict[str, Any] | None = None
    tools: Tools | None = None

    @property
    def structured(self) -> bool:
        """Whether the answer's shape is asked for (JSON, or tool calls)."""
        return (self.response_format or {}).get("type", "text") != "text" or (
            self.tools is not None and self.tools.choice != "none")


@dataclass
class Command:
    """What the user asked, typed or spoken, with any images attached."""

    text: str
    images: list[Image] = field(default_factory=list)
    source: Source = "cli"
    # The files the images came from, and files that are not plain images (PDFs).
    files: list[Path] = field(default_factory=list)
    # Options a front end passes through (e.g. ``screen=True``); plugins read what they know.
    options: dict[str, Any] = field(default_factory=dict)
    generation: Generation = field(default_factory=Generation)


@dataclass
class Reply:
    """What Labeeb answers: text plus where it came from and what it cost."""

    text: str
    plugin: str = ""
    skill: str = ""
    usage: Usage = field(default_factory=Usage)
    timings: Timings = field(default_factory=Timings)
    # Structured extras a skill wants to hand to machines (``--json``), e.g. extracted fields.
    # A failed reply carries ``data["error_code"]``: "invalid_request" (UserError),
    # "model_unavailable", "context_length_exceeded", "vision_error" or "plugin_error", and
    # ``data["error_param"]``, the request field at fault when one is (e.g. "response_format").
    data: dict[str, Any] = field(default_factory=dict)
    error: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {
            "text": self.text,
            "plugin": self.plugin,
            "skill": self.skill,
            "timings": self.timings.to_dict(),
            "usage": self.usage.to_dict(),
            "data": self.data,
            "error": self.error,
        }
