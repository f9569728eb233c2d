"""``labeeb serve`` as a user starts it: help, a taken port, a model that cannot load."""

from __future__ import annotations

import socket

import httpx
import pytest
from server_kit import LabeebServer, assert_error, png_url, user_message


def test_serve_is_a_labeeb_command(labeeb_cli):
    listed = labeeb_cli("--help")
    assert listed.returncode == 0 and "serve" in listed.stdout
    done = labeeb_cli("serve", "--help")
    assert done.returncode == 0
    assert "--host" in done.stdout and "--port" in done.stdout and "/v1/chat/completions" in done.stdout


def test_a_taken_port_is_one_clear_sentence(labeeb_cli):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = labeeb_cli("serve", "--port", str(port), timeout=120)
    assert done.returncode == 1
    assert f"cannot listen on 127.0.0.1:{port}" in done.stderr and "--port" in done.stderr
    assert "Traceback" not in done.stderr


@pytest.mark.slow
def test_a_model_that_cannot_load_gives_503_and_the_reason(tmp_path):
    srv = LabeebServer(tmp_path, tmp_path / "no-such-model")
    srv.start(wait=False)
    try:
        srv.wait_for_status("error")
        response = httpx.get(srv.url + "/health", timeout=5)
        assert response.status_code == 503
        health = response.json()
        assert health["ready"] is False and "does not exist" in health["backend_status"]
        assert httpx.get(srv.api + "/models").status_code == 200
        body = {"model": "labeeb", "messages": [user_message("Name the colour.", png_url())]}
        assert_error(httpx.post(srv.api + "/chat/completions", json=body, timeout=60), 503,
                     "model_unavailable", "does not exist")
        direct = {**body, "model": str(tmp_path / "no-such-model"), "stream": True}
        assert_error(httpx.post(srv.api + "/chat/completions", json=direct, timeout=60), 503, "model_unavailable")
        # Plugins that need no model still answer.
        help_body = {"model": "labeeb", "messages": [{"role": "user", "content": "help"}]}
        assert httpx.post(srv.api + "/chat/completions", json=help_body, timeout=60).status_code == 200
    finally:
        srv.stop()
