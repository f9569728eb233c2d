"""The small protocol every vision backend follows, and what flows through it.

A backend may also have ``look(images, until) -> int``: encode pictures ahead of a question
about them (until ``until`` is set), warming only caches. The in-process transformers backend
has it; remote backends do not, so nothing is sent anywhere before a question is asked.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Callable, Iterator, Protocol

if TYPE_CHECKING:  # pragma: no cover
    from PIL.Image import Image

    from labeeb.config import VisionConfig


class VisionError(RuntimeError):
    """A vision request failed; the message says why and what to do."""


class ModelUnavailableError(VisionError):
    """The model cannot be loaded (offline, wrong path, corrupt files)."""


@dataclass
class VisionRequest:
    prompt: str
    images: list[Image]
    # Earlier (user, assistant) exchanges, oldest first, text only.
    history: list[tuple[str, str]] = field(default_factory=list)
    max_new_tokens: int = 256
    # Keep generating past the end-of-answer token until this many (benchmarks fix lengths).
    min_new_tokens: int = 0
    temperature: float = 0.0
    stop: list[str] = field(default_factory=list)
    cancel: threading.Event = field(default_factory=threading.Event)


@dataclass
class GenerationStats:
    """Filled in by the backend while it streams."""

    prompt_tokens: int = 0
    completion_tokens: int = 0
    preprocess: float | None = None


class VisionBackend(Protocol):
    name: str
    model_id: str
    #: True when the backend may serve several requests at once (a remote server).
    concurrent: bool

    def load(self) -> None:
        """Make the backend ready; raise ModelUnavailableError with a fix when it cannot."""

    def stream(self, request: VisionRequest, stats: GenerationStats) -> Iterator[str]:
        """Yield the answer's text in chunks, filling ``stats`` as it goes."""


BackendFactory = Callable[["VisionConfig"], VisionBackend]
