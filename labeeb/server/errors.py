"""Every failure becomes OpenAI's error JSON, here and only here, never a stack trace.

Routes raise :class:`ApiError` (or let validation and framework errors happen); the
handlers installed by :func:`install_error_handlers` turn them into::

    {"error": {"message": "...", "type": "invalid_request_error", "param": null, "code": "..."}}

with the right HTTP status, which is what the ``openai`` SDK and its users expect.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any

from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from labeeb.server.queue import QueueFull
from labeeb.vision.backend import ContextLengthError, ModelUnavailableError, UnsupportedRequestError, VisionError

if TYPE_CHECKING:  # pragma: no cover
    from fastapi import FastAPI, Request

log = logging.getLogger("labeeb.server")

#: OpenAI's error ``type`` for each status this server answers with.
ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    405: "invalid_request_error",
    413: "invalid_request_error",
    415: "invalid_request_error",
    422: "invalid_request_error",
    429: "rate_limit_error",
    500: "server_error",
    503: "server_error",
    504: "server_error",
}


#: What each error status means, for the OpenAPI document: every route can answer these (the
#: checks in middleware.py run before any route), so schema-driven clients see the truth.
DOCUMENTED_ERRORS = {
    400: "Invalid request: a field is missing, malformed or out of range; the prompt is past the context",
    401: "Missing or wrong API key (only when server.api_key is set)",
    403: "Refused: a cross-site request from a web page, or something this server does not allow",
    404: "No such model or endpoint",
    408: "The request's headers or body arrived too slowly (server.request_timeout)",
    413: "The request body is larger than server.max_body_mb",
    421: "The Host header does not name this server (server.allowed_hosts)",
    429: "The model's queue is full; retry after the Retry-After header's seconds",
    500: "An internal error; the details are in the server's log",
    503: "The model is not available (loading or failed), or the server is shutting down",
}

ERROR_SCHEMA = {
    "type": "object",
    "required": ["error"],
    "properties": {"error": {
        "type": "object",
        "required": ["message", "type", "param", "code"],
        "properties": {
            "message": {"type": "string"},
            "type": {"type": "string"},
            "param": {"type": ["string", "null"]},
            "code": {"type": ["string", "null"]},
        },
    }},
}


class ApiError(Exception):
    """An error the client should see: status, message, and OpenAI's ``code``/``param``."""

    def __init__(
        self,
        status: int,
        message: str,
        code: str | None = None,
        param: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.code = code
        self.param = param
        self.headers = headers or {}

    def body(self) -> dict[str, Any]:
        return error_body(self.status, self.message, self.code, self.param)


def error_body(status: int, message: str, code: str | None = None, param: str | None = None) -> dict[str, Any]:
    kind = ERROR_TYPES.get(status, "server_error" if status >= 500 else "invalid_request_error")
    return {"error": {"message": message, "type": kind, "param": param, "code": code}}


def error_response(exc: ApiError) -> JSONResponse:
    return JSONResponse(exc.body(), status_code=exc.status, headers=exc.headers)


#: pydantic's names for a union's members in an error's location (never a field's name: a
#: prefix match on "str" would drop stream_options, "int" interval, and so on).
_MEMBER_NAMES = {"str", "int", "float", "bool", "bytes", "none"}
_MEMBER_PREFIXES = ("list[", "dict[", "literal[", "function-", "str[", "int[", "float[", "bool[")


def _field_path(loc: tuple[Any, ...]) -> str | None:
    """A validation error's location as the request's field path, in the form every error
    here uses: pydantic's union member names (``str``, ``list[...]``) and a tagged union's tag
    are left out, so ``messages[0].content[9].image_url``, not
    ``messages.0.content.list[tagged-union[...]].9.image_url.image_url``."""
    parts: list[str] = []
    tag_after = None  # "index": a tagged union's list index comes, then its tag; "tag": the tag comes
    for item in map(str, loc):
        if item in ("body", "query", "path") and not parts:
            continue
        if item.startswith(("list[tagged-union", "tagged-union[")):
            tag_after = "index" if item.startswith("list[") else "tag"
        elif item in _MEMBER_NAMES or item.startswith(_MEMBER_PREFIXES):
            continue
        elif tag_after == "tag":
            tag_after = None  # the member's tag ("image_url"), not a field
        else:
            parts.append(f"[{item}]" if item.isdigit() and parts else f".{item}")
            if tag_after == "index":
                tag_after = "tag"
    return "".join(parts).lstrip(".") or None


def _validation_message(exc: RequestValidationError) -> tuple[str, str | None]:
    """One readable line per problem, naming the field as a dotted path. Of a union's
    alternatives, only the errors of the one that got furthest are shown."""
    found = []
    for err in exc.errors():
        param = _field_path(tuple(err.get("loc", ())))
        msg = err.get("msg", "invalid value")
        if err.get("type") == "json_invalid":
            msg, param = "the request body is not valid JSON", None
        found.append((param, msg))
    deeper = [(param, msg) for param, msg in found
              if not (param and any(other and other.startswith((param + ".", param + "[")) for other, _ in found))]
    lines = [f"{param}: {msg}" if param else msg for param, msg in deeper]
    unique = list(dict.fromkeys(lines))
    return "; ".join(unique[:5]) or "invalid request", next((param for param, _ in deeper if param), None)


def document_errors(app: FastAPI) -> None:
    """List the error answers in the OpenAPI document: OpenAI's error shape for each status
    in DOCUMENTED_ERRORS, and no 422 (validation errors are answered as 400)."""
    from fastapi.openapi.utils import get_openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = get_openapi(title=app.title, version=app.version, routes=app.routes)
            schemas = schema.setdefault("components", {}).setdefault("schemas", {})
            schemas.pop("HTTPValidationError", None)
            schemas.pop("ValidationError", None)
            schemas["Error"] = ERROR_SCHEMA
            content = {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
            for operations in schema.get("paths", {}).values():
                for operation in operations.values():
                    responses = operation.setdefault("responses", {})
                    responses.pop("422", None)
                    for status, description in DOCUMENTED_ERRORS.items():
                        responses.setdefault(str(status), {"description": description, "content": content})
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def _api_error(request: Request, exc: ApiError) -> JSONResponse:
        return error_response(exc)

    @app.exception_handler(QueueFull)
    async def _queue_full(request: Request, exc: QueueFull) -> JSONResponse:
        return error_response(to_api_error(exc))

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        message, param = _validation_message(exc)
        return JSONResponse(error_body(400, message, "invalid_request", param), status_code=400)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        if exc.status_code == 404:
            message = f"no such endpoint: {request.method} {request.url.path}"
        elif exc.status_code == 405:
            message = f"{request.method} is not allowed on {request.url.path}"
        else:
            message = str(exc.detail)
        return JSONResponse(
            error_body(exc.status_code, message, getattr(exc, "code", None)),
            status_code=exc.status_code,
            headers=getattr(exc, "headers", None),
        )

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        # The trace goes to the server's log; the client gets a plain sentence.
        log.exception("unexpected error answering %s %s", request.method, request.url.path)
        return JSONResponse(
            error_body(500, "internal server error; the details are in the server's log", "internal_error"),
            status_code=500,
        )


#: A failed reply's ``error_code`` (see labeeb.messages.Reply) -> the HTTP status it gets.
REPLY_ERROR_STATUS = {"invalid_request": 400, "context_length_exceeded": 400, "model_unavailable": 503}


def reply_error(text: str, data: dict[str, Any]) -> ApiError:
    """The API error for a failed :class:`labeeb.messages.Reply` (its text and data)."""
    code = data.get("error_code") or ("model_unavailable" if data.get("model_unavailable") else "plugin_error")
    return ApiError(REPLY_ERROR_STATUS.get(code, 500), text, code, data.get("error_param"))


def to_api_error(exc: BaseException) -> ApiError:
    """What the client sees for any failure while answering; the one place exceptions become
    HTTP statuses."""
    if isinstance(exc, ApiError):
        return exc
    if isinstance(exc, QueueFull):
        return ApiError(429, f"{exc}; try again in {exc.retry_after} s", "queue_full",
                        headers={"Retry-After": str(exc.retry_after)})
    if isinstance(exc, ModelUnavailableError):
        return ApiError(503, str(exc), "model_unavailable")
    if isinstance(exc, ContextLengthError):
        return ApiError(400, str(exc), "context_length_exceeded", "messages")
    if isinstance(exc, UnsupportedRequestError):
        return ApiError(400, str(exc), exc.code, exc.param)
    if isinstance(exc, VisionError):
        return ApiError(500, str(exc), "vision_error")
    if isinstance(exc, asyncio.CancelledError):
        return ApiError(400, "the request was cancelled", "cancelled")
    log.error("answering failed", exc_info=exc)
    return ApiError(500, "internal server error; the details are in the server's log", "internal_error")
