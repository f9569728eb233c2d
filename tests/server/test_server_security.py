"""Safe defaults and the switches that open them up: bind address, API key, CORS, remote images."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import openai
import pytest
from server_kit import KEY, LabeebServer, assert_error, free_port, png_url, user_message

pytestmark = pytest.mark.slow


def chat_body(server: LabeebServer, *urls: str) -> dict:
    return {"model": server.vision_model, "max_tokens": 2, "messages": [user_message("What is it?", *urls)]}


def listening_addresses(port: int) -> set[str]:
    """Local addresses with a listening TCP socket on ``port``, from /proc/net/tcp{,6}."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            local, _remote, state = line.split()[1:4]
            address, hex_port = local.split(":")
            if int(hex_port, 16) == port and state == "0A":  # 0A = LISTEN
                found.add(address)
    return found


def test_binds_to_loopback_only_by_default(server):
    assert listening_addresses(server.port) == {"0100007F"}  # 127.0.0.1


def test_no_cors_headers_by_default(server):
    response = httpx.get(server.api + "/models", headers={"Origin": "http://evil.example"})
    assert response.status_code == 200
    assert "access-control-allow-origin" not in response.headers


def test_warns_when_exposed_without_an_api_key(tiny_model_dir, tmp_path):
    srv = LabeebServer(tmp_path, tiny_model_dir, args=["--host", "0.0.0.0"])
    srv.start(wait=False)
    try:
        deadline = time.monotonic() + 120
        while "Labeeb serving on" not in srv.log() and time.monotonic() < deadline:
            assert srv.process.poll() is None, srv.log()
            time.sleep(0.2)
        log = srv.log()
        assert "WARNING: listening on 0.0.0.0 without an API key" in log
        assert "LABEEB_SERVER__API_KEY" in log
    finally:
        srv.stop()


# -- the API key -----------------------------------------------------------------------------


def test_missing_and_wrong_keys_are_refused(secure):
    response = httpx.post(secure.api + "/chat/completions", json=chat_body(secure, png_url()))
    assert_error(response, 401, "invalid_api_key", "missing API key")
    assert response.headers["www-authenticate"] == "Bearer"
    wrong = httpx.get(secure.api + "/models", headers={"Authorization": "Bearer nope"})
    assert_error(wrong, 401, "invalid_api_key", "invalid API key")
    assert_error(httpx.get(secure.url + "/api/screenshot"), 401, "invalid_api_key")
    with openai.OpenAI(base_url=secure.api, api_key="wrong", max_retries=0) as sdk:
        with pytest.raises(openai.AuthenticationError):
            sdk.models.list()


def test_the_right_key_works_with_the_openai_sdk(secure):
    with openai.OpenAI(base_url=secure.api, api_key=KEY, max_retries=0) as sdk:
        completion = sdk.chat.completions.create(
            model=secure.vision_model, max_tokens=2, messages=[user_message("What is it?", png_url())],
        )
    assert completion.choices[0].message.content


def test_the_page_and_health_need_no_key(secure):
    assert httpx.get(secure.url + "/").status_code == 200
    assert httpx.get(secure.url + "/static/app.js").status_code == 200
    health = httpx.get(secure.url + "/health").json()
    assert health["features"]["auth"] is True


# -- CORS ------------------------------------------------------------------------------------


def test_cors_only_for_the_configured_origins(secure):
    preflight = {"Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "authorization,content-type"}
    allowed = httpx.options(secure.api + "/chat/completions", headers={"Origin": "http://allowed.example", **preflight})
    assert allowed.status_code == 200
    assert allowed.headers["access-control-allow-origin"] == "http://allowed.example"
    other = httpx.options(secure.api + "/chat/completions", headers={"Origin": "http://evil.example", **preflight})
    assert "access-control-allow-origin" not in other.headers
    refused = httpx.get(secure.api + "/models", headers={"Origin": "http://allowed.example"})
    assert refused.status_code == 401  # CORS lets the page read the refusal; the key still rules
    assert refused.headers["access-control-allow-origin"] == "http://allowed.example"


# -- remote images ---------------------------------------------------------------------------


def keyed(server: LabeebServer, body: dict) -> httpx.Response:
    return httpx.post(server.api + "/chat/completions", json=body, headers={"Authorization": f"Bearer {KEY}"},
                      timeout=60)


def test_allowed_hosts_on_loopback_are_still_refused(secure):
    target = f"http://127.0.0.1:{free_port()}/cat.png"
    assert_error(keyed(secure, chat_body(secure, target)), 403, "image_host_forbidden", "loopback")
    by_name = f"http://localhost:{secure.port}/static/app.js"
    assert_error(keyed(secure, chat_body(secure, by_name)), 403, "image_host_forbidden")
    assert keyed(secure, chat_body(secure, png_url())).status_code == 200


def test_hosts_off_the_allow_list_are_refused(secure):
    for url in ("http://example.com/cat.png", "https://not-example.org/x.png", "http://169.254.169.254/latest"):
        error = assert_error(keyed(secure, chat_body(secure, url)), 403, "image_host_not_allowed", "allow-list")
        assert error["param"] == "messages[0].content[0].image_url"
    assert keyed(secure, chat_body(secure, png_url())).status_code == 200
