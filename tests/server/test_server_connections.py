"""Issue 15: slow, idle and too many connections cannot stall or stop ``labeeb serve``.

All traffic goes to 127.0.0.1, to servers these tests start, bounded in count and time.
"""

from __future__ import annotations

import logging
import resource
import socket
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import httpx
import pytest
from server_kit import LabeebServer

pytestmark = pytest.mark.slow

TIMEOUT = 2.0  # server.request_timeout of the servers here
CONFIG = f"""
[vision.cache]
enabled = false

[server]
request_timeout = {TIMEOUT}
max_connections = 8
"""


@contextmanager
def descriptor_limit(soft: int) -> Iterator[None]:
    """Processes started inside the block inherit ``ulimit -n soft``."""
    before = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (soft, before[1]))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, before)


@pytest.fixture(scope="module")
def guarded(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LabeebServer]:
    with LabeebServer(tmp_path_factory.mktemp("guarded"), tiny_model_dir, config=CONFIG).running() as srv:
        yield srv


def closed_within(sock: socket.socket, seconds: float, trickle: bytes = b"") -> tuple[float, bytes]:
    """Seconds until the server closes ``sock`` (sending ``trickle`` a byte every 0.25 s), and what it said."""
    sock.settimeout(0.25)
    start, received = time.monotonic(), b""
    while time.monotonic() - start < seconds:
        try:
            chunk = sock.recv(4096)
            if not chunk:
                return time.monotonic() - start, received
            received += chunk
        except socket.timeout:
            if trickle:
                try:
                    sock.send(trickle[:1])
                    trickle = trickle[1:] or b"x"
                except OSError:
                    return time.monotonic() - start, received
        except ConnectionResetError:
            return time.monotonic() - start, received
    raise AssertionError(f"the server kept the connection open for {seconds:g} s; it said {received[:200]!r}")


def test_slowloris_headers_are_cut_off(guarded):
    with socket.create_connection(("127.0.0.1", guarded.port)) as sock:
        sock.sendall(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        elapsed, said = closed_within(sock, TIMEOUT + 5, trickle=b"X-Slow: " + b"a" * 100)
    assert TIMEOUT - 0.5 < elapsed < TIMEOUT + 1.5
    assert said.startswith(b"HTTP/1.1 408 ") and b'"code": "request_timeout"' in said


def test_an_idle_connection_is_closed(guarded):
    with socket.create_connection(("127.0.0.1", guarded.port)) as sock:
        elapsed, said = closed_within(sock, TIMEOUT + 5)
    assert elapsed < TIMEOUT + 1.5 and said == b""


def test_a_stalled_body_is_answered_408(guarded):
    with socket.create_connection(("127.0.0.1", guarded.port)) as sock:
        sock.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                     b"Content-Length: 1000\r\n\r\n{\"model\": ")
        elapsed, said = closed_within(sock, TIMEOUT + 5)
    assert elapsed < TIMEOUT + 1.5
    assert said.startswith(b"HTTP/1.1 408 ") and b"request_timeout" in said, said


def test_a_keep_alive_connection_gets_the_same_deadline(guarded):
    with socket.create_connection(("127.0.0.1", guarded.port)) as sock:
        sock.sendall(b"GET /v1/models HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        sock.settimeout(10)
        assert sock.recv(4096).startswith(b"HTTP/1.1 200 ")
        sock.sendall(b"GET /v1/models HTTP/1.1\r\nHost: 1")  # the second request never ends
        elapsed, said = closed_within(sock, TIMEOUT + 7, trickle=b"27.0.0.1\r\nX: " + b"a" * 100)
    assert elapsed < TIMEOUT + 1.5 and b"HTTP/1.1 408 " in said  # after the rest of the first answer, if any


def test_connections_over_the_cap_get_503_at_once(guarded):
    held = [socket.create_connection(("127.0.0.1", guarded.port)) for _ in range(8)]
    try:
        time.sleep(0.2)
        with socket.create_connection(("127.0.0.1", guarded.port)) as extra:
            extra.settimeout(2)
            said = extra.recv(4096)
        assert said.startswith(b"HTTP/1.1 503 ") and b"too_many_connections" in said
    finally:
        for sock in held:
            sock.close()
    time.sleep(0.2)
    assert httpx.get(guarded.api + "/models", timeout=5).status_code == 200


def test_1100_half_open_connections_under_ulimit_1024(tiny_model_dir, tmp_path):
    """The process lives through a descriptor flood and answers at once when it ends."""
    srv = LabeebServer(tmp_path, tiny_model_dir, config="[vision.cache]\nenabled = false\n")
    with descriptor_limit(1024):
        srv.start(wait=False)
    try:
        srv.wait_ready()
        socks = []
        try:
            for i in range(1100):
                sock = socket.socket()
                sock.setblocking(False)
                sock.connect_ex(("127.0.0.1", srv.port))
                socks.append(sock)
                if i % 3 == 0:  # a third send part of a request, the rest nothing
                    try:
                        sock.send(b"GET /health HTTP/1.1\r\nHost: 127")
                    except OSError:
                        pass
            time.sleep(3)
            assert srv.process.poll() is None, srv.log()[-3000:]
        finally:
            for sock in socks:
                sock.close()
        start = time.monotonic()
        response = httpx.get(srv.url + "/health", timeout=5)
        assert time.monotonic() - start < 1.0 and response.status_code == 200
        assert srv.process.poll() is None
        assert "Traceback" not in srv.log()
    finally:
        srv.stop()


def test_the_cap_stays_under_half_the_descriptor_limit():
    from labeeb.server.connections import connection_cap

    with descriptor_limit(1024):
        assert connection_cap(10_000) == 512
        assert connection_cap(100) == 100


def test_uvicorn_leaves_labeebs_log_handlers_open(tmp_path):
    """uvicorn's default logging setup closed them; reopening under EMFILE killed the server."""
    from labeeb.config import ServerConfig
    from labeeb.server.connections import uvicorn_config

    handler = logging.FileHandler(tmp_path / "labeeb.log")
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        config = uvicorn_config(lambda scope, receive, send: None, ServerConfig())
        config.configure_logging()
        assert handler.stream is not None and not handler.stream.closed
        assert handler in root.handlers
    finally:
        root.removeHandler(handler)
        handler.close()
