"""The server's pieces on their own: image decoding and fetching, address checks, stop cutting."""

from __future__ import annotations

import http.server
import threading
from typing import Iterator

import pytest
from hypothesis import given
from hypothesis import strategies as st
from server_kit import image_bytes

from labeeb.server import images
from labeeb.server.turns import StopCutter
from labeeb.server.errors import ApiError


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "WEBP", "GIF"])
def test_each_format_is_recognised_by_its_bytes(fmt):
    data = image_bytes((40, 30), fmt=fmt)
    assert images.sniff(data) == fmt
    image = images.open_bytes(data, max_pixels=10_000)
    assert image.size == (40, 30)


def test_other_formats_never_reach_a_decoder():
    for data in (b"BM" + b"\0" * 60, b"II*\0" + b"\0" * 60, b"%PDF-1.7", b"<svg/>"):
        with pytest.raises(ApiError) as caught:
            images.open_bytes(data, max_pixels=10_000)
        assert caught.value.status == 400 and caught.value.code == "invalid_image"


def test_pixel_limit_is_checked_before_decoding():
    with pytest.raises(ApiError) as caught:
        images.open_bytes(image_bytes((200, 100)), max_pixels=19_999)
    assert caught.value.code == "image_too_large" and "200x100" in caught.value.message


@pytest.mark.parametrize(
    ("address", "public"),
    [
        ("8.8.8.8", True), ("2001:4860:4860::8888", True),
        ("127.0.0.1", False), ("::1", False), ("10.1.2.3", False), ("172.16.0.1", False),
        ("192.168.1.1", False), ("169.254.169.254", False), ("100.64.0.1", False), ("0.0.0.0", False),
        ("::ffff:127.0.0.1", False), ("fc00::1", False), ("fe80::1%eth0", False), ("224.0.0.1", False),
        # IPv6 forms that carry an IPv4 address: the embedded one is judged.
        ("::127.0.0.1", False), ("::10.0.0.1", False), ("::8.8.8.8", True),  # IPv4-compatible
        ("64:ff9b::7f00:1", False), ("64:ff9b::a9fe:a9fe", False), ("64:ff9b::808:808", True),  # NAT64
        ("64:ff9b:1::7f00:1", False), ("64:ff9b:1::c0a8:101", False),  # local-use NAT64
        ("2002:7f00:1::", False), ("2002:a00:1::1", False), ("2002:808:808::", True),  # 6to4
        ("2001:0:4136:e378:8000:63bf:80ff:fffe", False),  # Teredo, client 127.0.0.1
        ("2001:0:808:808:0:f7f7:f7f7:f7f7", True),  # Teredo, server and client 8.8.8.8
        ("::ffff:8.8.8.8", True), ("::", False),
    ],
)
def test_only_public_unicast_addresses_pass(address, public):
    assert images.is_public_address(address) is public


def test_host_allow_list_patterns():
    patterns = ["images.example.com", "*.example.org"]
    assert images.host_allowed("IMAGES.example.com.", patterns)
    assert images.host_allowed("cdn.example.org", patterns)
    assert not images.host_allowed("example.org", patterns)
    assert not images.host_allowed("evil-example.org", patterns)
    assert not images.host_allowed("images.example.com.evil.net", patterns)


# -- fetching, against a local HTTP server ----------------------------------------------------


class _Handler(http.server.BaseHTTPRequestHandler):
    seen_hosts: list[str] = []

    def do_GET(self) -> None:  # noqa: N802
        self.seen_hosts.append(self.headers["Host"])
        routes = {
            "/cat.png": (200, image_bytes((32, 32)), {}),
            "/big.png": (200, image_bytes((32, 32)) + b"\0" * 200_000, {}),
            "/page.html": (200, b"<html>not an image</html>", {}),
            "/moved": (302, b"", {"Location": "/cat.png"}),
            "/away": (302, b"", {"Location": "http://elsewhere.test/cat.png"}),
        }
        status, body, headers = routes.get(self.path, (404, b"no", {}))
        self.send_response(status)
        for key, value in headers.items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def local_images(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A local image server, with loopback treated as public for these tests only."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    monkeypatch.setattr(images, "is_public_address", lambda address: True)
    _Handler.seen_hosts = []
    try:
        yield f"http://localhost:{server.server_address[1]}"
    finally:
        server.shutdown()


def policy(**kw: object) -> images.ImagePolicy:
    settings = {"max_pixels": 1_000_000, "max_bytes": 100_000, "allow_remote": True, "remote_hosts": ["localhost"]}
    return images.ImagePolicy(**{**settings, **kw})  # type: ignore[arg-type]


def test_fetches_an_allowed_image_from_the_checked_address(local_images):
    image = images.load_image(local_images + "/cat.png", policy())
    assert image.size == (32, 32)
    # The connection went to the resolved address, with the name kept in the Host header.
    assert _Handler.seen_hosts == [local_images.removeprefix("http://")]


def test_redirects_are_followed_and_checked_again(local_images):
    assert images.load_image(local_images + "/moved", policy()).size == (32, 32)
    with pytest.raises(ApiError) as caught:
        images.load_image(local_images + "/away", policy())
    assert caught.value.status == 403 and caught.value.code == "image_host_not_allowed"


@pytest.mark.parametrize(
    ("path", "status", "code"),
    [("/big.png", 413, "image_too_large"), ("/page.html", 400, "invalid_image"), ("/missing.png", 400, "image_fetch_failed")],
)
def test_fetch_failures_are_clear(local_images, path, status, code):
    with pytest.raises(ApiError) as caught:
        images.load_image(local_images + path, policy())
    assert (caught.value.status, caught.value.code) == (status, code)


def test_remote_urls_need_the_switch(local_images):
    with pytest.raises(ApiError) as caught:
        images.load_image(local_images + "/cat.png", policy(allow_remote=False))
    assert caught.value.code == "remote_images_disabled"
    assert _Handler.seen_hosts == []  # nothing was fetched


# -- stop sequences ----------------------------------------------------------------------------


@given(
    text=st.text(alphabet="ab c\n", max_size=60),
    stops=st.lists(st.text(alphabet="ab c\n", min_size=1, max_size=4), max_size=3),
    cuts=st.lists(st.integers(min_value=0, max_value=60), max_size=8),
)
def test_stop_cutter_matches_cutting_the_whole_text(text, stops, cuts):
    bounds = sorted({0, len(text), *[c for c in cuts if c <= len(text)]})
    cutter = StopCutter(stops)
    out = "".join(cutter.feed(text[a:b]) for a, b in zip(bounds, bounds[1:])) + cutter.flush()
    hits = [i for i in (text.find(s) for s in stops) if i >= 0]
    assert out == (text[: min(hits)] if hits else text)
    assert cutter.stopped == bool(hits)
