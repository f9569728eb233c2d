"""History: every turn is recorded in a local SQLite database; ``labeeb history`` shows it.

A built-in plugin like the others: ``process_reply`` sees each reply with its command
(``command.source`` says voice, chat, cli, api or image) and stores it through
:mod:`labeeb.history`; ``labeeb_startup`` opens the database and ``labeeb_shutdown``
flushes and closes it. Startup also puts :mod:`labeeb.redact` on the log handlers, so
neither the log nor the history ever holds an API key.
"""

from __future__ import annotations

import json
import logging
import sys
import threading
from pathlib import Path
from typing import TYPE_CHECKING

import click

from labeeb.hookspecs import hookimpl

if TYPE_CHECKING:  # pragma: no cover
    from labeeb.plugin_api import AssistantView
    from labeeb.history import HistoryStore
    from labeeb.messages import Command, Reply

#: What this plugin can reach (`labeeb plugins`): it writes the history database.
REACHES = ["files"]

log = logging.getLogger("labeeb.history")

# One open store per process, shared by the assistants that use the same file.
_lock = threading.Lock()
_store: HistoryStore | None = None
_users = 0
_failing = False  # said on the console; said again only after a write has worked


def _report(exc: Exception) -> None:
    """A write failed: the log gets every one, the console (stderr) one line per run of them."""
    global _failing
    log.warning("history: %s", exc)
    if not _failing:
        _failing = True
        click.echo(f"labeeb: {exc}; turns are not being saved to the history (also in GET /health)", err=True)


def close() -> None:
    """Flush and close the open store whoever still uses it (embedding applications, tests)."""
    global _store, _users
    with _lock:
        if _store is not None:
            _store.close()
        _store, _users = None, 0


@hookimpl
def labeeb_startup(assistant: AssistantView) -> None:
    global _store, _users
    from labeeb.history import HistoryError, HistoryStore, path_for
    from labeeb.redact import Redactor, protect_logs

    redactor = Redactor.for_settings(assistant.settings)
    protect_logs(redactor)
    config = assistant.settings.history
    if not config.enabled:
        return
    with _lock:
        if _store is not None and _store.path == path_for(config) and not _store.closed:
            _users += 1
            return
        if _store is not None:
            _store.close()
        _store, _users = None, 0
        try:
            _store, _users = HistoryStore.from_config(config, redactor), 1
        except HistoryError as exc:
            _report(exc)
            raise


@hookimpl
def labeeb_shutdown(assistant: AssistantView) -> None:
    global _store, _users
    if not assistant.settings.history.enabled:
        return
    with _lock:
        _users -= 1
        if _users <= 0 and _store is not None:
            _store.close()
            _store, _users = None, 0


@hookimpl
def process_reply(reply: Reply, command: Command) -> None:
    store = _store
    if store is None or store.closed:
        return None
    from labeeb.history import HistoryError, TurnRecord

    global _failing
    try:
        store.record(TurnRecord.from_reply(reply, command), command.images)
    except HistoryError as exc:
        _report(exc)
    else:
        _failing = False
    return None


# -- labeeb history -----------------------------------------------------------------------


def _open(ctx: click.Context, must_exist: bool = True) -> HistoryStore | None:
    from labeeb.cli.app import fail, get_app
    from labeeb.history import HistoryError, HistoryStore, path_for
    from labeeb.redact import Redactor

    settings = get_app(ctx).loaded.settings
    path = path_for(settings.history)
    if must_exist and not path.exists():
        return None
    try:
        return HistoryStore(path, settings.history.retention_days, settings.history.store_images,
                            Redactor.for_settings(settings))
    except HistoryError as exc:
        fail(str(exc))
    return None  # pragma: no cover


def _local_time(stamp: float) -> str:
    from datetime import datetime

    return datetime.fromtimestamp(stamp).strftime("%Y-%m-%d %H:%M:%S")


def _short(text: str, limit: int = 300) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


@click.group("history", invoke_without_command=True)
@click.option("--search", "-s", metavar="TEXT", help="Only turns whose question or answer contains TEXT.")
@click.option("--limit", "-n", type=click.IntRange(0), default=20, show_default=True, help="How many of the latest turns (0 = all).")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list for machines.")
@click.pass_context
def history(ctx: click.Context, search: str | None, limit: int, as_json: bool) -> None:
    """Show what you asked Labeeb and what it answered (stored only on this machine).

    \b
    Examples:
      labeeb history                      # the last 20 turns
      labeeb history --search invoice -n 5
      labeeb history export --format csv -o turns.csv
      labeeb history clear
    """
    if ctx.invoked_subcommand is not None:
        return
    store = _open(ctx)
    turns = [] if store is None else list(reversed(store.turns(search, limit or None)))
    if store is not None:
        store.close()
    if as_json:
        click.echo(json.dumps([turn.to_dict() for turn in turns], ensure_ascii=False, indent=2))
        return
    if not turns:
        click.echo("No turns match." if search else "No turns recorded yet.", err=True)
        return
    for turn in turns:
        total = turn.timings.get("total")
        head = f"#{turn.id}  {_local_time(turn.time)}  {turn.source}  {turn.plugin}.{turn.skill}"
        head += f"  ({total:.2f} s)" if isinstance(total, (int, float)) else ""
        head += "  [error]" if turn.error else ""
        click.echo(click.style(head, dim=True))
        attached = max(len(turn.images), len(turn.files))
        click.echo(f"  you: {_short(turn.text)}" + (f"  [+{attached} attached]" if attached else ""))
        click.echo(f"  labeeb: {_short(turn.answer)}")


@history.command("export")
@click.option("--format", "fmt", type=click.Choice(["jsonl", "csv"]), default="jsonl", show_default=True)
@click.option("-o", "--output", type=click.Path(dir_okay=False, writable=True), help="Write to this file (default: standard output).")
@click.pass_context
def export(ctx: click.Context, fmt: str, output: str | None) -> None:
    """Write every turn, oldest first, as JSON lines or CSV."""
    from labeeb.cli.app import fail

    store = _open(ctx)
    try:
        if output:
            target = Path(output).expanduser()
            try:
                with target.open("w", encoding="utf-8", newline="") as fh:
                    count = store.export(fh, fmt) if store is not None else 0
            except OSError as exc:
                fail(f"cannot write {target}: {exc.strerror or exc}")
            click.echo(f"Exported {count} turns to {target}.", err=True)
        else:
            count = store.export(sys.stdout, fmt) if store is not None else 0
    finally:
        if store is not None:
            store.close()


@history.command("clear")
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")
@click.pass_context
def clear(ctx: click.Context, yes: bool) -> None:
    """Delete every recorded turn, and the conversation `labeeb ask --continue` would resume (asks first)."""
    from labeeb.cli import last_session

    store = _open(ctx)
    if store is None:
        last_session.forget()
        click.echo("No turns recorded yet.", err=True)
        return
    try:
        count = store.count()
        if not yes:
            click.confirm(f"Delete all {count} turns in {store.path}?", abort=True, err=True)
        store.clear()
        last_session.forget()
    finally:
        store.close()
    click.echo(f"Deleted {count} turns.", err=True)


@hookimpl
def register_commands(cli: click.Group) -> None:
    cli.add_command(history)

