"""The checks every request passes before a route sees it: who it is for (Host), which
page sent it (Origin), the API key and the body size.

All are plain ASGI middleware (not ``BaseHTTPMiddleware``) so streamed answers pass
through untouched. The key is compared in constant time; the body is counted as it
arrives, so a client that lies about (or omits) ``Content-Length`` is stopped too.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import ipaddress
import uuid
from typing import Any, Awaitable, Callable
from urllib.parse import urlsplit

from starlette.exceptions import HTTPException

from labeeb.server.errors import error_body

Scope = dict[str, Any]
Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

#: Paths anyone may load: the web page (it asks for the key itself) and the health check.
PUBLIC_PREFIXES = ("/static/", "/health")
PUBLIC_PATHS = ("/", "/favicon.ico")


async def send_error(send: Send, status: int, message: str, code: str, headers: dict[str, str] | None = None) -> None:
    body = json.dumps(error_body(status, message, code)).encode()
    raw_headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    raw_headers += [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()]
    await send({"type": "http.response.start", "status": status, "headers": raw_headers})
    await send({"type": "http.response.body", "body": body})


def _header(scope: Scope, name: bytes) -> str:
    for key, value in scope.get("headers", []):
        if key.lower() == name:
            return value.decode("latin-1")
    return ""


#: Methods a browser sends cross-site only after a CORS preflight it would fail, or that
#: change nothing: their Origin is left to CORS.
SAFE_METHODS = ("GET", "HEAD", "OPTIONS")
WILDCARD_HOSTS = ("", "0.0.0.0", "::", "*")


def _split_host(value: str) -> tuple[str, int | None]:
    """``host[:port]`` (IPv6 in brackets) -> (lower-case host without brackets, port)."""
    try:
        parts = urlsplit("//" + value)
        return (parts.hostname or "").rstrip("."), parts.port
    except ValueError:
        return "", None


def _origin_key(origin: str) -> tuple[str, str, int] | None:
    """(scheme, host, port) of an Origin, default ports filled in; None when malformed."""
    try:
        parts = urlsplit(origin.strip())
        if parts.scheme not in ("http", "https") or not parts.hostname:
            return None
        return parts.scheme, parts.hostname.rstrip("."), parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        return None


class HostOriginMiddleware:
    """Serve only requests addressed to this server and not sent by a foreign web page.

    *Host* (DNS rebinding): a page on ``evil.example`` can make the browser resolve that
    name to 127.0.0.1 and then read this server as if same-origin; the request still says
    ``Host: evil.example``, so it is answered 421. Accepted: ``localhost``, any IP address
    (an address cannot be rebound), ``server.host`` and the ``server.allowed_hosts``
    names (``*.example.org`` patterns; ``*`` turns the check off).

    *Origin* (cross-site requests): a foreign page may POST a form or a "simple" fetch
    without a preflight. Unsafe methods whose ``Origin`` is neither this server's own
    nor on ``server.cors_origins`` (or, without Origin, whose ``Sec-Fetch-Site`` says
    ``cross-site``) are answered 403. Clients that send neither (curl, SDKs) pass.
    """

    def __init__(self, app: ASGIApp, host: str = "127.0.0.1", allowed_hosts: list[str] | None = None,
                 cors_origins: list[str] | None = None) -> None:
        self.app = app
        names = [h.lower().strip() for h in (allowed_hosts or [])]
        if host.lower() not in WILDCARD_HOSTS:
            names.append(host.lower().strip("[]"))
        self.any_host = "*" in names
        self.names = {n.rstrip(".") for n in names if n and not n.startswith("*.")}
        self.suffixes = tuple(n[1:].rstrip(".") for n in names if n.startswith("*."))
        origins = [o.strip() for o in (cors_origins or [])]
        self.any_origin = "*" in origins
        self.origins = {key for key in map(_origin_key, origins) if key}

    def host_allowed(self, host: str) -> bool:
        if self.any_host or host == "localhost" or host in self.names:
            return True
        if self.suffixes and host.endswith(self.suffixes):
            return True
        try:
            ipaddress.ip_address(host.split("%", 1)[0])
            return True  # reached by address: no name a rebinding attacker could control
        except ValueError:
            return False

    def origin_allowed(self, scope: Scope, origin: str, host_header: str) -> bool:
        key = _origin_key(origin)
        if key is None:
            return False  # "null" (sandboxed frames, file: pages) or garbage
        if self.any_origin or key in self.origins:
            return True
        own = _origin_key(f"{scope.get('scheme', 'http')}://{host_header}") if host_header else None
        return key == own

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            return await self.app(scope, receive, send)
        host_header = _header(scope, b"host").strip()
        host, _port = _split_host(host_header)
        if host_header and not self.host_allowed(host.lower()):
            return await send_error(
                send, 421, f"this server does not answer for host {host_header!r}; add it to "
                "server.allowed_hosts if that name should reach it", "host_not_allowed",
            )
        if scope.get("method", "GET") not in SAFE_METHODS:
            origin = _header(scope, b"origin")
            if origin and not self.origin_allowed(scope, origin, host_header):
                return await send_error(
                    send, 403, f"requests from the web page at {origin!r} are not allowed; add its "
                    "origin to server.cors_origins to let it use this server", "origin_not_allowed",
                )
            if not origin and _header(scope, b"sec-fetch-site").lower() == "cross-site" and not self.any_origin:
                return await send_error(send, 403, "cross-site requests from other web pages are not allowed",
                                        "origin_not_allowed")
        return await self.app(scope, receive, send)


def bearer_token(authorization: str) -> bytes | None:
    """The token of an ``Authorization: Bearer <token>`` header (the scheme in any case, as
    RFC 9110 says), or None when it names another scheme or none."""
    scheme, _, token = authorization.strip().partition(" ")
    if scheme.lower() != "bearer":
        return None
    return token.strip().encode("latin-1", "replace")


def key_matches(authorization: str, api_key: str) -> bool:
    """Whether the header carries ``api_key`` (compared in constant time, whatever was sent)."""
    token = bearer_token(authorization)
    same = hmac.compare_digest(token if token is not None else b"", api_key.encode())
    return token is not None and same


class RequestIdMiddleware:
    """Every response carries ``X-Request-Id``: the client's own (1-128 printable ASCII
    characters), else a new one, so a client and the server's log can name one request."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        given = _header(scope, b"x-request-id").strip()
        request_id = given if 0 < len(given) <= 128 and given.isascii() and given.isprintable() else ""
        request_id = request_id or f"req_{uuid.uuid4().hex}"
        scope.setdefault("state", {})["request_id"] = request_id

        async def with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [h for h in message.get("headers", []) if h[0].lower() != b"x-request-id"]
                message = {**message, "headers": [*headers, (b"x-request-id", request_id.encode())]}
            await send(message)

        return await self.app(scope, receive, with_id)


class ApiKeyMiddleware:
    """``Authorization: Bearer <server.api_key>`` on everything but the page and /health."""

    def __init__(self, app: ASGIApp, api_key: str) -> None:
        self.app = app
        self.api_key = api_key

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("method") == "OPTIONS":
            return await self.app(scope, receive, send)
        path = scope.get("path", "")
        if path in PUBLIC_PATHS or path.startswith(PUBLIC_PREFIXES):
            return await self.app(scope, receive, send)
        given = _header(scope, b"authorization").strip()
        if not key_matches(given, self.api_key):
            message = (
                "missing API key: send 'Authorization: Bearer <key>' (server.api_key)"
                if not given else "invalid API key"
            )
            return await send_error(send, 401, message, "invalid_api_key", {"WWW-Authenticate": "Bearer"})
        return await self.app(scope, receive, send)


class BodyTooLarge(HTTPException):
    """Raised while the body streams in; an HTTPException so FastAPI's body parsing passes it on."""

    code = "request_too_large"

    def __init__(self, limit: int) -> None:
        super().__init__(
            413, f"the request body is larger than this server's limit of "
            f"{limit / 1024 / 1024:g} MB (server.max_body_mb)",
        )


#: A refused body is still read (and thrown away) up to this many bytes and seconds, so a
#: client that is still sending gets to read the 413; closing a socket with unread data
#: makes the kernel send a reset, which many clients report instead of the answer.
DRAIN_BYTES = 256 * 1024 * 1024
DRAIN_SECONDS = 10.0


async def drain(receive: Receive, budget: int = DRAIN_BYTES, seconds: float = DRAIN_SECONDS) -> bool:
    """Read and discard the rest of the request body; True when it ended within the budget."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    while True:
        try:
            message = await asyncio.wait_for(receive(), max(0.0, deadline - loop.time()))
        except asyncio.TimeoutError:
            return False
        if message["type"] != "http.request":
            return False  # the client went away
        budget -= len(message.get("body", b""))
        if not message.get("more_body", False):
            return budget >= 0
        if budget < 0:
            return False


class BodyTimeout(HTTPException):
    """The client stopped sending its body (slowly-trickling clients hold a connection)."""

    code = "request_timeout"

    def __init__(self, seconds: float) -> None:
        super().__init__(
            408, f"the request body stopped arriving for {seconds:g} s (server.request_timeout)",
            headers={"Connection": "close"},
        )


class BodyLimitMiddleware:
    """Refuse bodies over ``limit`` bytes with 413, by header or by counting, and bodies that
    stall for ``idle_timeout`` seconds with 408.

    Either way the client receives the error JSON: an oversized body is drained (within
    ``DRAIN_BYTES``/``DRAIN_SECONDS``) before answering, and once the body is refused
    whatever the route answers is replaced by the refusal (a form parser, say, that turned
    the error into a 400 of its own).
    """

    def __init__(self, app: ASGIApp, limit: int, idle_timeout: float | None = None) -> None:
        self.app = app
        self.limit = limit
        self.idle_timeout = idle_timeout

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        too_large = BodyTooLarge(self.limit)
        declared = _header(scope, b"content-length")
        if declared.isdigit() and int(declared) > self.limit:
            # A client waiting for "100 Continue" has sent nothing yet: answer at once.
            waiting = _header(scope, b"expect").lower() == "100-continue"
            drained = not waiting and int(declared) <= DRAIN_BYTES and await drain(receive)
            close = None if drained else {"Connection": "close"}
            return await send_error(send, 413, too_large.detail, too_large.code, close)
        received = 0
        body_done = False
        refusal: HTTPException | None = None  # once set, the answer is this, whatever the route says
        close: dict[str, str] | None = None
        started = answered = False

        async def counted() -> Message:
            nonlocal received, body_done, refusal, close
            if refusal is not None:
                raise refusal
            if body_done or self.idle_timeout is None:
                message = await receive()  # after the body: waiting for a disconnect, untimed
            else:
                try:
                    message = await asyncio.wait_for(receive(), self.idle_timeout)
                except asyncio.TimeoutError:
                    refusal, close = BodyTimeout(self.idle_timeout), {"Connection": "close"}
                    raise refusal from None
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                body_done = not message.get("more_body", False)
                if received > self.limit:
                    refusal = too_large
                    if not (body_done or await drain(receive)):
                        close = {"Connection": "close"}
                    raise refusal
            return message

        async def refuse() -> None:
            assert refusal is not None
            await send_error(send, refusal.status_code, refusal.detail, refusal.code, close)  # type: ignore[attr-defined]

        async def guarded(message: Message) -> None:
            nonlocal started, answered
            if refusal is not None and not started and message["type"] == "http.response.start":
                started = answered = True
                return await refuse()
            if answered:
                return None  # the route's own answer to the refused body is dropped
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counted, guarded)
        except Exception:
            if refusal is None:
                raise
        if refusal is not None and not started:
            await refuse()
