"""One model, many clients: a bounded queue in front of the shared assistant.

Jobs run one at a time on a worker thread (the in-process model can only generate one
answer at a time, and the assistant's conversation is swapped per request, see chat.py).
Once the waiting jobs weigh ``size`` (a job weighs as many requests as answers it asks for:
a chat completion with ``n`` = 3 counts as 3), one more is refused with :class:`QueueFull`, which the API
answers with 429 and a ``Retry-After`` estimated from how long recent jobs took. So memory
stays bounded however many clients call, and no two requests touch the model at once.

Results cross from the worker thread to the request's event loop through an
``asyncio.Queue`` fed with ``call_soon_threadsafe``. A client that goes away while its job
waits gives up its place at once (:meth:`Job.stop`), so a queue full of departed clients
never turns live ones away.
"""

from __future__ import annotations

import asyncio
import logging
import math
import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import Any, Callable

log = logging.getLogger("labeeb.server")

#: What a job reports: ("chunk", text), then ("done", result) or ("error", exception).
Event = tuple[str, Any]


class QueueFull(Exception):
    def __init__(self, retry_after: int, size: int) -> None:
        super().__init__(f"the server is busy ({size} requests are waiting)")
        self.retry_after = retry_after
        self.size = size


class Job:
    """One request's work; the event loop side reads :meth:`next`, the worker calls :meth:`emit`."""

    def __init__(self, work: Callable[[Job], Any], loop: asyncio.AbstractEventLoop,
                 owner: WorkQueue | None = None, weight: int = 1) -> None:
        self.work = work
        self.weight = weight  # how many requests' work it is (a chat completion's n answers)
        self.cancel = threading.Event()
        self._owner = owner
        self._loop = loop
        self._events: asyncio.Queue[Event] = asyncio.Queue()
        self.finished = False
        # Set when the server stops this job (shutting down): reported instead of its result.
        self.aborted: BaseException | None = None

    def stop(self) -> None:
        """The client is gone: stop the work, and give up the job's place if it still waits."""
        self.cancel.set()
        if self._owner is not None:
            self._owner.withdraw(self)

    def abort(self, error: BaseException) -> None:
        self.aborted = error
        self.cancel.set()

    def emit(self, kind: str, value: Any) -> None:
        try:
            self._loop.call_soon_threadsafe(self._events.put_nowait, (kind, value))
        except RuntimeError:  # the loop is closed: the server is shutting down
            self.cancel.set()

    async def next(self) -> Event:
        kind, value = await self._events.get()
        if kind in ("done", "error"):
            self.finished = True
        return kind, value


@dataclass
class QueueStats:
    size: int
    waiting: int
    running: int
    completed: int
    rejected: int

    def to_dict(self) -> dict[str, int]:
        return dict(self.__dict__)


class WorkQueue:
    def __init__(self, size: int, name: str = "labeeb-model") -> None:
        self.size = size
        self.name = name
        self._waiting: deque[Job] = deque()
        self._thread: threading.Thread | None = None
        self._lock = threading.Condition()
        self._stopping = False
        self._running = 0
        self._completed = 0
        self._rejected = 0
        self._current: Job | None = None
        self._average = 5.0  # seconds per job, until real jobs say otherwise
        self._closed: BaseException | None = None

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._serve, name=self.name, daemon=True)
            self._thread.start()

    def _take_waiting(self) -> list[Job]:
        """Remove and return every job still waiting in the queue."""
        with self._lock:
            jobs = list(self._waiting)
            self._waiting.clear()
        return jobs

    def withdraw(self, job: Job) -> None:
        """Take ``job`` out of the queue if it still waits (its client left): its place is free now."""
        with self._lock:
            try:
                self._waiting.remove(job)
            except ValueError:  # already running or finished
                return
        job.emit("error", asyncio.CancelledError())

    def stop(self) -> None:
        if self._thread is not None:
            # Cancel whatever waits, so the worker reaches the sentinel quickly.
            for job in self._take_waiting():
                job.cancel.set()
                job.emit("error", asyncio.CancelledError())
            current = self._current
            if current is not None:
                current.cancel.set()
            with self._lock:
                self._stopping = True
                self._lock.notify_all()
            self._thread.join(timeout=10)
            self._thread = None

    def drain(self, error: BaseException, grace: float) -> None:
        """Shutting down: refuse new jobs, fail waiting ones now, give the running one ``grace`` s.

        Every client gets an answer or ``error`` (the API's 503), never a dropped connection.
        """
        self._closed = error
        for job in self._take_waiting():
            job.abort(error)
            job.emit("error", error)
        current = self._current
        if current is not None:
            def stop_it() -> None:
                if self._current is current:
                    current.abort(error)

            timer = threading.Timer(grace, stop_it)
            timer.daemon = True
            timer.start()

    def stats(self) -> QueueStats:
        with self._lock:
            return QueueStats(self.size, len(self._waiting), self._running, self._completed, self._rejected)

    def _waiting_weight(self) -> int:
        return sum(job.weight for job in self._waiting)

    def retry_after(self) -> int:
        with self._lock:
            current = self._current
            ahead = self._waiting_weight() + (current.weight if current is not None else self._running)
            return max(1, min(120, math.ceil(self._average * ahead)))

    def submit(self, work: Callable[[Job], Any], weight: int = 1) -> Job:
        """Queue ``work(job)``, ``weight`` requests' work (a request for n answers weighs n);
        raise QueueFull at once when the waiting work already weighs ``size``."""
        if self._closed is not None:
            raise self._closed
        job = Job(work, asyncio.get_running_loop(), self, weight)
        with self._lock:
            if self._waiting_weight() >= self.size:
                self._rejected += 1
                full = True
            else:
                self._waiting.append(job)
                self._lock.notify()
                full = False
        if full:
            raise QueueFull(self.retry_after(), self.size)
        return job

    def _next(self) -> Job | None:
        with self._lock:
            while not self._waiting and not self._stopping:
                self._lock.wait()
            if self._stopping:
                self._stopping = False  # the queue may be started again
                return None
            return self._waiting.popleft()

    def _serve(self) -> None:
        while True:
            job = self._next()
            if job is None:
                return
            if job.cancel.is_set():  # the client left while it waited
                job.emit("error", asyncio.CancelledError())
                continue
            if self._closed is not None:  # taken just before the server began to drain
                job.emit("error", self._closed)
                continue
            with self._lock:
                self._running += 1
                self._current = job
            started = time.perf_counter()
            try:
                result = job.work(job)
            except BaseException as exc:  # handed to the request, which maps it to an error
                job.emit("error", job.aborted or exc)
            else:
                if job.aborted is not None:
                    job.emit("error", job.aborted)
                else:
                    job.emit("done", result)
            finally:
                elapsed = time.perf_counter() - started
                with self._lock:
                    self._running -= 1
                    self._current = None
                    self._completed += 1
                    if not job.cancel.is_set():  # seconds per request's work
                        self._average = 0.7 * self._average + 0.3 * elapsed / job.weight
