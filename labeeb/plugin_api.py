"""What a plugin may touch of the running assistant: a narrow protocol, not the class.

Skill handlers get it as ``request.assistant``, and the ``labeeb_startup``,
``labeeb_shutdown`` and ``command_coming`` hooks as ``assistant``. Typing plugins against
this protocol (rather than :class:`labeeb.assistant.Assistant`) keeps them, and the modules
that call them, free of the assistant's own imports: it is all they may rely on.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Callable, Protocol

if TYPE_CHECKING:  # pragma: no cover
    from labeeb.config import Settings
    from labeeb.messages import Command, Reply
    from labeeb.router import Route, Router
    from labeeb.session import Session
    from labeeb.vision.processor import VisionProcessor


class AssistantView(Protocol):
    """The running assistant as plugins see it."""

    #: The whole configuration (read it; per-request options travel with the command).
    settings: Settings
    #: The session of front ends that keep one conversation (chat, voice, ``labeeb ask``).
    session: Session

    @property
    def vision(self) -> VisionProcessor:
        """The shared vision processor (``generate``, ``stream``, ``status``)."""

    @property
    def router(self) -> Router:
        """The router over every loaded skill (``router.skills`` lists them)."""

    def new_session(self) -> Session:
        """An empty session sized by the ``[context]`` settings."""

    def route(self, text: str, command: Command | None = None, session: Session | None = None) -> Route:
        """Where ``text`` would go, and why (``Route.explain()``)."""

    def stream(self, command: Command, session: Session | None = None, cancel: threading.Event | None = None,
               remember: bool = True, route: Route | None = None) -> ReplyStreamView:
        """Run another command: iterate for its text chunks; ``.reply`` when it ends."""

    def handle(self, command: Command, on_chunk: Callable[[str], None] | None = None,
               cancel: threading.Event | None = None, remember: bool = True,
               session: Session | None = None) -> Reply:
        """Run another command to the end and return its Reply."""


class ReplyStreamView(Protocol):
    """An answer as it streams (see :class:`labeeb.assistant.ReplyStream`)."""

    reply: Reply | None

    def __iter__(self) -> ReplyStreamView: ...

    def __next__(self) -> str: ...

    def result(self) -> Reply:
        """Run to the end and return the Reply."""

    def stop(self) -> Reply:
        """Stop the answer now and return its Reply so far."""
