"""Waiting for a queued job on behalf of an HTTP request whose client may leave."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any, Callable

from labeeb.server.errors import ApiError, to_api_error

if TYPE_CHECKING:  # pragma: no cover
    from fastapi import Request

    from labeeb.server.queue import Job, WorkQueue

#: Seconds between checks that a waiting client is still connected.
DISCONNECT_POLL = 0.25


async def next_event(job: Job, request: Request) -> tuple[str, Any]:
    """The job's next event; a client that goes away meanwhile stops the job and frees its place."""
    while True:
        try:
            return await asyncio.wait_for(job.next(), timeout=DISCONNECT_POLL)
        except asyncio.TimeoutError:
            if await request.is_disconnected():
                job.stop()
                raise ApiError(400, "the client disconnected", "cancelled") from None


async def run_job(work_queue: WorkQueue, fn: Callable[[], Any], request: Request) -> Any:
    """Run ``fn`` on ``work_queue`` and wait for its result (no streaming); a client that
    leaves meanwhile gives up its place."""
    job = work_queue.submit(lambda job: fn())  # QueueFull: a 429 (errors.py)
    while True:
        kind, value = await next_event(job, request)
        if kind == "done":
            return value
        if kind == "error":
            raise to_api_error(value)
