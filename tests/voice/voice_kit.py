"""Helpers for the voice tests (imported by conftest.py and the tests)."""

from __future__ import annotations

import threading
from typing import Callable, Iterator

import numpy as np

from labeeb.hookspecs import hookimpl
from labeeb.skills import Request, Skill
from labeeb.voice import SAMPLE_RATE


def silence(seconds: float) -> np.ndarray:
    return np.zeros(int(seconds * SAMPLE_RATE), np.float32)


def noise(seconds: float, level: float = 0.2, seed: int = 0) -> np.ndarray:
    return (np.random.default_rng(seed).standard_normal(int(seconds * SAMPLE_RATE)) * level).astype(np.float32)


def rms(samples: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(samples, dtype=np.float64)))) if len(samples) else 0.0


class FakeClock:
    """A clock that only moves when told (or by ``step`` on every reading)."""

    def __init__(self, start: float = 1000.0, step: float = 0.0) -> None:
        self.now, self.step = start, step
        self._lock = threading.Lock()

    def __call__(self) -> float:
        with self._lock:
            self.now += self.step
            return self.now

    def advance(self, seconds: float) -> None:
        with self._lock:
            self.now += seconds


class CommandsPlugin:
    """A test plugin with screen- and document-like skills that answer in sentences."""

    def __init__(self) -> None:
        self.requests: list[Request] = []
        self.answer = "Your screen shows a terminal. The cursor blinks at the prompt."

    def _screen(self, request: Request) -> Iterator[str]:
        self.requests.append(request)
        for word in self.answer.split(" "):
            yield word + " "

    def _document(self, request: Request) -> str:
        self.requests.append(request)
        return "The document is a letter about the weather."

    def _broken(self, request: Request) -> str:
        raise RuntimeError("the printer is on fire")

    @hookimpl
    def register_skills(self, register: Callable[[Skill], None]) -> None:
        register(Skill("look", self._screen, "Look at the screen", examples=["what is on my screen", "describe my screen", "what do you see on the screen"]))
        register(Skill("read", self._document, "Read a document", examples=["read this document", "read the document", "read the letter"]))
        register(Skill("broken", self._broken, "Always fails", examples=["print the report"]))


class GatedSink:
    """An audio sink where the test decides when time passes: each ``tick()`` lets one
    block play (``open()`` lets everything through). No sleeps, no wall clock."""

    def __init__(self, gated: bool = True) -> None:
        self.blocks: list[np.ndarray] = []
        self.rate = 0
        self.gated = gated
        self.waiting = 0
        self.aborts = 0
        self.closed = False
        self._ticks = 0
        self._cond = threading.Condition()

    def write(self, samples: np.ndarray, rate: int) -> None:
        with self._cond:
            self.waiting += 1
            self._cond.notify_all()
            if not self._cond.wait_for(lambda: not self.gated or self._ticks > 0, timeout=120):
                raise TimeoutError("the test never let this block play")
            if self.gated:
                self._ticks -= 1
            self.waiting -= 1
            self.blocks.append(samples)
            self.rate = rate
            self._cond.notify_all()

    def tick(self, n: int = 1) -> None:
        with self._cond:
            self._ticks += n
            self._cond.notify_all()

    def open(self) -> None:
        with self._cond:
            self.gated = False
            self._cond.notify_all()

    def wait_for(self, predicate: Callable[[GatedSink], bool], timeout: float = 120) -> None:
        """Block until ``predicate(self)`` (a deadlock guard, not a timing assertion).

        Re-checks every 50 ms too, for predicates on state other threads change."""
        import time

        deadline = time.monotonic() + timeout
        with self._cond:
            while not predicate(self):
                if time.monotonic() > deadline:
                    raise TimeoutError("the speaker never got there")
                self._cond.wait(0.05)

    def abort(self) -> None:
        with self._cond:
            self.aborts += 1

    def close(self) -> None:
        self.closed = True

    @property
    def audio(self) -> np.ndarray:
        return np.concatenate(self.blocks) if self.blocks else np.zeros(0, np.float32)


class RecordingSynthesizer:
    """The real synthesizer, noting what it was asked to say (and signalling it)."""

    def __init__(self, inner: object) -> None:
        self.inner = inner
        self.texts: list[str] = []
        self.asked = threading.Event()

    def synthesize(self, text: str) -> tuple[np.ndarray, int]:
        self.texts.append(text)
        self.asked.set()
        return self.inner.synthesize(text)  # type: ignore[attr-defined]
