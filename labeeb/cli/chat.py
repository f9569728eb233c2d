"""``labeeb chat``: a terminal conversation with streamed answers."""

from __future__ import annotations

import shlex
import sys
import threading
from pathlib import Path
from typing import Any, Callable, Iterator
from urllib.parse import unquote, urlparse

import click

from labeeb.cli.app import get_app

HELP = """Type a question or a command and press Enter.
  /image PATH [PATH...]  attach images or PDFs to the next question (or drop files here)
  /forget                forget the attached images and the conversation
  /explain TEXT          show how TEXT would be routed, without running it
  /help                  this help
  /quit                  leave (Ctrl-D works too; Ctrl-C stops an answer)"""


def dropped_paths(line: str) -> list[Path] | None:
    """Paths when the whole line is one or more existing files (drag and drop), else None."""
    try:
        parts = shlex.split(line)
    except ValueError:
        return None
    paths = []
    for part in parts:
        if part.startswith("file://"):
            part = unquote(urlparse(part).path)
        path = Path(part).expanduser()
        if not path.is_file():
            return None
        paths.append(path)
    return paths or None


class Typing:
    """A command is coming once the first key of a line is typed: plugins are told (the
    ``command_coming`` hook; the screen plugin looks at the screen while you type), and the
    line sent (or dropped), that the command arrived."""

    def __init__(self, assistant: Any) -> None:
        self.assistant = assistant
        self.arrived: threading.Event | None = None

    def changed(self, buffer: Any) -> None:
        text = buffer.text.strip()
        if self.arrived is None and text and not text.startswith("/"):
            self.arrived = threading.Event()
            # On a thread of its own: a slow plugin must not stall typing.
            threading.Thread(target=self.assistant.command_coming, args=(self.arrived, True),
                             name="labeeb-command-coming", daemon=True).start()

    def sent(self) -> None:
        if self.arrived is not None:
            self.arrived.set()
            self.arrived = None


def _lines(prompt: str, typing: Typing | None = None) -> Iterator[str]:
    """Input lines: with arrow-key history (and ``typing`` told of each key) on a terminal,
    plain lines from a pipe."""
    if sys.stdin.isatty() and sys.stdout.isatty():
        from platformdirs import user_data_path
        from prompt_toolkit import PromptSession
        from prompt_toolkit.history import FileHistory

        history = user_data_path("labeeb", ensure_exists=True) / "chat_history"
        session: PromptSession[str] = PromptSession(history=FileHistory(str(history)))
        if typing is not None:
            session.default_buffer.on_text_changed += typing.changed
        while True:
            try:
                line = session.prompt(prompt)
            except KeyboardInterrupt:
                continue  # Ctrl-C at the prompt clears the line
            except EOFError:
                return
            finally:
                if typing is not None:
                    typing.sent()
            yield line
    else:
        if hasattr(sys.stdin, "reconfigure"):  # bytes that are not text become U+FFFD, not a crash
            sys.stdin.reconfigure(errors="replace")
        for line in sys.stdin:
            yield line.rstrip("\n")


@click.command("chat")
@click.option("--image", "-i", "images", multiple=True, type=click.Path(), help="Start with these images attached.")
@click.option("--speak/--no-speak", default=False, help="Speak answers aloud, sentence by sentence as they stream.")
@click.pass_context
def command(ctx: click.Context, images: tuple[str, ...], speak: bool = False) -> None:
    """Chat with Labeeb in the terminal."""
    app = get_app(ctx)
    speaker = None
    if speak:
        from labeeb.voice.speaker import open_speaker

        speaker = open_speaker(app.loaded.settings.tts, warn=lambda message: click.echo(f"labeeb: {message}", err=True))
    chat = Chat(app.assistant, speaker, [Path(p) for p in images])
    click.echo("Labeeb is listening. /help for commands, /quit to leave.")
    from labeeb.screen.background import start_for

    with app.assistant:
        looking = start_for(app.assistant)  # the screen seen before it is asked about
        for raw in _lines("you> ", Typing(app.assistant)):
            line = raw.strip()
            if line in ("/quit", "/exit", "/q"):
                break
            if line:
                chat.take(line)
        if looking is not None:
            looking.stop()
    if speaker is not None:
        speaker.close()  # the last answer finishes speaking (Ctrl-C stops it)
    click.echo("Bye.")


class Chat:
    """One terminal conversation: the assistant's session, files waiting for the next
    question, and the speaker when answers are spoken."""

    def __init__(self, assistant: Any, speaker: Any, pending: list[Path]) -> None:
        self.assistant = assistant
        self.speaker = speaker
        self.pending = pending

    def take(self, line: str) -> None:
        """Run a /command, attach dropped files, or answer a question."""
        echo: Callable[..., None] = click.echo
        dropped = None if line.startswith("/") else dropped_paths(line)
        if line == "/help":
            echo(HELP)
        elif line == "/forget":
            self.assistant.session.clear()
            self.pending.clear()
            echo("(forgot the images and the conversation)")
        elif line.startswith("/explain "):
            echo(self.assistant.route(line[len("/explain ") :]).explain())
        elif line.startswith("/image"):
            paths = dropped_paths(line[len("/image") :].strip()) or []
            if paths:
                self._attach(paths)
            else:
                echo("usage: /image PATH [PATH...] (the files must exist)", err=True)
        elif line.startswith("/"):
            echo(f"unknown command {line.split()[0]}; /help lists them", err=True)
        elif dropped:
            self._attach(dropped)
        else:
            self.answer(line)

    def _attach(self, paths: list[Path]) -> None:
        self.pending += paths
        click.echo(f"(attached {', '.join(p.name for p in paths)}; now ask about it)")

    def answer(self, line: str) -> None:
        """Stream the answer to ``line`` (with the files attached since the last question)."""
        from labeeb.images import ImageError, load_attachments
        from labeeb.messages import Command

        try:
            pictures, files = load_attachments(self.pending)
        except ImageError as exc:
            click.echo(f"labeeb: {exc}", err=True)
            return
        finally:
            self.pending.clear()
        click.echo("labeeb> ", nl=False)
        streamed: list[str] = []
        speaker = self.speaker

        def on_chunk(chunk: str) -> None:
            streamed.append(chunk)
            sys.stdout.write(chunk)
            sys.stdout.flush()
            if speaker is not None:
                speaker.feed(chunk)

        if speaker is not None:
            speaker.begin()  # a new question stops the previous answer's speech
        reply = self.assistant.handle(Command(text=line, images=pictures, files=files, source="chat"),
                                      on_chunk=on_chunk, cancel=threading.Event())
        if reply.error:
            click.echo(("\n" if streamed else "") + reply.text)
        elif not streamed:
            click.echo(reply.text)
        else:
            click.echo(" [stopped]" if reply.data.get("cancelled") else "")
        if speaker is not None and not reply.error and not reply.data.get("cancelled"):
            speaker.end(reply.text)
        elif speaker is not None:
            speaker.interrupt()
