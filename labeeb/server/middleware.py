"""The two checks every request passes before a route sees it: the API key and body size.

Both are plain ASGI middleware (not ``BaseHTTPMiddleware``) so streamed answers pass
through untouched. The key is compared in constant time; the body is counted as it
arrives, so a client that lies about (or omits) ``Content-Length`` is stopped too.
"""

from __future__ import annotations

import hmac
import json
from typing import Any, Awaitable, Callable

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


class ApiKeyMiddleware:
    """``Authorization: Bearer <server.api_key>`` on everything but the page and /health."""

    def __init__(self, app: ASGIApp, api_key: str) -> None:
        self.app = app
        self.expected = f"Bearer {api_key}".encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("method") == "OPTIONS":
            return await self.app(scope, receive, send)
        path = scope.get("path", "")
        if path in PUBLIC_PATHS or path.startswith(PUBLIC_PREFIXES):
            return await self.app(scope, receive, send)
        given = _header(scope, b"authorization").strip().encode("latin-1", "replace")
        if not hmac.compare_digest(given, self.expected):
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


class BodyLimitMiddleware:
    """Refuse bodies over ``limit`` bytes with 413, by header or by counting."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        declared = _header(scope, b"content-length")
        if declared.isdigit() and int(declared) > self.limit:
            error = BodyTooLarge(self.limit)
            return await send_error(send, 413, error.detail, error.code, {"Connection": "close"})
        received = 0

        async def counted() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.limit:
                    raise BodyTooLarge(self.limit)  # answered as 413 by the error handlers
            return message

        return await self.app(scope, counted, send)
