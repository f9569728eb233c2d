"""Skills: what a plugin answers, and the request a skill handler receives."""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Iterable, Union

from labeeb.messages import UserError

if TYPE_CHECKING:  # pragma: no cover
    from PIL.Image import Image

    from labeeb.plugin_api import AssistantView
    from labeeb.messages import Command, Generation, Reply
    from labeeb.session import Session
    from labeeb.vision.processor import VisionProcessor, VisionStream

#: What a handler may return: a finished reply, plain text, or text chunks to stream.
HandlerResult = Union["Reply", str, Iterable[str]]
Handler = Callable[["Request"], HandlerResult]


@dataclass
class Skill:
    """A command a plugin answers.

    ``examples`` are phrases the router compares the command with (fuzzy, via rapidfuzz);
    ``patterns`` are regular expressions that match outright.
    """

    name: str
    handler: Handler
    description: str = ""
    examples: list[str] = field(default_factory=list)
    patterns: list[str] = field(default_factory=list)
    # The fallback skill answers whatever nothing else matched (one per assistant).
    fallback: bool = False
    # When given, the skill is only considered if ``applies(command, session)`` is true,
    # e.g. document questions only when a document is attached or being read.
    applies: Callable[[Command, Session], bool] | None = None
    # True when the skill's answer is its model call's answer, unchanged: a request's
    # ``response_format`` and ``tools`` (Command.generation) then reach that call. A command
    # asking for them is refused (UserError naming the field) by a skill without it.
    structured: bool = False
    # Filled in by the host: the plugin that registered this skill.
    plugin: str = ""

    def __post_init__(self) -> None:
        if not self.name or not callable(self.handler):
            raise TypeError("a Skill needs a name and a callable handler")
        self._compiled = [re.compile(p, re.IGNORECASE) for p in self.patterns]

    @property
    def qualified_name(self) -> str:
        return f"{self.plugin}.{self.name}" if self.plugin else self.name

    def matches_pattern(self, text: str) -> str | None:
        for pattern in self._compiled:
            if pattern.search(text):
                return pattern.pattern
        return None

    def check_structure(self, generation: Generation) -> None:
        """Refuse a command whose answer's shape (``response_format``, ``tools``) this skill
        cannot give: a :class:`StructureRefused` naming the field."""
        if self.structured or not generation.structured:
            return
        param = "tools" if generation.tools is not None and generation.tools.choice != "none" else "response_format"
        raise StructureRefused(
            f"the {self.qualified_name} skill writes its own answer, so it cannot follow {param}; "
            f"ask the vision model directly (its own model id), or leave {param} out", param)


class StructureRefused(UserError):
    """A skill cannot give the answer's shape a command asks for; ``param`` names the field."""

    def __init__(self, message: str, param: str) -> None:
        super().__init__(message)
        self.param = param


@dataclass
class Request:
    """Everything a skill handler gets for one command."""

    command: Command
    skill: Skill
    assistant: AssistantView
    #: The conversation this command belongs to (see :class:`labeeb.session.Session`).
    session: Session
    cancel: threading.Event = field(default_factory=threading.Event)
    #: Extras for the reply's ``data`` that a streaming handler (which returns text, not a
    #: Reply) wants the reply to carry.
    data: dict[str, Any] = field(default_factory=dict)
    # Vision calls made while handling this request, for usage and timings.
    vision_calls: list[VisionStream] = field(default_factory=list)
    # Seconds from the handler's start to its first streamed chunk (set by the assistant).
    first_chunk_at: float | None = None
    cancelled: bool = False

    @property
    def text(self) -> str:
        return self.command.text

    @property
    def context(self) -> Session:
        """The session under its earlier name (plugins written for Labeeb 0.1 use it)."""
        return self.session

    @property
    def state(self) -> dict[str, Any]:
        """This plugin's own state in this session (see :meth:`Session.state`)."""
        return self.session.state(self.skill.plugin)

    @property
    def vision(self) -> VisionProcessor:
        return self.assistant.vision

    def images(self) -> list[Image]:
        """The command's images, else the latest ones in the conversation."""
        return list(self.command.images) or self.session.latest_images()

    def settings(self) -> dict[str, Any]:
        """This plugin's ``[plugins.settings.NAME]`` table from the config."""
        return dict(self.assistant.settings.plugins.settings.get(self.skill.plugin, {}))

    def command_generation(self, options: dict[str, Any]) -> dict[str, Any]:
        """``options`` for one model call, with the command's own generation options filled in:
        the skill's values win, except that nothing exceeds the request's ``max_tokens``."""
        wanted = self.command.generation
        options = dict(options)
        if wanted.max_tokens:
            asked = options.get("max_new_tokens")
            options["max_new_tokens"] = min(asked, wanted.max_tokens) if asked else wanted.max_tokens
        for name in ("temperature", "top_p", "seed"):
            if getattr(wanted, name) is not None:
                options.setdefault(name, getattr(wanted, name))
        if wanted.stop:
            options["stop"] = [*options.get("stop", []), *wanted.stop]
        if self.skill.structured:  # the answer's shape: only where the answer is the model's
            for name in ("response_format", "tools"):
                if getattr(wanted, name) is not None:
                    options.setdefault(name, getattr(wanted, name))
        return options

    def ask_vision(
        self,
        prompt: str,
        images: list[Image] | None = None,
        **options: Any,
    ) -> VisionStream:
        """Ask the shared vision model; iterate the result for text chunks.

        The command's generation options (:class:`labeeb.messages.Generation`) apply to every
        call. A video's frames attached to the command (``options["video_frame_times"]``) go
        as frames, one tile each with their times, unless ``video.detail = "high"``.
        """
        images = self.images() if images is None else images
        options = self.command_generation(options)
        times = self.command.options.get("video_frame_times")
        if (times and "frame_times" not in options and len(times) == len(images)
                and all(a is b for a, b in zip(images, self.command.images))
                and self.assistant.settings.video.detail == "low"):
            options["frame_times"] = times
        if self.command.options.get("image_detail") == "low" and "detail" not in options:
            options["detail"] = "low"  # the API's image_url.detail = "low": one tile per picture
        stream = self.vision.stream(
            prompt,
            images,
            history=self.session.exchanges(),
            cancel=self.cancel,
            **options,
        )
        self.vision_calls.append(stream)
        return stream
