"""The history database is private to the user, and a history that cannot be written says so:
one line on the console, a field in GET /health, and the real cause (a full disk), not
"cannot rollback"."""

from __future__ import annotations

import logging
import os
import stat

import pytest

import labeeb.history as history
import labeeb_plugins.history as plugin
from labeeb.history import HistoryError, HistoryStore, TurnRecord, write_health
from labeeb.messages import Command
from labeeb.testing import FakeVision, make_assistant
from reliability_kit import served


def mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


@pytest.fixture(autouse=True)
def _no_failure_yet(monkeypatch):
    """Whether writes failed is kept per process: each test starts with none."""
    monkeypatch.setattr(history, "_failure", None)
    monkeypatch.setattr(plugin, "_failing", False)


def fill_up(store: HistoryStore) -> None:
    """Let the database grow no more: the next turn finds the disk full (SQLITE_FULL)."""
    pages = store.db.execute("PRAGMA page_count").fetchone()[0]
    store.db.execute(f"PRAGMA max_page_count = {pages}")


def test_the_history_database_its_log_files_and_its_folder_are_the_users_alone(history_path):
    with make_assistant(vision=FakeVision()) as assistant:
        assistant.handle(Command("what can you do"))
        files = {p.name: mode(p) for p in history_path.parent.iterdir() if p.name.startswith(history_path.name)}
    assert files == {history_path.name: 0o600, f"{history_path.name}-wal": 0o600, f"{history_path.name}-shm": 0o600}
    assert mode(history_path.parent) == 0o700


def test_an_older_readable_history_is_made_private_but_a_folder_the_user_chose_is_left_alone(history_path, tmp_path):
    history_path.parent.mkdir(parents=True, mode=0o755)
    os.chmod(history_path.parent, 0o755)
    HistoryStore(history_path).close()
    os.chmod(history_path, 0o644)
    HistoryStore(history_path).close()
    assert (mode(history_path.parent), mode(history_path)) == (0o700, 0o600)

    chosen = tmp_path / "documents"
    chosen.mkdir()
    os.chmod(chosen, 0o755)
    HistoryStore(chosen / "turns.db").close()
    assert (mode(chosen), mode(chosen / "turns.db")) == (0o755, 0o600)


def test_a_full_disk_is_reported_as_a_full_disk_not_as_cannot_rollback(tmp_path):
    store = HistoryStore(tmp_path / "h.db")
    fill_up(store)
    with pytest.raises(HistoryError, match="database or disk is full") as caught:
        store.record(TurnRecord(1.0, "cli", "x" * 8000, "general", "ask", "y" * 8000))
    assert "rollback" not in str(caught.value) and str(tmp_path / "h.db") in str(caught.value)
    assert write_health() == {"ok": False, "error": "database or disk is full"}
    store.db.execute("PRAGMA max_page_count = 1000000")  # space again
    store.record(TurnRecord(2.0, "cli", "short", "general", "ask", "answer"))
    assert write_health() == {"ok": True, "error": None} and store.count() == 1
    store.close()


def test_failing_writes_say_so_once_on_the_console_and_in_health(history_path, capsys, caplog):
    from fastapi.testclient import TestClient

    caplog.set_level(logging.WARNING, logger="labeeb.history")
    app = served(make_assistant(vision=FakeVision("an answer")))
    with TestClient(app, base_url="http://127.0.0.1") as http:  # the host name labeeb serve answers for
        assert http.get("/health").json()["history"] == {"ok": True, "error": None}
        fill_up(plugin._store)  # the store the plugin opened at startup
        for _ in range(3):
            response = http.post("/v1/chat/completions", json={
                "model": "labeeb", "messages": [{"role": "user", "content": "describe this " + "x" * 8000}]})
            assert response.status_code == 200  # the answer is not lost with the history
        health = http.get("/health").json()["history"]
    assert health == {"ok": False, "error": "database or disk is full"}  # the cause, no file name
    lines = [line for line in capsys.readouterr().err.splitlines() if "history" in line]
    assert len(lines) == 1, lines
    assert lines[0].startswith("labeeb: cannot write to the history database") and "disk is full" in lines[0]
    logged = [r.getMessage() for r in caplog.records if r.name == "labeeb.history"]
    assert len(logged) == 3 and all("database or disk is full" in m for m in logged)
    assert "cannot rollback" not in caplog.text
