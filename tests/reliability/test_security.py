"""Security: keys never written down, doctor says where screenshots go.

The server's own defaults (loopback bind, warning when exposed without a key, constant-time
key check, CORS and screen access off) are tested in tests/server/test_server_security.py.
"""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

from cli_runner import run_labeeb
from labeeb.history import default_path
from labeeb.redact import MASK, Redactor, secrets_in
from labeeb.config import Settings
from reliability_kit import Served, chat_body, log_text

SERVER_KEY = "srv-Kx81-very-secret"
OPENAI_KEY = "sk-proj-AbCdEf0123456789xyz"
PLUGIN_TOKEN = "tok-plugin-55aa-secret"


def stored_bytes(path: Path) -> bytes:
    """The database and its write-ahead log, as raw bytes: what a disk image would show."""
    wal = path.with_name(path.name + "-wal")
    return path.read_bytes() + (wal.read_bytes() if wal.exists() else b"")


def test_configured_keys_and_credential_shapes_are_masked():
    settings = Settings()
    settings.server.api_key = SERVER_KEY
    settings.vision.openai.api_key = OPENAI_KEY
    settings.plugins.settings = {"mail": {"password": "hunter2!", "user": "ann"}, "x": {"nested": {"api_key": "abcd1234"}}}
    assert set(secrets_in(settings)) == {SERVER_KEY, OPENAI_KEY, "hunter2!", "abcd1234"}
    redact = Redactor.for_settings(settings)
    text = (f"key {SERVER_KEY}, {OPENAI_KEY}, pw hunter2! for ann, Authorization: Bearer eyJhbGciOi.J9x, "
            "hf_abcdefghijklmnopqrstuvwx ghp_0123456789abcdefghijKLMN sk-live-0123456789abcdefgh")
    masked = redact(text)
    for secret in (SERVER_KEY, OPENAI_KEY, "hunter2!", "eyJhbGciOi", "hf_abc", "ghp_0123", "sk-live"):
        assert secret not in masked
    assert "ann" in masked and masked.count(MASK) == 7
    assert Redactor()("nothing secret here") == "nothing secret here"


def test_keys_never_reach_the_log_or_the_history_from_the_command_line(faulty, tmp_path):
    config = tmp_path / "config.toml"
    config.write_text(
        f'[server]\napi_key = "{SERVER_KEY}"\n[vision.openai]\napi_key = "{OPENAI_KEY}"\n'
        f'[plugins.settings.secretive]\ntoken = "{PLUGIN_TOKEN}"\n'
    )
    env = {**faulty, "LABEEB_CONFIG": str(config)}
    # A plugin fails with the keys in its message; the user types one into a question.
    result = run_labeeb("ask", "reveal the secret", env=env, timeout=120)
    assert result.returncode == 1 and "login refused" in result.stderr
    run_labeeb("ask", f"what can you do, my key is {SERVER_KEY}", env=env, timeout=120)
    log = log_text()
    assert "login refused for token [redacted] and key [redacted]" in log  # the event is logged ...
    history = stored_bytes(default_path())
    assert b"login refused" in history and b"my key is [redacted]" in history  # ... and recorded
    for secret in (SERVER_KEY, OPENAI_KEY, PLUGIN_TOKEN):
        assert secret not in log and secret.encode() not in history, secret
    exported = run_labeeb("history", "export", env=env).stdout
    assert "login refused" in exported and all(s not in exported for s in (SERVER_KEY, OPENAI_KEY, PLUGIN_TOKEN))


@pytest.mark.slow
def test_keys_never_reach_the_log_or_the_history_of_the_server(tiny_model_dir, tmp_path):
    config = f'[server]\napi_key = "{SERVER_KEY}"\n[vision.openai]\napi_key = "{OPENAI_KEY}"\n'
    srv = Served(tmp_path, tiny_model_dir, config=config).start()
    try:
        url = srv.url + "/v1/chat/completions"
        body = chat_body(f"what can you do? use Bearer {SERVER_KEY}")
        assert httpx.post(url, json=body, headers={"Authorization": "Bearer wrong-key-123"}, timeout=60).status_code == 401
        assert httpx.post(url, json=body, timeout=60).status_code == 401
        answer = httpx.post(url, json=body, headers={"Authorization": f"Bearer {SERVER_KEY}"}, timeout=120)
        assert answer.status_code == 200, answer.text
    finally:
        srv.stop()
    history = stored_bytes(default_path())
    assert b"what can you do? use Bearer [redacted]" in history
    for text in (srv.log(), log_text()):
        assert SERVER_KEY not in text and OPENAI_KEY not in text
    assert SERVER_KEY.encode() not in history and OPENAI_KEY.encode() not in history


@pytest.mark.parametrize(
    ("env", "status", "words"),
    [
        ({}, "OK", "stay on this machine"),
        ({"LABEEB_VISION__BACKEND": "openai", "LABEEB_VISION__OPENAI__BASE_URL": "http://10.9.8.7:8000/v1"},
         "WARN", "sent to http://10.9.8.7:8000/v1 (another machine), always"),
        ({"LABEEB_VISION__FALLBACK": "openai,ocr"}, "OK", "(a server on this machine), when the local model fails"),
        ({"LABEEB_SERVER__ALLOW_SCREEN": "true", "LABEEB_SERVER__HOST": "0.0.0.0"},
         "WARN", "lets anyone who can reach 0.0.0.0 see this screen"),
    ],
)
def test_doctor_says_whether_screenshots_can_leave_the_machine(env, status, words):
    result = run_labeeb("doctor", env={**env, "LABEEB_VISION__OPENAI__TIMEOUT": "1"}, timeout=120)
    line = next(line for line in result.stdout.splitlines() if "privacy:" in line)
    assert line.startswith(status) and words in line, line


def test_history_never_stores_screenshots_or_images_unless_asked(history_path):
    from PIL import Image

    from labeeb.messages import Command
    from labeeb.testing import FakeVision, make_assistant

    image = Image.new("RGB", (50, 40), (123, 45, 67))
    with make_assistant(vision=FakeVision()) as assistant:
        assistant.handle(Command("describe this", images=[image], source="api"))
    raw = stored_bytes(history_path)
    assert image.tobytes() not in raw and b"\x89PNG" not in raw
    row = json.loads(run_labeeb("history", "--json").stdout)[0]
    assert len(row["images"]) == 1 and len(row["images"][0]) == 64  # a SHA-256, not the picture


def test_the_api_key_is_compared_in_constant_time(monkeypatch):
    """Every check of the key goes through hmac.compare_digest (no early exit on a wrong byte)."""
    import hmac

    from fastapi.testclient import TestClient

    from labeeb.testing import FakeVision, make_assistant
    from reliability_kit import served

    calls = []
    real = hmac.compare_digest
    monkeypatch.setattr(hmac, "compare_digest", lambda a, b: calls.append((a, b)) or real(a, b))
    settings = Settings()
    settings.history.enabled = False
    with TestClient(served(make_assistant(vision=FakeVision(), settings=settings), api_key=SERVER_KEY),
                    base_url="http://127.0.0.1") as http:
        for given in ("", "Bearer x", f"Bearer {SERVER_KEY[:-1]}", f"Bearer {SERVER_KEY}"):
            http.get("/v1/models", headers={"Authorization": given} if given else {})
    # The token after the scheme ("Bearer", in any case) is what is compared with the key.
    assert [a for a, _ in calls] == [b"", b"x", SERVER_KEY[:-1].encode(), SERVER_KEY.encode()]
    assert {b for _, b in calls} == {SERVER_KEY.encode()}
