"""``labeeb ask --continue``: the last ``labeeb ask`` conversation, kept on disk.

What is kept: the exchanges (questions and answers, as the history database keeps them too)
and the paths of the files that were attached, never pixels (screenshots are not kept).
The file is the user's alone (0600), in the user state directory; nothing is kept while
``history.enabled`` is off, and ``labeeb history clear`` deletes it.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any

log = logging.getLogger("labeeb")

VERSION = 1


def path() -> Path:
    from platformdirs import user_state_path

    return user_state_path("labeeb", ensure_exists=True) / "last-ask.json"


def resume(assistant: Any) -> tuple[list[Any], list[Path]]:
    """Put the last conversation's exchanges back into ``assistant``'s context and reopen its
    attachments: (images, files) to attach again. Raises ValueError saying what is wrong."""
    from labeeb.images import ImageError, load_attachments

    try:
        saved = json.loads(path().read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ValueError("there is no earlier `labeeb ask` to continue; ask without --continue first") from None
    except (OSError, ValueError) as exc:
        raise ValueError(f"the last conversation ({path()}) cannot be read: {exc}") from None
    if not isinstance(saved, dict) or saved.get("version") != VERSION:
        raise ValueError(f"the last conversation ({path()}) is from another version of Labeeb; ask without --continue")
    files = [Path(p) for p in saved.get("files", [])]
    try:
        images, _ = load_attachments(files)
    except ImageError as exc:
        raise ValueError(f"the last conversation's attachment is gone or unreadable: {exc}") from None
    for user, answer in saved.get("exchanges", []):
        assistant.session.add_exchange(str(user), str(answer))
    return images, files


def save(assistant: Any, files: list[Path]) -> None:
    """Keep the conversation so far (and ``files``, its attachments) for the next ``--continue``.

    Never fails the answer it follows: a problem is logged, and ``--continue`` says there is
    nothing to continue.
    """
    # ASCII JSON: file names that are not UTF-8 (kept by Python as lone surrogates) round-trip.
    data = {"version": VERSION, "files": [str(p.expanduser().absolute()) for p in files],
            "exchanges": [list(pair) for pair in assistant.session.exchanges()]}
    try:
        target = path()
        temporary = target.with_suffix(".tmp")
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "w", encoding="ascii") as out:
            json.dump(data, out)
        os.replace(temporary, target)
    except (OSError, ValueError) as exc:
        log.warning("could not keep the conversation for `labeeb ask --continue`: %s", exc)


def forget() -> None:
    """Delete the kept conversation (``labeeb history clear``)."""
    path().unlink(missing_ok=True)
