"""The interaction history: what is stored, schema migrations, retention, the CLI, SIGKILL."""

from __future__ import annotations

import csv
import io
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from PIL import Image

from cli_runner import REPO, run_labeeb
from labeeb.answer_cache import image_digest
from labeeb.config import Settings
from labeeb.history import (
    MIGRATIONS,
    SCHEMA_VERSION,
    HistoryError,
    HistoryStore,
    TurnRecord,
    migrate,
    schema_version,
)
from labeeb.messages import Command
from labeeb.testing import FakeVision, make_assistant

HERE = Path(__file__).parent


def rows(path: Path) -> list[dict]:
    with sqlite3.connect(path) as db:
        db.row_factory = sqlite3.Row
        return [dict(r) for r in db.execute("SELECT * FROM turns ORDER BY id")]


def picture(color=(200, 30, 30), size=(40, 30)) -> Image.Image:
    return Image.new("RGB", size, color)


def test_every_turn_is_stored_with_source_skill_timings_and_image_hashes(history_path):
    fake = FakeVision("a red square")
    assistant = make_assistant(vision=fake)
    image = picture()
    with assistant:
        assistant.handle(Command("describe this", images=[image], source="chat"))
        assistant.handle(Command("what can you do", source="voice"))
        assistant.handle(Command("and the colour?", source="api"))
    stored = rows(history_path)
    assert [(r["source"], r["text"], r["plugin"], r["skill"]) for r in stored] == [
        ("chat", "describe this", "general", "ask"),
        ("voice", "what can you do", "general", "help"),
        ("api", "and the colour?", "general", "ask"),
    ]
    assert stored[0]["answer"] == "a red square" and stored[0]["error"] == 0
    assert json.loads(stored[0]["images"]) == [image_digest(image)]
    timings = json.loads(stored[0]["timings"])
    assert timings["total"] > 0 and "route" in timings
    assert json.loads(stored[0]["usage"])["completion_tokens"] == 3
    with sqlite3.connect(history_path) as db:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert db.execute("SELECT COUNT(*) FROM images").fetchone()[0] == 0  # hashes only
        assert schema_version(db) == SCHEMA_VERSION


def test_failed_turns_are_stored_as_errors(history_path):
    def broken(request):
        raise RuntimeError("the plugin broke")

    import types

    from labeeb.hookspecs import hookimpl
    from labeeb.skills import Skill

    plugin = types.SimpleNamespace(register_skills=hookimpl(
        lambda register: register(Skill("boom", broken, examples=["blow up now"]))
    ))
    with make_assistant(plugins={"bomb": plugin}, vision=FakeVision()) as assistant:
        reply = assistant.handle(Command("blow up now", source="cli"))
    assert reply.error
    (row,) = rows(history_path)
    assert row["error"] == 1 and row["plugin"] == "bomb" and "the plugin broke" in row["answer"]


def test_images_themselves_only_when_configured(history_path):
    settings = Settings()
    settings.history.store_images = True
    image = picture((10, 200, 90))
    with make_assistant(vision=FakeVision("green"), settings=settings) as assistant:
        assistant.handle(Command("describe this", images=[image], source="chat"))
        store = HistoryStore(history_path)
    png = store.image(image_digest(image))
    store.close()
    assert png is not None
    again = Image.open(io.BytesIO(png))
    assert again.size == image.size and again.convert("RGB").tobytes() == image.tobytes()


def test_disabled_history_records_nothing(history_path):
    settings = Settings()
    settings.history.enabled = False
    with make_assistant(vision=FakeVision(), settings=settings) as assistant:
        assistant.handle(Command("hello there", source="chat"))
    assert not history_path.exists()


def test_path_setting_moves_the_database(tmp_path, history_path):
    settings = Settings()
    settings.history.path = str(tmp_path / "elsewhere" / "h.db")
    with make_assistant(vision=FakeVision(), settings=settings) as assistant:
        assistant.handle(Command("hello there", source="chat"))
    assert [r["text"] for r in rows(tmp_path / "elsewhere" / "h.db")] == ["hello there"]
    assert not history_path.exists()


def test_shutdown_flushes_the_log_into_the_database_and_closes(history_path):
    assistant = make_assistant(vision=FakeVision())
    with assistant:
        assistant.handle(Command("remember me", source="chat"))
        wal = history_path.with_name(history_path.name + "-wal")
        assert wal.exists() and wal.stat().st_size > 0
    assert not wal.exists() or wal.stat().st_size == 0  # checkpointed into the main file
    assert [r["text"] for r in rows(history_path)] == ["remember me"]


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def turn(text: str, when: float, images: list[str] | None = None) -> TurnRecord:
    return TurnRecord(when, "chat", text, "general", "ask", f"answer to {text}", images=images or [])


def test_retention_deletes_old_turns_and_their_images(tmp_path):
    day = 86_400.0
    clock = Clock(1_000 * day)
    store = HistoryStore(tmp_path / "h.db", retention_days=30, store_images=True, clock=clock)
    old, new = picture((1, 2, 3)), picture((4, 5, 6))
    store.record(turn("old question", clock.now - 40 * day, [image_digest(old)]), [old])
    store.record(turn("new question", clock.now - 2 * day, [image_digest(new)]), [new])
    assert store.prune() == 1
    assert [t.text for t in store.turns()] == ["new question"]
    assert store.image(image_digest(old)) is None and store.image(image_digest(new)) is not None
    clock.now += 29 * day  # the newer one ages out too, pruned when a later turn is recorded
    store.record(turn("latest", clock.now))
    assert [t.text for t in store.turns()] == ["latest"]
    store.close()


def test_zero_retention_keeps_everything(tmp_path):
    store = HistoryStore(tmp_path / "h.db", retention_days=0)
    store.record(turn("ancient", 1.0))
    assert store.prune() == 0 and store.count() == 1
    store.close()


def test_an_old_schema_is_migrated_in_order_and_keeps_its_turns(tmp_path):
    path = tmp_path / "v1.db"
    db = sqlite3.connect(path, isolation_level=None)
    migrate(db, target=1)
    db.execute(
        "INSERT INTO turns (time, source, text, plugin, skill, answer) VALUES (5, 'voice', 'old turn', 'g', 'ask', 'yes')"
    )
    db.close()
    applied = []
    original = list(MIGRATIONS)
    try:
        MIGRATIONS[:] = [lambda db, f=f: (applied.append(f.__name__), f(db)) for f in original]
        store = HistoryStore(path, retention_days=0)
    finally:
        MIGRATIONS[:] = original
    assert applied == [original[1].__name__]  # only the missing step, once
    (old,) = store.turns()
    assert (old.text, old.source, old.usage) == ("old turn", "voice", {})
    store.record(turn("new turn", 6.0))
    assert store.count() == 2
    store.close()
    with sqlite3.connect(path) as check:
        assert schema_version(check) == SCHEMA_VERSION


def test_a_failed_migration_leaves_the_previous_version(tmp_path):
    path = tmp_path / "h.db"
    db = sqlite3.connect(path, isolation_level=None)
    migrate(db, target=1)
    db.close()
    original = list(MIGRATIONS)

    def broken(db):
        db.execute("ALTER TABLE turns ADD COLUMN half_done TEXT")
        raise sqlite3.OperationalError("disk full, say")

    try:
        MIGRATIONS[1] = broken
        with pytest.raises(HistoryError, match="disk full"):
            HistoryStore(path)
    finally:
        MIGRATIONS[:] = original
    with sqlite3.connect(path) as check:
        assert schema_version(check) == 1
        assert "half_done" not in [r[1] for r in check.execute("PRAGMA table_info(turns)")]
    HistoryStore(path).close()  # and the real migration still works afterwards


def test_a_newer_schema_or_a_damaged_file_is_a_clear_error(tmp_path):
    newer = tmp_path / "newer.db"
    with sqlite3.connect(newer) as db:
        db.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    with pytest.raises(HistoryError, match="newer than this Labeeb"):
        HistoryStore(newer)
    damaged = tmp_path / "damaged.db"
    damaged.write_bytes(b"this is not a database at all" * 100)
    with pytest.raises(HistoryError, match="not a usable history database"):
        HistoryStore(damaged)


def test_a_damaged_history_does_not_stop_labeeb_answering(tmp_path, history_path):
    history_path.parent.mkdir(parents=True)
    history_path.write_bytes(b"garbage" * 1000)
    result = run_labeeb("ask", "what can you do")
    assert result.returncode == 0, result.stderr
    assert "I can help with" in result.stdout
    result = run_labeeb("history")
    assert result.returncode == 1
    assert "not a usable history database" in result.stderr and "Traceback" not in result.stderr


def test_search_limit_and_order(tmp_path):
    store = HistoryStore(tmp_path / "h.db", retention_days=0)
    for i, text in enumerate(["the invoice total", "weather today", "INVOICE date", "100% sure_thing"]):
        store.record(turn(text, 10.0 + i))
    assert [t.text for t in store.turns("invoice")] == ["INVOICE date", "the invoice total"]
    assert [t.text for t in store.turns(limit=2)] == ["100% sure_thing", "INVOICE date"]
    assert [t.text for t in store.turns("0% s")] == ["100% sure_thing"]  # % and _ are literal
    assert store.turns("e_d") == []
    store.close()


# -- the command line --------------------------------------------------------------------


@pytest.fixture
def filled(history_path):
    store = HistoryStore(history_path, retention_days=0)
    now = time.time()
    for i, text in enumerate(["what is on my screen", "read the invoice", "summarise the invoice"]):
        store.record(TurnRecord(now - 10 + i, ["voice", "chat", "api"][i], text, "p", "s", f"answer {i}",
                                timings={"total": 0.5}))
    store.close()
    return history_path


def test_history_command_lists_searches_and_prints_json(filled):
    result = run_labeeb("history")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert out.index("what is on my screen") < out.index("summarise the invoice")  # oldest first
    assert "voice" in out and "answer 2" in out and "(0.50 s)" in out
    result = run_labeeb("history", "--search", "INVOICE", "--limit", "1", "--json")
    (row,) = json.loads(result.stdout)
    assert row["text"] == "summarise the invoice" and row["source"] == "api"
    assert set(row) == {"id", "time", "source", "text", "plugin", "skill", "answer", "error", "timings",
                        "usage", "images", "files"}


def test_history_export_jsonl_and_csv(filled, tmp_path):
    result = run_labeeb("history", "export")
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert [row["text"] for row in lines] == ["what is on my screen", "read the invoice", "summarise the invoice"]
    out = tmp_path / "turns.csv"
    result = run_labeeb("history", "export", "--format", "csv", "-o", str(out))
    assert result.returncode == 0 and "Exported 3 turns" in result.stderr
    table = list(csv.DictReader(out.open(encoding="utf-8")))
    assert [row["answer"] for row in table] == ["answer 0", "answer 1", "answer 2"]
    assert json.loads(table[0]["timings"]) == {"total": 0.5}
    result = run_labeeb("history", "export", "-o", str(tmp_path / "missing" / "x.jsonl"))
    assert result.returncode != 0 and "Traceback" not in result.stderr


def test_history_clear_asks_first(filled):
    result = run_labeeb("history", "clear", input="n\n")
    assert result.returncode == 1 and "Delete all 3 turns" in result.stderr
    assert len(rows(filled)) == 3
    result = run_labeeb("history", "clear", input="y\n")
    assert result.returncode == 0 and "Deleted 3 turns" in result.stderr
    assert rows(filled) == []
    assert b"summarise the invoice" not in filled.read_bytes()  # not left in free pages
    result = run_labeeb("history", "clear", "--yes")
    assert result.returncode == 0


def test_history_without_a_database_yet(history_path):
    result = run_labeeb("history")
    assert result.returncode == 0 and "No turns recorded yet" in result.stderr
    assert json.loads(run_labeeb("history", "--json").stdout) == []
    assert not history_path.exists()


# -- durability --------------------------------------------------------------------------


def test_sigkill_mid_turn_loses_at_most_that_turn_and_never_corrupts(history_path):
    """Kill a real process that writes turns in a loop, three times, at different points."""
    reported: set[int] = set()
    start = 0
    for round_, (kill_after, size) in enumerate([(3, 20_000), (7, 60_000), (12, 5_000)]):
        process = subprocess.Popen(
            [sys.executable, str(HERE / "history_writer.py"), str(start), str(size)],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO,
        )
        done = []
        assert process.stdout is not None
        for line in process.stdout:
            done.append(int(line.split()[1]))
            if len(done) >= kill_after:
                break
        os.kill(process.pid, signal.SIGKILL)  # mid-way through the next turn
        process.wait()
        assert process.returncode == -signal.SIGKILL, process.stderr.read() if process.stderr else ""
        reported |= set(done)
        with sqlite3.connect(history_path) as db:
            assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
            stored = {int(t.split()[1]) for (t,) in db.execute("SELECT text FROM turns")}
            answers = {len(a) for (a,) in db.execute("SELECT answer FROM turns WHERE text = ?", (f"turn {start}",))}
        assert reported <= stored, f"round {round_}: finished turns were lost"
        extra = stored - reported
        assert len(extra) <= round_ + 1 and all(n not in reported for n in extra)  # at most the in-flight ones
        assert answers == {len(" ".join(["word"] * (size // 5)))}  # never half a turn
        start = max(stored) + 1
    store = HistoryStore(history_path)  # and it opens and takes new turns
    store.record(turn("after the kills", time.time()))
    assert store.count() >= len(reported) + 1
    store.close()


def test_two_processes_write_at_once_and_nothing_is_lost(history_path):
    script = (
        "import sys, time\n"
        "from labeeb.history import HistoryStore, TurnRecord, default_path\n"
        "s = HistoryStore(default_path())\n"
        "for i in range(150):\n"
        "    s.record(TurnRecord(time.time(), 'api', f'{sys.argv[1]} {i}', 'p', 's', 'a'))\n"
        "s.close()\n"
    )
    processes = [subprocess.Popen([sys.executable, "-c", script, name], cwd=REPO) for name in ("one", "two")]
    assert [p.wait(timeout=120) for p in processes] == [0, 0]
    texts = {r["text"] for r in rows(history_path)}
    assert texts == {f"{name} {i}" for name in ("one", "two") for i in range(150)}
