"""The interaction history: every turn in a SQLite database on this machine.

Why SQLite in WAL mode: each turn is one small transaction, committed before the reply
goes on, so a process killed at any moment (SIGKILL, power cut of the process, a crash)
loses at most the turn in flight and never leaves a damaged file; several Labeeb
processes (``labeeb serve`` and ``labeeb chat`` at once) can write to it together; and
``labeeb history`` can read while they write.

The schema is versioned with ``PRAGMA user_version``; its migrations are in
:mod:`labeeb.history_schema` (importable from here too).

Images are stored as SHA-256 hashes of their pixels (the same digest the answer cache
uses), never the pictures, unless ``history.store_images`` is on. Secrets are masked
with :mod:`labeeb.redact` before anything is written.
"""

from __future__ import annotations

import csv
import io
import json
import os
import sqlite3
import stat
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterable, Iterator, TextIO

from labeeb.history_schema import (
    COLUMNS,
    MIGRATIONS,
    SCHEMA_VERSION,
    HistoryError,
    TurnRecord,
    migrate,
    schema_version,
    transaction,
    turn_from_row,
)
from labeeb.isolation import first_line

__all__ = [
    "MIGRATIONS", "SCHEMA_VERSION", "HistoryError", "HistoryStore", "TurnRecord", "default_path", "migrate",
    "path_for", "schema_version", "write_health",
]

if TYPE_CHECKING:  # pragma: no cover
    from PIL.Image import Image

    from labeeb.config import HistoryConfig
    from labeeb.redact import Redactor

FILENAME = "history.sqlite3"
DAY = 86_400.0
#: Pruning old turns runs when the store opens and then at most this often (seconds).
PRUNE_EVERY = 3_600.0
EXPORT_FORMATS = ("jsonl", "csv")


#: Why this process's last attempt to open or write the history failed; None once one works.
_failure: str | None = None


def write_health() -> dict[str, Any]:
    """``{"ok": ..., "error": ...}``: whether this process's history writes work (GET /health).

    The error is the cause alone ("database or disk is full"), never the file's path.
    """
    return {"ok": _failure is None, "error": _failure}


def _failed(exc: BaseException | None) -> str | None:
    """Note (or clear) why writing failed; the cause, e.g. "No space left on device"."""
    global _failure
    if exc is None:
        _failure = None
    elif isinstance(exc, OSError) and exc.strerror:
        _failure = exc.strerror
    else:
        _failure = first_line(exc) or exc.__class__.__name__
    return _failure


def _private(path: Path) -> None:
    """The database and its -wal/-shm files readable by this user only, as is a folder Labeeb
    made for them (they hold what was asked and answered). Only ever removes permissions."""
    folder = path.parent
    if not folder.exists() or folder == default_path().parent:
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        _tighten(folder)
    if not path.exists():  # created 0600, so SQLite's -wal and -shm files are too
        os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o600))
    for file in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
        _tighten(file)


def _tighten(path: Path) -> None:
    try:
        mode = stat.S_IMODE(path.stat().st_mode)
        if mode & 0o077:
            os.chmod(path, mode & ~0o077)
    except OSError:
        pass  # gone, or not ours to change


def _like(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def default_path() -> Path:
    from platformdirs import user_data_path

    return user_data_path("labeeb") / FILENAME


def path_for(config: HistoryConfig) -> Path:
    return Path(config.path).expanduser() if config.path else default_path()


# -- the store ------------------------------------------------------------------------------


class HistoryStore:
    """One connection, shared by the threads of this process behind a lock."""

    def __init__(
        self,
        path: str | Path,
        retention_days: float = 90,
        store_images: bool = False,
        redactor: Redactor | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.path = Path(path)
        self.retention_days = retention_days
        self.store_images = store_images
        self.redactor = redactor
        self.clock = clock
        self._lock = threading.Lock()
        self._last_prune = 0.0
        self._db: sqlite3.Connection | None = self._open()
        self.prune()

    @classmethod
    def from_config(cls, config: HistoryConfig, redactor: Redactor | None = None) -> HistoryStore:
        return cls(path_for(config), config.retention_days, config.store_images, redactor)

    def _open(self) -> sqlite3.Connection:
        try:
            _private(self.path)
            db = sqlite3.connect(self.path, timeout=5.0, isolation_level=None, check_same_thread=False)
        except (OSError, sqlite3.Error) as exc:
            _failed(exc)
            raise HistoryError(f"cannot open the history database {self.path}: {exc} (history.path)") from None
        try:
            self._set_up(db)
            _private(self.path)  # a -wal/-shm file left by an older Labeeb
        except sqlite3.DatabaseError as exc:
            db.close()
            raise HistoryError(
                f"{self.path} is not a usable history database ({exc}); move it away "
                "or set history.path to another file"
            ) from None
        except BaseException:
            db.close()
            raise
        return db

    @staticmethod
    def _set_up(db: sqlite3.Connection, attempts: int = 40) -> None:
        """Journal mode and migrations, retried while another process does the same.

        Two processes opening a new database at once can get "database is locked" from the
        journal-mode switch without SQLite's busy handler ever waiting, so wait here.
        """
        for attempt in range(attempts):
            try:
                # WAL + synchronous=NORMAL: a killed process loses nothing committed; only an OS
                # crash or power cut can drop the last turns, and the file stays consistent.
                db.execute("PRAGMA journal_mode=WAL")
                db.execute("PRAGMA synchronous=NORMAL")
                db.execute("PRAGMA secure_delete=ON")  # deleted turns are overwritten, not left in free pages
                migrate(db)
                return
            except sqlite3.OperationalError as exc:
                busy = "locked" in str(exc) or "busy" in str(exc)
                if not busy or attempt == attempts - 1:
                    raise
                if db.in_transaction:
                    db.execute("ROLLBACK")
                time.sleep(0.05 * (attempt + 1))

    @property
    def db(self) -> sqlite3.Connection:
        if self._db is None:
            raise HistoryError(f"the history database {self.path} is closed")
        return self._db

    @property
    def closed(self) -> bool:
        return self._db is None

    def close(self) -> None:
        """Checkpoint the write-ahead log into the database file and close."""
        with self._lock:
            if self._db is None:
                return
            try:
                self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            except sqlite3.Error:
                pass  # another process is reading; the log is checkpointed later
            self._db.close()
            self._db = None

    # -- writing ----------------------------------------------------------------------------

    def record(self, turn: TurnRecord, images: Iterable[Image] = ()) -> int:
        """Store one turn in one transaction; return its id."""
        turn = turn.cleaned(self.redactor)
        pictures = self._pngs(turn.images, images) if self.store_images else []
        with self._lock:
            db = self.db
            try:
                with transaction(db):
                    cursor = db.execute(
                        "INSERT INTO turns (time, source, text, plugin, skill, answer, error, timings, usage, images,"
                        " files) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                        (turn.time, turn.source, turn.text, turn.plugin, turn.skill, turn.answer, int(turn.error),
                         json.dumps(turn.timings), json.dumps(turn.usage), json.dumps(turn.images),
                         json.dumps(turn.files)),
                    )
                    db.executemany("INSERT OR IGNORE INTO images (sha256, width, height, png) VALUES (?, ?, ?, ?)",
                                   pictures)
            except sqlite3.Error as exc:
                raise HistoryError(f"cannot write to the history database {self.path}: {_failed(exc)}") from exc
            _failed(None)
            turn_id = int(cursor.lastrowid or 0)
        if self.clock() - self._last_prune > PRUNE_EVERY:
            self.prune()
        return turn_id

    @staticmethod
    def _pngs(digests: list[str], images: Iterable[Image]) -> list[tuple[str, int, int, bytes]]:
        out = []
        for digest, image in zip(digests, images):
            buffer = io.BytesIO()
            image.save(buffer, format="PNG")
            out.append((digest, image.width, image.height, buffer.getvalue()))
        return out

    def prune(self) -> int:
        """Delete turns older than ``retention_days`` (0 keeps everything); return how many."""
        self._last_prune = self.clock()
        if not self.retention_days:
            return 0
        cutoff = self.clock() - self.retention_days * DAY
        with self._lock:
            db = self.db
            with transaction(db):
                deleted = db.execute("DELETE FROM turns WHERE time < ?", (cutoff,)).rowcount
                if deleted:
                    self._drop_orphan_images(db)
        return deleted

    @staticmethod
    def _drop_orphan_images(db: sqlite3.Connection) -> None:
        db.execute(
            "DELETE FROM images WHERE sha256 NOT IN "
            "(SELECT value FROM turns, json_each(turns.images))"
        )

    def clear(self) -> int:
        """Delete every turn and stored image; return how many turns there were."""
        with self._lock:
            db = self.db
            with transaction(db):
                deleted = db.execute("DELETE FROM turns").rowcount
                db.execute("DELETE FROM images")
            try:  # fold the log back in, so the deleted text is not left in it either
                db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            except sqlite3.Error:
                pass
        return deleted

    # -- reading ----------------------------------------------------------------------------

    def count(self) -> int:
        with self._lock:
            return int(self.db.execute("SELECT COUNT(*) FROM turns").fetchone()[0])

    def turns(self, search: str | None = None, limit: int | None = None) -> list[TurnRecord]:
        """The newest turns first; ``search`` matches the question or the answer (any case)."""
        sql, args = f"SELECT {COLUMNS} FROM turns", []
        if search:
            sql += " WHERE text LIKE ? ESCAPE '\\' OR answer LIKE ? ESCAPE '\\'"
            args += [_like(search), _like(search)]
        sql += " ORDER BY time DESC, id DESC"
        if limit is not None:
            sql += " LIMIT ?"
            args.append(limit)
        with self._lock:
            return [turn_from_row(row) for row in self.db.execute(sql, args).fetchall()]

    def iter_turns(self, batch: int = 500) -> Iterator[TurnRecord]:
        """Every turn, oldest first, read in batches so an export never holds them all."""
        last = -1
        while True:
            with self._lock:
                rows = self.db.execute(
                    f"SELECT {COLUMNS} FROM turns WHERE id > ? ORDER BY id LIMIT ?", (last, batch)
                ).fetchall()
            if not rows:
                return
            for row in rows:
                yield turn_from_row(row)
            last = rows[-1][0]

    def image(self, digest: str) -> bytes | None:
        with self._lock:
            row = self.db.execute("SELECT png FROM images WHERE sha256 = ?", (digest,)).fetchone()
        return bytes(row[0]) if row else None

    def export(self, out: TextIO, fmt: str = "jsonl") -> int:
        """Write every turn to ``out`` as JSON lines or CSV; return how many."""
        if fmt not in EXPORT_FORMATS:
            raise HistoryError(f"unknown export format {fmt!r}; use one of: {', '.join(EXPORT_FORMATS)}")
        count = 0
        writer = None
        for turn in self.iter_turns():
            row = turn.to_dict()
            if fmt == "jsonl":
                out.write(json.dumps(row, ensure_ascii=False) + "\n")
            else:
                if writer is None:
                    writer = csv.DictWriter(out, fieldnames=list(row))
                    writer.writeheader()
                writer.writerow({k: json.dumps(v) if isinstance(v, (dict, list)) else v for k, v in row.items()})
            count += 1
        if fmt == "csv" and writer is None:
            csv.writer(out).writerow(list(TurnRecord(0, "", "", "", "", "").to_dict()))
        return count
