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

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            self.prompt_tokens + other.prompt_tokens,
            self.completion_tokens + other.completion_tokens,
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
class Generation:
    """How this one request's answers are generated: they travel with the command (the CLI's
    ``--max-tokens``, an API request's ``max_tokens``/``temperature``/``top_p``/``seed``/``stop``),
    never through the shared config, so concurrent requests cannot see each other's. ``None``
    means the ``[vision]`` default. ``max_tokens`` caps every model call the skill makes."""

    max_tokens: int | None = None
    temperature: float | None = None
    top_p: float | None = None
    seed: int | None = None
    stop: tuple[str, ...] = ()


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
    # "model_unavailable", "context_length_exceeded", "vision_error" or "plugin_error".
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
