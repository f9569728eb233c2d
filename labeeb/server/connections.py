"""How ``labeeb serve`` runs uvicorn: bounded connections, timed-out stragglers, its own logging.

uvicorn on its own keeps a connection that never finishes its request headers forever
(slowloris), accepts connections until file descriptors run out, and replaces the logging
setup, closing Labeeb's log file; when descriptors ran out, reopening that file raised
inside asyncio's error handler and the process exited. Here:

* a connection must finish each request's headers within ``server.request_timeout`` s of
  connecting (or of its previous answer), else it is closed (408 when it sent a part);
* at most ``server.max_connections`` are open, and never more than half the process's
  file-descriptor limit; the next ones get an immediate 503 and are closed;
* uvicorn leaves logging alone (``log_config=None``); its loggers feed Labeeb's handlers.
"""

from __future__ import annotations

import asyncio
import json
import logging
import resource
from typing import TYPE_CHECKING, Any

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

from labeeb.server.errors import error_body

if TYPE_CHECKING:  # pragma: no cover
    import uvicorn

    from labeeb.config import ServerConfig

log = logging.getLogger("labeeb.server")
#: Connections the kernel queues and asyncio accepts in one go; uvicorn's 2048 would let one
#: burst take 2048 descriptors before any could be refused.
BACKLOG = 128


def connection_cap(max_connections: int) -> int:
    """``max_connections``, but at most half the descriptors this process may open."""
    soft, _hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        return max_connections
    return max(1, min(max_connections, soft // 2))


def _raw_error(status: int, reason: str, message: str, code: str) -> bytes:
    body = json.dumps(error_body(status, message, code)).encode()
    head = (f"HTTP/1.1 {status} {reason}\r\ncontent-type: application/json\r\n"
            f"content-length: {len(body)}\r\nconnection: close\r\n\r\n")
    return head.encode() + body


def guarded_protocol(max_connections: int, request_timeout: float) -> type[H11Protocol]:
    """uvicorn's h11 protocol with a connection cap and a deadline for request headers."""

    class GuardedProtocol(H11Protocol):
        header_timer: asyncio.TimerHandle | None = None
        refused = False

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            if len(self.connections) >= max_connections:
                self.refused = True
                log.warning("refusing a connection: %d are open (server.max_connections)", len(self.connections))
                transport.write(_raw_error(503, "Service Unavailable", "the server has too many open connections; "
                                           "try again in a moment", "too_many_connections"))
                transport.close()
                return
            super().connection_made(transport)
            self._arm_header_timer()

        def data_received(self, data: bytes) -> None:
            if self.refused:
                return
            super().data_received(data)
            if self.conn.their_state is not h11.IDLE:  # the headers are in: the route's timing now
                self._cancel_header_timer()

        def connection_lost(self, exc: Exception | None) -> None:
            if self.refused:
                return
            self._cancel_header_timer()
            super().connection_lost(exc)

        def on_response_complete(self) -> None:
            super().on_response_complete()
            if not self.transport.is_closing() and self.conn.their_state in (h11.IDLE, h11.DONE):
                self._arm_header_timer()  # the next request on this connection gets the same deadline

        def _arm_header_timer(self) -> None:
            self._cancel_header_timer()
            self.header_timer = self.loop.call_later(request_timeout, self._header_timeout)

        def _cancel_header_timer(self) -> None:
            if self.header_timer is not None:
                self.header_timer.cancel()
                self.header_timer = None

        def _header_timeout(self) -> None:
            self.header_timer = None
            if self.transport.is_closing() or self.conn.their_state is not h11.IDLE:
                return
            if self.cycle is not None and not self.cycle.response_complete:
                return  # a request is being answered (pipelined): not a straggler
            if self.conn.trailing_data[0]:  # part of a request arrived, the rest never did
                self.transport.write(_raw_error(
                    408, "Request Timeout", f"the request headers did not arrive within {request_timeout:g} s "
                    "(server.request_timeout)", "request_timeout",
                ))
            self.transport.close()

    return GuardedProtocol


def uvicorn_config(app: Any, server: ServerConfig, **options: Any) -> uvicorn.Config:
    """The uvicorn settings ``labeeb serve`` runs with (see the module docstring)."""
    import uvicorn

    cap = connection_cap(server.max_connections)
    return uvicorn.Config(
        app,
        http=guarded_protocol(cap, server.request_timeout),
        log_config=None,  # keep Labeeb's handlers: uvicorn's dictConfig would close them
        log_level="warning",
        backlog=BACKLOG,
        timeout_keep_alive=5,
        h11_max_incomplete_event_size=16 * 1024,  # request line and headers
        **options,
    )
