"""The history database's schema: a turn as a record and as a row, and one migration per version.

The version is SQLite's ``PRAGMA user_version``. Each migration runs in its own
transaction, so an old database is upgraded in place and a crash during an upgrade leaves
the previous version intact. To change the schema, append a function to
:data:`MIGRATIONS`; never edit one that has shipped.
"""

from __future__ import annotations

import json
import re
import sqlite3
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, Callable, Iterator

if TYPE_CHECKING:  # pragma: no cover
    from labeeb.messages import Command, Reply
    from labeeb.redact import Redactor


class HistoryError(RuntimeError):
    """The history database cannot be used; the message says which file and what to do."""


@contextmanager
def transaction(db: sqlite3.Connection) -> Iterator[None]:
    """BEGIN IMMEDIATE ... COMMIT. On an error, roll back unless SQLite already has (it does
    on "database or disk is full"), so the error raised is the real one, not "cannot rollback"."""
    db.execute("BEGIN IMMEDIATE")
    try:
        yield
        db.execute("COMMIT")
    except BaseException:
        if db.in_transaction:
            try:
                db.execute("ROLLBACK")
            except sqlite3.Error:
                pass  # the error being raised says what went wrong
        raise


# -- the schema, one migration per version ------------------------------------------------


def _v1_turns(db: sqlite3.Connection) -> None:
    db.execute(
        """CREATE TABLE turns (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            time REAL NOT NULL,            -- seconds since the epoch (UTC)
            source TEXT NOT NULL,          -- voice, chat, cli, api, image
            text TEXT NOT NULL,            -- what was asked (the transcript for voice)
            plugin TEXT NOT NULL,
            skill TEXT NOT NULL,
            answer TEXT NOT NULL,
            error INTEGER NOT NULL DEFAULT 0,
            timings TEXT NOT NULL DEFAULT '{}',   -- JSON: seconds per stage
            images TEXT NOT NULL DEFAULT '[]',    -- JSON: SHA-256 of each attached image
            files TEXT NOT NULL DEFAULT '[]'      -- JSON: attached file paths
        )"""
    )
    db.execute("CREATE INDEX turns_time ON turns(time)")


def _v2_usage_and_images(db: sqlite3.Connection) -> None:
    db.execute("ALTER TABLE turns ADD COLUMN usage TEXT NOT NULL DEFAULT '{}'")
    db.execute(
        """CREATE TABLE images (
            sha256 TEXT PRIMARY KEY,
            width INTEGER NOT NULL,
            height INTEGER NOT NULL,
            png BLOB NOT NULL
        )"""
    )


#: Applied in order: MIGRATIONS[n] takes a database from version n to n + 1.
MIGRATIONS: list[Callable[[sqlite3.Connection], None]] = [_v1_turns, _v2_usage_and_images]
SCHEMA_VERSION = len(MIGRATIONS)


def schema_version(db: sqlite3.Connection) -> int:
    return int(db.execute("PRAGMA user_version").fetchone()[0])


def migrate(db: sqlite3.Connection, target: int = SCHEMA_VERSION) -> int:
    """Bring ``db`` (autocommit mode) to ``target``; return the version it had."""
    found = schema_version(db)
    if found > SCHEMA_VERSION:
        raise HistoryError(
            f"the history database has schema version {found}, newer than this Labeeb "
            f"understands ({SCHEMA_VERSION}); upgrade Labeeb or set history.path to another file"
        )
    for version in range(found, target):
        with transaction(db):
            if schema_version(db) == version:  # another process may have just done it
                MIGRATIONS[version](db)
                db.execute(f"PRAGMA user_version = {version + 1}")
    return found


# -- one turn -------------------------------------------------------------------------------


@dataclass
class TurnRecord:
    time: float
    source: str
    text: str
    plugin: str
    skill: str
    answer: str
    error: bool = False
    timings: dict[str, Any] = field(default_factory=dict)
    usage: dict[str, Any] = field(default_factory=dict)
    images: list[str] = field(default_factory=list)
    files: list[str] = field(default_factory=list)
    id: int | None = None

    @classmethod
    def from_reply(cls, reply: Reply, command: Command, when: float | None = None) -> TurnRecord:
        from labeeb.answer_cache import image_digest

        return cls(
            time=time.time() if when is None else when,
            source=str(command.source),
            text=command.text,
            plugin=reply.plugin,
            skill=reply.skill,
            answer=reply.text,
            error=reply.error,
            timings={k: v for k, v in reply.timings.to_dict().items() if v is not None},
            usage=reply.usage.to_dict(),
            images=[image_digest(image) for image in command.images],
            files=[str(path) for path in command.files],
        )

    @property
    def iso_time(self) -> str:
        return datetime.fromtimestamp(self.time, timezone.utc).isoformat(timespec="milliseconds")

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out = {"id": out.pop("id"), "time": self.iso_time, **{k: v for k, v in out.items() if k != "time"}}
        return out

    def cleaned(self, redactor: Redactor | None = None) -> TurnRecord:
        """Storable text: secrets masked, lone surrogates (undecodable input bytes) replaced."""

        def clean(text: str) -> str:
            text = redactor(text) if redactor is not None else text
            return _SURROGATES.sub("\ufffd", text)

        return TurnRecord(
            self.time, clean(self.source), clean(self.text), clean(self.plugin), clean(self.skill),
            clean(self.answer), self.error, self.timings, self.usage, self.images,
            [clean(f) for f in self.files], self.id,
        )


#: Lone surrogates: how Python carries bytes that were not valid UTF-8 (file names, stdin,
#: JSON "\ud800"); SQLite stores UTF-8 and would refuse them.
_SURROGATES = re.compile("[\ud800-\udfff]")


COLUMNS = "id, time, source, text, plugin, skill, answer, error, timings, usage, images, files"


def turn_from_row(row: tuple[Any, ...]) -> TurnRecord:
    id_, when, source, text, plugin, skill, answer, error, timings, usage, images, files = row
    return TurnRecord(
        when, source, text, plugin, skill, answer, bool(error), json.loads(timings), json.loads(usage),
        json.loads(images), json.loads(files), id_,
    )
