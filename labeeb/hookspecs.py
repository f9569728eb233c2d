"""Every hook a Labeeb plugin can implement.

Hooks that contribute things take a ``register`` callback, so the host (not pluggy's
result list) decides how contributions merge, which plugin each came from and what
happens on a name clash. Each hook is documented in ``docs/plugins.md`` (a test checks).
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Callable

import pluggy

if TYPE_CHECKING:  # pragma: no cover
    import click

    from labeeb.plugin_api import AssistantView
    from labeeb.messages import Command, Reply
    from labeeb.skills import Skill
    from labeeb.vision.backend import BackendFactory

#: The marker name and the entry-point group are the same string.
NAME = "labeeb"

hookspec = pluggy.HookspecMarker(NAME)
hookimpl = pluggy.HookimplMarker(NAME)


@hookspec
def register_skills(register: Callable[[Skill], None]) -> None:
    """Register the commands this plugin answers.

    :param register: call ``register(Skill(...))`` once per skill.
    """


@hookspec
def register_commands(cli: click.Group) -> None:
    """Add subcommands to the ``labeeb`` command line.

    :param cli: the top-level click group; decorate functions with ``@cli.command()``.
    """


@hookspec
def register_vision_backends(register: Callable[[str, BackendFactory], None]) -> None:
    """Register vision backends the shared vision processor can use.

    :param register: call ``register(name, factory)``; ``factory(config)`` returns an object
        following :class:`labeeb.vision.backend.VisionBackend`. ``vision.backend`` picks one.
    """


@hookspec
def labeeb_startup(assistant: AssistantView) -> None:
    """Called once after all plugins are loaded, before the first command.

    :param assistant: the running assistant (config, router, vision processor).
    """


@hookspec
def labeeb_shutdown(assistant: AssistantView) -> None:
    """Called once when the assistant stops; release what ``labeeb_startup`` took.

    :param assistant: the running assistant.
    """


@hookspec
def command_coming(assistant: AssistantView, arrived: threading.Event, asking: bool) -> None:
    """A command is on its way but its words are not known yet: the user started speaking or
    typing (``labeeb chat``), or (with ``listen.prepare_while_idle``) Labeeb has listened that
    many seconds to silence.

    A plugin may start, on a thread of its own, work the command will likely need (the
    screen plugin encodes the screen, so a question about it is answered sooner). Return at
    once. The work must only warm caches, never act or answer, and should stop when
    ``arrived`` is set: the command is then known and the CPU is needed for it.

    :param assistant: the running assistant.
    :param arrived: set when the command arrives (the utterance ended) or never will, and
        for an idle preparation when speech starts or the next idle preparation does.
    :param asking: true while the user is giving the command (speaking, typing), false for an
        idle preparation. (A plugin may leave it out of its signature.)
    """


@hookspec
def process_reply(reply: Reply, command: Command) -> Reply | None:
    """Act on a reply before it is spoken or shown.

    Called for every plugin in turn; each sees the reply the previous one returned.

    :param reply: the reply so far.
    :param command: the command that produced it.
    :return: a replacement :class:`~labeeb.messages.Reply`, or ``None`` to keep it.
    """
